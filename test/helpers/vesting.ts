import { encodeBytes32String } from "ethers";

import type { ScheduleParams } from "../../offchain/vesting/plan.js";

export const OPG = 10n ** 18n;
export const DAY = 86_400n;

export function linear(
  beneficiary: string,
  overrides: Partial<ScheduleParams> & { start: bigint; end: bigint },
): ScheduleParams {
  return {
    beneficiary,
    category: encodeBytes32String("team"),
    total: 1_000n * OPG,
    cliff: 0n,
    cliffAmount: 0n,
    revocable: false,
    tranches: [],
    ...overrides,
  };
}

export function tranched(
  beneficiary: string,
  start: bigint,
  tranches: Array<{ timestamp: bigint; amount: bigint }>,
  overrides: Partial<ScheduleParams> = {},
): ScheduleParams {
  return {
    beneficiary,
    category: encodeBytes32String("investor"),
    total: tranches.reduce((a, t) => a + t.amount, 0n),
    start,
    cliff: 0n,
    cliffAmount: 0n,
    end: 0n,
    revocable: false,
    tranches,
    ...overrides,
  };
}
