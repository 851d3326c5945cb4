/**
 * AES-GCM-SIV decryption (RFC 8452), built on node:crypto's AES block cipher: Node exposes no
 * GCM-SIV cipher, and the Hardhat 3 keystore encrypts with it (offchain/common/hardhat-keystore.ts).
 * Only what the keystore needs: decryption, no associated data, 12-byte nonces, AES-128/256 keys.
 *
 *   1. Per-nonce keys: AES_K(le32(i) ‖ nonce), first 8 bytes of each block; i = 0,1 give the
 *      POLYVAL key, i = 2.. the message key (16 or 32 bytes).
 *   2. Plaintext = ciphertext XOR AES-CTR keystream from the tag (top bit set), with a 32-bit
 *      little-endian counter in the block's first four bytes.
 *   3. Tag = AES(message key, POLYVAL(padded plaintext ‖ lengths) XOR nonce, top bit cleared),
 *      compared in constant time with the one received.
 */
import { createCipheriv, timingSafeEqual } from "node:crypto";

const BLOCK = 16;
const NONCE_BYTES = 12;

/** The tag does not match: wrong key, or the data was modified. Carries nothing about either. */
export class AesGcmSivAuthError extends Error {
  override name = "AesGcmSivAuthError";
  constructor() {
    super("AES-GCM-SIV authentication failed");
  }
}

/** AES-ECB over whole blocks (the raw block cipher). */
function aesBlocks(key: Uint8Array, blocks: Uint8Array): Buffer {
  const cipher = createCipheriv(`aes-${key.length * 8}-ecb`, key, null);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(blocks), cipher.final()]);
}

// ------------------------------------------------------------------ POLYVAL (RFC 8452 §3)

/** x^128 + x^127 + x^126 + x^121 + 1; field elements are little-endian (bit i of byte j = x^(8j+i)). */
const POLY = (1n << 128n) | (1n << 127n) | (1n << 126n) | (1n << 121n) | 1n;

function toField(bytes: Uint8Array): bigint {
  return BigInt(`0x${Buffer.from(bytes).reverse().toString("hex") || "0"}`);
}

function fromField(value: bigint): Buffer {
  return Buffer.from(value.toString(16).padStart(32, "0"), "hex").reverse();
}

/** dot(a, b) = a · b · x^-128 in GF(2^128) mod POLY. */
function dot(a: bigint, b: bigint): bigint {
  let product = 0n;
  for (let shift = 0n; b !== 0n; shift++, b >>= 1n) {
    if ((b & 1n) === 1n) product ^= a << shift;
  }
  // Multiply by x^-1 128 times: POLY has a constant term, so adding it makes the value divisible by x.
  for (let i = 0; i < 128; i++) {
    if ((product & 1n) === 1n) product ^= POLY;
    product >>= 1n;
  }
  return product;
}

export function polyval(key: Uint8Array, data: Uint8Array): Buffer {
  if (key.length !== BLOCK || data.length % BLOCK !== 0)
    throw new RangeError("POLYVAL takes a 16-byte key and whole 16-byte blocks");
  const h = toField(key);
  let s = 0n;
  for (let offset = 0; offset < data.length; offset += BLOCK) {
    s = dot(s ^ toField(data.subarray(offset, offset + BLOCK)), h);
  }
  return fromField(s);
}

// ------------------------------------------------------------------ AEAD

function deriveKeys(key: Uint8Array, nonce: Uint8Array): { auth: Buffer; enc: Buffer } {
  const count = 2 + key.length / 8;
  const blocks = Buffer.alloc(count * BLOCK);
  for (let i = 0; i < count; i++) {
    blocks.writeUInt32LE(i, i * BLOCK);
    blocks.set(nonce, i * BLOCK + 4);
  }
  const out = aesBlocks(key, blocks);
  const halves = Array.from({ length: count }, (_, i) => out.subarray(i * BLOCK, i * BLOCK + 8));
  return { auth: Buffer.concat(halves.slice(0, 2)), enc: Buffer.concat(halves.slice(2)) };
}

function ctr(encKey: Uint8Array, tag: Uint8Array, input: Uint8Array): Buffer {
  const n = Math.ceil(input.length / BLOCK);
  const counters = Buffer.alloc(n * BLOCK);
  const first = Buffer.from(tag);
  first[15] = (first[15] as number) | 0x80;
  const start = first.readUInt32LE(0);
  for (let i = 0; i < n; i++) {
    first.copy(counters, i * BLOCK);
    counters.writeUInt32LE((start + i) % 2 ** 32, i * BLOCK);
  }
  const stream = aesBlocks(encKey, counters);
  const out = Buffer.alloc(input.length);
  for (let i = 0; i < input.length; i++) out[i] = (input[i] as number) ^ (stream[i] as number);
  return out;
}

/**
 * Decrypts `sealed` (ciphertext ‖ 16-byte tag) under `key` (16 or 32 bytes) and a 12-byte nonce,
 * with no associated data. Throws AesGcmSivAuthError when the tag does not match.
 */
export function aesGcmSivDecrypt(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array): Buffer {
  if (key.length !== 16 && key.length !== 32)
    throw new RangeError(`AES-GCM-SIV key must be 16 or 32 bytes, got ${key.length}`);
  if (nonce.length !== NONCE_BYTES)
    throw new RangeError(`AES-GCM-SIV nonce must be ${NONCE_BYTES} bytes, got ${nonce.length}`);
  if (sealed.length < BLOCK) throw new AesGcmSivAuthError();
  const { auth, enc } = deriveKeys(key, nonce);
  const tag = sealed.subarray(sealed.length - BLOCK);
  const plaintext = ctr(enc, tag, sealed.subarray(0, sealed.length - BLOCK));

  // POLYVAL over the zero-padded plaintext and the length block (AAD length 0, plaintext bits).
  const padded = Buffer.alloc(Math.ceil(plaintext.length / BLOCK) * BLOCK + BLOCK);
  plaintext.copy(padded);
  padded.writeBigUInt64LE(BigInt(plaintext.length) * 8n, padded.length - 8);
  const s = polyval(auth, padded);
  for (let i = 0; i < NONCE_BYTES; i++) s[i] = (s[i] as number) ^ (nonce[i] as number);
  s[15] = (s[15] as number) & 0x7f;
  const expected = aesBlocks(enc, s);
  if (!timingSafeEqual(expected, tag)) {
    plaintext.fill(0);
    throw new AesGcmSivAuthError();
  }
  return plaintext;
}
