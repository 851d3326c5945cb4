/**
 * The rewards maths (offchain/rewards/distribute.ts) on random usage, shares and pools. Invariants, in
 * plain language (docs/rewards.md, "Invariants"):
 * 1. An epoch never pays more than its pool, and what it does not pay (dust) is carried, exactly, into
 *    the next epoch's pool: nothing is created, nothing is lost.
 * 2. The total of all cumulative amounts equals everything paid so far and never exceeds what the pool
 *    has made available.
 * 3. An account's cumulative amount never decreases, and an account never drops out of the tree.
 * 4. Rounding loses less than one wei per model and per contributor entry in an epoch with usage.
 * 5. The tree's root is OpenZeppelin's StandardMerkleTree root over the same (address, cumulative) leaves.
 */
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { expect } from "chai";
import { Wallet, hexlify, randomBytes } from "ethers";
import fc from "fast-check";

import { InputError, VerificationError } from "../../../offchain/common/errors.js";
import { buildRewardsTree } from "../../../offchain/rewards/compute.js";
import { computeTables, distribute, tableDataHash } from "../../../offchain/rewards/distribute.js";
import type { EpochInput, ModelShares } from "../../../offchain/rewards/distribute.js";
import { fuzzOptions } from "../../helpers/fuzz.js";

const ACCOUNTS = Array.from({ length: 6 }, () => Wallet.createRandom().address);
const MODELS = Array.from({ length: 5 }, () => hexlify(randomBytes(32)));

/** 1..4 distinct contributors with positive bps summing to 10,000. */
const sharesArb: fc.Arbitrary<ModelShares> = fc
  .uniqueArray(fc.constantFrom(...ACCOUNTS), { minLength: 1, maxLength: 4 })
  .chain((contributors) =>
    fc
      .uniqueArray(fc.integer({ min: 1, max: 9_999 }), {
        minLength: contributors.length - 1,
        maxLength: contributors.length - 1,
      })
      .map((cuts) => {
        const points = [0, ...cuts.sort((a, b) => a - b), 10_000];
        return { contributors, sharesBps: contributors.map((_, i) => points[i + 1]! - points[i]!) };
      }),
  );

const epochArb: fc.Arbitrary<EpochCase> = fc.record({
  usage: fc.dictionary(fc.constantFrom(...MODELS), fc.bigInt({ min: 0n, max: 2n ** 32n - 1n })),
  // Some models may have no contributors at all: their part is dust.
  shares: fc.dictionary(fc.constantFrom(...MODELS), sharesArb),
  emission: fc.oneof(fc.bigInt({ min: 0n, max: 10n ** 27n }), fc.bigInt({ min: 0n, max: 1_000n })),
});

interface EpochCase {
  usage: Record<string, bigint>;
  shares: Record<string, ModelShares>;
  emission: bigint;
}

function toInputs(epochs: readonly EpochCase[]): EpochInput[] {
  let poolCumulative = 0n;
  return epochs.map((e, i) => {
    poolCumulative += e.emission;
    return {
      epoch: BigInt(i + 1),
      startTime: BigInt(i) * 86_400n,
      endTime: BigInt(i + 1) * 86_400n,
      firstBlock: i * 10,
      lastBlock: i * 10 + 9,
      usage: new Map(Object.entries(e.usage)),
      shares: new Map(Object.entries(e.shares)),
      poolCumulative,
    };
  });
}

describe("offchain/rewards/distribute", () => {
  it("never pays more than the pool and carries the dust exactly (random epochs)", () => {
    fc.assert(
      fc.property(fc.array(epochArb, { minLength: 1, maxLength: 6 }), (epochs) => {
        const inputs = toInputs(epochs);
        const tables = computeTables(inputs);
        let carried = 0n;
        let paidSoFar = 0n;
        let previous = new Map<string, bigint>();
        tables.forEach((t, i) => {
          expect(t.carriedIn).to.equal(carried);
          expect(t.pool).to.equal(epochs[i]!.emission + carried);
          expect(t.paid <= t.pool).to.equal(true);
          expect(t.dust).to.equal(t.pool - t.paid);
          // Rounding loss is below one wei per floor taken, when every used model has contributors.
          const used = t.models.filter((m) => m.usage > 0n);
          if (t.totalUsage > 0n && used.every((m) => m.contributors.length > 0)) {
            const floors =
              t.models.length + t.models.reduce((s, m) => s + m.contributors.length, 0);
            expect(t.dust < BigInt(floors)).to.equal(true);
          }
          if (t.totalUsage === 0n) expect(t.paid).to.equal(0n);
          paidSoFar += t.paid;
          expect(t.totalCumulative).to.equal(paidSoFar);
          expect(t.totalCumulative <= inputs[i]!.poolCumulative).to.equal(true);
          const now = new Map(t.accounts.map((a) => [a.account, a.cumulative]));
          for (const [account, c] of previous) {
            expect((now.get(account) ?? -1n) >= c, `cumulative of ${account} decreased`).to.equal(
              true,
            );
          }
          for (const a of t.accounts) {
            expect(a.cumulative).to.equal((previous.get(a.account) ?? 0n) + a.amount);
          }
          previous = now;
          carried = t.dust;
        });
      }),
      fuzzOptions(300),
    );
  });

  it("builds the root OpenZeppelin's StandardMerkleTree builds over the same leaves", () => {
    fc.assert(
      fc.property(fc.array(epochArb, { minLength: 1, maxLength: 3 }), (epochs) => {
        const tables = computeTables(toInputs(epochs));
        const last = tables[tables.length - 1]!;
        const tree = buildRewardsTree(last);
        if (last.accounts.length === 0) {
          expect(tree).to.equal(null);
          return;
        }
        const oz = StandardMerkleTree.of(
          last.accounts.map((a) => [a.account, a.cumulative.toString()]),
          ["address", "uint256"],
        );
        expect(tree!.root).to.equal(oz.root);
        last.accounts.forEach((a, i) => {
          expect(
            StandardMerkleTree.verify(
              oz.root,
              ["address", "uint256"],
              [a.account, a.cumulative],
              tree!.proof(i),
            ),
          ).to.equal(true);
        });
      }),
      fuzzOptions(100),
    );
  });

  describe("distribute", () => {
    const [alice, bob, carol] = ACCOUNTS as [string, string, string];
    const [m1, m2] = MODELS as [string, string];

    it("floors the model's part first, then each contributor's, in that order", () => {
      // pool 100, usage 1:2 -> model parts floor(100/3) = 33 and floor(200/3) = 66;
      // m1 split 5000/5000 -> 16 + 16; m2 to carol alone -> 66. Paid 98, dust 2.
      const r = distribute(
        100n,
        new Map([
          [m1, 1n],
          [m2, 2n],
        ]),
        new Map<string, ModelShares>([
          [m1, { contributors: [alice, bob], sharesBps: [5_000, 5_000] }],
          [m2, { contributors: [carol], sharesBps: [10_000] }],
        ]),
      );
      expect(r.paid).to.equal(98n);
      expect(r.amounts.get(alice)).to.equal(16n);
      expect(r.amounts.get(bob)).to.equal(16n);
      expect(r.amounts.get(carol)).to.equal(66n);
    });

    it("leaves a model without contributors as dust", () => {
      const r = distribute(90n, new Map([[m1, 1n]]), new Map());
      expect(r.paid).to.equal(0n);
      expect(r.models[0]!.modelPool).to.equal(90n);
    });

    it("rejects shares that do not sum to 10,000 bps", () => {
      expect(() =>
        distribute(
          1n,
          new Map([[m1, 1n]]),
          new Map([[m1, { contributors: [alice], sharesBps: [9_999] }]]),
        ),
      ).to.throw(InputError, "model shares do not sum to 10,000 bps");
    });
  });

  describe("computeTables", () => {
    it("refuses a pool that shrinks between epochs", () => {
      const base = toInputs([
        { usage: {}, shares: {}, emission: 10n },
        { usage: {}, shares: {}, emission: 0n },
      ]);
      base[1]!.poolCumulative = 5n;
      expect(() => computeTables(base)).to.throw(VerificationError, "the rewards pool shrank");
    });

    it("refuses epochs out of order", () => {
      const inputs = toInputs([{ usage: {}, shares: {}, emission: 1n }]);
      inputs[0]!.epoch = 2n;
      expect(() => computeTables(inputs)).to.throw(InputError, "epoch inputs must be 1, 2, 3");
    });
  });

  describe("tableDataHash", () => {
    it("changes when any amount in the table changes", () => {
      const [m1] = MODELS as [string];
      const inputs = toInputs([
        {
          usage: { [m1]: 3n },
          shares: { [m1]: { contributors: [ACCOUNTS[0]!], sharesBps: [10_000] } },
          emission: 1_000n,
        },
      ]);
      const t = computeTables(inputs)[0]!;
      const ctx = {
        chainId: 31337n,
        rewards: ACCOUNTS[1]!,
        ledger: ACCOUNTS[2]!,
        registry: ACCOUNTS[3]!,
        genesisTime: 0n,
        epochLength: 86_400n,
      };
      const h = tableDataHash(ctx, t);
      const tampered = {
        ...t,
        accounts: t.accounts.map((a) => ({ ...a, cumulative: a.cumulative + 1n })),
      };
      expect(tableDataHash(ctx, tampered)).to.not.equal(h);
      expect(tableDataHash({ ...ctx, chainId: 1n }, t)).to.not.equal(h);
      expect(tableDataHash(ctx, t)).to.equal(h);
    });
  });
});
