/**
 * Development attestation: documents in the exact Nitro format (COSE_Sign1, CBOR payload, ES384,
 * certificate chain) issued under a development root CA generated at run time. The same
 * verifier checks them; only the trusted root differs. Private keys live only in memory.
 *
 * The PCRs are derived from a label (sha384 of "opg-dev-pcr<i>:" + label) so a test can approve
 * or refuse a development "image" the way governance approves a real one; `debug` makes them all
 * zero, as AWS reports them for an enclave started in debug mode.
 */
import {
  createHash,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
  type KeyObject,
} from "node:crypto";

import { InputError } from "../common/errors.js";
import { COSE_ALG_ES384, MAX_NSM_FIELD_BYTES, sigStructure } from "./attestation.js";
import { encodeCbor, type CborValue } from "./cbor.js";
import { buildCertificate } from "./der.js";

export interface DevAttestorOptions {
  /** The development image label PCR0..2 are derived from. */
  image?: string;
  /** Validity of the root (from `now - 1 h`); default 1 year. */
  rootValidityMs?: number;
  /** Validity of each leaf certificate; default 3 hours, like Nitro's. */
  leafValidityMs?: number;
  /** Clock for timestamps and certificate validity (tests pin it). */
  now?: () => Date;
  /**
   * Issue documents as an enclave started in debug mode does: every PCR zero. The verifier refuses
   * them unless `allowDebug` is set.
   */
  debug?: boolean;
}

export interface AttestationRequest {
  nonce?: Uint8Array;
  userData?: Uint8Array;
  publicKey?: Uint8Array;
}

const HOUR = 60 * 60 * 1000;

export function devPcrs(image: string): Map<number, Uint8Array> {
  const pcrs = new Map<number, Uint8Array>();
  for (let i = 0; i < 16; i++) {
    pcrs.set(
      i,
      i <= 2 ? createHash("sha384").update(`opg-dev-pcr${i}:${image}`).digest() : Buffer.alloc(48),
    );
  }
  return pcrs;
}

function checkLength(field: string, value: Uint8Array | undefined, max: number): void {
  if (value !== undefined && value.length > max) {
    throw new InputError(`${field} is ${value.length} bytes; at most ${max}`, {
      details: { field, length: value.length, max },
    });
  }
}

export class DevAttestor {
  readonly rootPem: string;
  readonly root: X509Certificate;
  readonly moduleId: string;
  readonly pcrs: Map<number, Uint8Array>;
  private readonly rootKey: KeyObject;
  private readonly leafValidityMs: number;
  private readonly now: () => Date;

  constructor(options: DevAttestorOptions = {}) {
    this.now = options.now ?? (() => new Date());
    this.leafValidityMs = options.leafValidityMs ?? 3 * HOUR;
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "secp384r1" });
    this.rootKey = privateKey;
    const start = new Date(this.now().getTime() - HOUR);
    const der = buildCertificate({
      serial: randomBytes(16),
      subject: "opg-dev-nitro-root",
      issuer: "opg-dev-nitro-root",
      organisation: "OPG development enclave (not trusted in production)",
      notBefore: start,
      notAfter: new Date(start.getTime() + (options.rootValidityMs ?? 365 * 24 * HOUR)),
      publicKey,
      signingKey: privateKey,
      ca: true,
    });
    this.root = new X509Certificate(der);
    this.rootPem = this.root.toString();
    this.moduleId = `i-dev${randomBytes(8).toString("hex")}-enc${randomBytes(8).toString("hex")}`;
    this.pcrs = devPcrs(options.image ?? "opg-enclave-dev");
    if (options.debug === true) for (const pcr of this.pcrs.values()) pcr.fill(0);
  }

  /** PCR0..2 as hex, the form TeeRegistry and `approvedPcrs` take. */
  measurement(): Record<number, string> {
    const out: Record<number, string> = {};
    for (const i of [0, 1, 2]) out[i] = Buffer.from(this.pcrs.get(i) as Uint8Array).toString("hex");
    return out;
  }

  /** Issues a document: a fresh leaf key and certificate per document, as Nitro does. */
  attest(request: AttestationRequest = {}): Buffer {
    checkLength("nonce", request.nonce, MAX_NSM_FIELD_BYTES);
    checkLength("user_data", request.userData, MAX_NSM_FIELD_BYTES);
    checkLength("public_key", request.publicKey, MAX_NSM_FIELD_BYTES);
    const now = this.now();
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "secp384r1" });
    const leaf = buildCertificate({
      serial: randomBytes(16),
      subject: `${this.moduleId}.dev.nitro-enclaves`,
      issuer: "opg-dev-nitro-root",
      organisation: "OPG development enclave (not trusted in production)",
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + this.leafValidityMs),
      publicKey,
      signingKey: this.rootKey,
      ca: false,
    });
    const payload = new Map<CborValue, CborValue>([
      ["module_id", this.moduleId],
      ["digest", "SHA384"],
      ["timestamp", now.getTime()],
      ["pcrs", new Map<CborValue, CborValue>(this.pcrs)],
      ["certificate", leaf],
      ["cabundle", [this.root.raw]],
      ["public_key", request.publicKey ?? null],
      ["user_data", request.userData ?? null],
      ["nonce", request.nonce ?? null],
    ]);
    const protectedBytes = encodeCbor(new Map<CborValue, CborValue>([[1, COSE_ALG_ES384]]));
    const payloadBytes = encodeCbor(payload);
    const signature = sign("sha384", sigStructure(protectedBytes, payloadBytes), {
      key: privateKey,
      dsaEncoding: "ieee-p1363",
    });
    return encodeCbor([protectedBytes, new Map(), payloadBytes, signature]);
  }
}
