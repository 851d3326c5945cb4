/**
 * secp256k1 signing and recovery of 32-byte digests, the two operations on the relayer's and the
 * enclave's hot path (one node signature and one verdict signature per receipt, one recovery to
 * check each verdict). ethers does both in JavaScript (@noble/curves): ~0.3 ms to sign and ~1.5 ms
 * to recover, which profiling put at half of the relayer's CPU. libsecp256k1 (bitcoin-core's
 * library, through the `secp256k1` package's prebuilt Node-API binding) does them in ~50 µs.
 *
 * Same answers as ethers, byte for byte: RFC 6979 deterministic nonces, low-s, v = 27 + recid
 * (tests compare both on random keys and digests). When the binding cannot be loaded, ethers is
 * used and `ecdsaBackend` says so; OPG_REQUIRE_NATIVE=1 makes that an error instead.
 */
import { createRequire } from "node:module";

import { SigningKey, Signature, recoverAddress as ethersRecover } from "ethers";

import { keccak256 } from "../../native/index.js";
import { InputError, VerificationError } from "../common/errors.js";
import { SECP256K1_N } from "../common/private-key.js";

interface Binding {
  ecdsaSign(msg32: Uint8Array, seckey: Uint8Array): { signature: Uint8Array; recid: number };
  ecdsaRecover(sig: Uint8Array, recid: number, msg32: Uint8Array, compressed: boolean): Uint8Array;
}

/** n / 2 of secp256k1: signatures with s above it are refused (EIP-2, OpenZeppelin ECDSA). */
const HALF_N = SECP256K1_N >> 1n;

function load(): { binding: Binding | null; error: unknown } {
  try {
    const require = createRequire(import.meta.url);
    return { binding: require("secp256k1/bindings.js") as Binding, error: null };
  } catch (error) {
    return { binding: null, error };
  }
}

const loaded = load();
if (loaded.binding === null && process.env.OPG_REQUIRE_NATIVE === "1") {
  throw new Error(
    `OPG_REQUIRE_NATIVE=1 but the libsecp256k1 binding did not load: ${String(loaded.error)}`,
  );
}
const binding = loaded.binding;

/** "libsecp256k1" or "ethers" (JavaScript fallback). */
export const ecdsaBackend: "libsecp256k1" | "ethers" = binding === null ? "ethers" : "libsecp256k1";

function bytes32(value: string | Uint8Array, what: string): Uint8Array {
  if (typeof value !== "string") {
    if (value.length !== 32) {
      throw new InputError(`${what} must be 32 bytes, got ${value.length}`, {
        details: { length: value.length },
      });
    }
    return value;
  }
  if (!/^0x[0-9a-fA-F]{64}$/.test(value)) {
    throw new InputError(`${what} must be 0x + 64 hex digits`, { details: { [what]: value } });
  }
  return Buffer.from(value.slice(2), "hex");
}

/**
 * A private key that signs digests. The key bytes stay in this object (never in errors or logs).
 */
export class DigestSigner {
  readonly #key: Uint8Array;
  readonly #ethers: SigningKey;
  readonly address: string;

  constructor(privateKey: string | SigningKey) {
    this.#ethers = typeof privateKey === "string" ? new SigningKey(privateKey) : privateKey;
    this.#key = Buffer.from(this.#ethers.privateKey.slice(2), "hex");
    this.address = addressOf(this.#ethers.publicKey);
  }

  /** The 65-byte signature r || s || v (v = 27 or 28) as 0x hex, like ethers' `Signature.serialized`. */
  sign(digest: string | Uint8Array): string {
    const msg = bytes32(digest, "digest");
    if (binding === null) return this.#ethers.sign(msg).serialized;
    const { signature, recid } = binding.ecdsaSign(msg, this.#key);
    return `0x${Buffer.from(signature).toString("hex")}${(27 + recid).toString(16)}`;
  }
}

/** EIP-55 mixed-case form of 40 lowercase hex digits (keccak-256 from native/). */
function checksummed(lower: string): string {
  const hash = keccak256(Buffer.from(lower, "ascii"));
  let out = "0x";
  for (let i = 0; i < 40; i++) {
    const c = lower[i]!;
    const nibble = i % 2 === 0 ? hash[i >> 1]! >> 4 : hash[i >> 1]! & 0x0f;
    out += nibble >= 8 ? c.toUpperCase() : c;
  }
  return out;
}

function addressOf(uncompressedPublicKey: string | Uint8Array): string {
  const pub =
    typeof uncompressedPublicKey === "string"
      ? Buffer.from(uncompressedPublicKey.slice(2), "hex")
      : uncompressedPublicKey;
  return checksummed(Buffer.from(keccak256(pub.subarray(1)).subarray(12)).toString("hex"));
}

/**
 * The address that signed `digest`, from a 65-byte r || s || v signature (v 27/28 or 0/1).
 * Throws VerificationError for a malformed signature, s above n/2, or no recoverable key.
 */
export function recoverSigner(digest: string | Uint8Array, signature: string): string {
  const msg = bytes32(digest, "digest");
  if (!/^0x[0-9a-fA-F]{130}$/.test(signature)) {
    throw new VerificationError("signature must be 0x + 130 hex digits (r, s, v)", {
      details: { signature },
    });
  }
  const raw = Buffer.from(signature.slice(2), "hex");
  const v = raw[64]!;
  const recid = v >= 27 ? v - 27 : v;
  const r = BigInt(`0x${signature.slice(2, 66)}`);
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  if (recid > 1 || r === 0n || r >= SECP256K1_N || s === 0n || s > HALF_N) {
    throw new VerificationError("signature is not a canonical secp256k1 signature", {
      details: { signature, v, highS: s > HALF_N },
    });
  }
  if (binding === null) return ethersRecover(msg, Signature.from(signature));
  let pub: Uint8Array;
  try {
    pub = binding.ecdsaRecover(raw.subarray(0, 64), recid, msg, false);
  } catch (cause) {
    throw new VerificationError("no public key recovers from this signature", {
      details: { signature },
      cause,
    });
  }
  return addressOf(pub);
}
