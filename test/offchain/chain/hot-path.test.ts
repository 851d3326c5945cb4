/**
 * The relayer's and the enclave's fast paths give the same bytes as the reference code they
 * replace: libsecp256k1 signing and recovery (offchain/chain/ecdsa.ts) against ethers, the cached
 * EIP-712 hashes (offchain/chain/hasher.ts) against ethers' TypedDataEncoder (eip712.ts), the
 * receipt leaf hash against @openzeppelin/merkle-tree, and native/'s direct word packing against
 * ethers' AbiCoder, on random values (fast-check, fixed seed; see test/helpers/fuzz.ts).
 */
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { expect } from "chai";
import { SigningKey, Wallet, getAddress, hexlify, recoverAddress, toBeHex } from "ethers";
import fc from "fast-check";

import { buildTree } from "../../../native/index.js";
import { DigestSigner, ecdsaBackend, recoverSigner } from "../../../offchain/chain/ecdsa.js";
import {
  RECEIPT_LEAF_TYPES,
  batchDigest,
  ledgerDomain,
  receiptDigest,
  receiptLeafValues,
  receiptStructHash,
  verdictDigest,
  type Batch,
  type Receipt,
} from "../../../offchain/chain/eip712.js";
import { LedgerHasher, receiptLeafHash } from "../../../offchain/chain/hasher.js";
import { VerificationError } from "../../../offchain/common/errors.js";
import { fuzzOptions } from "../../helpers/fuzz.js";

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => hexlify(b));
const privateKey = fc.bigInt({ min: 1n, max: N - 1n }).map((k) => toBeHex(k, 32));
const address = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => getAddress(hexlify(b)));
const uint64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const receipt: fc.Arbitrary<Receipt> = fc.record({
  requestId: bytes32,
  modelId: bytes32,
  inputHash: bytes32,
  outputHash: bytes32,
  node: address,
  execConfigHash: bytes32,
  timestamp: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
});
const domain = fc
  .tuple(fc.bigInt({ min: 1n, max: 2n ** 64n }), address)
  .map(([chainId, ledger]) => ledgerDomain(chainId, ledger));

describe("offchain hot paths (equal to the reference implementations)", () => {
  it("uses libsecp256k1 (the prebuilt binding loads on these machines)", () => {
    expect(ecdsaBackend).to.equal("libsecp256k1");
  });

  it("DigestSigner signs exactly as ethers' SigningKey (RFC 6979, low-s, v = 27/28)", () => {
    fc.assert(
      fc.property(privateKey, bytes32, (key, digest) => {
        const signer = new DigestSigner(key);
        const ours = signer.sign(digest);
        expect(ours).to.equal(new SigningKey(key).sign(digest).serialized);
        expect(signer.address).to.equal(new Wallet(key).address);
      }),
      fuzzOptions(200),
    );
  });

  it("recoverSigner recovers what ethers recovers", () => {
    fc.assert(
      fc.property(privateKey, bytes32, (key, digest) => {
        const signature = new SigningKey(key).sign(digest).serialized;
        expect(recoverSigner(digest, signature)).to.equal(recoverAddress(digest, signature));
        expect(recoverSigner(digest, signature)).to.equal(new Wallet(key).address);
      }),
      fuzzOptions(200),
    );
  });

  it("recoverSigner refuses malleable (high-s), malformed and out-of-range signatures", () => {
    const key = new SigningKey(toBeHex(7n, 32));
    const digest = `0x${"11".repeat(32)}`;
    const sig = key.sign(digest);
    const highS = toBeHex(N - BigInt(sig.s), 32).slice(2);
    const flippedV = sig.v === 27 ? "1c" : "1b";
    const cases = [
      `${sig.r}${highS}${flippedV}`, // the same signature's malleable twin
      `${sig.serialized.slice(0, 130)}1d`, // v = 29
      `0x${"00".repeat(32)}${sig.s.slice(2)}1b`, // r = 0
      sig.serialized.slice(0, 120), // short
    ];
    for (const bad of cases) {
      expect(() => recoverSigner(digest, bad), bad).to.throw(VerificationError);
    }
    expect(() => recoverSigner("0x1234", sig.serialized)).to.throw("digest must be");
  });

  it("LedgerHasher's receipt and verdict hashes equal TypedDataEncoder's", () => {
    fc.assert(
      fc.property(domain, receipt, fc.boolean(), bytes32, uint64, (d, r, agree, out, timestamp) => {
        const hasher = new LedgerHasher(d);
        expect(hasher.receiptStructHash(r)).to.equal(receiptStructHash(r));
        expect(hasher.receiptDigest(r)).to.equal(receiptDigest(d, r));
        const verdict = { receiptHash: receiptStructHash(r), agree, outputHash: out, timestamp };
        expect(hasher.verdictDigest(verdict)).to.equal(verdictDigest(d, verdict));
      }),
      fuzzOptions(150),
    );
  });

  it("LedgerHasher's batch digest equals TypedDataEncoder's", () => {
    const uint32 = fc.integer({ min: 0, max: 0xffff_ffff });
    const batch: fc.Arbitrary<Batch> = fc.record({
      enclave: address,
      sequence: uint64,
      root: bytes32,
      count: uint32,
      reexecuted: uint32,
      usageHash: bytes32,
      node: address,
      signer: address,
      asOf: uint64,
      sampleRatePpm: fc.integer({ min: 0, max: 1_000_000 }),
    });
    fc.assert(
      fc.property(domain, batch, (d, b) => {
        expect(new LedgerHasher(d).batchDigest(b)).to.equal(batchDigest(d, b));
      }),
      fuzzOptions(150),
    );
  });

  it("receiptLeafHash is the receipt's leaf in @openzeppelin/merkle-tree", () => {
    fc.assert(
      fc.property(fc.array(receipt, { minLength: 1, maxLength: 8 }), (receipts) => {
        const values = receipts.map(receiptLeafValues);
        const oz = StandardMerkleTree.of(values, [...RECEIPT_LEAF_TYPES]);
        receipts.forEach((r, i) => expect(receiptLeafHash(r)).to.equal(oz.leafHash(values[i]!)));
        expect(buildTree(values, RECEIPT_LEAF_TYPES).root).to.equal(oz.root);
      }),
      fuzzOptions(60),
    );
  });

  it("native/ packs (bytes32, address, uintN) words as ethers' AbiCoder does, and range-checks", () => {
    const types = ["uint8", "address", "uint64", "bytes32", "uint256", "uint"];
    const leaf = fc.tuple(
      fc.integer({ min: 0, max: 255 }),
      address.map((a) => a.toLowerCase()),
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String),
      bytes32,
      fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }),
      fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }).map((v) => toBeHex(v)),
    );
    fc.assert(
      fc.property(fc.array(leaf, { minLength: 1, maxLength: 6 }), (leaves) => {
        const oz = StandardMerkleTree.of(leaves, types);
        expect(buildTree(leaves, types).root).to.equal(oz.root);
      }),
      fuzzOptions(60),
    );
    const ok = [
      1,
      "0x00000000000000000000000000000000000000aa",
      1n,
      `0x${"00".repeat(32)}`,
      1n,
      1n,
    ];
    expect(() => buildTree([[256, ...ok.slice(1)]], types)).to.throw(
      /leaf 0: does not encode as uint8: out of range/,
    );
    expect(() => buildTree([[ok[0]!, ok[1]!, 2n ** 64n, ...ok.slice(3)]], types)).to.throw(
      /does not encode as uint64/,
    );
    expect(() => buildTree([[-1, ...ok.slice(1)]], types)).to.throw(/not a non-negative integer/);
    expect(() => buildTree([[ok[0]!, ok[1]!, ok[2]!, "0x12", 1n, 1n]], types)).to.throw(
      /leaf 0: bytes32/,
    );
  });
});
