/**
 * Batcher: cuts pending receipts into batches (by size or by the age of the oldest), has the
 * enclave sign each root and anchors it through the transaction sender, one batch at a time in
 * sequence order.
 *
 * Crash safety: the batch (root, counts, usage, its receipts in leaf order) is written before the
 * enclave is asked to sign, so a restart re-signs the same batch (the enclave returns the same
 * signature; it refuses a different batch for a used sequence). Anchoring uses the idempotency key
 * "anchor:<enclave>:<sequence>" and the done check `nextSequenceOf(enclave) > sequence`, so a batch
 * is never anchored twice. Where the batch landed (batch id, transaction) is read back from its
 * BatchAnchored event, whoever sent it.
 */
import type { Contract, Provider } from "ethers";
import type { Logger } from "pino";

import { buildTree, buildTreeFromHashes, type MerkleTree } from "../../native/index.js";
import { RECEIPT_LEAF_TYPES, receiptLeafValues, usageHash } from "../chain/eip712.js";
import { usageSummary } from "../chain/receipts.js";
import type { SignedBatch } from "../tee/enclave.js";
import type { BatchRequest } from "../tee/schemas.js";
import type { RelayerMetrics } from "./metrics.js";
import type { BatchRecord, JobRecord, JobStore, StoredJob } from "./store.js";
import type { TxSenderLike } from "./tx.js";

export interface BatchSigner {
  readonly enclave: string;
  signBatch(batch: BatchRequest): Promise<SignedBatch>;
}

export interface BatcherOptions {
  store: JobStore;
  enclave: BatchSigner;
  sender: TxSenderLike;
  /** InferenceLedger (connected to a provider: reads nextSequenceOf, encodes anchorBatch). */
  ledger: Contract;
  provider: Provider;
  maxSize: number;
  maxAgeMs: number;
  deployBlock: number;
  maxBlockRange: number;
  pollMs: number;
  metrics: RelayerMetrics;
  log: Logger;
}

const LEAF_TYPES = [...RECEIPT_LEAF_TYPES];

/** The receipt tree of a batch, built with native/ (the same root as offchain/chain's buildReceiptTree). */
export function receiptTree(receipts: readonly JobRecord["receipt"][]): MerkleTree {
  return buildTree(receipts.map(receiptLeafValues), LEAF_TYPES);
}

export class Batcher {
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private readonly trees = new Map<string, MerkleTree>();

  constructor(private readonly o: BatcherOptions) {
    o.sender.registerDoneCheck("anchor", async (intent) => {
      const [, enclave, sequence] = intent.key.split(":");
      return (await this.chainNext(enclave!)) > BigInt(sequence!);
    });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  /** Asks for a cut check now (e.g. when the pending count reached maxSize). */
  poke(): void {
    this.wake?.();
  }

  private async chainNext(enclave: string): Promise<bigint> {
    const next = (await this.o.ledger.getFunction("nextSequenceOf").staticCall(enclave)) as bigint;
    return BigInt(next);
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        await this.tick();
      } catch (error) {
        this.o.metrics.failures.inc({ stage: "batch" });
        this.o.log.error(
          { at: "Batcher#run", err: (error as Error).message },
          "batch round failed",
        );
      }
      if (!this.running) break;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, this.o.pollMs);
      });
      this.wake = null;
    }
  }

  /** One round: finish open batches (oldest first), then cut a new one if one is due. */
  async tick(now = Date.now()): Promise<void> {
    for (const open of this.o.store.openBatches()) {
      if (!this.running && this.loop !== null) return;
      await this.finish(open);
    }
    const pending = this.o.store.pending();
    const due =
      pending.count >= this.o.maxSize ||
      (pending.count > 0 && pending.oldest !== null && now - pending.oldest >= this.o.maxAgeMs);
    if (!due) return;
    const enclave = this.o.enclave.enclave;
    const local = this.o.store.nextLocalSequence(enclave);
    const onChain = await this.chainNext(enclave);
    const sequence = local !== null && local > onChain ? local : onChain;
    const batch = this.o.store.cutBatch(enclave, sequence, this.o.maxSize, (jobs) => {
      // The leaf hashes were computed when each job was stored: only the inner nodes are hashed
      // here, while requests wait on the event loop.
      const root = buildTreeFromHashes(jobs.map((j) => j.leafHash)).root;
      const usage = usageSummary(jobs);
      return {
        root,
        reexecuted: jobs.filter((j) => j.selected).length,
        modelIds: usage.modelIds,
        counts: usage.counts,
        usageHash: usageHash(usage.modelIds, usage.counts),
      };
    });
    if (batch === null) return;
    this.o.log.info(
      {
        at: "Batcher#tick",
        enclave,
        sequence: sequence.toString(),
        count: batch.count,
        reexecuted: batch.reexecuted,
        root: batch.root,
      },
      "batch cut",
    );
    await this.finish(batch);
  }

  private async finish(batch: BatchRecord): Promise<void> {
    const { store, sender, ledger, metrics, log } = this.o;
    const started = Date.now();
    if (batch.enclave !== this.o.enclave.enclave) {
      // Cut for an enclave key that is gone (restarted enclave): anchored already, or given back.
      if ((await this.chainNext(batch.enclave)) > batch.sequence) {
        await this.recordAnchored(batch, 0);
      } else {
        const released = store.releaseBatch(batch.enclave, batch.sequence);
        log.warn(
          {
            at: "Batcher#finish",
            enclave: batch.enclave,
            sequence: batch.sequence.toString(),
            released,
          },
          "batch of a previous enclave key released back to pending",
        );
      }
      return;
    }
    let signature = batch.signature;
    if (signature === null) {
      const signed = await this.o.enclave.signBatch({
        sequence: batch.sequence,
        root: batch.root,
        count: batch.count,
        reexecuted: batch.reexecuted,
        usageHash: batch.usageHash,
      });
      signature = signed.signature;
      store.setBatchSigned(batch.enclave, batch.sequence, signature);
    }
    const key = `anchor:${batch.enclave}:${batch.sequence}`;
    const data = ledger.interface.encodeFunctionData("anchorBatch", [
      {
        enclave: batch.enclave,
        sequence: batch.sequence,
        root: batch.root,
        count: batch.count,
        reexecuted: batch.reexecuted,
        usageHash: batch.usageHash,
      },
      signature,
      batch.modelIds,
      batch.counts,
    ]);
    sender.submit({ key, kind: "anchor", to: await ledger.getAddress(), data });
    const outcome = await sender.wait(key);
    if (outcome.status === "failed" && (await this.chainNext(batch.enclave)) <= batch.sequence) {
      metrics.failures.inc({ stage: "anchor" });
      throw new Error(`anchoring ${key} failed (tx ${outcome.txHash || "none"})`);
    }
    if (outcome.gasUsed > 0n) metrics.gasSpent.inc({ kind: "anchor" }, Number(outcome.gasUsed));
    await this.recordAnchored(batch, outcome.blockNumber, outcome.gasUsed);
    metrics.anchorLatency.observe((Date.now() - started) / 1000);
  }

  /** Finds the batch's BatchAnchored event (from `hintBlock`, else from the deploy block) and records it. */
  private async recordAnchored(batch: BatchRecord, hintBlock: number, gasUsed = 0n): Promise<void> {
    const { ledger, provider, store, metrics, log } = this.o;
    const filter = ledger.filters.BatchAnchored!(null, batch.enclave);
    const latest = await provider.getBlockNumber();
    const ranges: Array<[number, number]> = [];
    if (hintBlock > 0) ranges.push([hintBlock, hintBlock]);
    for (let from = this.o.deployBlock; from <= latest; from += this.o.maxBlockRange)
      ranges.push([from, Math.min(latest, from + this.o.maxBlockRange - 1)]);
    for (const [from, to] of ranges) {
      for (const event of await ledger.queryFilter(filter, from, to)) {
        if (!("args" in event)) continue;
        if (BigInt(event.args.sequence as bigint) !== batch.sequence) continue;
        let gas = gasUsed;
        if (gas === 0n) {
          const receipt = await provider.getTransactionReceipt(event.transactionHash);
          gas = receipt?.gasUsed ?? 0n;
        }
        store.setBatchAnchored(batch.enclave, batch.sequence, {
          batchId: BigInt(event.args.batchId as bigint),
          txHash: event.transactionHash,
          block: event.blockNumber,
          gasUsed: gas,
        });
        metrics.batches.inc();
        metrics.receiptsAnchored.inc(batch.count);
        log.info(
          {
            at: "Batcher#recordAnchored",
            sequence: batch.sequence.toString(),
            batchId: String(event.args.batchId),
            tx: event.transactionHash,
            count: batch.count,
            gasUsed: gas.toString(),
          },
          "batch anchored",
        );
        return;
      }
    }
    throw new Error(
      `batch ${batch.enclave}:${batch.sequence} is anchored on chain but its BatchAnchored event was not found`,
    );
  }

  /** The Merkle proof of an anchored job (trees of recent batches are cached). */
  proofOf(job: StoredJob): string[] {
    if (job.batch === null) return [];
    const id = `${job.batch.enclave}:${job.batch.sequence}`;
    let tree = this.trees.get(id);
    if (tree === undefined) {
      tree = receiptTree(this.o.store.batchReceipts(job.batch.enclave, job.batch.sequence));
      if (this.trees.size >= 16) this.trees.delete(this.trees.keys().next().value!);
      this.trees.set(id, tree);
    }
    return tree.proof(job.batch.leafIndex);
  }
}
