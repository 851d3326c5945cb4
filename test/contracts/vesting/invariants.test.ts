/** Fuzzed invariants of VestingVault; the plain-language list is in INVARIANTS.md next to this file. */
import { expect } from "chai";
import fc from "fast-check";
import { network } from "hardhat";

import type { ScheduleParams } from "../../../offchain/vesting/plan.js";
import { scheduleArb } from "../../helpers/arbitraries.js";

const { ethers, networkHelpers } = await network.create();

type Action =
  | { kind: "create"; count: number }
  | { kind: "wait"; seconds: bigint }
  | { kind: "release"; pick: number; caller: number }
  | { kind: "releaseMany"; picks: number[] }
  | { kind: "revoke"; pick: number }
  | { kind: "rotate"; pick: number; to: number }
  | { kind: "stray"; amount: bigint };

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ kind: fc.constant("create" as const), count: fc.integer({ min: 1, max: 3 }) }),
  fc.record({
    kind: fc.constant("wait" as const),
    seconds: fc.bigInt({ min: 1n, max: 4n * 10n ** 7n }),
  }),
  fc.record({ kind: fc.constant("release" as const), pick: fc.nat(), caller: fc.nat({ max: 5 }) }),
  fc.record({
    kind: fc.constant("releaseMany" as const),
    picks: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
  }),
  fc.record({ kind: fc.constant("revoke" as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant("rotate" as const), pick: fc.nat(), to: fc.nat({ max: 5 }) }),
  fc.record({
    kind: fc.constant("stray" as const),
    amount: fc.bigInt({ min: 1n, max: 10n ** 20n }),
  }),
);

describe("VestingVault invariants (fuzzed)", () => {
  async function deploy() {
    const signers = await ethers.getSigners();
    const owner = signers[0]!;
    const users = signers.slice(1, 7);
    const token = await ethers.deployContract("OPGToken", [owner.address, 2n ** 120n]);
    const vault = await ethers.deployContract("VestingVault", [
      await token.getAddress(),
      owner.address,
    ]);
    await token.approve(await vault.getAddress(), 2n ** 120n);
    return { token, vault, owner, users };
  }

  it("hold after every action of random sequences", async function () {
    this.timeout(300_000);
    await fc.assert(
      fc.asyncProperty(
        fc.array(actionArb, { minLength: 5, maxLength: 25 }),
        fc.infiniteStream(scheduleArb(["0x0000000000000000000000000000000000000001"], 0n)),
        async (actions, scheduleStream) => {
          const { token, vault, owner, users } = await networkHelpers.loadFixture(deploy);
          const vaultAddress = await vault.getAddress();
          const holders = new Set<string>();
          const beneficiaryOf: string[] = [];
          const releasedBefore: bigint[] = [];
          const revoked = new Set<number>();
          let releasedEvents = 0n;
          const now = async () => BigInt(await networkHelpers.time.latest());

          const sumReleased = async (tx: Promise<{ wait: () => Promise<unknown> }>) => {
            const receipt = (await (await tx).wait()) as {
              logs: Parameters<typeof vault.interface.parseLog>[0][];
            };
            for (const log of receipt.logs) {
              const parsed = vault.interface.parseLog(log);
              if (parsed?.name === "Released")
                releasedEvents += BigInt(parsed.args.getValue("amount") as bigint);
            }
          };

          for (const action of actions) {
            const count = Number(await vault.scheduleCount());
            const id = (pick: number) => pick % count;
            switch (action.kind) {
              case "create": {
                const base = await now();
                const list = Array.from({ length: action.count }, (_, i) => {
                  const template: ScheduleParams = scheduleStream.next().value;
                  const shift = base; // the templates start at time 0
                  const beneficiary = users[(count + i) % users.length]!.address;
                  holders.add(beneficiary);
                  return {
                    ...template,
                    beneficiary,
                    start: template.start + shift,
                    cliff: template.cliff === 0n ? 0n : template.cliff + shift,
                    end: template.end === 0n ? 0n : template.end + shift,
                    tranches: template.tranches.map((t) => ({
                      timestamp: t.timestamp + shift,
                      amount: t.amount,
                    })),
                  };
                });
                await vault.createSchedules(list);
                for (const p of list) beneficiaryOf.push(p.beneficiary);
                break;
              }
              case "wait":
                await networkHelpers.time.increase(action.seconds);
                break;
              case "release": {
                if (count === 0) break;
                const i = id(action.pick);
                if ((await vault.releasable(i)) === 0n) {
                  await expect(
                    vault.connect(users[action.caller]).release(i),
                  ).to.be.revertedWithCustomError(vault, "VestingNothingToRelease");
                } else await sumReleased(vault.connect(users[action.caller]).release(i));
                break;
              }
              case "releaseMany":
                if (count > 0) await sumReleased(vault.releaseMany(action.picks.map(id)));
                break;
              case "revoke": {
                if (count === 0) break;
                const i = id(action.pick);
                const s = await vault.getSchedule(i);
                if (s.revocable && !s.revoked) {
                  await vault.revoke(i, owner.address);
                  revoked.add(i);
                }
                break;
              }
              case "rotate": {
                if (count === 0) break;
                const i = id(action.pick);
                const current = beneficiaryOf[i]!;
                const next = users[action.to]!.address;
                if (next === current) break;
                const signer = users.find((u) => u.address === current)!;
                await vault.connect(signer).transferBeneficiary(i, next);
                holders.add(next);
                beneficiaryOf[i] = next;
                break;
              }
              case "stray":
                await token.transfer(vaultAddress, action.amount);
                break;
            }

            // --- invariants ---
            const t = await now();
            const n = Number(await vault.scheduleCount());
            let outstanding = 0n;
            for (let i = 0; i < n; i++) {
              const s = await vault.getSchedule(i);
              const cap = s.revoked ? await vault.vestedAt(i, 2n ** 40n - 1n) : s.total;
              const releasable = await vault.releasable(i);
              // 1. never more than the total (or the revocation cap)
              expect(s.released + releasable).to.be.at.most(cap);
              expect(cap).to.be.at.most(s.total);
              // 3. released never decreases
              expect(s.released).to.be.at.least(releasedBefore[i] ?? 0n);
              releasedBefore[i] = s.released;
              // 4. nothing before the cliff, nothing beyond the total
              if (t < s.cliff) {
                expect(s.released).to.equal(0n);
                expect(releasable).to.equal(0n);
              }
              if (s.cliff > 0n) expect(await vault.vestedAt(i, s.cliff - 1n)).to.equal(0n);
              expect(await vault.vestedAt(i, s.end)).to.equal(cap);
              // 5. monotonic in time
              const probes = [s.start, s.cliff, (s.cliff + s.end) / 2n, s.end, t];
              probes.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
              let last = 0n;
              for (const p of probes) {
                const v = await vault.vestedAt(i, p);
                expect(v).to.be.at.least(last);
                last = v;
              }
              outstanding += cap - s.released;
            }
            // 2. solvent
            expect(await vault.totalOutstanding()).to.equal(outstanding);
            expect(await token.balanceOf(vaultAddress)).to.be.at.least(outstanding);
            // 6. releases add up
            expect(await vault.totalReleased()).to.equal(releasedEvents);
            expect(revoked.size).to.be.at.most(n);
          }
          let received = 0n;
          for (const h of holders) received += await token.balanceOf(h);
          expect(received).to.equal(releasedEvents);
        },
      ),
      { numRuns: 25 },
    );
  });
});
