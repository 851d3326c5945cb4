/**
 * Development attestation: documents in the exact Nitro format (COSE_Sign1, CBOR payload, ES384,
 * certificate chain) issued under a development root CA, generated at run time or kept in a file
 * (`DevRoot`, so that restarts of a development enclave stay under one root, as Nitro enclaves stay
 * under AWS's). The same verifier checks them; only the trusted root differs.
 *
 * The PCRs are derived from a label (sha384 of "opg-dev-pcr<i>:" + label) so a test can approve
 * or refuse a development "image" the way governance approves a real one; `debug` makes them all
 * zero, as AWS reports them for an enclave started in debug mode.
 */
import { chmod, readFile, writeFile } from "node:fs/promises";

import {
  createHash,
  createPrivateKey,
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
  /** Issue under this root instead of a fresh one (see `loadOrCreateDevRoot`). */
  root?: DevRoot;
}

/** A development root CA: its private key and its self-signed certificate. */
export interface DevRoot {
  key: KeyObject;
  certificate: X509Certificate;
}

/** A fresh development root CA (P-384, self-signed), valid from `now - 1 h` for `validityMs`. */
export function createDevRoot(now = new Date(), validityMs = 365 * 24 * HOUR): DevRoot {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "secp384r1" });
  const start = new Date(now.getTime() - HOUR);
  const der = buildCertificate({
    serial: randomBytes(16),
    subject: "opg-dev-nitro-root",
    issuer: "opg-dev-nitro-root",
    organisation: "OPG development enclave (not trusted in production)",
    notBefore: start,
    notAfter: new Date(start.getTime() + validityMs),
    publicKey,
    signingKey: privateKey,
    ca: true,
  });
  return { key: privateKey, certificate: new X509Certificate(der) };
}

/**
 * The development root kept in `file` (its PKCS#8 key, then its certificate, PEM; mode 0600),
 * created there on first use. A relayer trusts its certificate once and keeps trusting it when the
 * enclave restarts with a new signing key.
 */
export async function loadOrCreateDevRoot(file: string): Promise<DevRoot> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    const root = createDevRoot();
    const pem =
      root.key.export({ type: "pkcs8", format: "pem" }).toString() + root.certificate.toString();
    await writeFile(file, pem, { mode: 0o600, flag: "wx" });
    await chmod(file, 0o600);
    return root;
  }
  const key = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/.exec(text)?.[0];
  const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text)?.[0];
  if (key === undefined || cert === undefined)
    throw new InputError(`${file} is not a development root (a PEM private key and certificate)`, {
      details: { file },
      hint: "delete it to have a new root created (relayers must then trust the new one)",
    });
  try {
    const root = { key: createPrivateKey(key), certificate: new X509Certificate(cert) };
    if (!root.certificate.checkPrivateKey(root.key))
      throw new Error("the key does not match the certificate");
    return root;
  } catch (cause) {
    throw new InputError(
      `${file} holds an unusable development root: ${(cause as Error).message}`,
      {
        details: { file },
        cause,
      },
    );
  }
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
    const root = options.root ?? createDevRoot(this.now(), options.rootValidityMs);
    this.rootKey = root.key;
    this.root = root.certificate;
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
