/** The relayer's transaction sender: see tx-sender.ts and docs/relayer-sender.md. */
export { TxSender } from "./tx-sender.js";
export type {
  DoneCheck,
  SenderMetrics,
  TxIntent,
  TxKind,
  TxOutcome,
  TxSenderOptions,
  TxStatus,
} from "./tx-sender.js";
export {
  IntentConflictError,
  IntentInvalidError,
  IntentUnknownError,
  SenderConfigError,
  SenderLockedError,
  SenderStoppedError,
} from "./errors.js";
export { SENDER_MIGRATIONS } from "./store.js";
