import { expect } from "chai";
import type { ContractTransactionResponse } from "ethers";
import fc from "fast-check";
import { network } from "hardhat";

import { EVIDENCE, INFERENCE, OPG, VERIFIER, stakingFixtures } from "./fixtures.js";

/** The invariants of INVARIANTS.md, checked after every step of random action sequences. */
const { ethers, networkHelpers } = await network.create();
const { deployed } = stakingFixtures(ethers);
const loadFixture = networkHelpers.loadFixture.bind(networkHelpers);

const ZERO = ethers.ZeroAddress;
const NODES = 3;
const MAX_ENTRIES = 8;

type Action =
  | { kind: "register"; node: number; extra: bigint; verifier: boolean }
  | { kind: "increase"; node: number; amount: bigint }
  | { kind: "unbond"; node: number; percent: number }
  | { kind: "withdraw"; node: number }
  | { kind: "exit"; node: number }
  | { kind: "slash"; node: number; bps: bigint; jail: boolean }
  | { kind: "slashAmount"; node: number; amount: bigint }
  | { kind: "request"; node: number; bps: bigint }
  | { kind: "veto" }
  | { kind: "execute" }
  | { kind: "warp"; seconds: number }
  | { kind: "withdrawAt"; node: number; entry: number; early: boolean };

const node = fc.integer({ min: 0, max: NODES - 1 });
const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("register" as const),
      node,
      extra: fc.bigInt({ min: 0n, max: 50_000n * OPG }),
      verifier: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("increase" as const),
      node,
      amount: fc.bigInt({ min: 1n, max: 10_000n * OPG }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("unbond" as const),
      node,
      percent: fc.integer({ min: 1, max: 100 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("withdraw" as const), node }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("exit" as const), node }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("slash" as const),
      node,
      bps: fc.bigInt({ min: 1n, max: 10_000n }),
      jail: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("slashAmount" as const),
      node,
      amount: fc.bigInt({ min: 1n, max: 80_000n * OPG }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("request" as const),
      node,
      bps: fc.bigInt({ min: 1n, max: 10_000n }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("veto" as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("execute" as const) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("withdrawAt" as const),
      node,
      entry: fc.integer({ min: 0, max: MAX_ENTRIES - 1 }),
      early: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("warp" as const),
      seconds: fc.integer({ min: 1, max: 10 * 86_400 }),
    }),
  },
);

describe("NodeStaking invariants (fast-check)", function () {
  this.timeout(600_000);

  it("hold after every step of random action sequences", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 5, maxLength: 30 }), async (actions) => {
        const f = await loadFixture(deployed);
        const { staking, slasher, governanceSlasher, veto, reporter } = f;
        const stakingAddress = await staking.getAddress();
        const ids = Array.from({ length: NODES }, (_, i) =>
          ethers.getAddress("0x" + (i + 1).toString(16).padStart(40, "0")),
        );
        const operators = [f.operator, f.operator2, f.operator];
        const signers = [f.signer, f.signer2, f.stranger];
        const ledger = ids.map(() => ({ staked: 0n, slashed: 0n, withdrawn: 0n }));
        const pending: bigint[] = [];

        const state = async (i: number) => {
          const [info, entries] = await Promise.all([
            staking.getNode(ids[i]!),
            staking.unbondingEntries(ids[i]!),
          ]);
          return {
            info,
            entries: entries.map((e) => ({ amount: e.amount, releaseTime: e.releaseTime })),
          };
        };
        const mined = async (tx: Promise<ContractTransactionResponse>) => {
          const receipt = (await (await tx).wait())!;
          const block = await ethers.provider.getBlock(receipt.blockNumber);
          return { receipt, timestamp: BigInt(block!.timestamp) };
        };
        const slashedIn = (logs: readonly { topics: readonly string[]; data: string }[]) => {
          let total = 0n;
          for (const log of logs) {
            const parsed = staking.interface.parseLog(log);
            if (parsed?.name === "Slashed")
              total += (parsed.args.fromActive as bigint) + (parsed.args.fromUnbonding as bigint);
          }
          return total;
        };

        /** Invariants 5 and 6 for one slash, from the node's state before and after. */
        const checkSlash = async (
          i: number,
          before: Awaited<ReturnType<typeof state>>,
          taken: bigint,
          expected: bigint,
        ) => {
          const after = await state(i);
          const total = before.info.active + before.info.unbonding;
          expect(taken, "5: slash takes exactly the expected amount").to.equal(expected);
          expect(taken <= total, "5: never more than the node has").to.be.true;
          const parts: Array<[bigint, bigint]> = [
            [before.info.active, after.info.active],
            ...before.entries.map((e, k): [bigint, bigint] => [e.amount, after.entries[k]!.amount]),
          ];
          for (const [was, now] of parts) {
            const lost = was - now;
            const floor = total === 0n ? 0n : (was * taken) / total;
            const ceil = total === 0n ? 0n : (was * taken + total - 1n) / total;
            expect(
              lost >= floor && lost <= ceil,
              `6: pro-rata share (${was} lost ${lost}, expected ${floor}..${ceil})`,
            ).to.be.true;
          }
        };

        const check = async () => {
          let sum = 0n;
          for (let i = 0; i < NODES; i++) {
            const { info, entries } = await state(i);
            sum += info.active + info.unbonding;
            expect(
              entries.reduce((s, e) => s + e.amount, 0n),
              "2: unbonding = sum of entries",
            ).to.equal(info.unbonding);
            expect(entries.length <= MAX_ENTRIES, "2: queue bound").to.be.true;
            const l = ledger[i]!;
            expect(
              l.slashed + l.withdrawn + info.active + info.unbonding,
              "3: conservation",
            ).to.equal(l.staked);
          }
          expect(await f.token.balanceOf(stakingAddress), "1: solvency").to.equal(sum);
        };

        for (const a of actions) {
          const i = "node" in a ? a.node : 0;
          const id = ids[i]!;
          const s = await state(i);
          const registered = s.info.role !== 0n;
          const op = staking.connect(operators[i]);
          switch (a.kind) {
            case "register": {
              if (registered) break;
              const min = await staking.minStake(a.verifier ? VERIFIER : INFERENCE);
              if ((await staking.nodeOfSigner(signers[i]!.address)) !== ZERO) break;
              await mined(
                op.register(
                  id,
                  a.verifier ? VERIFIER : INFERENCE,
                  signers[i]!.address,
                  min + a.extra,
                  "",
                ),
              );
              ledger[i]!.staked += min + a.extra;
              break;
            }
            case "increase":
              if (!registered || s.info.exited) break;
              await mined(op.increaseStake(id, a.amount));
              ledger[i]!.staked += a.amount;
              break;
            case "unbond": {
              const amount = (s.info.active * BigInt(a.percent)) / 100n;
              if (!registered || s.info.exited || amount === 0n) break;
              if (s.entries.length >= MAX_ENTRIES) {
                await expect(op.unbond(id, amount)).to.be.revertedWithCustomError(
                  staking,
                  "StakingUnbondingQueueFull",
                );
                break;
              }
              await mined(op.unbond(id, amount));
              break;
            }
            case "withdraw":
            case "withdrawAt": {
              if (!registered) break;
              // "withdrawAt" probes the boundary: one second before, or exactly at, an entry's release.
              let now = BigInt(await networkHelpers.time.latest()) + 1n;
              if (a.kind === "withdrawAt") {
                const e = s.entries[a.entry % Math.max(s.entries.length, 1)];
                const target = e === undefined ? now : e.releaseTime - (a.early ? 1n : 0n);
                if (target > now) now = target;
              }
              await networkHelpers.time.setNextBlockTimestamp(now);
              const matured = s.entries.filter((e) => e.releaseTime <= now);
              if (s.info.pendingSlashes > 0n) {
                await expect(
                  op.withdraw(id),
                  "4: frozen while a slash is pending",
                ).to.be.revertedWithCustomError(staking, "StakingSlashPending");
              } else if (matured.length === 0) {
                await expect(
                  op.withdraw(id),
                  "4: nothing before its time",
                ).to.be.revertedWithCustomError(staking, "StakingNothingToWithdraw");
              } else {
                const { receipt, timestamp } = await mined(op.withdraw(id));
                expect(timestamp).to.equal(now);
                const paid = staking.interface.parseLog(
                  receipt.logs.find((l) => l.address === stakingAddress)!,
                )!;
                const expected = matured.reduce((sum, e) => sum + e.amount, 0n);
                expect(paid.args.amount, "4: pays exactly the matured entries").to.equal(expected);
                const left = (await state(i)).entries;
                expect(
                  left.every((e) => e.releaseTime > now),
                  "4: no matured entry left behind",
                ).to.be.true;
                expect(left).to.have.length(s.entries.length - matured.length);
                ledger[i]!.withdrawn += expected;
              }
              break;
            }
            case "exit":
              if (!registered || s.info.exited || s.entries.length >= MAX_ENTRIES) break;
              await mined(op.exit(id));
              break;
            case "slash": {
              if (!registered) break;
              const { receipt } = await mined(
                staking.connect(slasher).slash(id, a.bps, reporter.address, a.jail, EVIDENCE),
              );
              const taken = slashedIn(receipt.logs);
              ledger[i]!.slashed += taken;
              await checkSlash(i, s, taken, ((s.info.active + s.info.unbonding) * a.bps) / 10_000n);
              break;
            }
            case "slashAmount": {
              if (!registered) break;
              const { receipt } = await mined(
                staking.connect(slasher).slashAmount(id, a.amount, ZERO, false, EVIDENCE),
              );
              const taken = slashedIn(receipt.logs);
              ledger[i]!.slashed += taken;
              const total = s.info.active + s.info.unbonding;
              await checkSlash(i, s, taken, a.amount < total ? a.amount : total);
              break;
            }
            case "request":
              if (!registered) break;
              await mined(
                staking
                  .connect(governanceSlasher)
                  .requestSlash(id, false, a.bps, reporter.address, false, EVIDENCE),
              );
              pending.push(await staking.slashRequestCount());
              break;
            case "veto": {
              const request = pending[0];
              if (request === undefined) break;
              const { executableAt } = await staking.slashRequest(request);
              if (BigInt(await networkHelpers.time.latest()) + 1n >= executableAt) break;
              await mined(staking.connect(veto).vetoSlash(request));
              pending.shift();
              break;
            }
            case "execute": {
              const request = pending[0];
              if (request === undefined) break;
              const r = await staking.slashRequest(request);
              if (BigInt(await networkHelpers.time.latest()) < r.executableAt) {
                await networkHelpers.time.increaseTo(r.executableAt);
              }
              const k = ids.indexOf(r.node);
              const before = await state(k);
              const { receipt } = await mined(staking.connect(f.stranger).executeSlash(request));
              const taken = slashedIn(receipt.logs);
              ledger[k]!.slashed += taken;
              await checkSlash(
                k,
                before,
                taken,
                ((before.info.active + before.info.unbonding) * r.value) / 10_000n,
              );
              pending.shift();
              break;
            }
            case "warp":
              await networkHelpers.time.increase(a.seconds);
              break;
          }
          await check();
        }
      }),
      { numRuns: 60 },
    );
  });
});
