import { expect } from "chai";
import type { ContractTransactionResponse } from "ethers";
import fc from "fast-check";
import { network } from "hardhat";

import { fuzzOptions } from "../../helpers/fuzz.js";
import {
  BOUNTY_BPS,
  EVIDENCE,
  INFERENCE,
  OPG,
  VERIFIER,
  referenceSlash,
  stakingFixtures,
} from "./fixtures.js";

/** The invariants of INVARIANTS.md, checked after every step of random action sequences. */
const { ethers, networkHelpers } = await network.create();
const { deployed } = stakingFixtures(ethers);
const loadFixture = networkHelpers.loadFixture.bind(networkHelpers);

const ZERO = ethers.ZeroAddress;
const NODES = 3;
const MAX_ENTRIES = 8;
/** Signer keys the sequences register and rotate to: fewer than they try to use, so reuse is common. */
const KEYS = Array.from({ length: 6 }, (_, i) =>
  ethers.getAddress("0x" + "5e".repeat(19) + "0" + i),
);
/** Who reports a slash: an outsider, or the node itself in one of its guises, or nobody. */
const REPORTERS = ["outsider", "operator", "payee", "current", "former", "none"] as const;
/** Where the operator points its fees (index 0: back to the operator). */
const PAYEES = [
  ZERO,
  ethers.getAddress("0x" + "9a".repeat(20)),
  ethers.getAddress("0x" + "9b".repeat(20)),
];

/** Amounts from 1 wei up: tiny ones (rounding edges) as often as ordinary ones. */
const amount = (max: bigint) =>
  fc.oneof(fc.bigInt({ min: 1n, max: 3n }), fc.bigInt({ min: 1n, max }));

type Action =
  | { kind: "register"; node: number; extra: bigint; verifier: boolean; key: number }
  | { kind: "increase"; node: number; amount: bigint }
  | { kind: "unbond"; node: number; percent: number }
  | { kind: "unbondTiny"; node: number; amount: bigint }
  | { kind: "rotate"; node: number; key: number }
  | { kind: "payee"; node: number; payee: number }
  | { kind: "withdraw"; node: number }
  | { kind: "exit"; node: number }
  | { kind: "slash"; node: number; bps: bigint; jail: boolean; reporter: Reporter }
  | { kind: "slashAmount"; node: number; amount: bigint }
  | { kind: "request"; node: number; bps: bigint }
  | { kind: "veto" }
  | { kind: "execute" }
  | { kind: "warp"; seconds: number }
  | { kind: "withdrawAt"; node: number; entry: number; early: boolean };

type Reporter = (typeof REPORTERS)[number];
const node = fc.integer({ min: 0, max: NODES - 1 });
/** A registration of node `i`: the role's minimum plus 0 wei or more, a key from the pool. */
const registration = (i: number): fc.Arbitrary<Action> =>
  fc.record({
    kind: fc.constant("register" as const),
    node: fc.constant(i),
    extra: fc.oneof(fc.bigInt({ min: 0n, max: 3n }), fc.bigInt({ min: 0n, max: 50_000n * OPG })),
    verifier: fc.boolean(),
    key: fc.integer({ min: 0, max: KEYS.length - 1 }),
  });
const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 3,
    arbitrary: node.chain((i) => registration(i)),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("increase" as const),
      node,
      amount: amount(10_000n * OPG),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("unbondTiny" as const),
      node,
      amount: fc.bigInt({ min: 1n, max: 3n }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("rotate" as const),
      node,
      key: fc.integer({ min: 0, max: KEYS.length - 1 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("payee" as const),
      node,
      payee: fc.integer({ min: 0, max: PAYEES.length - 1 }),
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
      reporter: fc.constantFrom(...REPORTERS),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("slashAmount" as const),
      node,
      amount: amount(80_000n * OPG),
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

/** Every node registered first (random stake and key), then a long random sequence. */
const sequence = fc
  .tuple(
    fc.tuple(...Array.from({ length: NODES }, (_, i) => registration(i))),
    fc.array(action, { minLength: 10, maxLength: 40, size: "max" }),
  )
  .map(([first, rest]) => [...first, ...rest]);

describe("NodeStaking invariants (fast-check)", function () {
  this.timeout(600_000);

  it("hold after every step of random action sequences", async () => {
    await fc.assert(
      fc.asyncProperty(sequence, async (actions) => {
        const f = await loadFixture(deployed);
        const { staking, slasher, governanceSlasher, veto, reporter } = f;
        const stakingAddress = await staking.getAddress();
        const ids = Array.from({ length: NODES }, (_, i) =>
          ethers.getAddress("0x" + (i + 1).toString(16).padStart(40, "0")),
        );
        const operators = [f.operator, f.operator2, f.operator];
        const ledger = ids.map(() => ({ staked: 0n, slashed: 0n, withdrawn: 0n }));
        const pending: bigint[] = [];
        // The model of signer keys: each key's node for good, and when it was current.
        const keys = new Map<string, { node: number; since: bigint; until: bigint }>();
        const current: Array<string | undefined> = ids.map(() => undefined);
        const payees: string[] = ids.map(() => ZERO);

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
          let bounty = 0n;
          let fromActive = 0n;
          for (const log of logs) {
            const parsed = staking.interface.parseLog(log);
            if (parsed?.name === "Slashed") {
              total += (parsed.args.fromActive as bigint) + (parsed.args.fromUnbonding as bigint);
              fromActive += parsed.args.fromActive as bigint;
              bounty += parsed.args.bounty as bigint;
            }
          }
          return { total, bounty, fromActive };
        };
        /** The reporter of a slash of node i, and whether it is the node itself (operator, payee, a key of its). */
        const reporterOf = (i: number, who: Reporter): { address: string; insider: boolean } => {
          const former = [...keys.entries()].find(([k, r]) => r.node === i && k !== current[i]);
          switch (who) {
            case "outsider":
              return { address: reporter.address, insider: false };
            case "operator":
              return { address: operators[i]!.address, insider: true };
            case "payee":
              return payees[i] === ZERO
                ? { address: reporter.address, insider: false }
                : { address: payees[i]!, insider: true };
            case "current":
              return { address: current[i]!, insider: true };
            case "former":
              return former === undefined
                ? { address: ZERO, insider: true }
                : { address: former[0], insider: true };
            case "none":
              return { address: ZERO, insider: true };
          }
        };
        /** Invariant 7: an outsider gets floor(taken × bountyBps / 10,000), the node itself nothing. */
        const checkBounty = (slashed: { total: bigint; bounty: bigint }, insider: boolean) => {
          const expected = insider ? 0n : (slashed.total * BOUNTY_BPS) / 10_000n;
          expect(
            slashed.bounty,
            "7: no bounty to the offender, the exact share to others",
          ).to.equal(expected);
        };

        /** Invariants 5 and 6 for one slash, from the node's state before and after. */
        const checkSlash = async (
          i: number,
          before: Awaited<ReturnType<typeof state>>,
          taken: bigint,
          expected: bigint,
          fromActive: bigint,
        ) => {
          const after = await state(i);
          const total = before.info.active + before.info.unbonding;
          expect(taken, "5: slash takes exactly the expected amount").to.equal(expected);
          expect(taken <= total, "5: never more than the node has").to.be.true;
          // 6: each part loses exactly the reference model's share (running-total floors), to the wei.
          const split = referenceSlash(
            before.info.active,
            before.entries.map((e) => e.amount),
            { amount: taken },
          );
          expect(
            [
              before.info.active - after.info.active,
              ...before.entries.map((e, k) => e.amount - after.entries[k]!.amount),
            ],
            "6: each part's exact share",
          ).to.deep.equal([split.fromActive, ...split.fromEntries]);
          expect(fromActive, "6: the event's active part").to.equal(split.fromActive);
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
          for (const k of KEYS) {
            const record = await staking.signerRecordOf(k);
            const model = keys.get(k);
            expect(
              [record.node, record.since, record.until],
              "8: a signer key belongs to one node for good, with its since/until",
            ).to.deep.equal(
              model === undefined ? [ZERO, 0n, 0n] : [ids[model.node]!, model.since, model.until],
            );
          }
          for (let i = 0; i < NODES; i++) {
            if (current[i] !== undefined)
              expect(await staking.signerOf(ids[i]!), "8: current signer").to.equal(current[i]);
            expect(await staking.payeeOf(ids[i]!), "10: payee").to.equal(
              current[i] === undefined
                ? ZERO
                : payees[i] === ZERO
                  ? operators[i]!.address
                  : payees[i],
            );
          }
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
              const key = KEYS[a.key]!;
              const owner = keys.get(key);
              const tx = op.register(id, a.verifier ? VERIFIER : INFERENCE, key, min + a.extra, "");
              if (owner !== undefined) {
                // 8: a key is used once, even after its node rotated away from it.
                await expect(tx)
                  .to.be.revertedWithCustomError(staking, "StakingSignerTaken")
                  .withArgs(key, ids[owner.node]);
                break;
              }
              const { timestamp } = await mined(tx);
              keys.set(key, { node: i, since: timestamp, until: 0n });
              current[i] = key;
              ledger[i]!.staked += min + a.extra;
              break;
            }
            case "rotate": {
              if (!registered) break;
              const key = KEYS[a.key]!;
              const owner = keys.get(key);
              const tx = op.rotateSigner(id, key);
              if (owner !== undefined) {
                await expect(tx, "8: a key is used once, even by its own node")
                  .to.be.revertedWithCustomError(staking, "StakingSignerTaken")
                  .withArgs(key, ids[owner.node]);
                break;
              }
              const { timestamp } = await mined(tx);
              const old = current[i]!;
              keys.get(old)!.until = timestamp;
              keys.set(key, { node: i, since: timestamp, until: 0n });
              current[i] = key;
              // 9: the former key counts only for dates before the rotation, the new one for any date.
              const status = async (k: string, at: bigint) =>
                (await staking.signerStatus(id, k, at))[1];
              expect(await status(old, timestamp - 1n), "9: former key before").to.equal(true);
              expect(await status(old, timestamp), "9: former key at rotation").to.equal(false);
              expect(await status(old, timestamp + 1n), "9: former key after").to.equal(false);
              expect(await status(key, 0n), "9: current key, any date").to.equal(true);
              break;
            }
            case "payee":
              if (!registered) break;
              await mined(op.setPayee(id, PAYEES[a.payee]!));
              payees[i] = PAYEES[a.payee]!;
              break;
            case "unbondTiny": {
              if (!registered || s.info.exited) break;
              if (a.amount > s.info.active) {
                await expect(op.unbond(id, a.amount))
                  .to.be.revertedWithCustomError(staking, "StakingUnbondExceedsActive")
                  .withArgs(id, a.amount, s.info.active);
              } else if (s.entries.length >= MAX_ENTRIES) {
                await expect(op.unbond(id, a.amount)).to.be.revertedWithCustomError(
                  staking,
                  "StakingUnbondingQueueFull",
                );
              } else {
                await mined(op.unbond(id, a.amount));
              }
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
              // 11: a valid slash never reverts, whatever the amounts (mined() throws on a revert).
              const who = reporterOf(i, a.reporter);
              const { receipt } = await mined(
                staking.connect(slasher).slash(id, a.bps, who.address, a.jail, EVIDENCE),
              );
              const slashed = slashedIn(receipt.logs);
              const taken = slashed.total;
              ledger[i]!.slashed += taken;
              await checkSlash(
                i,
                s,
                taken,
                ((s.info.active + s.info.unbonding) * a.bps) / 10_000n,
                slashed.fromActive,
              );
              checkBounty(slashed, who.insider);
              break;
            }
            case "slashAmount": {
              if (!registered) break;
              const { receipt } = await mined(
                staking.connect(slasher).slashAmount(id, a.amount, ZERO, false, EVIDENCE),
              );
              const slashed = slashedIn(receipt.logs);
              const taken = slashed.total;
              ledger[i]!.slashed += taken;
              const total = s.info.active + s.info.unbonding;
              await checkSlash(
                i,
                s,
                taken,
                a.amount < total ? a.amount : total,
                slashed.fromActive,
              );
              checkBounty(slashed, true); // no reporter
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
              const slashed = slashedIn(receipt.logs);
              const taken = slashed.total;
              ledger[k]!.slashed += taken;
              checkBounty(slashed, false); // the watcher reported it
              await checkSlash(
                k,
                before,
                taken,
                ((before.info.active + before.info.unbonding) * r.value) / 10_000n,
                slashed.fromActive,
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
      fuzzOptions(60),
    );
  });
});
