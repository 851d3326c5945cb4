/**
 * Off-chain mirror of contracts/libraries/VestingMath.sol and VestingVault's vesting views. The two agree
 * exactly (bigint, rounding down); test/offchain/vesting/math.property.test.ts checks it on random input.
 */
import type { ScheduleParams } from "./plan.js";

/** The fields the vesting formulas need, as stored on chain (cliff = effective cliff). */
export interface VestingTerms {
  total: bigint;
  start: bigint;
  cliff: bigint;
  cliffAmount: bigint;
  end: bigint;
  tranches: Array<{ timestamp: bigint; amount: bigint }>;
  /** When revoked: what had vested at revocation (vesting is capped there). */
  revokedCap?: bigint | undefined;
}

export function termsOf(params: ScheduleParams): VestingTerms {
  if (params.tranches.length > 0) {
    return {
      total: params.total,
      start: params.start,
      cliff: params.start,
      cliffAmount: 0n,
      end: params.tranches[params.tranches.length - 1]!.timestamp,
      tranches: params.tranches,
    };
  }
  return {
    total: params.total,
    start: params.start,
    cliff: params.cliff === 0n ? params.start : params.cliff,
    cliffAmount: params.cliffAmount,
    end: params.end,
    tranches: [],
  };
}

export function vestedAt(terms: VestingTerms, t: bigint): bigint {
  let vested = 0n;
  if (terms.tranches.length === 0) {
    if (t < terms.cliff) vested = 0n;
    else if (t >= terms.end) vested = terms.total;
    else {
      vested =
        terms.cliffAmount +
        ((terms.total - terms.cliffAmount) * (t - terms.start)) / (terms.end - terms.start);
    }
  } else {
    for (const tr of terms.tranches) {
      if (tr.timestamp > t) break;
      vested += tr.amount;
    }
  }
  if (terms.revokedCap !== undefined && vested > terms.revokedCap) vested = terms.revokedCap;
  return vested;
}

export function releasableAt(terms: VestingTerms, released: bigint, t: bigint): bigint {
  const vested = vestedAt(terms, t);
  return vested > released ? vested - released : 0n;
}

/** Times at which the vested amount jumps or changes slope: start, cliff, end and every tranche. */
export function keyTimes(terms: VestingTerms): bigint[] {
  if (terms.tranches.length > 0) return terms.tranches.map((tr) => tr.timestamp);
  return [...new Set([terms.start, terms.cliff, terms.end])].sort((a, b) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
}
