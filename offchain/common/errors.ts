/**
 * One error hierarchy for the whole off-chain side: a short message, structured details
 * (the offending values) and the underlying `cause`. CLIs print `message` + `details` and exit
 * with `exitCode`; the relayer's HTTP layer maps `httpStatus`.
 */
export interface BaseErrorOptions {
  details?: Record<string, unknown>;
  cause?: unknown;
  /** What the user can do about it, printed after the message. */
  hint?: string;
}

export class BaseError extends Error {
  override name = "BaseError";
  readonly details: Record<string, unknown>;
  readonly hint: string | undefined;
  /** Process exit code when this error ends a command. */
  readonly exitCode: number = 1;
  /** HTTP status when this error answers a request (4xx: the caller's fault). */
  readonly httpStatus: number = 500;

  constructor(message: string, options: BaseErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.details = options.details ?? {};
    this.hint = options.hint;
  }

  /** One readable block: message, details as `key: value` lines, then the hint. */
  format(): string {
    const lines = [`${this.name}: ${this.message}`];
    for (const [key, value] of Object.entries(this.details)) {
      lines.push(`  ${key}: ${formatValue(value)}`);
    }
    if (this.hint !== undefined) lines.push(`  -> ${this.hint}`);
    return lines.join("\n");
  }
}

/** Bad input from a user, a file or a request: exit code 2, HTTP 400. */
export class InputError extends BaseError {
  override name = "InputError";
  override readonly exitCode: number = 2;
  override readonly httpStatus: number = 400;
}

/** The chain (or another party) disagrees with what was expected: exit code 1. */
export class VerificationError extends BaseError {
  override name = "VerificationError";
  override readonly httpStatus: number = 422;
}

function formatValue(value: unknown): string {
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "string") return value;
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}
