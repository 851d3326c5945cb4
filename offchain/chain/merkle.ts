/**
 * Receipt batches as Merkle trees in OpenZeppelin's StandardMerkleTree encoding (leaf =
 * keccak256(keccak256(abi.encode(receipt fields)))), so any OZ tool can check a proof and
 * InferenceLedger.verifyReceipt accepts it.
 *
 * Tree building is behind `buildReceiptTree` only: the native engine (native/) replaces the
 * StandardMerkleTree backend there without changing this API.
 */
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";

import { InputError } from "../common/errors.js";
import { RECEIPT_LEAF_TYPES, receiptLeafValues } from "./eip712.js";
import type { Batch, Receipt } from "./eip712.js";
import { buildBatch, usageSummary } from "./receipts.js";
import type { UsageSummary } from "./receipts.js";

const LEAF_ENCODING: string[] = [...RECEIPT_LEAF_TYPES];

export interface ReceiptTree {
  /** 0x-prefixed 32-byte root. */
  readonly root: string;
  /** The receipts, in the order given (proof indexes refer to this order). */
  readonly receipts: readonly Receipt[];
  /** Sibling hashes proving receipt `index` (OZ MerkleProof order). */
  proof(index: number): string[];
  /** The standard leaf hash of receipt `index`. */
  leaf(index: number): string;
}

/** Builds the tree over `receipts` (at least one; duplicates are rejected: a request is anchored once). */
export function buildReceiptTree(receipts: readonly Receipt[]): ReceiptTree {
  if (receipts.length === 0) throw new InputError("a receipt tree needs at least one receipt");
  const seen = new Set<string>();
  for (const r of receipts) {
    const key = receiptLeafValues(r).join(",").toLowerCase();
    if (seen.has(key)) {
      throw new InputError("duplicate receipt in batch", { details: { requestId: r.requestId } });
    }
    seen.add(key);
  }
  const tree = StandardMerkleTree.of(receipts.map(receiptLeafValues), LEAF_ENCODING);
  const checkIndex = (index: number): number => {
    if (!Number.isInteger(index) || index < 0 || index >= receipts.length) {
      throw new InputError("receipt index out of range", {
        details: { index, receipts: receipts.length },
      });
    }
    return index;
  };
  return {
    root: tree.root,
    receipts,
    proof: (index) => tree.getProof(checkIndex(index)),
    leaf: (index) => tree.leafHash(receiptLeafValues(receipts[checkIndex(index)]!)),
  };
}

/** True when `proof` proves `receipt` against `root` (pure computation, no chain). */
export function verifyReceiptProof(
  root: string,
  receipt: Receipt,
  proof: readonly string[],
): boolean {
  return StandardMerkleTree.verify(root, LEAF_ENCODING, receiptLeafValues(receipt), [...proof]);
}

export interface BuiltBatch {
  batch: Batch;
  tree: ReceiptTree;
  usage: UsageSummary;
}

/** Who and when of a batch besides its receipts (see Batch in eip712.ts). */
export interface BatchSigning {
  /** The GPU node whose receipts these are (every receipt must name it) and its signer key. */
  node: string;
  signer: string;
  asOf: bigint;
  sampleRatePpm: number;
}

/**
 * An enclave's next batch over `receipts`: the tree, the usage summary and the Batch to sign.
 * `reexecuted` is how many of them the enclave re-executed.
 */
export function buildReceiptBatch(
  enclave: string,
  sequence: bigint,
  receipts: readonly Receipt[],
  reexecuted: number,
  signing: BatchSigning,
): BuiltBatch {
  const node = signing.node.toLowerCase();
  const other = receipts.find((r) => r.node.toLowerCase() !== node);
  if (other !== undefined) {
    throw new InputError("a batch holds the receipts of one node", {
      details: { node: signing.node, receiptNode: other.node, requestId: other.requestId },
    });
  }
  const tree = buildReceiptTree(receipts);
  const usage = usageSummary(receipts);
  const batch = buildBatch({
    enclave,
    sequence,
    root: tree.root,
    count: receipts.length,
    reexecuted,
    usage,
    ...signing,
  });
  return { batch, tree, usage };
}
