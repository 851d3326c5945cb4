/**
 * How the enclave knows a request comes from its own client: every authenticated request carries
 *
 *   x-opg-auth: <unix seconds>.<signature>
 *
 * where the signature is the client GPU node's signer key over
 *
 *   keccak256("OPG enclave request v1" || enclave address (20) || method || " " || path ||
 *             timestamp (8, big-endian) || keccak256(body))
 *
 * The enclave checks it against the node's signer key as NodeStaking records it, so the key that
 * signs receipts also opens the door, and no other secret has to be provisioned. The enclave address
 * in the digest keeps a request for one enclave from being replayed to another; the timestamp
 * (within `AUTH_WINDOW_SECONDS` of the enclave's clock) bounds a replay to a window in which every
 * authenticated call is idempotent or harmless (see server.ts). Chosen over a key bound in the
 * attestation because the client, not the enclave's host, must hold the credential.
 */
import { keccak256 } from "../../native/index.js";
import { BaseError } from "../common/errors.js";
import type { DigestSigner } from "../chain/ecdsa.js";
import { recoverSigner } from "../chain/ecdsa.js";

export const AUTH_HEADER = "x-opg-auth";
/**
 * Names the relayer making an authenticated request (a random id it keeps in its store): the
 * enclave serves one relayer at a time (Enclave.admitRelayer). Not signed: it separates the node's
 * own relayers from each other, who all hold the node's key.
 */
export const RELAYER_HEADER = "x-opg-relayer";
export const RELAYER_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const AUTH_WINDOW_SECONDS = 60n;
const TAG = Buffer.from("OPG enclave request v1", "utf8");

/** 401: no credential, or one that is malformed or out of its time window. */
export class UnauthenticatedError extends BaseError {
  override name = "UnauthenticatedError";
  override readonly httpStatus: number = 401;
}

/** 403: a valid credential of someone who is not this enclave's client. */
export class ForbiddenError extends BaseError {
  override name = "ForbiddenError";
  override readonly httpStatus: number = 403;
}

export function authDigest(
  enclave: string,
  method: string,
  path: string,
  timestamp: bigint,
  body: Uint8Array,
): Uint8Array {
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(timestamp);
  return keccak256(
    Buffer.concat([
      TAG,
      Buffer.from(enclave.slice(2), "hex"),
      Buffer.from(`${method.toUpperCase()} ${path}`, "utf8"),
      ts,
      keccak256(body),
    ]),
  );
}

/** The header value for a request (the client's side). */
export function authHeader(
  signer: DigestSigner,
  enclave: string,
  method: string,
  path: string,
  timestamp: bigint,
  body: Uint8Array,
): string {
  return `${timestamp}.${signer.sign(authDigest(enclave, method, path, timestamp, body))}`;
}

/** The address that signed the request (the enclave's side); throws UnauthenticatedError. */
export function authenticate(
  header: string | undefined,
  enclave: string,
  method: string,
  path: string,
  body: Uint8Array,
  now: bigint,
): string {
  if (header === undefined || header.length === 0) {
    throw new UnauthenticatedError(`missing ${AUTH_HEADER} header`, {
      hint: "requests to the enclave are signed by its client node's signer key (offchain/tee/auth.ts)",
    });
  }
  const match = /^([0-9]{1,12})\.(0x[0-9a-fA-F]{130})$/.exec(header);
  if (match === null) {
    throw new UnauthenticatedError(`malformed ${AUTH_HEADER} header`, {
      details: { expected: "<unix seconds>.<0x + 130 hex signature>" },
    });
  }
  const timestamp = BigInt(match[1]!);
  const skew = timestamp > now ? timestamp - now : now - timestamp;
  if (skew > AUTH_WINDOW_SECONDS) {
    throw new UnauthenticatedError(`${AUTH_HEADER} is outside its time window`, {
      details: { timestamp, enclaveTime: now, windowSeconds: AUTH_WINDOW_SECONDS },
    });
  }
  try {
    return recoverSigner(authDigest(enclave, method, path, timestamp, body), match[2]!);
  } catch (cause) {
    throw new UnauthenticatedError(`${AUTH_HEADER} signature does not recover`, { cause });
  }
}
