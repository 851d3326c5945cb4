/**
 * Private keys typed by a person (environment variables, keystore entries): one check for every
 * place a key is read, so that a bad key is an InputError naming where it came from (exit code 2)
 * instead of a stack trace from inside ethers. No message or detail ever holds the key's text.
 */
import { InputError } from "./errors.js";

/** secp256k1's group order n: a private key is an integer from 1 to n - 1. */
export const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/**
 * `value` as a 0x-prefixed lowercase 32-byte secp256k1 private key (the `0x` may be left out).
 * Throws an InputError naming `name` (the variable or entry) when it is not 64 hex digits (by its
 * length only), zero, or not below the curve order n.
 */
export function parsePrivateKey(value: string, name: string): string {
  const digits = value.startsWith("0x") ? value.slice(2) : value;
  if (!/^[0-9a-fA-F]{64}$/.test(digits)) {
    throw new InputError(
      `${name} must be a 32-byte private key, 0x + 64 hex digits (it has ${value.length} characters)`,
    );
  }
  const key = BigInt(`0x${digits}`);
  if (key === 0n) {
    throw new InputError(`${name} is not a valid secp256k1 private key: it is zero`);
  }
  if (key >= SECP256K1_N) {
    throw new InputError(
      `${name} is not a valid secp256k1 private key: it is not below the curve order n`,
    );
  }
  return `0x${digits.toLowerCase()}`;
}
