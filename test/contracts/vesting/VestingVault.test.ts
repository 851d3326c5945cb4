import { expect } from "chai";
import { ZeroAddress, ZeroHash, encodeBytes32String } from "ethers";
import { network } from "hardhat";

import { planHashOf, scheduleLeaf } from "../../../offchain/vesting/encode.js";
import { termsOf, vestedAt } from "../../../offchain/vesting/math.js";
import type { ScheduleParams } from "../../../offchain/vesting/plan.js";
import { DAY, OPG, linear, tranched } from "../../helpers/vesting.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

async function deployVault() {
  const [owner, alice, bob, carol, stranger] = await ethers.getSigners();
  const token = await ethers.deployContract("OPGToken", [owner!.address, 1_000_000_000n * OPG]);
  const vault = await ethers.deployContract("VestingVault", [
    await token.getAddress(),
    owner!.address,
  ]);
  await token.approve(await vault.getAddress(), 1_000_000_000n * OPG);
  const now = BigInt(await time.latest());
  return {
    token,
    vault,
    owner: owner!,
    alice: alice!,
    bob: bob!,
    carol: carol!,
    stranger: stranger!,
    now,
  };
}

/** A vault with a linear+cliff schedule (id 0, revocable) and a 3-tranche schedule (id 1). */
async function deployWithSchedules() {
  const f = await deployVault();
  const start = f.now + 10n * DAY;
  const lin = linear(f.alice.address, {
    start,
    cliff: start + 100n * DAY,
    cliffAmount: 100n * OPG,
    end: start + 400n * DAY,
    total: 1_000n * OPG,
    revocable: true,
  });
  const tr = tranched(f.bob.address, start, [
    { timestamp: start + 30n * DAY, amount: 10n * OPG },
    { timestamp: start + 60n * DAY, amount: 20n * OPG },
    { timestamp: start + 90n * DAY, amount: 30n * OPG },
  ]);
  await f.vault.createSchedules([lin, tr]);
  return { ...f, start, lin, tr };
}

describe("VestingVault", () => {
  describe("constructor", () => {
    it("records the token and the owner", async () => {
      const { vault, token, owner } = await networkHelpers.loadFixture(deployVault);
      expect(await vault.TOKEN()).to.equal(await token.getAddress());
      expect(await vault.owner()).to.equal(owner.address);
      expect(await vault.planHash()).to.equal(ZeroHash);
      expect(await vault.isSealed()).to.equal(false);
      expect(await vault.scheduleCount()).to.equal(0n);
      expect(await vault.MAX_TRANCHES()).to.equal(64n);
    });
  });

  describe("createSchedule", () => {
    describe("when the caller is not the owner", () => {
      it("reverts with OwnableUnauthorizedAccount", async () => {
        const { vault, alice, now } = await networkHelpers.loadFixture(deployVault);
        const p = linear(alice.address, { start: now, end: now + DAY });
        await expect(vault.connect(alice).createSchedule(p))
          .to.be.revertedWithCustomError(vault, "OwnableUnauthorizedAccount")
          .withArgs(alice.address);
      });
    });

    describe("when the parameters are valid", () => {
      it("stores a linear schedule, pulls the funds and extends the plan hash", async () => {
        const { vault, token, owner, alice, now } = await networkHelpers.loadFixture(deployVault);
        const p = linear(alice.address, {
          start: now,
          cliff: now + 10n,
          cliffAmount: 5n,
          end: now + 100n,
        });
        const leaf = scheduleLeaf(0, p);
        const hash = planHashOf([p]);
        await expect(vault.createSchedule(p))
          .to.emit(vault, "ScheduleCreated")
          .withArgs(0n, alice.address, p.category, 0n, p.total, leaf, hash)
          .and.to.emit(token, "Transfer")
          .withArgs(owner.address, await vault.getAddress(), p.total);
        const s = await vault.getSchedule(0);
        expect(s.beneficiary).to.equal(alice.address);
        expect([s.start, s.cliff, s.cliffAmount, s.end, s.total, s.released]).to.deep.equal([
          now,
          now + 10n,
          5n,
          now + 100n,
          p.total,
          0n,
        ]);
        expect([s.revocable, s.revoked, s.kind, s.trancheCount]).to.deep.equal([
          false,
          false,
          0n,
          0n,
        ]);
        expect(await vault.planHash()).to.equal(hash);
        expect(await vault.hashSchedule(0, p)).to.equal(leaf);
        expect(await vault.scheduleCount()).to.equal(1n);
      });

      it("uses the start as the cliff when none is given", async () => {
        const { vault, alice, now } = await networkHelpers.loadFixture(deployVault);
        await vault.createSchedule(linear(alice.address, { start: now + 5n, end: now + 100n }));
        expect((await vault.getSchedule(0)).cliff).to.equal(now + 5n);
      });

      it("stores tranches packed two per word, odd counts included", async () => {
        const { vault, alice, now } = await networkHelpers.loadFixture(deployVault);
        const tranches = [1n, 2n, 3n].map((i) => ({ timestamp: now + i * DAY, amount: i * OPG }));
        const p = tranched(alice.address, now, tranches);
        await vault.createSchedule(p);
        const got = await vault.getTranches(0);
        expect(got.map((t) => [t.timestamp, t.amount])).to.deep.equal(
          tranches.map((t) => [t.timestamp, t.amount]),
        );
        const s = await vault.getSchedule(0);
        expect([s.kind, s.trancheCount, s.end, s.cliff]).to.deep.equal([
          1n,
          3n,
          now + 3n * DAY,
          now,
        ]);
      });

      it("accepts a first tranche at the start and the maximum of 64 tranches", async () => {
        const { vault, alice, now } = await networkHelpers.loadFixture(deployVault);
        const tranches = Array.from({ length: 64 }, (_, i) => ({
          timestamp: now + BigInt(i),
          amount: 1n,
        }));
        await vault.createSchedule(tranched(alice.address, now, tranches));
        expect((await vault.getTranches(0)).length).to.equal(64);
      });
    });

    describe("when the parameters are invalid", () => {
      type Case = [
        label: string,
        error: string,
        make: (a: string, now: bigint) => ScheduleParams,
        args: (now: bigint) => unknown[],
      ];
      const cases: Case[] = [
        [
          "for the zero beneficiary",
          "VestingZeroBeneficiary",
          (_a, now) => linear(ZeroAddress, { start: now, end: now + 1n }),
          () => [0n],
        ],
        [
          "for a zero total",
          "VestingZeroTotal",
          (a, now) => linear(a, { start: now, end: now + 1n, total: 0n }),
          () => [0n],
        ],
        [
          "when start is not before end",
          "VestingInvalidTimes",
          (a, now) => linear(a, { start: now, end: now }),
          (now) => [0n, now, 0n, now],
        ],
        [
          "when the cliff is before the start",
          "VestingInvalidTimes",
          (a, now) => linear(a, { start: now, cliff: now - 1n, end: now + 9n }),
          (now) => [0n, now, now - 1n, now + 9n],
        ],
        [
          "when the cliff is after the end",
          "VestingInvalidTimes",
          (a, now) => linear(a, { start: now, cliff: now + 10n, end: now + 9n }),
          (now) => [0n, now, now + 10n, now + 9n],
        ],
        [
          "when the cliff amount exceeds the total",
          "VestingCliffAmountTooLarge",
          (a, now) => linear(a, { start: now, end: now + 9n, total: 5n, cliffAmount: 6n }),
          () => [0n, 6n, 5n],
        ],
        [
          "for more than 64 tranches",
          "VestingTrancheCount",
          (a, now) =>
            tranched(
              a,
              now,
              Array.from({ length: 65 }, (_, i) => ({ timestamp: now + BigInt(i), amount: 1n })),
            ),
          () => [0n, 65n, 64n],
        ],
        [
          "for a tranched schedule with an end",
          "VestingLinearFieldOnTranched",
          (a, now) => tranched(a, now, [{ timestamp: now, amount: 1n }], { end: now + 1n }),
          () => [0n],
        ],
        [
          "for a tranched schedule with a cliff",
          "VestingLinearFieldOnTranched",
          (a, now) => tranched(a, now, [{ timestamp: now, amount: 1n }], { cliff: now }),
          () => [0n],
        ],
        [
          "for a tranched schedule with a cliff amount",
          "VestingLinearFieldOnTranched",
          (a, now) => tranched(a, now, [{ timestamp: now, amount: 1n }], { cliffAmount: 1n }),
          () => [0n],
        ],
        [
          "for a first tranche before the start",
          "VestingInvalidTranche",
          (a, now) => tranched(a, now, [{ timestamp: now - 1n, amount: 1n }]),
          (now) => [0n, 0n, now - 1n, 1n],
        ],
        [
          "for tranches out of order",
          "VestingInvalidTranche",
          (a, now) =>
            tranched(a, now, [
              { timestamp: now + 5n, amount: 1n },
              { timestamp: now + 5n, amount: 1n },
            ]),
          (now) => [0n, 1n, now + 5n, 1n],
        ],
        [
          "for a zero tranche",
          "VestingInvalidTranche",
          (a, now) => tranched(a, now, [{ timestamp: now + 5n, amount: 0n }], { total: 1n }),
          (now) => [0n, 0n, now + 5n, 0n],
        ],
        [
          "when the tranches do not add up to the total",
          "VestingTrancheSumMismatch",
          (a, now) => tranched(a, now, [{ timestamp: now + 5n, amount: 3n }], { total: 4n }),
          () => [0n, 3n, 4n],
        ],
      ];
      for (const [label, error, make, args] of cases) {
        it(`reverts with ${error} ${label}`, async () => {
          const { vault, alice, now } = await networkHelpers.loadFixture(deployVault);
          await expect(vault.createSchedule(make(alice.address, now)))
            .to.be.revertedWithCustomError(vault, error)
            .withArgs(...args(now));
        });
      }

      it("reverts when the owner has not approved the funds", async () => {
        const { vault, token, alice, now } = await networkHelpers.loadFixture(deployVault);
        await token.approve(await vault.getAddress(), 0n);
        await expect(vault.createSchedule(linear(alice.address, { start: now, end: now + 1n })))
          .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
          .withArgs(await vault.getAddress(), 0n, 1_000n * OPG);
      });
    });

    describe("when the plan is sealed", () => {
      it("reverts with VestingPlanSealed", async () => {
        const { vault, alice, now } = await networkHelpers.loadFixture(deployWithSchedules);
        const hash = await vault.planHash();
        await vault.seal(hash);
        await expect(vault.createSchedule(linear(alice.address, { start: now, end: now + 1n })))
          .to.be.revertedWithCustomError(vault, "VestingPlanSealed")
          .withArgs(hash);
      });
    });
  });

  describe("createSchedules", () => {
    it("creates in order, pulls the sum once and reports the first id", async () => {
      const { vault, token, owner, alice, bob, now } =
        await networkHelpers.loadFixture(deployVault);
      const a = linear(alice.address, { start: now, end: now + 10n, total: 7n });
      const b = tranched(bob.address, now, [{ timestamp: now + 1n, amount: 5n }]);
      await vault.createSchedule(a);
      const firstId = await vault.createSchedules.staticCall([b, a]);
      expect(firstId).to.equal(1n);
      await expect(vault.createSchedules([b, a]))
        .to.emit(token, "Transfer")
        .withArgs(owner.address, await vault.getAddress(), 12n);
      expect(await vault.planHash()).to.equal(planHashOf([a, b, a]));
      expect(await vault.scheduleCount()).to.equal(3n);
    });

    it("reverts with VestingEmptyBatch for an empty list", async () => {
      const { vault } = await networkHelpers.loadFixture(deployVault);
      await expect(vault.createSchedules([])).to.be.revertedWithCustomError(
        vault,
        "VestingEmptyBatch",
      );
    });

    it("reports the failing schedule's id and creates none of the batch", async () => {
      const { vault, alice, now } = await networkHelpers.loadFixture(deployVault);
      const good = linear(alice.address, { start: now, end: now + 10n });
      const bad = linear(alice.address, { start: now, end: now + 10n, total: 0n });
      await expect(vault.createSchedules([good, bad]))
        .to.be.revertedWithCustomError(vault, "VestingZeroTotal")
        .withArgs(1n);
      expect(await vault.scheduleCount()).to.equal(0n);
    });

    it("reverts for a non-owner and after the seal", async () => {
      const { vault, alice, lin } = await networkHelpers.loadFixture(deployWithSchedules);
      await expect(vault.connect(alice).createSchedules([lin]))
        .to.be.revertedWithCustomError(vault, "OwnableUnauthorizedAccount")
        .withArgs(alice.address);
      await vault.seal(await vault.planHash());
      await expect(vault.createSchedules([lin])).to.be.revertedWithCustomError(
        vault,
        "VestingPlanSealed",
      );
    });
  });

  describe("seal", () => {
    it("seals with the matching plan hash", async () => {
      const { vault, lin, tr } = await networkHelpers.loadFixture(deployWithSchedules);
      const hash = planHashOf([lin, tr]);
      await expect(vault.seal(hash)).to.emit(vault, "PlanSealed").withArgs(hash, 2n);
      expect(await vault.isSealed()).to.equal(true);
    });

    it("reverts with VestingPlanHashMismatch for another hash", async () => {
      const { vault, lin } = await networkHelpers.loadFixture(deployWithSchedules);
      const wrong = planHashOf([lin]);
      await expect(vault.seal(wrong))
        .to.be.revertedWithCustomError(vault, "VestingPlanHashMismatch")
        .withArgs(wrong, await vault.planHash());
    });

    it("reverts when already sealed or called by a stranger", async () => {
      const { vault, stranger } = await networkHelpers.loadFixture(deployWithSchedules);
      const hash = await vault.planHash();
      await expect(vault.connect(stranger).seal(hash))
        .to.be.revertedWithCustomError(vault, "OwnableUnauthorizedAccount")
        .withArgs(stranger.address);
      await vault.seal(hash);
      await expect(vault.seal(hash))
        .to.be.revertedWithCustomError(vault, "VestingPlanSealed")
        .withArgs(hash);
    });
  });

  describe("release", () => {
    describe("when the cliff has not passed", () => {
      it("reverts with VestingNothingToRelease", async () => {
        const { vault, start } = await networkHelpers.loadFixture(deployWithSchedules);
        await time.increaseTo(start + 100n * DAY - 2n);
        await expect(vault.release(0))
          .to.be.revertedWithCustomError(vault, "VestingNothingToRelease")
          .withArgs(0n, start + 100n * DAY - 1n);
      });
    });

    describe("when the cliff has passed", () => {
      it("pays the cliff amount plus the linear part to the beneficiary, whoever calls", async () => {
        const { vault, token, alice, stranger, start } =
          await networkHelpers.loadFixture(deployWithSchedules);
        const at = start + 100n * DAY;
        await time.setNextBlockTimestamp(at);
        const expected = 100n * OPG + (900n * OPG * (100n * DAY)) / (400n * DAY);
        await expect(vault.connect(stranger).release(0))
          .to.emit(vault, "Released")
          .withArgs(0n, alice.address, expected, stranger.address)
          .and.to.emit(token, "Transfer")
          .withArgs(await vault.getAddress(), alice.address, expected);
        expect((await vault.getSchedule(0)).released).to.equal(expected);
        expect(await vault.releasable(0)).to.equal(0n);
      });

      it("pays everything after the end, and nothing more afterwards", async () => {
        const { vault, alice, start } = await networkHelpers.loadFixture(deployWithSchedules);
        await time.increaseTo(start + 500n * DAY);
        await vault.release(0);
        expect((await vault.getSchedule(0)).released).to.equal(1_000n * OPG);
        await expect(vault.release(0)).to.be.revertedWithCustomError(
          vault,
          "VestingNothingToRelease",
        );
        expect(await vault.vestedAt(0, 2n ** 40n - 1n)).to.equal(1_000n * OPG);
        expect(await vault.releasable(0)).to.equal(0n);
        expect(alice.address).to.equal((await vault.getSchedule(0)).beneficiary);
      });
    });

    describe("for tranches", () => {
      it("unlocks each tranche exactly at its timestamp", async () => {
        const { vault, bob, start } = await networkHelpers.loadFixture(deployWithSchedules);
        await time.increaseTo(start + 30n * DAY - 2n);
        await expect(vault.release(1)).to.be.revertedWithCustomError(
          vault,
          "VestingNothingToRelease",
        );
        await time.setNextBlockTimestamp(start + 30n * DAY);
        await expect(vault.connect(bob).release(1))
          .to.emit(vault, "Released")
          .withArgs(1n, bob.address, 10n * OPG, bob.address);
        await time.setNextBlockTimestamp(start + 90n * DAY);
        await expect(vault.connect(bob).release(1))
          .to.emit(vault, "Released")
          .withArgs(1n, bob.address, 50n * OPG, bob.address);
      });
    });

    it("reverts with VestingUnknownSchedule for an id out of range", async () => {
      const { vault } = await networkHelpers.loadFixture(deployWithSchedules);
      await expect(vault.release(2))
        .to.be.revertedWithCustomError(vault, "VestingUnknownSchedule")
        .withArgs(2n, 2n);
    });
  });

  describe("at the boundaries, with a remainder (exact values, not a band)", () => {
    /**
     * 1000 wei over 7 s with 100 at a cliff 3 s in: every linear point leaves a remainder of 900·k/7, so a
     * ceiling or a rounding to nearest moves it by 1. The literals are the floor, worked by hand, and the
     * off-chain reference (offchain/vesting/math.ts) must agree with them too.
     */
    async function oddSchedule() {
      const f = await deployVault();
      const start = f.now + 10n;
      const params = linear(f.alice.address, {
        start,
        cliff: start + 3n,
        cliffAmount: 100n,
        end: start + 7n,
        total: 1_000n,
      });
      await f.vault.createSchedule(params);
      return { ...f, start, terms: termsOf(params) };
    }

    it("vests 0 at cliff - 1, the floor at cliff, cliff + 1, end - 1, and the total at end and end + 1", async () => {
      const { vault, start, terms } = await networkHelpers.loadFixture(oddSchedule);
      const expected: Array<[bigint, bigint]> = [
        [start + 2n, 0n], // cliff - 1
        [start + 3n, 485n], // cliff: 100 + floor(2700 / 7 = 385.71)
        [start + 4n, 614n], // cliff + 1: 100 + floor(3600 / 7 = 514.29)
        [start + 5n, 742n], // 100 + floor(4500 / 7 = 642.86)
        [start + 6n, 871n], // end - 1: 100 + floor(5400 / 7 = 771.43)
        [start + 7n, 1_000n], // end
        [start + 8n, 1_000n], // end + 1
      ];
      for (const [t, vested] of expected) {
        expect(await vault.vestedAt(0, t), `at start + ${t - start}`).to.equal(vested);
        expect(vestedAt(terms, t), `reference at start + ${t - start}`).to.equal(vested);
      }
    });

    it("releases exactly the floor at each step, and the sum is the total", async () => {
      const { vault, alice, start } = await networkHelpers.loadFixture(oddSchedule);
      await time.setNextBlockTimestamp(start + 2n);
      await expect(vault.release(0))
        .to.be.revertedWithCustomError(vault, "VestingNothingToRelease")
        .withArgs(0n, start + 2n);
      let paid = 0n;
      for (const [offset, amount] of [
        [3n, 485n],
        [4n, 129n],
        [6n, 257n],
        [7n, 129n],
      ] as const) {
        await time.setNextBlockTimestamp(start + offset);
        await expect(vault.release(0))
          .to.emit(vault, "Released")
          .withArgs(0n, alice.address, amount, (await ethers.getSigners())[0]!.address);
        paid += amount;
      }
      expect(paid).to.equal(1_000n);
      expect((await vault.getSchedule(0)).released).to.equal(1_000n);
    });

    it("counts a tranche from its timestamp on: ts - 1, ts, ts + 1", async () => {
      const { vault, start } = await networkHelpers.loadFixture(deployWithSchedules);
      for (const [ts, before, at] of [
        [start + 30n * DAY, 0n, 10n * OPG],
        [start + 60n * DAY, 10n * OPG, 30n * OPG],
        [start + 90n * DAY, 30n * OPG, 60n * OPG],
      ] as const) {
        expect(await vault.vestedAt(1, ts - 1n)).to.equal(before);
        expect(await vault.vestedAt(1, ts)).to.equal(at);
        expect(await vault.vestedAt(1, ts + 1n)).to.equal(at);
      }
    });
  });

  describe("releaseMany", () => {
    it("releases every releasable schedule and skips the rest", async () => {
      const { vault, start, owner, bob } = await networkHelpers.loadFixture(deployWithSchedules);
      await time.setNextBlockTimestamp(start + 30n * DAY);
      await expect(vault.releaseMany([0, 1]))
        .to.emit(vault, "Released")
        .withArgs(1n, bob.address, 10n * OPG, owner.address);
      expect((await vault.getSchedule(0)).released).to.equal(0n);
    });

    it("returns the total paid", async () => {
      const { vault, start } = await networkHelpers.loadFixture(deployWithSchedules);
      await time.increaseTo(start + 1_000n * DAY);
      expect(await vault.releaseMany.staticCall([0, 1])).to.equal(1_060n * OPG);
    });

    it("reverts with VestingEmptyBatch and VestingUnknownSchedule", async () => {
      const { vault } = await networkHelpers.loadFixture(deployWithSchedules);
      await expect(vault.releaseMany([])).to.be.revertedWithCustomError(vault, "VestingEmptyBatch");
      await expect(vault.releaseMany([0, 9]))
        .to.be.revertedWithCustomError(vault, "VestingUnknownSchedule")
        .withArgs(9n, 2n);
    });
  });

  describe("transferBeneficiary", () => {
    it("moves the schedule and future releases to the new address", async () => {
      const { vault, token, alice, carol, start } =
        await networkHelpers.loadFixture(deployWithSchedules);
      await expect(vault.connect(alice).transferBeneficiary(0, carol.address))
        .to.emit(vault, "BeneficiaryTransferred")
        .withArgs(0n, alice.address, carol.address);
      await time.increaseTo(start + 1_000n * DAY);
      await vault.release(0);
      expect(await token.balanceOf(carol.address)).to.equal(1_000n * OPG);
      expect(await token.balanceOf(alice.address)).to.equal(0n);
    });

    it("reverts with VestingNotBeneficiary for anyone else, the owner included", async () => {
      const { vault, owner, alice, carol } = await networkHelpers.loadFixture(deployWithSchedules);
      await expect(vault.connect(owner).transferBeneficiary(0, carol.address))
        .to.be.revertedWithCustomError(vault, "VestingNotBeneficiary")
        .withArgs(0n, owner.address, alice.address);
    });

    it("reverts with VestingInvalidNewBeneficiary for zero or the same address", async () => {
      const { vault, alice } = await networkHelpers.loadFixture(deployWithSchedules);
      await expect(vault.connect(alice).transferBeneficiary(0, ZeroAddress))
        .to.be.revertedWithCustomError(vault, "VestingInvalidNewBeneficiary")
        .withArgs(0n, ZeroAddress);
      await expect(vault.connect(alice).transferBeneficiary(0, alice.address))
        .to.be.revertedWithCustomError(vault, "VestingInvalidNewBeneficiary")
        .withArgs(0n, alice.address);
    });

    it("reverts with VestingUnknownSchedule", async () => {
      const { vault, alice } = await networkHelpers.loadFixture(deployWithSchedules);
      await expect(vault.connect(alice).transferBeneficiary(5, alice.address))
        .to.be.revertedWithCustomError(vault, "VestingUnknownSchedule")
        .withArgs(5n, 2n);
    });
  });

  describe("revoke", () => {
    it("keeps what has vested for the beneficiary and refunds the rest", async () => {
      const { vault, token, alice, carol, start } =
        await networkHelpers.loadFixture(deployWithSchedules);
      const at = start + 200n * DAY;
      const vested = 100n * OPG + (900n * OPG * (200n * DAY)) / (400n * DAY);
      await time.setNextBlockTimestamp(at);
      await expect(vault.revoke(0, carol.address))
        .to.emit(vault, "ScheduleRevoked")
        .withArgs(0n, vested, 1_000n * OPG - vested, carol.address);
      expect(await token.balanceOf(carol.address)).to.equal(1_000n * OPG - vested);
      expect((await vault.getSchedule(0)).revoked).to.equal(true);
      // Vesting is capped at the revocation.
      expect(await vault.vestedAt(0, Number(at + 1_000n * DAY))).to.equal(vested);
      expect(await vault.vestedAt(0, Number(start + 100n * DAY))).to.be.lessThan(vested);
      await time.increaseTo(at + 1_000n * DAY);
      await vault.release(0);
      expect(await token.balanceOf(alice.address)).to.equal(vested);
      expect(await vault.totalOutstanding()).to.equal(60n * OPG);
    });

    it("refunds everything before the cliff, and nothing after the end", async () => {
      const { vault, token, carol, start } = await networkHelpers.loadFixture(deployWithSchedules);
      await vault.revoke(0, carol.address);
      expect(await token.balanceOf(carol.address)).to.equal(1_000n * OPG);
      const f = await deployWithSchedules();
      await time.increaseTo(start + 1_000n * DAY);
      await expect(f.vault.revoke(0, f.carol.address))
        .to.emit(f.vault, "ScheduleRevoked")
        .withArgs(0n, 1_000n * OPG, 0n, f.carol.address)
        .and.not.to.emit(f.token, "Transfer");
    });

    it("reverts with VestingNotRevocable, VestingAlreadyRevoked and VestingZeroRefundAddress", async () => {
      const { vault, carol } = await networkHelpers.loadFixture(deployWithSchedules);
      await expect(vault.revoke(1, carol.address))
        .to.be.revertedWithCustomError(vault, "VestingNotRevocable")
        .withArgs(1n);
      await expect(vault.revoke(0, ZeroAddress)).to.be.revertedWithCustomError(
        vault,
        "VestingZeroRefundAddress",
      );
      await vault.revoke(0, carol.address);
      await expect(vault.revoke(0, carol.address))
        .to.be.revertedWithCustomError(vault, "VestingAlreadyRevoked")
        .withArgs(0n);
    });

    it("reverts for a non-owner and for an unknown id", async () => {
      const { vault, alice } = await networkHelpers.loadFixture(deployWithSchedules);
      await expect(vault.connect(alice).revoke(0, alice.address))
        .to.be.revertedWithCustomError(vault, "OwnableUnauthorizedAccount")
        .withArgs(alice.address);
      await expect(vault.revoke(7, alice.address))
        .to.be.revertedWithCustomError(vault, "VestingUnknownSchedule")
        .withArgs(7n, 2n);
    });

    it("works after the seal (revocability is part of the sealed plan)", async () => {
      const { vault, carol } = await networkHelpers.loadFixture(deployWithSchedules);
      await vault.seal(await vault.planHash());
      await expect(vault.revoke(0, carol.address)).to.emit(vault, "ScheduleRevoked");
    });
  });

  describe("views", () => {
    it("answer vested and releasable at any time, per schedule and in total", async () => {
      const { vault, start } = await networkHelpers.loadFixture(deployWithSchedules);
      const t = Number(start + 60n * DAY);
      expect(await vault.vestedAt(1, t)).to.equal(30n * OPG);
      expect(await vault.vestedAt(0, t)).to.equal(0n);
      expect(await vault.totalVestedAt(t)).to.equal(30n * OPG);
      expect(await vault.releasableAt(1, t)).to.equal(30n * OPG);
      expect(await vault.totalReleasableAt(t)).to.equal(30n * OPG);
      const end = Number(start + 400n * DAY);
      expect(await vault.totalVestedAt(end)).to.equal(1_060n * OPG);
      expect(await vault.totalOutstanding()).to.equal(1_060n * OPG);
      expect(await vault.totalReleased()).to.equal(0n);
    });

    it("show nothing releasable at a time before the last release", async () => {
      const { vault, start } = await networkHelpers.loadFixture(deployWithSchedules);
      await time.increaseTo(start + 90n * DAY);
      await vault.release(1);
      expect(await vault.releasableAt(1, Number(start + 30n * DAY))).to.equal(0n);
      expect(await vault.totalReleased()).to.equal(60n * OPG);
      expect(await vault.totalOutstanding()).to.equal(1_000n * OPG);
    });

    it("revert with VestingUnknownSchedule for unknown ids", async () => {
      const { vault } = await networkHelpers.loadFixture(deployWithSchedules);
      for (const call of [
        () => vault.getSchedule(2),
        () => vault.getTranches(2),
        () => vault.vestedAt(2, 0),
        () => vault.releasableAt(2, 0),
        () => vault.releasable(2),
      ]) {
        await expect(call())
          .to.be.revertedWithCustomError(vault, "VestingUnknownSchedule")
          .withArgs(2n, 2n);
      }
    });

    it("returns no tranches for a linear schedule", async () => {
      const { vault } = await networkHelpers.loadFixture(deployWithSchedules);
      expect(await vault.getTranches(0)).to.deep.equal([]);
    });
  });

  describe("plan hash", () => {
    it("matches the off-chain canonical encoding, category included", async () => {
      const { vault, alice, now } = await networkHelpers.loadFixture(deployVault);
      const a = linear(alice.address, {
        start: now,
        end: now + 9n,
        category: encodeBytes32String("ecosystem"),
      });
      const b = { ...a, category: encodeBytes32String("team") };
      expect(await vault.hashSchedule(0, a)).to.equal(scheduleLeaf(0, a));
      expect(await vault.hashSchedule(0, a)).not.to.equal(await vault.hashSchedule(0, b));
      expect(await vault.hashSchedule(0, a)).not.to.equal(await vault.hashSchedule(1, a));
    });
  });
});
