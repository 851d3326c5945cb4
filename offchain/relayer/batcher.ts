/**
 * Batcher: asks the enclave to cut a batch from its log when one is due (enough receipts wait, or
 * the oldest has waited long enough), stores the signed batch with its jobs, and anchors it through
 * the transaction sender, one batch at a time in sequence order. The enclave builds every batch
 * itself; this side only checks it (the signature, its node, the root over the leaves it lists, and
 * that those leaves are this store's receipts) and pays for the transaction.
 *
 * Crash safety: the signed batch and its jobs are written in one transaction; a batch the enclave
 * signed but this store never wrote (a crash in between) is read back from the enclave's open
 * batches on the next round. Anchoring uses the idempotency key "anchor:<enclave>:<sequence>" and
 * the done check "the ledger stores this batch's root", so a batch is never anchored twice, and a
 * batch is recorded anchored only if the chain's root for its id is the batch's own.
 *
 * Failures never wedge it: each failed anchoring is classified (offchain/relayer/anchor-failure.ts).
 * A transient one (the enclave's registration lapsed, its node jailed, the RPC down) is retried
 * with exponential backoff until the cause is gone; a permanent one (the chain will never accept
 * this batch) marks the enclave key stalled: nothing more is cut for it, and once the relayer is
 * given a new enclave (a new key), the stalled batches' receipts go to the new enclave's log. While
 * anchoring is stalled, `stalled()` says why (the service's /readyz answers not ready with it).
 */
import type { Contract, Provider } from "ethers";
import type { Logger } from "pino";

import { buildTree, type MerkleTree } from "../../native/index.js";
import { RECEIPT_LEAF_TYPES, receiptLeafValues } from "../chain/eip712.js";
import type { Receipt } from "../chain/eip712.js";
import type { LoggedReceipt, SignedBatch } from "../tee/enclave.js";
import { classifyAnchorFailure } from "./anchor-failure.js";
import type { RelayerMetrics } from "./metrics.js";
import {
  BatchMismatchError,
  type BatchRecord,
  type JobRecord,
  type JobStore,
  type StoredJob,
} from "./store.js";
import type { TxSenderLike } from "./tx.js";

/** What the batcher needs of the enclave (EnclaveClient implements it). */
export interface BatchSource {
  readonly enclave: string;
  cutBatch(maxSize: number): Promise<SignedBatch | null>;
  openBatches(fromSequence: bigint): Promise<SignedBatch[]>;
  logged(
    requestId: string,
  ): Promise<(LoggedReceipt & { receipt: Receipt; nodeSignature: string }) | null>;
}

export interface BatcherOptions {
  store: JobStore;
  /** The current enclave (it changes when the relayer is given a new one). */
  enclave: () => BatchSource;
  sender: TxSenderLike;
  /** InferenceLedger (connected to a provider: reads rootOf/nextSequenceOf, encodes anchorBatch). */
  ledger: Contract;
  provider: Provider;
  maxSize: number;
  maxAgeMs: number;
  deployBlock: number;
  maxBlockRange: number;
  pollMs: number;
  /** First and largest wait before a failed anchoring is tried again. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Re-submits pending receipts logged by another enclave to the current one (the service's). */
  resubmit?: (jobs: JobRecord[]) => Promise<void>;
  /** A pending receipt older than this that the enclave will not cut goes to its log again. */
  strandedAfterMs?: number;
  /** Whether a request id is an on-chain request's (a job recovered from the enclave keeps its source). */
  isChainRequest?: (requestId: string) => boolean;
  metrics: RelayerMetrics;
  log: Logger;
}

const LEAF_TYPES = [...RECEIPT_LEAF_TYPES];

/** The receipt tree of a batch, built with native/ (the same root as offchain/chain's buildReceiptTree). */
export function receiptTree(receipts: readonly JobRecord["receipt"][]): MerkleTree {
  return buildTree(receipts.map(receiptLeafValues), LEAF_TYPES);
}

/** The ledger's id of an enclave's batch: enclave << 64 | sequence (InferenceLedger.batchIdOf). */
export function batchIdOf(enclave: string, sequence: bigint): bigint {
  return (BigInt(enclave) << 64n) | sequence;
}

export interface Stall {
  /** What the operator reads on /readyz. */
  reason: string;
  since: number;
  permanent: boolean;
  enclave: string;
  sequence: bigint;
}

export class Batcher {
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private readonly trees = new Map<string, MerkleTree>();
  private stall: Stall | null = null;
  /** Enclave keys whose next batch the chain will never accept: nothing more is cut for them. */
  private readonly deadKeys = new Set<string>();
  private retryAt = 0;
  private retryDelay = 0;
  /** The enclave whose open batches this store has caught up with. */
  private synced: string | null = null;
  private strandedCheckAt = 0;

  constructor(private readonly o: BatcherOptions) {
    o.sender.registerDoneCheck("anchor", async (intent) => {
      const [, enclave, sequence] = intent.key.split(":");
      const batch = o.store.getBatch(enclave!, BigInt(sequence!));
      return batch !== null && (await this.anchoredRoot(batch)) === batch.root.toLowerCase();
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

  /** Why anchoring is stalled, or null when it is not. */
  stalled(): Stall | null {
    return this.stall;
  }

  /** The root the ledger stores for the batch's id, lower case, or null when none. */
  private async anchoredRoot(
    batch: Pick<BatchRecord, "enclave" | "sequence">,
  ): Promise<string | null> {
    const id = batchIdOf(batch.enclave, batch.sequence);
    try {
      return String(await this.o.ledger.getFunction("rootOf").staticCall(id)).toLowerCase();
    } catch (error) {
      if (classifyAnchorFailure(error, this.o.ledger.interface).name === "LedgerUnknownBatch")
        return null;
      throw error;
    }
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

  /**
   * One round: re-submit receipts of a replaced enclave, adopt batches the enclave signed that this
   * store lost, anchor open batches (oldest first), then cut a new one if one is due.
   */
  async tick(now = Date.now()): Promise<void> {
    const source = this.o.enclave();
    await this.adoptOrphans(source);
    if (this.synced !== source.enclave) await this.recoverSigned(source);
    if (now < this.retryAt) return;
    for (const open of this.o.store.openBatches()) {
      if (!this.running && this.loop !== null) return;
      if (!(await this.finish(open, source))) return;
    }
    if (this.deadKeys.has(source.enclave)) return;
    const pending = this.o.store.pending(source.enclave);
    const due =
      pending.count >= this.o.maxSize ||
      (pending.count > 0 && pending.oldest !== null && now - pending.oldest >= this.o.maxAgeMs);
    if (!due) return;
    const signed = await source.cutBatch(this.o.maxSize);
    if (signed === null) {
      // Receipts this store waits for that the enclave no longer holds as waiting (it dropped them:
      // signed by a key after its rotation): they go to its log again, signed anew.
      const strandedMs = this.o.strandedAfterMs ?? 240_000;
      if (
        pending.oldest !== null &&
        now - pending.oldest > strandedMs &&
        now >= this.strandedCheckAt
      ) {
        // At most one attempt a second (or a tenth of strandedAfterMs): a receipt the enclave keeps
        // refusing must not make a request and a log line every poll.
        this.strandedCheckAt = now + Math.max(1_000, strandedMs / 10);
        // First the enclave's open batches: a crash while one was being cut leaves its receipts
        // there (logged, batched, unknown to this store), where signing them anew would be refused.
        await this.recoverSigned(source);
        const stranded = this.o.store.strandedPending(
          source.enclave,
          now - strandedMs,
          this.o.maxSize,
        );
        if (stranded.length > 0 && this.o.resubmit !== undefined) {
          this.o.log.warn(
            { at: "Batcher#tick", count: stranded.length },
            "receipts the enclave no longer holds sent to its log again",
          );
          await this.o.resubmit(stranded);
        }
      }
      return;
    }
    // A sequence after a gap: the enclave signed batches this store never wrote (a crash while
    // one was being cut). The gap is against every batch written, anchored ones included.
    const last = this.o.store.lastSequence(source.enclave);
    if (last !== null && signed.batch.sequence > last + 1n) await this.recoverSigned(source);
    // (The recovery reads every open batch of the enclave, this one included.)
    const batch =
      this.o.store.getBatch(source.enclave, signed.batch.sequence) ??
      (await this.store(signed, source));
    this.o.log.info(
      {
        at: "Batcher#tick",
        enclave: batch.enclave,
        sequence: batch.sequence.toString(),
        count: batch.count,
        reexecuted: batch.reexecuted,
        root: batch.root,
      },
      "batch cut by the enclave",
    );
    await this.finish(batch, source);
  }

  /**
   * Writes an enclave batch. Receipts the enclave logged but this store never wrote (the relayer died
   * between the enclave's answer and its own write) are recovered from the enclave first; anything
   * else that does not match is refused loudly (BatchMismatchError).
   */
  private async store(signed: SignedBatch, source: BatchSource): Promise<BatchRecord> {
    try {
      return this.o.store.insertBatch(signed);
    } catch (error) {
      if (!(error instanceof BatchMismatchError)) throw error;
      const missing = this.o.store.missing(signed.requestIds);
      if (missing.length === 0) {
        // Receipts this store holds but not as this enclave's waiting ones (another batch, another
        // enclave): the batch can never be written. Its key is stalled, said on /readyz, until the
        // relayer is given another enclave; nothing is anchored twice meanwhile.
        this.deadKeys.add(source.enclave);
        this.stall = {
          reason: `anchoring stalled: enclave ${source.enclave}'s batch ${signed.batch.sequence} lists receipts this store does not hold as its waiting ones; replace the enclave (restart it for a new key)`,
          since: this.stall?.since ?? Date.now(),
          permanent: true,
          enclave: source.enclave,
          sequence: signed.batch.sequence,
        };
        this.o.log.error(
          { at: "Batcher#store", sequence: signed.batch.sequence.toString(), ...error.details },
          this.stall.reason,
        );
        throw error;
      }
      for (const requestId of missing) {
        const logged = await source.logged(requestId);
        if (logged === null) throw error;
        this.o.store.insertRecovered({
          requestId,
          source: this.o.isChainRequest?.(requestId) === true ? "chain" : "http",
          receipt: logged.receipt,
          nodeSignature: logged.nodeSignature,
          enclave: source.enclave,
          selected: logged.selected,
          verdict: logged.verdict,
          enclaveSignature: logged.signature,
          state: "pending",
          createdAt: Date.now(),
        });
      }
      this.o.log.warn(
        {
          at: "Batcher#store",
          sequence: signed.batch.sequence.toString(),
          recovered: missing.length,
        },
        "receipts the enclave logged before this relayer could write them, recovered from its log",
      );
      return this.o.store.insertBatch(signed);
    }
  }

  /** Batches the enclave signed for us and still holds open, that this store has not written. */
  private async recoverSigned(source: BatchSource): Promise<void> {
    const next = BigInt(
      String(await this.o.ledger.getFunction("nextSequenceOf").staticCall(source.enclave)),
    );
    for (const signed of await source.openBatches(next)) {
      if (this.o.store.getBatch(source.enclave, signed.batch.sequence) !== null) continue;
      await this.store(signed, source);
      this.o.log.warn(
        { at: "Batcher#recoverSigned", sequence: signed.batch.sequence.toString() },
        "adopted a batch the enclave signed before this relayer could write it",
      );
    }
    this.synced = source.enclave;
  }

  /** Pending receipts in another enclave's log go to the current enclave's (re-signed if stale). */
  private async adoptOrphans(source: BatchSource): Promise<void> {
    if (this.o.resubmit === undefined) return;
    const orphans = this.o.store.orphans(source.enclave, this.o.maxSize);
    if (orphans.length === 0) return;
    this.o.log.warn(
      { at: "Batcher#adoptOrphans", count: orphans.length, enclave: source.enclave },
      "receipts of a previous enclave sent to the current one",
    );
    await this.o.resubmit(orphans);
  }

  /**
   * Anchors one batch; resolves false when anchoring is stalled (later batches must wait), true
   * when the batch is anchored or was given back.
   */
  private async finish(batch: BatchRecord, source: BatchSource): Promise<boolean> {
    const { sender, ledger, metrics } = this.o;
    const started = Date.now();
    const root = await this.anchoredRoot(batch);
    if (root !== null) {
      if (root !== batch.root.toLowerCase()) {
        // The chain holds another batch under this id: ours can never land (an enclave that signed
        // two batches for one sequence is slashable; its receipts go to the next enclave).
        return this.giveUp(batch, `the chain holds another root (${root}) for this batch id`);
      }
      await this.recordAnchored(batch, 0);
      return true;
    }
    if (batch.signature === null) return this.giveUp(batch, "the batch was never signed");
    const key = `anchor:${batch.enclave}:${batch.sequence}`;
    const data = ledger.interface.encodeFunctionData("anchorBatch", [
      {
        enclave: batch.enclave,
        sequence: batch.sequence,
        root: batch.root,
        count: batch.count,
        reexecuted: batch.reexecuted,
        usageHash: batch.usageHash,
        node: batch.node,
        signer: batch.signer,
        asOf: batch.asOf,
        sampleRatePpm: batch.sampleRatePpm,
      },
      batch.signature,
      batch.modelIds,
      batch.counts,
    ]);
    sender.submit({ key, kind: "anchor", to: await ledger.getAddress(), data });
    sender.retry(key);
    const outcome = await sender.wait(key);
    if (outcome.status === "failed" && (await this.anchoredRoot(batch)) === null) {
      metrics.failures.inc({ stage: "anchor" });
      const failure = classifyAnchorFailure(outcome.reason ?? "", ledger.interface);
      const reason = `${failure.name}: ${failure.message}`;
      // A replaced enclave's key is no one's to renew: its refused batch goes to the current enclave.
      if (batch.enclave !== source.enclave) return this.giveUp(batch, reason);
      // The chain waits for an earlier sequence this store never wrote: read it back from the
      // enclave's open batches on the next round.
      if (failure.name === "LedgerUnexpectedSequence") this.synced = null;
      this.onFailure(batch, failure.permanent, reason);
      return false;
    }
    if (outcome.gasUsed > 0n) metrics.gasSpent.inc({ kind: "anchor" }, Number(outcome.gasUsed));
    await this.recordAnchored(batch, outcome.blockNumber, outcome.gasUsed);
    metrics.anchorLatency.observe((Date.now() - started) / 1000);
    this.stall = null;
    this.retryDelay = 0;
    this.retryAt = 0;
    return true;
  }

  private onFailure(batch: BatchRecord, permanent: boolean, reason: string): void {
    const { store, log } = this.o;
    store.setBatchFailure(batch.enclave, batch.sequence, reason);
    const base = this.o.retryBaseMs ?? 1_000;
    this.retryDelay = Math.min(this.o.retryMaxMs ?? 60_000, Math.max(base, this.retryDelay * 2));
    this.retryAt = Date.now() + this.retryDelay;
    if (permanent) this.deadKeys.add(batch.enclave);
    const text = permanent
      ? `anchoring stalled: batch ${batch.sequence} of enclave ${batch.enclave} was refused for good (${reason}); replace the enclave (restart it and register its new key)`
      : `anchoring stalled: batch ${batch.sequence} of enclave ${batch.enclave} failed (${reason}); retrying in ${Math.round(this.retryDelay / 1000)} s`;
    this.stall = {
      reason: text,
      since: this.stall?.since ?? Date.now(),
      permanent,
      enclave: batch.enclave,
      sequence: batch.sequence,
    };
    log.error(
      { at: "Batcher#finish", sequence: batch.sequence.toString(), permanent, reason },
      text,
    );
  }

  /** Releases a batch that can never be anchored: its jobs wait for the current enclave again. */
  private giveUp(batch: BatchRecord, why: string): boolean {
    const released = this.o.store.releaseBatch(batch.enclave, batch.sequence);
    this.o.log.warn(
      {
        at: "Batcher#giveUp",
        enclave: batch.enclave,
        sequence: batch.sequence.toString(),
        released,
        why,
      },
      "batch given back: its receipts go to the current enclave",
    );
    if (this.stall?.enclave === batch.enclave && this.stall.sequence === batch.sequence) {
      this.stall = null;
    }
    return true;
  }

  /**
   * Records the batch anchored, after checking the chain's root for its id is the batch's own, with
   * the transaction read from its BatchAnchored event (from `hintBlock`, else from the deploy block).
   */
  private async recordAnchored(batch: BatchRecord, hintBlock: number, gasUsed = 0n): Promise<void> {
    const { ledger, provider, store, metrics, log } = this.o;
    const batchId = batchIdOf(batch.enclave, batch.sequence);
    const root = await this.anchoredRoot(batch);
    if (root !== batch.root.toLowerCase()) {
      throw new Error(
        `batch ${batch.enclave}:${batch.sequence} is not anchored with its root (chain: ${root})`,
      );
    }
    const filter = ledger.filters.BatchAnchored!(batchId);
    const latest = await provider.getBlockNumber();
    const ranges: Array<[number, number]> = [];
    if (hintBlock > 0) ranges.push([hintBlock, hintBlock]);
    for (let to = latest; to >= this.o.deployBlock; to -= this.o.maxBlockRange)
      ranges.push([Math.max(this.o.deployBlock, to - this.o.maxBlockRange + 1), to]);
    for (const [from, to] of ranges) {
      for (const event of await ledger.queryFilter(filter, from, to)) {
        if (!("args" in event)) continue;
        if (String(event.args.root).toLowerCase() !== batch.root.toLowerCase()) continue;
        let gas = gasUsed;
        if (gas === 0n) {
          const receipt = await provider.getTransactionReceipt(event.transactionHash);
          gas = receipt?.gasUsed ?? 0n;
        }
        store.setBatchAnchored(batch.enclave, batch.sequence, {
          batchId,
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
            batchId: batchId.toString(),
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
