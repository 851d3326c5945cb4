/**
 * The off-chain vesting maths (offchain/vesting/math.ts) and the contract agree exactly: random schedules
 * are created in a real vault, and vestedAt / releasableAt are compared at their key times (one second
 * either side) and at random times.
 */
import { expect } from "chai";
import fc from "fast-check";
import { network } from "hardhat";

import { planHashOf, scheduleLeaf } from "../../../offchain/vesting/encode.js";
import { releasableAt, termsOf, vestedAt } from "../../../offchain/vesting/math.js";
import { probeTimes, scheduleArb } from "../../helpers/arbitraries.js";

const { ethers, networkHelpers } = await network.create();

describe("offchain/vesting/math against VestingVault", () => {
  async function deploy() {
    const [owner, ...others] = await ethers.getSigners();
    const token = await ethers.deployContract("OPGToken", [owner!.address, 2n ** 200n]);
    const vault = await ethers.deployContract("VestingVault", [
      await token.getAddress(),
      owner!.address,
    ]);
    await token.approve(await vault.getAddress(), 2n ** 200n);
    return { vault, beneficiaries: others.slice(0, 4).map((s) => s.address) };
  }

  it("vestedAt and releasableAt match on random schedules and times", async function () {
    this.timeout(120_000);
    const { vault, beneficiaries } = await networkHelpers.loadFixture(deploy);
    const base = BigInt(await networkHelpers.time.latest());
    let created = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(scheduleArb(beneficiaries, base), { minLength: 1, maxLength: 6 }),
        fc.array(fc.bigInt({ min: 0n, max: 3n * 10n ** 8n }), { minLength: 4, maxLength: 4 }),
        async (schedules, offsets) => {
          const firstId = created;
          await (await vault.createSchedules(schedules)).wait();
          created += schedules.length;
          for (const [i, p] of schedules.entries()) {
            const id = firstId + i;
            const terms = termsOf(p);
            for (const t of probeTimes(p, offsets)) {
              expect(await vault.vestedAt(id, t)).to.equal(vestedAt(terms, t), `id ${id} at ${t}`);
              expect(await vault.releasableAt(id, t)).to.equal(releasableAt(terms, 0n, t));
            }
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it("the schedule leaf and plan hash match the contract's", async function () {
    this.timeout(60_000);
    const { vault, beneficiaries } = await networkHelpers.loadFixture(deploy);
    const base = BigInt(await networkHelpers.time.latest());
    await fc.assert(
      fc.asyncProperty(
        fc.array(scheduleArb(beneficiaries, base), { minLength: 1, maxLength: 5 }),
        async (list) => {
          for (const [i, p] of list.entries())
            expect(await vault.hashSchedule(i, p)).to.equal(scheduleLeaf(i, p));
        },
      ),
      { numRuns: 30 },
    );
    const list = fc.sample(scheduleArb(beneficiaries, base), { numRuns: 8, seed: 7 });
    await (await vault.createSchedules(list)).wait();
    expect(await vault.planHash()).to.equal(planHashOf(list));
  });
});
