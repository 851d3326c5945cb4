/**
 * parsePrivateKey: the one check every private key read from user input goes through (relayer
 * keys from the environment or the Hardhat keystore, `opg rewards --key-env`).
 */
import { expect } from "chai";
import { SigningKey, Wallet } from "ethers";

import { InputError } from "../../../offchain/common/errors.js";
import { SECP256K1_N, parsePrivateKey } from "../../../offchain/common/private-key.js";

const hex64 = (n: bigint): string => n.toString(16).padStart(64, "0");

/** The InputError `fn` throws; its message and details must not contain `key`. */
function refusal(fn: () => unknown, key: string): InputError {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).to.be.instanceOf(InputError);
  const input = error as InputError;
  expect(input.exitCode).to.equal(2);
  const digits = key.replace(/^0x/, "");
  if (digits.length >= 8) expect(input.format()).to.not.contain(digits);
  return input;
}

describe("offchain/common/private-key parsePrivateKey", () => {
  it("has the secp256k1 curve order n", () => {
    expect(SECP256K1_N).to.equal(
      BigInt("0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141"),
    );
  });

  describe("when the key is valid", () => {
    it("returns it as 0x + 64 lowercase hex digits, with or without the 0x", () => {
      const key = Wallet.createRandom().privateKey;
      expect(parsePrivateKey(key, "K")).to.equal(key);
      expect(parsePrivateKey(key.slice(2).toUpperCase(), "K")).to.equal(key);
    });

    it("accepts the edges: 1 and n - 1, which ethers signs with", () => {
      for (const k of [1n, SECP256K1_N - 1n]) {
        const key = parsePrivateKey(`0x${hex64(k)}`, "K");
        expect(new SigningKey(key).privateKey).to.equal(key);
      }
    });
  });

  describe("when the key is not one", () => {
    it("refuses zero, naming the variable", () => {
      const zero = `0x${"0".repeat(64)}`;
      expect(refusal(() => parsePrivateKey(zero, "OPG_NODE_SIGNER_KEY"), zero).message).to.equal(
        "OPG_NODE_SIGNER_KEY is not a valid secp256k1 private key: it is zero",
      );
    });

    it("refuses n and everything above it up to 2^256 - 1, naming the variable", () => {
      for (const k of [SECP256K1_N, SECP256K1_N + 1n, (1n << 256n) - 1n]) {
        const key = `0x${hex64(k)}`;
        expect(refusal(() => parsePrivateKey(key, "OPG_RELAYER_TX_KEY"), key).message).to.equal(
          "OPG_RELAYER_TX_KEY is not a valid secp256k1 private key: it is not below the curve order n",
        );
      }
    });

    it("refuses anything but 64 hex digits, by its length only", () => {
      for (const bad of [
        "0xdeadbeef",
        `0x${"ab".repeat(33)}`,
        `0x${"zz".repeat(32)}`,
        ` 0x${"11".repeat(32)}`,
        `0x${"11".repeat(32)}\n`,
        "",
      ]) {
        const error = refusal(() => parsePrivateKey(bad, "KEY"), bad);
        expect(error.message).to.equal(
          `KEY must be a 32-byte private key, 0x + 64 hex digits (it has ${bad.length} characters)`,
        );
        expect(error.details).to.deep.equal({});
      }
    });

    it("is one line when printed: no details, no hint, no stack", () => {
      const error = refusal(() => parsePrivateKey(`0x${"f".repeat(64)}`, "K"), "f".repeat(64));
      expect(error.format().split("\n")).to.have.length(1);
    });
  });
});
