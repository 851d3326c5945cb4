/** Fee arithmetic and the classification of node answers to `eth_sendRawTransaction`. */
import { isError } from "ethers";
import type { Interface } from "ethers";

export interface Fees {
  maxFeePerGas: bigint;
  maxPriorityFeePerGas: bigint;
}

/** `value` raised by `percent` %, rounded up (so a 10 % bump always clears a node's 10 % rule). */
export function raise(value: bigint, percent: number): bigint {
  const scaled = value * BigInt(100 + percent);
  return (scaled + 99n) / 100n;
}

/** Fresh fees, capped: the priority fee never exceeds the max fee. */
export function capFees(fresh: Fees, cap: bigint | undefined): Fees {
  const maxFeePerGas = cap !== undefined && fresh.maxFeePerGas > cap ? cap : fresh.maxFeePerGas;
  const maxPriorityFeePerGas =
    fresh.maxPriorityFeePerGas > maxFeePerGas ? maxFeePerGas : fresh.maxPriorityFeePerGas;
  return { maxFeePerGas, maxPriorityFeePerGas };
}

/**
 * Fees for a replacement of `previous`: both fees raised by at least `percent` % (the replacement
 * rule of geth and Hardhat), or today's fees where those are higher. Undefined when the cap leaves
 * no room for a valid replacement.
 */
export function bumpFees(
  previous: Fees,
  fresh: Fees,
  percent: number,
  cap: bigint | undefined,
): Fees | undefined {
  const minMax = raise(previous.maxFeePerGas, percent);
  const minPriority = raise(previous.maxPriorityFeePerGas, percent);
  let maxFeePerGas = fresh.maxFeePerGas > minMax ? fresh.maxFeePerGas : minMax;
  let maxPriorityFeePerGas =
    fresh.maxPriorityFeePerGas > minPriority ? fresh.maxPriorityFeePerGas : minPriority;
  if (cap !== undefined && maxFeePerGas > cap) maxFeePerGas = cap;
  if (maxPriorityFeePerGas > maxFeePerGas) maxPriorityFeePerGas = maxFeePerGas;
  if (maxFeePerGas < minMax || maxPriorityFeePerGas < minPriority) return undefined;
  return { maxFeePerGas, maxPriorityFeePerGas };
}

/**
 * What a node's refusal of a raw transaction means for the sender:
 * - `known`: the node already has this very transaction (fine, it is in flight);
 * - `nonce-used`: the nonce is already mined (by one of our attempts or not; receipts decide);
 * - `underpriced`: another transaction with this nonce sits in the pool at a higher fee;
 * - `other`: anything else (funds, network, ...), retried on the next tick.
 */
export type BroadcastRefusal = "known" | "nonce-used" | "underpriced" | "other";

export function classifyBroadcastError(error: unknown): BroadcastRefusal {
  if (isError(error, "NONCE_EXPIRED")) return "nonce-used";
  if (isError(error, "REPLACEMENT_UNDERPRICED")) return "underpriced";
  const text = errorText(error).toLowerCase();
  if (/known transaction|already known|already imported|alreadyknown/.test(text)) return "known";
  if (/nonce too low|nonce has already been used|nonce is too low/.test(text)) return "nonce-used";
  if (/underpriced|fee too low/.test(text)) return "underpriced";
  return "other";
}

/** The message of an error and of the RPC error wrapped inside it, for matching and logging. */
export function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const parts = [error.message];
  const inner = (error as { error?: { message?: unknown }; info?: unknown }).error;
  if (inner !== undefined && typeof inner.message === "string") parts.push(inner.message);
  const info = (error as { info?: unknown }).info;
  if (info !== undefined) {
    try {
      parts.push(JSON.stringify(info));
    } catch {
      // circular: the message is enough
    }
  }
  return parts.join(" | ");
}

/** A reverted call as one readable line: the custom error with its values where `iface` knows it. */
export function describeRevert(error: unknown, iface: Interface): string {
  if (isError(error, "CALL_EXCEPTION")) {
    const data = error.data;
    if (data !== null && data !== undefined && data !== "0x") {
      try {
        const parsed = iface.parseError(data);
        if (parsed !== null) {
          const args = parsed.args.map((a: unknown) => String(a)).join(", ");
          return `${parsed.name}(${args})`;
        }
      } catch {
        // unknown selector: fall through to the raw data
      }
      return error.reason ?? `reverted with data ${data}`;
    }
    return error.reason ?? "reverted without data";
  }
  return errorText(error);
}
