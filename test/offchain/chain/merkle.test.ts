/**
 * Property tests of the receipt Merkle path: for random batches, every receipt verifies with its
 * proof (off chain and through InferenceLedger.verifyReceipt), and altering any one field of a
 * receipt, or its proof, makes verification fail.
 */
import { expect } from "chai";
import fc from "fast-check";
import { getAddress, hexlify } from "ethers";
import { network } from "hardhat";

import { FULL_SAMPLE_RATE_PPM } from "../../../offchain/chain/eip712.js";
import type { Receipt } from "../../../offchain/chain/eip712.js";
import { InputError } from "../../../offchain/common/errors.js";
import {
  buildReceiptBatch,
  buildReceiptTree,
  verifyReceiptProof,
} from "../../../offchain/chain/merkle.js";
import { receiptLeafHash } from "../../../offchain/chain/receipts.js";
import { SIGNED_AT, deployLedgerSystem } from "../../contracts/anchoring/helpers.js";
import { signBatch } from "../../../offchain/chain/receipts.js";

const { ethers, networkHelpers } = await network.create();
const deploy = () => deployLedgerSystem(ethers);

const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => hexlify(b));
const address = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => getAddress(hexlify(b)));
const receiptArb: fc.Arbitrary<Receipt> = fc.record({
  requestId: bytes32,
  modelId: fc.constantFrom(
    ...["0x01", "0x02", "0xff"].map((b) => hexlify(new Uint8Array(32).fill(Number(b)))),
  ),
  inputHash: bytes32,
  outputHash: bytes32,
  node: address,
  execConfigHash: bytes32,
  timestamp: fc.bigInt(0n, 2n ** 64n - 1n),
});
const batchArb = fc.uniqueArray(receiptArb, {
  minLength: 1,
  maxLength: 40,
  selector: (r) => r.requestId,
});
const FIELDS = [
  "requestId",
  "modelId",
  "inputHash",
  "outputHash",
  "node",
  "execConfigHash",
  "timestamp",
] as const;

function flip(bytes: Uint8Array, index: number, mask: number): void {
  bytes[index] = bytes[index]! ^ mask;
}

/** `r` with `field` changed to a different value. */
function alter(r: Receipt, field: (typeof FIELDS)[number], seed: Uint8Array): Receipt {
  if (field === "timestamp") return { ...r, timestamp: r.timestamp ^ (BigInt(seed[0]!) + 1n) };
  if (field === "node") {
    const bytes = ethers.getBytes(r.node);
    flip(bytes, seed[0]! % 20, (seed[1]! % 255) + 1);
    return { ...r, node: getAddress(hexlify(bytes)) };
  }
  const bytes = ethers.getBytes(r[field]);
  flip(bytes, seed[0]! % 32, (seed[1]! % 255) + 1);
  return { ...r, [field]: hexlify(bytes) };
}

describe("receipt Merkle tree", () => {
  it("proves every receipt of a random batch, and matches the standard leaf", () => {
    fc.assert(
      fc.property(batchArb, (receipts) => {
        const tree = buildReceiptTree(receipts);
        receipts.forEach((r, i) => {
          expect(tree.leaf(i)).to.equal(receiptLeafHash(r));
          expect(verifyReceiptProof(tree.root, r, tree.proof(i))).to.equal(true);
        });
      }),
      { numRuns: 60 },
    );
  });

  it("rejects a receipt with any one field altered", () => {
    const seed = fc.uint8Array({ minLength: 2, maxLength: 2 });
    fc.assert(
      fc.property(
        batchArb,
        fc.nat(),
        fc.constantFrom(...FIELDS),
        seed,
        (receipts, pick, field, s) => {
          const tree = buildReceiptTree(receipts);
          const i = pick % receipts.length;
          const altered = alter(receipts[i]!, field, s);
          expect(verifyReceiptProof(tree.root, altered, tree.proof(i))).to.equal(false);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("rejects a proof with a sibling altered or dropped", () => {
    fc.assert(
      fc.property(
        batchArb.filter((r) => r.length > 1),
        fc.nat(),
        fc.nat(),
        (receipts, pick, sib) => {
          const tree = buildReceiptTree(receipts);
          const i = pick % receipts.length;
          const proof = tree.proof(i);
          const j = sib % proof.length;
          const bytes = ethers.getBytes(proof[j]!);
          flip(bytes, 0, 1);
          const altered = proof.map((p, k) => (k === j ? hexlify(bytes) : p));
          expect(verifyReceiptProof(tree.root, receipts[i]!, altered)).to.equal(false);
          expect(verifyReceiptProof(tree.root, receipts[i]!, proof.slice(0, -1))).to.equal(false);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("agrees with InferenceLedger.verifyReceipt on random anchored batches", async () => {
    const f = await networkHelpers.loadFixture(deploy);
    let sequence = 0n;
    await fc.assert(
      fc.asyncProperty(
        batchArb,
        fc.constantFrom(...FIELDS),
        fc.uint8Array({ minLength: 2, maxLength: 2 }),
        async (random, field, s) => {
          // A batch holds one node's receipts: the fixture's GPU node, signed by its signer.
          const receipts = random.map((r) => ({ ...r, node: f.gpuNode }));
          const built = buildReceiptBatch(f.enclave.address, sequence, receipts, 0, {
            node: f.gpuNode,
            signer: f.gpuSigner.address,
            asOf: SIGNED_AT,
            sampleRatePpm: FULL_SAMPLE_RATE_PPM,
          });
          const sig = await signBatch(f.enclave, f.domain, built.batch);
          await f.ledger.anchorBatch(built.batch, sig, built.usage.modelIds, built.usage.counts);
          const batchId = await f.ledger.batchIdOf(f.enclave.address, sequence);
          sequence += 1n;
          for (let i = 0; i < receipts.length; i++) {
            expect(
              await f.ledger.verifyReceipt(batchId, receipts[i]!, built.tree.proof(i)),
            ).to.equal(true);
          }
          const altered = alter(receipts[0]!, field, s);
          expect(await f.ledger.verifyReceipt(batchId, altered, built.tree.proof(0))).to.equal(
            false,
          );
        },
      ),
      { numRuns: 12 },
    );
  });

  describe("buildReceiptTree", () => {
    it("throws InputError for no receipts", () => {
      expect(() => buildReceiptTree([])).to.throw(InputError, "at least one receipt");
    });

    it("throws InputError for a duplicate receipt", () => {
      const r = fc.sample(receiptArb, 1)[0]!;
      expect(() => buildReceiptTree([r, { ...r }])).to.throw(InputError, "duplicate receipt");
    });

    it("throws InputError for an index out of range", () => {
      const tree = buildReceiptTree(fc.sample(receiptArb, 2));
      expect(() => tree.proof(2)).to.throw(InputError, "out of range");
      expect(() => tree.leaf(-1)).to.throw(InputError, "out of range");
    });
  });
});
