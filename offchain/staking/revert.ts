import type { Interface } from "ethers";

import { BaseError, VerificationError } from "../common/errors.js";

/**
 * Runs a contract call; a revert that the prechecks did not foresee becomes a VerificationError
 * naming the contract's custom error and its arguments.
 */
export async function sendOrExplain<T>(
  iface: Interface,
  action: string,
  send: () => Promise<T>,
): Promise<T> {
  try {
    return await send();
  } catch (error) {
    if (error instanceof BaseError) throw error;
    const data = revertData(error);
    const parsed = data === undefined ? null : iface.parseError(data);
    if (parsed !== null) {
      const details: Record<string, unknown> = {};
      parsed.fragment.inputs.forEach((input, i) => {
        details[input.name || `arg${i}`] = parsed.args[i] as unknown;
      });
      throw new VerificationError(`${action} reverted with ${parsed.name}`, {
        details,
        cause: error,
      });
    }
    throw new VerificationError(`${action} failed`, {
      details: { reason: error instanceof Error ? error.message : String(error) },
      cause: error,
    });
  }
}

function revertData(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const data = (current as { data?: unknown }).data;
    if (typeof data === "string" && data.startsWith("0x") && data.length >= 10) return data;
    current =
      (current as { error?: unknown; cause?: unknown }).error ??
      (current as { cause?: unknown }).cause;
  }
  return undefined;
}
