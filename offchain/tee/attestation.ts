/**
 * AWS Nitro Enclaves attestation document verifier (one format for real and development
 * enclaves; only the trusted root differs). Follows AWS's "Verifying the root of trust":
 *
 *   1. COSE_Sign1 structure (CBOR array of 4, optionally tag 18), protected header alg = ES384
 *   2. payload fields and types (module_id, digest SHA384, timestamp, pcrs, certificate, cabundle,
 *      public_key, user_data, nonce)
 *   3. cabundle[0] is the trusted root (byte-equal DER)
 *   4. chain root -> cabundle[1..] -> certificate: each signed by the one before, each a CA except
 *      the leaf, each valid at the verification time
 *   5. ES384 signature over the COSE Sig_structure with the leaf's P-384 key
 *   6. not a debug-mode enclave (PCR0..2 all zero) unless the caller allows it
 *   7. freshness (timestamp not older than maxAgeMs, not in the future), nonce, PCRs, public_key,
 *      user_data against what the caller expects
 *
 * Every failure is an AttestationError whose `check` names the step.
 */
import { X509Certificate, timingSafeEqual, verify as cryptoVerify } from "node:crypto";

import { VerificationError } from "../common/errors.js";
import { CborError, CborTagged, decodeCbor, encodeCbor, type CborValue } from "./cbor.js";

export type AttestationCheck =
  | "encoding"
  | "cose"
  | "payload"
  | "root"
  | "chain"
  | "validity"
  | "signature"
  | "debug"
  | "age"
  | "nonce"
  | "pcrs"
  | "public_key"
  | "user_data";

export class AttestationError extends VerificationError {
  override name = "AttestationError";
  constructor(
    readonly check: AttestationCheck,
    message: string,
    details: Record<string, unknown> = {},
    cause?: unknown,
  ) {
    super(`attestation check "${check}" failed: ${message}`, {
      details: { check, ...details },
      cause,
    });
  }
}

/** COSE algorithm id for ECDSA with SHA-384 (RFC 8152). */
export const COSE_ALG_ES384 = -35;
export const COSE_SIGN1_TAG = 18;

export interface AttestationDocument {
  moduleId: string;
  digest: string;
  /** Milliseconds since the Unix epoch, as the Nitro hypervisor wrote it. */
  timestamp: number;
  pcrs: Map<number, Uint8Array>;
  certificate: Uint8Array;
  cabundle: Uint8Array[];
  publicKey: Uint8Array | null;
  userData: Uint8Array | null;
  nonce: Uint8Array | null;
}

/** A set of PCR values an image must match: index -> hex (no 0x). Several sets = several images. */
export type PcrPolicy = Array<Record<number, string>>;

export interface VerifyOptions {
  /** Trusted root certificate(s), PEM or DER or parsed. */
  roots: Array<string | Uint8Array | X509Certificate>;
  /** The verification time (certificate validity and document age). Defaults to now. */
  at?: Date;
  /** Largest accepted age of the document at `at`; default 10 minutes. */
  maxAgeMs?: number;
  /** Allowed clock skew for a timestamp in the future; default 60 s. */
  maxSkewMs?: number;
  /** The nonce the verifier asked for: must equal the document's. */
  nonce?: Uint8Array;
  /** Approved measurements: the document must match one set entirely. */
  approvedPcrs?: PcrPolicy;
  publicKey?: Uint8Array;
  userData?: Uint8Array;
  /**
   * Accept a debug-mode document (PCR0..2 all zero: the host can read the enclave's memory).
   * Default false: refused with check "debug". For development only.
   */
  allowDebug?: boolean;
}

export interface VerifiedAttestation {
  document: AttestationDocument;
  /** The leaf certificate (signed the document). */
  leaf: X509Certificate;
  /** Subjects from root to leaf. */
  chain: string[];
  ageMs: number;
  /** True for a debug-mode document (accepted only with `allowDebug`). */
  debug: boolean;
}

const DEFAULT_MAX_AGE_MS = 10 * 60 * 1000;

/**
 * Largest `public_key`, `user_data` and `nonce`: the NSM API's CDDL (aws-nitro-enclaves-nsm-api,
 * "AttestationDocument") allows up to 1,024 bytes for each.
 */
export const MAX_NSM_FIELD_BYTES = 1024;
const DEFAULT_SKEW_MS = 60 * 1000;

// ---------------------------------------------------------------- parsing

/** A CBOR value in an error message: scalars as themselves, containers by kind. */
function show(v: CborValue): string {
  if (v instanceof Uint8Array) return `bytes(${v.length})`;
  if (Array.isArray(v)) return "array";
  if (v instanceof Map) return "map";
  if (v instanceof CborTagged) return `tag(${v.tag})`;
  return String(v);
}

export interface CoseSign1 {
  protectedBytes: Uint8Array;
  unprotected: Map<CborValue, CborValue>;
  payload: Uint8Array;
  signature: Uint8Array;
}

export function parseCoseSign1(bytes: Uint8Array): CoseSign1 {
  let value: CborValue;
  try {
    value = decodeCbor(bytes);
  } catch (cause) {
    throw new AttestationError(
      "cose",
      `not valid CBOR: ${cause instanceof CborError ? cause.message : String(cause)}`,
      {},
      cause,
    );
  }
  if (value instanceof CborTagged) {
    if (value.tag !== COSE_SIGN1_TAG)
      throw new AttestationError(
        "cose",
        `CBOR tag ${value.tag}, expected ${COSE_SIGN1_TAG} (COSE_Sign1)`,
      );
    value = value.value;
  }
  if (!Array.isArray(value) || value.length !== 4)
    throw new AttestationError("cose", "not a COSE_Sign1 array of 4 items");
  const [protectedBytes, unprotected, payload, signature] = value;
  if (!(protectedBytes instanceof Uint8Array))
    throw new AttestationError("cose", "protected header is not a byte string");
  if (!(unprotected instanceof Map))
    throw new AttestationError("cose", "unprotected header is not a map");
  if (!(payload instanceof Uint8Array))
    throw new AttestationError(
      "cose",
      "payload is not a byte string (detached payloads are not accepted)",
    );
  if (!(signature instanceof Uint8Array))
    throw new AttestationError("cose", "signature is not a byte string");
  let header: CborValue;
  try {
    header = decodeCbor(protectedBytes);
  } catch (cause) {
    throw new AttestationError("cose", "protected header is not valid CBOR", {}, cause);
  }
  const alg = header instanceof Map ? header.get(1) : undefined;
  if (alg !== COSE_ALG_ES384)
    throw new AttestationError(
      "cose",
      `protected header alg is ${show(alg)}, expected ${COSE_ALG_ES384} (ES384)`,
    );
  if (signature.length !== 96)
    throw new AttestationError(
      "cose",
      `signature is ${signature.length} bytes, expected 96 (ES384 r || s)`,
    );
  return { protectedBytes, unprotected, payload, signature };
}

function bytesField(
  map: Map<CborValue, CborValue>,
  key: string,
  max: number,
  optional: boolean,
): Uint8Array | null {
  const v = map.get(key);
  if ((v === undefined || v === null) && optional) return null;
  if (!(v instanceof Uint8Array))
    throw new AttestationError("payload", `${key} is missing or not a byte string`);
  if (v.length < (optional ? 0 : 1) || v.length > max)
    throw new AttestationError("payload", `${key} is ${v.length} bytes; at most ${max} allowed`, {
      field: key,
      length: v.length,
      max,
    });
  return v;
}

/** PCR0..2 of a document, as hex (the form measurementFromPcrs takes); its signature is not checked. */
export function attestedPcrs(document: Uint8Array): string[] {
  const { pcrs } = parsePayload(parseCoseSign1(document).payload);
  return [0, 1, 2].map((i) => Buffer.from(pcrs.get(i) ?? new Uint8Array(0)).toString("hex"));
}

export function parsePayload(payload: Uint8Array): AttestationDocument {
  let value: CborValue;
  try {
    value = decodeCbor(payload);
  } catch (cause) {
    throw new AttestationError("payload", "payload is not valid CBOR", {}, cause);
  }
  if (!(value instanceof Map)) throw new AttestationError("payload", "payload is not a CBOR map");
  const moduleId = value.get("module_id");
  if (typeof moduleId !== "string" || moduleId.length === 0)
    throw new AttestationError("payload", "module_id is missing or empty");
  const digest = value.get("digest");
  if (digest !== "SHA384")
    throw new AttestationError("payload", `digest is ${show(digest)}, expected SHA384`);
  const timestamp = value.get("timestamp");
  if (typeof timestamp !== "number" || timestamp <= 0)
    throw new AttestationError("payload", "timestamp is missing or not a positive integer");
  const pcrsValue = value.get("pcrs");
  if (!(pcrsValue instanceof Map) || pcrsValue.size < 1 || pcrsValue.size > 32)
    throw new AttestationError("payload", "pcrs is not a map of 1..32 entries");
  const pcrs = new Map<number, Uint8Array>();
  for (const [k, v] of pcrsValue) {
    if (typeof k !== "number" || k < 0 || k > 31)
      throw new AttestationError("payload", `PCR index ${show(k)} is not in 0..31`);
    if (!(v instanceof Uint8Array) || ![32, 48, 64].includes(v.length))
      throw new AttestationError("payload", `PCR${k} is not 32, 48 or 64 bytes`);
    pcrs.set(k, v);
  }
  const certificate = bytesField(value, "certificate", 1024 * 1024, false) as Uint8Array;
  const bundle = value.get("cabundle");
  if (!Array.isArray(bundle) || bundle.length < 1)
    throw new AttestationError("payload", "cabundle is missing or empty");
  const cabundle = bundle.map((c, i) => {
    if (!(c instanceof Uint8Array) || c.length < 1 || c.length > 1024 * 1024)
      throw new AttestationError("payload", `cabundle[${i}] is not a certificate byte string`);
    return c;
  });
  return {
    moduleId,
    digest,
    timestamp,
    pcrs,
    certificate,
    cabundle,
    publicKey: bytesField(value, "public_key", MAX_NSM_FIELD_BYTES, true),
    userData: bytesField(value, "user_data", MAX_NSM_FIELD_BYTES, true),
    nonce: bytesField(value, "nonce", MAX_NSM_FIELD_BYTES, true),
  };
}

/**
 * Whether the document comes from an enclave started in debug mode: AWS then reports the PCRs as
 * all zero, so PCR0..2 (the image, kernel and application measurements) are zero (or absent).
 */
export function isDebugDocument(doc: AttestationDocument): boolean {
  return [0, 1, 2].every((i) => (doc.pcrs.get(i) ?? new Uint8Array(0)).every((b) => b === 0));
}

/** COSE Sig_structure for COSE_Sign1 (RFC 8152 §4.4): ["Signature1", protected, h'', payload]. */
export function sigStructure(protectedBytes: Uint8Array, payload: Uint8Array): Buffer {
  return encodeCbor(["Signature1", protectedBytes, new Uint8Array(0), payload]);
}

// ---------------------------------------------------------------- verification

function toCert(c: string | Uint8Array | X509Certificate): X509Certificate {
  if (c instanceof X509Certificate) return c;
  return new X509Certificate(typeof c === "string" ? c : Buffer.from(c));
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

const hex = (b: Uint8Array | null): string | null =>
  b === null ? null : Buffer.from(b).toString("hex");

export function verifyAttestation(bytes: Uint8Array, options: VerifyOptions): VerifiedAttestation {
  const at = options.at ?? new Date();
  const cose = parseCoseSign1(bytes);
  const doc = parsePayload(cose.payload);

  // Root: cabundle[0] must be one of the trusted roots, byte for byte.
  const roots = options.roots.map(toCert);
  const first = doc.cabundle[0] as Uint8Array;
  const root = roots.find((r) => equal(r.raw, first));
  if (root === undefined) {
    let subject = "(unparseable)";
    try {
      subject = new X509Certificate(Buffer.from(first)).subject;
    } catch {
      // reported as unparseable
    }
    throw new AttestationError("root", "cabundle[0] is not a trusted root certificate", {
      bundleRoot: subject,
      trusted: roots.map((r) => r.subject),
    });
  }

  // Chain: root -> intermediates -> leaf; each certificate signed by its issuer, valid at `at`.
  let certs: X509Certificate[];
  try {
    certs = [...doc.cabundle.slice(1), doc.certificate].map(
      (c) => new X509Certificate(Buffer.from(c)),
    );
  } catch (cause) {
    throw new AttestationError("chain", "a certificate in the chain cannot be parsed", {}, cause);
  }
  const chain = [root, ...certs];
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i] as X509Certificate;
    const from = new Date(cert.validFrom);
    const to = new Date(cert.validTo);
    if (at < from || at > to) {
      throw new AttestationError(
        "validity",
        `certificate ${i} (${cert.subject.replace(/\n/g, ", ")}) is not valid at ${at.toISOString()}`,
        {
          index: i,
          validFrom: from.toISOString(),
          validTo: to.toISOString(),
          at: at.toISOString(),
        },
      );
    }
    const issuer = i === 0 ? cert : (chain[i - 1] as X509Certificate);
    const isLeaf = i === chain.length - 1;
    if (!isLeaf && !cert.ca)
      throw new AttestationError("chain", `certificate ${i} is not a CA but issues the next one`, {
        index: i,
      });
    if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) {
      throw new AttestationError(
        "chain",
        `certificate ${i} is not signed by certificate ${i === 0 ? 0 : i - 1}`,
        {
          index: i,
          subject: cert.subject,
          issuer: issuer.subject,
        },
      );
    }
  }
  const leaf = chain[chain.length - 1] as X509Certificate;
  const leafKey = leaf.publicKey;
  if (
    leafKey.asymmetricKeyType !== "ec" ||
    leafKey.asymmetricKeyDetails?.namedCurve !== "secp384r1"
  ) {
    throw new AttestationError("chain", "leaf certificate key is not EC P-384", {
      keyType: leafKey.asymmetricKeyType,
    });
  }

  // Signature over the byte-exact Sig_structure.
  const ok = cryptoVerify(
    "sha384",
    sigStructure(cose.protectedBytes, cose.payload),
    { key: leafKey, dsaEncoding: "ieee-p1363" },
    cose.signature,
  );
  if (!ok)
    throw new AttestationError(
      "signature",
      "ES384 signature does not verify with the leaf certificate's key",
    );

  // Debug mode: the measurements are zeros and the host can read the enclave's memory.
  const debug = isDebugDocument(doc);
  if (debug && options.allowDebug !== true) {
    throw new AttestationError(
      "debug",
      "debug-mode enclave: PCRs are all zero; its memory can be read by the host",
      { moduleId: doc.moduleId, allowDebug: false },
    );
  }

  // Freshness.
  const ageMs = at.getTime() - doc.timestamp;
  const maxAge = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
  const skew = options.maxSkewMs ?? DEFAULT_SKEW_MS;
  if (ageMs > maxAge || ageMs < -skew) {
    throw new AttestationError(
      "age",
      ageMs > maxAge
        ? `document is ${ageMs} ms old (max ${maxAge})`
        : `document timestamp is ${-ageMs} ms in the future`,
      {
        timestamp: new Date(doc.timestamp).toISOString(),
        at: at.toISOString(),
        ageMs,
        maxAgeMs: maxAge,
      },
    );
  }

  if (options.nonce !== undefined && (doc.nonce === null || !equal(doc.nonce, options.nonce))) {
    throw new AttestationError("nonce", "nonce does not match the one requested", {
      expected: hex(options.nonce),
      actual: hex(doc.nonce),
    });
  }

  if (options.approvedPcrs !== undefined) {
    const matches = options.approvedPcrs.some((set) =>
      Object.entries(set).every(([index, value]) => {
        const actual = doc.pcrs.get(Number(index));
        return (
          actual !== undefined &&
          Buffer.from(actual).toString("hex") === value.toLowerCase().replace(/^0x/, "")
        );
      }),
    );
    if (!matches) {
      throw new AttestationError("pcrs", "PCRs match no approved measurement", {
        pcr0: hex(doc.pcrs.get(0) ?? null),
        pcr1: hex(doc.pcrs.get(1) ?? null),
        pcr2: hex(doc.pcrs.get(2) ?? null),
        approved: options.approvedPcrs.length,
      });
    }
  }

  if (
    options.publicKey !== undefined &&
    (doc.publicKey === null || !equal(doc.publicKey, options.publicKey))
  ) {
    throw new AttestationError("public_key", "public_key does not match", {
      expected: hex(options.publicKey),
      actual: hex(doc.publicKey),
    });
  }
  if (
    options.userData !== undefined &&
    (doc.userData === null || !equal(doc.userData, options.userData))
  ) {
    throw new AttestationError("user_data", "user_data does not match", {
      expected: hex(options.userData),
      actual: hex(doc.userData),
    });
  }

  return {
    document: doc,
    leaf,
    chain: chain.map((c) => c.subject.replace(/\n/g, ", ")),
    ageMs,
    debug,
  };
}

/** Decodes a document given as raw bytes, base64 or hex text (files and CLI arguments). */
export function readDocumentText(text: string | Uint8Array): Uint8Array {
  if (text instanceof Uint8Array) {
    // A file may hold raw CBOR (starts with 0x84 or tag 0xd2) or text.
    if (text[0] === 0x84 || text[0] === 0xd2) return text;
    return readDocumentText(Buffer.from(text).toString("utf8"));
  }
  const t = text.trim();
  if (/^(0x)?[0-9a-fA-F]+$/.test(t) && t.length % 2 === 0)
    return Buffer.from(t.replace(/^0x/, ""), "hex");
  if (/^[A-Za-z0-9+/=\s_-]+$/.test(t)) return Buffer.from(t.replace(/\s/g, ""), "base64");
  throw new AttestationError("encoding", "document is neither CBOR, hex nor base64");
}
