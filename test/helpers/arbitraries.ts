/** fast-check generators for vesting schedules that the vault accepts. */
import fc from "fast-check";
import { encodeBytes32String } from "ethers";

import type { ScheduleParams } from "../../offchain/vesting/plan.js";

const MAX_AMOUNT = 10n ** 27n; // the whole supply, in wei

export function scheduleArb(beneficiaries: string[], base: bigint): fc.Arbitrary<ScheduleParams> {
  const beneficiary = fc.constantFrom(...beneficiaries);
  const category = fc
    .constantFrom("team", "investor", "ecosystem")
    .map((c) => encodeBytes32String(c));
  const linearArb = fc
    .record({
      beneficiary,
      category,
      total: fc.bigInt({ min: 1n, max: MAX_AMOUNT }),
      startOffset: fc.bigInt({ min: 0n, max: 10n ** 8n }),
      duration: fc.bigInt({ min: 1n, max: 10n ** 8n }),
      cliffFraction: fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined }),
      cliffShare: fc.integer({ min: 0, max: 1000 }),
      revocable: fc.boolean(),
    })
    .map((r): ScheduleParams => {
      const start = base + r.startOffset;
      const end = start + r.duration;
      const cliff =
        r.cliffFraction === undefined ? 0n : start + (r.duration * BigInt(r.cliffFraction)) / 1000n;
      return {
        beneficiary: r.beneficiary,
        category: r.category,
        total: r.total,
        start,
        cliff,
        cliffAmount: (r.total * BigInt(r.cliffShare)) / 1000n,
        end,
        revocable: r.revocable,
        tranches: [],
      };
    });
  const tranchedArb = fc
    .record({
      beneficiary,
      category,
      startOffset: fc.bigInt({ min: 0n, max: 10n ** 8n }),
      gaps: fc.array(fc.bigInt({ min: 1n, max: 10n ** 7n }), { minLength: 1, maxLength: 14 }),
      firstAtStart: fc.boolean(),
      amounts: fc.array(fc.bigInt({ min: 1n, max: 2n ** 90n }), { minLength: 14, maxLength: 14 }),
      revocable: fc.boolean(),
    })
    .map((r): ScheduleParams => {
      const start = base + r.startOffset;
      let t = start;
      const tranches = r.gaps.map((gap, i) => {
        t = i === 0 && r.firstAtStart ? start : t + gap;
        return { timestamp: t, amount: r.amounts[i]! };
      });
      return {
        beneficiary: r.beneficiary,
        category: r.category,
        total: tranches.reduce((a, tr) => a + tr.amount, 0n),
        start,
        cliff: 0n,
        cliffAmount: 0n,
        end: 0n,
        revocable: r.revocable,
        tranches,
      };
    });
  return fc.oneof(linearArb, tranchedArb);
}

/** Times to probe a schedule at: its key times, one second either side, and random ones around it. */
export function probeTimes(p: ScheduleParams, randomOffsets: bigint[]): bigint[] {
  const keys =
    p.tranches.length > 0
      ? p.tranches.map((t) => t.timestamp)
      : [p.start, p.cliff === 0n ? p.start : p.cliff, p.end];
  const out = new Set<bigint>();
  for (const k of keys) for (const d of [-1n, 0n, 1n]) if (k + d >= 0n) out.add(k + d);
  for (const o of randomOffsets) out.add(p.start + o);
  return [...out].filter((t) => t < 2n ** 40n);
}
