/**
 * What the service's parts need from the transaction sender (offchain/relayer/sender/, TxSender):
 * durable intents keyed for idempotency, a wait, and "done checks" (e.g. "this batch is already
 * anchored") consulted before anything is sent or resent. The batcher and the listener depend on
 * this narrow interface only, so they can be tested with a fake.
 */
import type { DoneCheck, TxIntent, TxKind, TxOutcome } from "./sender/index.js";

export type { TxIntent, TxOutcome } from "./sender/index.js";
export type IntentKind = TxKind;

export interface TxSenderLike {
  submit(intent: TxIntent): void;
  wait(key: string): Promise<TxOutcome>;
  /** Queues a failed intent again (same key and payload); false when it had not failed. */
  retry(key: string): boolean;
  registerDoneCheck(kind: IntentKind, check: DoneCheck): void;
  start(): void;
  stop(): Promise<void> | void;
}
