/** Typed errors of the transaction sender. */
import { BaseError, InputError } from "../../common/errors.js";
import type { BaseErrorOptions } from "../../common/errors.js";

/** An intent that fails validation (bad key, kind, address or calldata). */
export class IntentInvalidError extends InputError {
  override name = "IntentInvalidError";
}

/** The same idempotency key was submitted earlier with a different payload. */
export class IntentConflictError extends InputError {
  override name = "IntentConflictError";
  override readonly httpStatus: number = 409;
}

/** `wait`/`status` on a key that was never submitted. */
export class IntentUnknownError extends InputError {
  override name = "IntentUnknownError";
  override readonly httpStatus: number = 404;
}

/** Another live TxSender holds the writer lease for this signer on this store. */
export class SenderLockedError extends BaseError {
  override name = "SenderLockedError";
  override readonly httpStatus: number = 503;
  constructor(message: string, options: BaseErrorOptions = {}) {
    super(message, {
      hint: "run one relayer per signer key and store; a crashed holder is taken over once its process is gone or its lease expired",
      ...options,
    });
  }
}

/** The sender was stopped (or lost its lease) while a caller was waiting on an outcome. */
export class SenderStoppedError extends BaseError {
  override name = "SenderStoppedError";
  override readonly httpStatus: number = 503;
}

/** Bad constructor options. */
export class SenderConfigError extends InputError {
  override name = "SenderConfigError";
}
