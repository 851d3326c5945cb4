/**
 * What the service needs from a transaction sender (implemented by offchain/relayer/sender/ and, until
 * that lands, by simple-sender.ts): durable intents keyed for idempotency, a wait, and "done checks"
 * (e.g. "this batch is already anchored") consulted before anything is sent or resent.
 */
export type IntentKind = "anchor" | "fulfil" | "evidence";

export interface TxIntent {
  /** Idempotency key: a second submit with the same key is ignored. */
  key: string;
  kind: IntentKind;
  to: string;
  data: string;
  gasLimit?: bigint;
}

export interface TxOutcome {
  status: "confirmed" | "failed";
  /** "" when a done check found the work already done by a transaction this sender did not see. */
  txHash: string;
  blockNumber: number;
  gasUsed: bigint;
}

export interface TxSenderLike {
  submit(intent: TxIntent): void;
  wait(key: string): Promise<TxOutcome>;
  registerDoneCheck(kind: IntentKind, check: (intent: TxIntent) => Promise<boolean>): void;
  start(): void;
  stop(): Promise<void> | void;
}
