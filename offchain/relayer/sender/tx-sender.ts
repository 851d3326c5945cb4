/**
 * The relayer's transaction sender: the only writer for one signer key. Intents are persisted
 * first (idempotent on their key); one loop assigns each intent one nonce, signs, records every
 * attempt BEFORE broadcasting it, resends a dropped transaction, replaces a stuck one with bumped
 * fees (same nonce, same payload), and reports the outcome once the receipt is deep enough.
 * docs/relayer-sender.md describes the states, crash recovery and the nonce-gap rule.
 */
import { randomUUID } from "node:crypto";
import type { DatabaseSync } from "node:sqlite";

import { Interface, Transaction, getAddress, isError, isHexString } from "ethers";
import type { JsonRpcProvider, Wallet } from "ethers";
import { pino } from "pino";
import type { Logger } from "pino";

import {
  IntentConflictError,
  IntentInvalidError,
  IntentUnknownError,
  SenderConfigError,
  SenderLockedError,
  SenderStoppedError,
} from "./errors.js";
import { bumpFees, capFees, classifyBroadcastError, describeRevert, errorText } from "./fees.js";
import type { Fees } from "./fees.js";
import { SenderStore } from "./store.js";
import type { AttemptRow, IntentRow, SlotRow } from "./store.js";

export type TxKind = "anchor" | "fulfil" | "evidence" | "heartbeat" | "registration";
const KINDS: readonly TxKind[] = ["anchor", "fulfil", "evidence", "heartbeat", "registration"];

export interface TxIntent {
  /** Idempotency key: one key, one payload, at most one transaction mined, ever. */
  key: string;
  kind: TxKind;
  to: string;
  data: string;
  gasLimit?: bigint;
}

export interface TxOutcome {
  status: "confirmed" | "failed";
  /** The mined transaction; "" when the intent was already done and nothing of ours was mined. */
  txHash: string;
  blockNumber: number;
  gasUsed: bigint;
  /** Why it failed (the decoded revert), or "already done" when the done check answered true. */
  reason?: string;
}

export interface TxStatus {
  key: string;
  kind: TxKind;
  state: IntentRow["state"];
  nonce?: number;
  txHash?: string;
  blockNumber?: number;
  /** Signed attempts for this intent (1 + resends with new fees). */
  attempts: number;
  reason?: string;
}

/** Optional counters; every hook gets the intent's kind. */
export interface SenderMetrics {
  /** A signed transaction was broadcast for the first time (`replacement`: with bumped fees). */
  onSent?: (kind: TxKind, replacement: boolean) => void;
  onConfirmed?: (kind: TxKind) => void;
  onFailed?: (kind: TxKind) => void;
  gasUsed?: (kind: TxKind, gas: bigint) => void;
}

export type DoneCheck = (intent: TxIntent) => Promise<boolean>;

export interface TxSenderOptions {
  db: DatabaseSync;
  provider: JsonRpcProvider;
  signer: Wallet;
  /** Blocks on top of and including the receipt's block before an outcome is final (>= 1). */
  confirmations: number;
  pollIntervalMs?: number;
  /** A transaction not mined this long after its fees were set is replaced with bumped fees. */
  stuckAfterMs?: number;
  /** Fee raise on replacement, in percent; >= 10 (the nodes' replacement rule). */
  feeBumpPercent?: number;
  maxFeePerGasCap?: bigint;
  logger?: Logger;
  metrics?: SenderMetrics;
  /** ABI fragments (or an Interface) used to decode custom-error reverts into reasons. */
  revertInterface?: Interface;
  /** Bound on every RPC call, so a node that never answers cannot stall the loop. */
  rpcTimeoutMs?: number;
  /** Writer lease length; renewed every tick, taken over early when the holder's pid is gone. */
  leaseMs?: number;
}

const FILLER_GAS = 21_000n;

interface RawReceipt {
  transactionHash: string;
  blockNumber: string;
  status: string;
  gasUsed: string;
}

interface Receipt {
  hash: string;
  blockNumber: number;
  status: number;
  gasUsed: bigint;
}
const ALREADY_DONE = "already done";

interface Waiter {
  resolve: (outcome: TxOutcome) => void;
  reject: (error: Error) => void;
}

export class TxSender {
  readonly address: string;
  private readonly store: SenderStore;
  private readonly provider: JsonRpcProvider;
  private readonly signer: Wallet;
  private readonly confirmations: number;
  private readonly pollIntervalMs: number;
  private readonly stuckAfterMs: number;
  private readonly feeBumpPercent: number;
  private readonly maxFeePerGasCap: bigint | undefined;
  private readonly rpcTimeoutMs: number;
  private readonly leaseMs: number;
  private readonly log: Logger;
  private readonly metrics: SenderMetrics;
  private readonly revertInterface: Interface;
  private readonly owner = randomUUID();
  private readonly doneChecks = new Map<TxKind, DoneCheck>();
  private readonly waiters = new Map<string, Waiter[]>();
  private chainId: bigint | undefined;
  private reconciled = false;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<void> | undefined;

  constructor(options: TxSenderOptions) {
    const bump = options.feeBumpPercent ?? 12;
    if (!Number.isInteger(options.confirmations) || options.confirmations < 1) {
      throw new SenderConfigError("confirmations must be an integer >= 1", {
        details: { confirmations: options.confirmations },
      });
    }
    if (!Number.isInteger(bump) || bump < 10) {
      throw new SenderConfigError("feeBumpPercent must be an integer >= 10 (replacement rule)", {
        details: { feeBumpPercent: bump },
      });
    }
    if (options.maxFeePerGasCap !== undefined && options.maxFeePerGasCap <= 0n) {
      throw new SenderConfigError("maxFeePerGasCap must be positive", {
        details: { maxFeePerGasCap: options.maxFeePerGasCap },
      });
    }
    this.provider = options.provider;
    this.signer = options.signer;
    this.address = getAddress(options.signer.address);
    this.confirmations = options.confirmations;
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
    this.stuckAfterMs = options.stuckAfterMs ?? 60_000;
    this.feeBumpPercent = bump;
    this.maxFeePerGasCap = options.maxFeePerGasCap;
    this.rpcTimeoutMs = options.rpcTimeoutMs ?? 10_000;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.log = (options.logger ?? pino({ enabled: false })).child({
      component: "sender",
      signer: this.address,
    });
    this.metrics = options.metrics ?? {};
    this.revertInterface = options.revertInterface ?? new Interface([]);
    this.store = new SenderStore(options.db, this.address);
  }

  // ---------------------------------------------------------------- public API

  /** Persists the intent; the same key with the same payload is a no-op. */
  submit(intent: TxIntent): void {
    const row = normalise(intent);
    this.store.tx(() => {
      const existing = this.store.intent(row.key);
      if (existing === undefined) {
        this.store.insertIntent({ ...row, signer: this.address }, Date.now());
        return;
      }
      const same =
        existing.kind === row.kind &&
        existing.to_address === row.to_address &&
        existing.data === row.data &&
        existing.gas_limit === row.gas_limit &&
        existing.signer === this.address;
      if (!same) {
        throw new IntentConflictError("idempotency key already used with a different payload", {
          details: {
            key: row.key,
            stored: { kind: existing.kind, to: existing.to_address, data: existing.data },
            submitted: { kind: row.kind, to: row.to_address, data: row.data },
          },
        });
      }
    });
    this.kick();
  }

  /**
   * Queues a failed intent again, the same payload under the same key (its cause may be gone: an
   * enclave renewed, a previous batch anchored). Nothing happens to an intent that has not failed.
   * Returns whether it was queued again.
   */
  retry(key: string): boolean {
    const requeued = this.store.tx(() => {
      const row = this.store.intent(key);
      if (row === undefined || row.state !== "failed") return false;
      this.store.updateIntent(
        key,
        {
          state: "queued",
          nonce: null,
          tx_hash: null,
          block_number: null,
          gas_used: null,
          reason: null,
        },
        Date.now(),
      );
      return true;
    });
    if (requeued) {
      this.log.info({ at: "TxSender#retry", key }, "failed intent queued again");
      this.kick();
    }
    return requeued;
  }

  /** Resolves with the final outcome (confirmed at depth, or failed for good). */
  wait(key: string): Promise<TxOutcome> {
    const row = this.store.intent(key);
    if (row === undefined) {
      return Promise.reject(
        new IntentUnknownError("no intent with this key", { details: { key } }),
      );
    }
    const outcome = outcomeOf(row);
    if (outcome !== undefined) return Promise.resolve(outcome);
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(key) ?? [];
      list.push({ resolve, reject });
      this.waiters.set(key, list);
    });
  }

  status(key: string): TxStatus | undefined {
    const row = this.store.intent(key);
    if (row === undefined) return undefined;
    return {
      key: row.key,
      kind: row.kind as TxKind,
      state: row.state,
      attempts: this.store.countAttempts(row.key),
      ...(row.nonce !== null ? { nonce: row.nonce } : {}),
      ...(row.tx_hash !== null ? { txHash: row.tx_hash } : {}),
      ...(row.block_number !== null ? { blockNumber: row.block_number } : {}),
      ...(row.reason !== null ? { reason: row.reason } : {}),
    };
  }

  /** `check` answers "is this intent's effect already on chain?" before any (re)send. */
  registerDoneCheck(kind: TxKind, check: DoneCheck): void {
    this.doneChecks.set(kind, check);
  }

  /** Takes the writer lease (SenderLockedError when another live sender holds it) and starts the loop. */
  start(): void {
    if (this.running) return;
    this.acquireLease();
    this.running = true;
    this.reconciled = false;
    this.schedule(0);
    this.log.info({ at: "TxSender#start" }, "sender started");
  }

  /** Finishes the tick in progress, releases the lease, and rejects pending waits. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.current;
    this.store.dropLease(this.owner);
    this.rejectWaiters(new SenderStoppedError("sender stopped"));
    this.log.info({ at: "TxSender#stop" }, "sender stopped");
  }

  // ---------------------------------------------------------------- loop

  private schedule(delay: number): void {
    if (!this.running || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.current = this.tick().finally(() => {
        this.current = undefined;
        this.schedule(this.pollIntervalMs);
      });
    }, delay);
  }

  /** Runs the next tick soon instead of after a full poll interval. */
  private kick(): void {
    if (this.running && this.current === undefined && this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.schedule(0);
    }
  }

  private async tick(): Promise<void> {
    try {
      this.renewLease();
    } catch (error) {
      this.log.error({ at: "TxSender#tick", err: errorText(error) }, "writer lease lost");
      this.running = false;
      this.rejectWaiters(error as Error);
      return;
    }
    try {
      this.chainId ??= await this.rpc(
        this.provider.send("eth_chainId", []) as Promise<string>,
      ).then(BigInt);
      const latest = await this.rpc(this.provider.getTransactionCount(this.address, "latest"));
      if (!this.reconciled) await this.reconcile(latest);
      await this.settleMinedSlots(latest);
      const head = await this.rpc(this.provider.getBlockNumber());
      await this.confirmMined(head);
      if (!this.running) return;
      await this.tendOpenSlots();
      if (!this.running) return;
      await this.sendQueued();
    } catch (error) {
      this.log.warn({ at: "TxSender#tick", err: errorText(error) }, "tick aborted; retrying");
    }
  }

  /** On start: the next nonce is the larger of the store's and the chain's mined count. */
  private async reconcile(latest: number): Promise<void> {
    const pending = await this.rpc(this.provider.getTransactionCount(this.address, "pending"));
    const stored = this.store.nextNonce() ?? 0;
    const next = Math.max(stored, latest);
    if (pending > next) {
      this.log.warn(
        { at: "TxSender#reconcile", stored, latest, pending },
        "pending transactions from this key that this store did not send",
      );
    }
    this.store.setNextNonce(next);
    this.reconciled = true;
    this.log.info({ at: "TxSender#reconcile", stored, latest, pending, next }, "nonces reconciled");
  }

  /** Open slots below the mined count: find which of our attempts was mined. */
  private async settleMinedSlots(latest: number): Promise<void> {
    for (const slot of this.store.openSlots()) {
      if (slot.nonce >= latest) break;
      let mined: Receipt | undefined;
      for (const attempt of this.store.attempts(slot.nonce).reverse()) {
        const receipt = await this.receipt(attempt.hash);
        if (receipt !== null) {
          mined = receipt;
          break;
        }
      }
      const intent = this.slotIntent(slot);
      const now = Date.now();
      if (mined !== undefined) {
        const hash = mined.hash;
        const blockNumber = mined.blockNumber;
        this.store.tx(() => {
          this.store.updateSlot(slot.nonce, { state: "mined", mined_hash: hash });
          if (intent !== undefined && intent.state === "inflight") {
            this.store.updateIntent(
              intent.key,
              { state: "mined", tx_hash: hash, block_number: blockNumber },
              now,
            );
          }
        });
        this.log.info({ at: "TxSender#settle", nonce: slot.nonce, hash, blockNumber }, "mined");
        continue;
      }
      // The nonce is used on chain by none of our attempts: nothing of this intent can ever be
      // mined, so it is safe to queue it again for a fresh nonce.
      this.store.tx(() => {
        this.store.updateSlot(slot.nonce, { state: "lost" });
        if (intent !== undefined && intent.state === "inflight") {
          this.store.updateIntent(intent.key, { state: "queued", nonce: null }, now);
        }
      });
      this.log.error(
        { at: "TxSender#settle", nonce: slot.nonce },
        "nonce consumed by a transaction this sender did not sign; intent requeued",
      );
    }
  }

  /** Mined intents deep enough become final: confirmed, or failed with the revert reason. */
  private async confirmMined(head: number): Promise<void> {
    for (const intent of this.store.intentsIn("mined")) {
      const hash = intent.tx_hash as string;
      const minedAt = intent.block_number as number;
      if (head - minedAt + 1 < this.confirmations) continue;
      const receipt = await this.receipt(hash);
      const now = Date.now();
      if (receipt === null) {
        // Reorganised out: back in flight with the same nonce and attempts.
        this.store.tx(() => {
          this.store.updateIntent(
            intent.key,
            { state: "inflight", tx_hash: null, block_number: null },
            now,
          );
          this.store.updateSlot(intent.nonce as number, {
            state: "open",
            mined_hash: null,
            fees_changed_at: now,
          });
        });
        this.log.warn({ at: "TxSender#confirm", key: intent.key, hash }, "receipt gone (reorg)");
        continue;
      }
      if (receipt.blockNumber !== minedAt) {
        this.store.updateIntent(intent.key, { block_number: receipt.blockNumber }, now);
        continue;
      }
      const gasUsed = receipt.gasUsed.toString();
      if (receipt.status === 1) {
        this.store.updateIntent(intent.key, { state: "confirmed", gas_used: gasUsed }, now);
      } else if (await this.isDone(intent)) {
        this.store.updateIntent(
          intent.key,
          { state: "confirmed", gas_used: gasUsed, reason: ALREADY_DONE },
          now,
        );
      } else {
        const reason = await this.replayRevert(intent, receipt);
        this.store.updateIntent(intent.key, { state: "failed", gas_used: gasUsed, reason }, now);
      }
      this.metrics.gasUsed?.(intent.kind as TxKind, receipt.gasUsed);
      this.finish(intent.key);
    }
  }

  /** Open slots at or above the mined count: resend what the node lost, replace what is stuck. */
  private async tendOpenSlots(): Promise<void> {
    for (const slot of this.store.openSlots()) {
      const last = this.store.attempts(slot.nonce).at(-1);
      if (last === undefined) continue; // cannot happen: slot and first attempt share a transaction
      let intent = this.slotIntent(slot);
      let filler = slot.filler === 1;
      const stuck = Date.now() - slot.fees_changed_at >= this.stuckAfterMs;
      const present =
        (await this.rpc(
          this.provider.send("eth_getTransactionByHash", [last.hash]) as Promise<unknown>,
        )) !== null;
      if (present && !stuck && !(filler && last.payload === "intent")) continue;
      if (intent !== undefined && !filler && (await this.isDone(intent))) {
        this.store.tx(() => {
          this.store.updateSlot(slot.nonce, { filler: 1 });
          this.store.updateIntent(
            intent!.key,
            { state: "confirmed", reason: ALREADY_DONE },
            Date.now(),
          );
        });
        this.log.info(
          { at: "TxSender#tend", key: intent.key, nonce: slot.nonce },
          "already done elsewhere; nonce handed to a filler",
        );
        this.finish(intent.key);
        intent = undefined;
        filler = true;
        if (present && !stuck) continue;
      }
      if (!present && !(filler && last.payload === "intent")) {
        this.log.warn(
          { at: "TxSender#tend", nonce: slot.nonce, hash: last.hash },
          "dropped; resending",
        );
        await this.broadcast(last.raw, last.hash, slot.nonce);
        continue;
      }
      await this.replace(slot, last, filler ? undefined : intent);
    }
  }

  /** Signs the same payload (or the filler) at the same nonce with bumped fees. */
  private async replace(
    slot: SlotRow,
    last: AttemptRow,
    intent: IntentRow | undefined,
  ): Promise<void> {
    const fresh = await this.freshFees();
    const previous: Fees = {
      maxFeePerGas: BigInt(last.max_fee_per_gas),
      maxPriorityFeePerGas: BigInt(last.max_priority_fee_per_gas),
    };
    const fees = bumpFees(previous, fresh, this.feeBumpPercent, this.maxFeePerGasCap);
    if (fees === undefined) {
      this.log.warn(
        { at: "TxSender#replace", nonce: slot.nonce, cap: this.maxFeePerGasCap?.toString() },
        "fee cap leaves no room to replace; resending as is",
      );
      await this.broadcast(last.raw, last.hash, slot.nonce);
      return;
    }
    const payload =
      intent !== undefined
        ? { to: intent.to_address, data: intent.data, gasLimit: this.signedGasLimit(last) }
        : { to: this.address, data: "0x", gasLimit: FILLER_GAS };
    const signed = await this.sign(slot.nonce, payload, fees);
    const now = Date.now();
    this.store.tx(() => {
      this.store.insertAttempt({
        hash: signed.hash,
        nonce: slot.nonce,
        payload: intent !== undefined ? "intent" : "filler",
        raw: signed.raw,
        max_fee_per_gas: fees.maxFeePerGas.toString(),
        max_priority_fee_per_gas: fees.maxPriorityFeePerGas.toString(),
        created_at: now,
      });
      this.store.updateSlot(slot.nonce, { fees_changed_at: now });
    });
    this.log.info(
      {
        at: "TxSender#replace",
        nonce: slot.nonce,
        hash: signed.hash,
        replaces: last.hash,
        maxFeePerGas: fees.maxFeePerGas.toString(),
        filler: intent === undefined,
      },
      "replacing with bumped fees",
    );
    if (intent !== undefined) this.metrics.onSent?.(intent.kind as TxKind, true);
    await this.broadcast(signed.raw, signed.hash, slot.nonce);
  }

  /** Queued intents, oldest first: done check, gas estimate, nonce, persist, broadcast. */
  private async sendQueued(): Promise<void> {
    for (const intent of this.store.intentsIn("queued")) {
      if (!this.running) return;
      if (await this.isDone(intent)) {
        this.store.updateIntent(
          intent.key,
          { state: "confirmed", reason: ALREADY_DONE },
          Date.now(),
        );
        this.finish(intent.key);
        continue;
      }
      let gasLimit: bigint;
      if (intent.gas_limit !== null) {
        gasLimit = BigInt(intent.gas_limit);
      } else {
        try {
          const estimate = await this.rpc(
            this.provider.estimateGas({
              from: this.address,
              to: intent.to_address,
              data: intent.data,
            }),
          );
          gasLimit = (estimate * 120n) / 100n;
        } catch (error) {
          if (!isRevert(error)) throw error;
          const reason = describeRevert(error, this.revertInterface);
          this.store.updateIntent(intent.key, { state: "failed", reason }, Date.now());
          this.log.warn({ at: "TxSender#send", key: intent.key, reason }, "would revert; not sent");
          this.finish(intent.key);
          continue;
        }
      }
      const fees = await this.freshFees();
      const nonce = this.store.nextNonce() as number;
      const signed = await this.sign(
        nonce,
        { to: intent.to_address, data: intent.data, gasLimit },
        fees,
      );
      const now = Date.now();
      // Nonce, slot and attempt are durable before anything leaves this process.
      this.store.tx(() => {
        this.store.setNextNonce(nonce + 1);
        this.store.insertSlot(nonce, intent.key, now);
        this.store.insertAttempt({
          hash: signed.hash,
          nonce,
          payload: "intent",
          raw: signed.raw,
          max_fee_per_gas: fees.maxFeePerGas.toString(),
          max_priority_fee_per_gas: fees.maxPriorityFeePerGas.toString(),
          created_at: now,
        });
        this.store.updateIntent(intent.key, { state: "inflight", nonce }, now);
      });
      this.log.info(
        { at: "TxSender#send", key: intent.key, kind: intent.kind, nonce, hash: signed.hash },
        "sending",
      );
      this.metrics.onSent?.(intent.kind as TxKind, false);
      await this.broadcast(signed.raw, signed.hash, nonce);
    }
  }

  // ---------------------------------------------------------------- helpers

  /** Never throws: whatever the answer, the attempt is on record and the next tick looks again. */
  private async broadcast(raw: string, hash: string, nonce: number): Promise<void> {
    try {
      await this.rpc(this.provider.send("eth_sendRawTransaction", [raw]) as Promise<unknown>);
    } catch (error) {
      const refusal = classifyBroadcastError(error);
      const level = refusal === "other" ? "warn" : "debug";
      this.log[level](
        { at: "TxSender#broadcast", nonce, hash, refusal, err: errorText(error) },
        "broadcast refused",
      );
    }
  }

  private async sign(
    nonce: number,
    payload: { to: string; data: string; gasLimit: bigint },
    fees: Fees,
  ): Promise<{ raw: string; hash: string }> {
    const raw = await this.signer.signTransaction({
      type: 2,
      chainId: this.chainId as bigint,
      nonce,
      to: payload.to,
      data: payload.data,
      value: 0n,
      gasLimit: payload.gasLimit,
      maxFeePerGas: fees.maxFeePerGas,
      maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
    });
    return { raw, hash: Transaction.from(raw).hash as string };
  }

  private signedGasLimit(attempt: AttemptRow): bigint {
    return Transaction.from(attempt.raw).gasLimit;
  }

  private async freshFees(): Promise<Fees> {
    const data = await this.rpc(this.provider.getFeeData());
    if (data.maxFeePerGas === null || data.maxPriorityFeePerGas === null) {
      throw new SenderConfigError("the node does not offer EIP-1559 fees");
    }
    return capFees(
      { maxFeePerGas: data.maxFeePerGas, maxPriorityFeePerGas: data.maxPriorityFeePerGas },
      this.maxFeePerGasCap,
    );
  }

  /** The revert data of a mined, reverted transaction, by replaying it on the parent block. */
  private async replayRevert(intent: IntentRow, receipt: Receipt): Promise<string> {
    try {
      await this.rpc(
        this.provider.call({
          from: this.address,
          to: intent.to_address,
          data: intent.data,
          blockTag: receipt.blockNumber - 1,
        }),
      );
      return `reverted in block ${receipt.blockNumber} (replay on the parent block succeeded; out of gas?)`;
    } catch (error) {
      return describeRevert(error, this.revertInterface);
    }
  }

  /**
   * Receipts straight from the node: ethers' provider methods share a short result cache, and a
   * stale "not found" or "still pending" would mislead the loop.
   */
  private async receipt(hash: string): Promise<Receipt | null> {
    const raw = await this.rpc(
      this.provider.send("eth_getTransactionReceipt", [hash]) as Promise<RawReceipt | null>,
    );
    if (raw === null) return null;
    return {
      hash: raw.transactionHash,
      blockNumber: Number(raw.blockNumber),
      status: Number(raw.status),
      gasUsed: BigInt(raw.gasUsed),
    };
  }

  private async isDone(intent: IntentRow): Promise<boolean> {
    const check = this.doneChecks.get(intent.kind as TxKind);
    if (check === undefined) return false;
    return check(toIntent(intent));
  }

  private slotIntent(slot: SlotRow): IntentRow | undefined {
    return slot.intent_key === null ? undefined : this.store.intent(slot.intent_key);
  }

  private finish(key: string): void {
    const row = this.store.intent(key);
    const outcome = row === undefined ? undefined : outcomeOf(row);
    if (row === undefined || outcome === undefined) return;
    if (outcome.status === "confirmed") this.metrics.onConfirmed?.(row.kind as TxKind);
    else this.metrics.onFailed?.(row.kind as TxKind);
    this.log.info(
      {
        at: "TxSender#finish",
        key,
        status: outcome.status,
        hash: outcome.txHash,
        reason: outcome.reason,
      },
      "outcome",
    );
    const list = this.waiters.get(key) ?? [];
    this.waiters.delete(key);
    for (const waiter of list) waiter.resolve(outcome);
  }

  private rejectWaiters(error: Error): void {
    const all = [...this.waiters.values()].flat();
    this.waiters.clear();
    for (const waiter of all) waiter.reject(error);
  }

  private rpc<T>(call: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`RPC call timed out after ${this.rpcTimeoutMs} ms`)),
        this.rpcTimeoutMs,
      );
    });
    return Promise.race([call, timeout]).finally(() => clearTimeout(timer));
  }

  private acquireLease(): void {
    this.store.tx(() => {
      const lease = this.store.lease();
      const now = Date.now();
      if (
        lease !== undefined &&
        lease.owner !== this.owner &&
        lease.expires_at > now &&
        processAlive(lease.pid)
      ) {
        throw new SenderLockedError("another sender holds the writer lease for this signer", {
          details: {
            signer: this.address,
            pid: lease.pid,
            expiresAt: new Date(lease.expires_at).toISOString(),
          },
        });
      }
      this.store.putLease(this.owner, now + this.leaseMs);
    });
  }

  private renewLease(): void {
    this.store.tx(() => {
      const lease = this.store.lease();
      if (lease === undefined || lease.owner !== this.owner) {
        throw new SenderLockedError("the writer lease was taken over", {
          details: { signer: this.address, holderPid: lease?.pid },
        });
      }
      this.store.putLease(this.owner, Date.now() + this.leaseMs);
    });
  }
}

/**
 * ethers reports ANY error of eth_estimateGas as CALL_EXCEPTION; only revert data or a node message
 * saying "revert" is a real revert (a lost or failed answer is retried on the next tick).
 */
function isRevert(error: unknown): boolean {
  if (!isError(error, "CALL_EXCEPTION")) return false;
  if (error.data !== null && error.data !== undefined && error.data !== "0x") return true;
  // ethers' own message ("missing revert data") says nothing; the node's message does.
  const nodeMessage = (error.info as { error?: { message?: unknown } } | undefined)?.error?.message;
  return typeof nodeMessage === "string" && /revert/i.test(nodeMessage);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function normalise(
  intent: TxIntent,
): Omit<
  IntentRow,
  "signer" | "seq" | "state" | "nonce" | "tx_hash" | "block_number" | "gas_used" | "reason"
> {
  if (typeof intent.key !== "string" || intent.key.length === 0 || intent.key.length > 200) {
    throw new IntentInvalidError(
      "intent key must be a non-empty string of at most 200 characters",
      {
        details: { key: intent.key },
      },
    );
  }
  if (!KINDS.includes(intent.kind)) {
    throw new IntentInvalidError("unknown intent kind", {
      details: { key: intent.key, kind: intent.kind, allowed: KINDS },
    });
  }
  let to: string;
  try {
    to = getAddress(intent.to);
  } catch (cause) {
    throw new IntentInvalidError("intent target is not an address", {
      details: { key: intent.key, to: intent.to },
      cause,
    });
  }
  if (!isHexString(intent.data) || intent.data.length % 2 !== 0) {
    throw new IntentInvalidError("intent data must be 0x-prefixed hex bytes", {
      details: { key: intent.key, data: intent.data.slice(0, 66) },
    });
  }
  if (
    intent.gasLimit !== undefined &&
    (intent.gasLimit < 21_000n || intent.gasLimit > 30_000_000n)
  ) {
    throw new IntentInvalidError("gasLimit must be between 21,000 and 30,000,000", {
      details: { key: intent.key, gasLimit: intent.gasLimit },
    });
  }
  return {
    key: intent.key,
    kind: intent.kind,
    to_address: to,
    data: intent.data.toLowerCase(),
    gas_limit: intent.gasLimit === undefined ? null : intent.gasLimit.toString(),
  };
}

function toIntent(row: IntentRow): TxIntent {
  return {
    key: row.key,
    kind: row.kind as TxKind,
    to: row.to_address,
    data: row.data,
    ...(row.gas_limit !== null ? { gasLimit: BigInt(row.gas_limit) } : {}),
  };
}

function outcomeOf(row: IntentRow): TxOutcome | undefined {
  if (row.state !== "confirmed" && row.state !== "failed") return undefined;
  return {
    status: row.state,
    txHash: row.tx_hash ?? "",
    blockNumber: row.block_number ?? 0,
    gasUsed: row.gas_used === null ? 0n : BigInt(row.gas_used),
    ...(row.reason !== null ? { reason: row.reason } : {}),
  };
}
