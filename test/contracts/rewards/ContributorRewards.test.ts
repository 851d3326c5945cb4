import { expect } from "chai";
import fc from "fast-check";
import { encodeBytes32String } from "ethers";
import { network } from "hardhat";

import { buildTree } from "../../../native/index.js";
import { DAY, linear } from "../../helpers/vesting.js";

const { ethers, networkHelpers } = await network.create();

const DELAY = 3600n;
/** Deposited through `fund` by the admin in every fixture. */
const FUNDING = ethers.parseEther("1000");
/** The rewards pool: a linear VestingVault schedule of 900 OPG over 90 days (10 OPG a day). */
const POOL = ethers.parseEther("900");
const POOL_DAYS = 90n;
const POOL_ID = 0n;

type Leaf = [string, bigint];

function tree(leaves: Leaf[]) {
  const t = buildTree(leaves, ["address", "uint256"]);
  const total = leaves.reduce((sum, [, amount]) => sum + amount, 0n);
  const proofOf = (account: string) => t.proof(leaves.findIndex(([a]) => a === account));
  return { root: t.root, total, proofOf, proof: (i: number) => t.proof(i) };
}

/**
 * Token, vault with the rewards-pool schedule (beneficiary still the admin, not rotated), the
 * distributor funded with FUNDING through `fund`, nothing bound.
 */
async function deployRewards() {
  const [admin, updater, guardian, alice, bob, carol, stranger] = await ethers.getSigners();
  const token = await ethers.deployContract("OPGToken", [
    admin!.address,
    ethers.parseEther("1000000"),
  ]);
  const vault = await ethers.deployContract("VestingVault", [
    await token.getAddress(),
    admin!.address,
  ]);
  const poolStart = BigInt(await networkHelpers.time.latest()) + DAY;
  const poolEnd = poolStart + POOL_DAYS * DAY;
  await token.approve(await vault.getAddress(), POOL);
  await vault.createSchedule(
    linear(admin!.address, {
      category: encodeBytes32String("rewards"),
      total: POOL,
      start: poolStart,
      end: poolEnd,
    }),
  );
  const rewards = await ethers.deployContract("ContributorRewards", [
    await token.getAddress(),
    admin!.address,
    updater!.address,
    guardian!.address,
    DELAY,
  ]);
  await token.approve(await rewards.getAddress(), FUNDING);
  await rewards.fund(FUNDING);
  return {
    token,
    vault,
    rewards,
    poolStart,
    poolEnd,
    admin: admin!,
    updater: updater!,
    guardian: guardian!,
    alice: alice!,
    bob: bob!,
    carol: carol!,
    stranger: stranger!,
  };
}

/** The pool's beneficiary rotated to the distributor and bound (before the pool starts vesting). */
async function deployBound() {
  const f = await deployRewards();
  await f.vault.transferBeneficiary(POOL_ID, await f.rewards.getAddress());
  await f.rewards.bindSchedule(await f.vault.getAddress(), POOL_ID);
  return f;
}

/** Epoch 1 accepted: alice 100, bob 200, carol 50. */
async function deployWithRoot() {
  const f = await deployRewards();
  const epoch1 = tree([
    [f.alice.address, ethers.parseEther("100")],
    [f.bob.address, ethers.parseEther("200")],
    [f.carol.address, ethers.parseEther("50")],
  ]);
  await f.rewards
    .connect(f.updater)
    .proposeRoot(epoch1.root, 1n, epoch1.total, ethers.id("data1"), "ipfs://e1");
  await networkHelpers.time.increase(DELAY);
  await f.rewards.acceptRoot();
  return { ...f, epoch1 };
}

describe("ContributorRewards", () => {
  describe("constructor", () => {
    it("sets the token, roles and delay, with nothing bound", async () => {
      const { rewards, token, admin, updater, guardian } =
        await networkHelpers.loadFixture(deployRewards);
      expect(await rewards.TOKEN()).to.equal(await token.getAddress());
      expect(await rewards.delay()).to.equal(DELAY);
      expect(await rewards.MAX_DELAY()).to.equal(30n * 86400n);
      expect(await rewards.hasRole(await rewards.DEFAULT_ADMIN_ROLE(), admin.address)).to.be.true;
      expect(await rewards.hasRole(await rewards.UPDATER_ROLE(), updater.address)).to.be.true;
      expect(await rewards.hasRole(await rewards.GUARDIAN_ROLE(), guardian.address)).to.be.true;
      expect((await rewards.currentRoot()).root).to.equal(ethers.ZeroHash);
      expect((await rewards.pendingRoot()).root).to.equal(ethers.ZeroHash);
      expect(await rewards.rewardsPool()).to.deep.equal([ethers.ZeroAddress, 0n, 0n]);
    });

    it("emits DelaySet", async () => {
      const [a] = await ethers.getSigners();
      const factory = await ethers.getContractFactory("ContributorRewards");
      const rewards = await factory.deploy(a!.address, a!.address, a!.address, a!.address, 5n);
      await expect(rewards.deploymentTransaction()).to.emit(rewards, "DelaySet").withArgs(0n, 5n);
    });

    for (const position of [0, 1, 2, 3]) {
      it(`reverts with RewardsZeroAddress when argument ${position} is zero`, async () => {
        const [a] = await ethers.getSigners();
        const args: [string, string, string, string] = [
          a!.address,
          a!.address,
          a!.address,
          a!.address,
        ];
        args[position] = ethers.ZeroAddress;
        const factory = await ethers.getContractFactory("ContributorRewards");
        await expect(factory.deploy(...args, DELAY)).to.be.revertedWithCustomError(
          factory,
          "RewardsZeroAddress",
        );
      });
    }

    it("reverts with RewardsDelayTooLong above MAX_DELAY", async () => {
      const [a] = await ethers.getSigners();
      const factory = await ethers.getContractFactory("ContributorRewards");
      const tooLong = 30n * 86400n + 1n;
      await expect(factory.deploy(a!.address, a!.address, a!.address, a!.address, tooLong))
        .to.be.revertedWithCustomError(factory, "RewardsDelayTooLong")
        .withArgs(tooLong, 30n * 86400n);
    });
  });

  describe("fund", () => {
    it("pulls the tokens from anyone, counts them and emits Funded", async () => {
      const { rewards, token, stranger } = await networkHelpers.loadFixture(deployRewards);
      const amount = ethers.parseEther("5");
      await token.transfer(stranger.address, amount);
      await token.connect(stranger).approve(await rewards.getAddress(), amount);
      await expect(rewards.connect(stranger).fund(amount))
        .to.emit(rewards, "Funded")
        .withArgs(stranger.address, amount)
        .and.to.emit(token, "Transfer")
        .withArgs(stranger.address, await rewards.getAddress(), amount);
      expect(await rewards.deposits()).to.equal(FUNDING + amount);
      expect(await rewards.funded()).to.equal(FUNDING + amount);
      expect(await token.balanceOf(await rewards.getAddress())).to.equal(FUNDING + amount);
    });

    it("reverts with RewardsZeroAmount for 0", async () => {
      const { rewards } = await networkHelpers.loadFixture(deployRewards);
      await expect(rewards.fund(0n)).to.be.revertedWithCustomError(rewards, "RewardsZeroAmount");
    });

    it("reverts with the token's error without an allowance", async () => {
      const { rewards, token, stranger } = await networkHelpers.loadFixture(deployRewards);
      await expect(rewards.connect(stranger).fund(1n))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
        .withArgs(await rewards.getAddress(), 0n, 1n);
    });

    it("does not count tokens sent by plain transfer", async () => {
      const { rewards, token, updater } = await networkHelpers.loadFixture(deployRewards);
      await token.transfer(await rewards.getAddress(), 7n);
      expect(await rewards.funded()).to.equal(FUNDING);
      expect(await rewards.deposits()).to.equal(FUNDING);
      await expect(
        rewards.connect(updater).proposeRoot(ethers.id("a"), 1n, FUNDING + 1n, ethers.ZeroHash, ""),
      )
        .to.be.revertedWithCustomError(rewards, "RewardsUnderfunded")
        .withArgs(FUNDING + 1n, FUNDING);
    });
  });

  describe("bindSchedule", () => {
    it("binds the rotated schedule, records its released amount and emits ScheduleBound", async () => {
      const { rewards, vault, token, admin, poolStart } =
        await networkHelpers.loadFixture(deployRewards);
      // Before the rotation the pool paid its old beneficiary: that must not count here.
      await networkHelpers.time.increaseTo(poolStart + 10n * DAY);
      await vault.release(POOL_ID);
      const released = (await vault.getSchedule(POOL_ID)).released;
      expect(released).to.be.gt(0n);
      await vault.transferBeneficiary(POOL_ID, await rewards.getAddress());
      await expect(rewards.connect(admin).bindSchedule(await vault.getAddress(), POOL_ID))
        .to.emit(rewards, "ScheduleBound")
        .withArgs(await vault.getAddress(), POOL_ID, released);
      expect(await rewards.rewardsPool()).to.deep.equal([
        await vault.getAddress(),
        POOL_ID,
        released,
      ]);
      expect(await rewards.funded()).to.equal(FUNDING);
      // From now on every release to the distributor counts.
      await networkHelpers.time.increase(DAY);
      const tx = await vault.release(POOL_ID);
      const [event] = await vault.queryFilter(vault.filters.Released(), tx.blockNumber!);
      expect(event!.args.beneficiary).to.equal(await rewards.getAddress());
      expect(await rewards.funded()).to.equal(FUNDING + event!.args.amount);
      expect(await token.balanceOf(await rewards.getAddress())).to.equal(
        FUNDING + event!.args.amount,
      );
    });

    it("reverts for an account without DEFAULT_ADMIN_ROLE", async () => {
      const { rewards, vault, updater } = await networkHelpers.loadFixture(deployRewards);
      await expect(rewards.connect(updater).bindSchedule(await vault.getAddress(), POOL_ID))
        .to.be.revertedWithCustomError(rewards, "AccessControlUnauthorizedAccount")
        .withArgs(updater.address, ethers.ZeroHash);
    });

    it("reverts with RewardsZeroAddress for the zero vault", async () => {
      const { rewards } = await networkHelpers.loadFixture(deployRewards);
      await expect(rewards.bindSchedule(ethers.ZeroAddress, POOL_ID)).to.be.revertedWithCustomError(
        rewards,
        "RewardsZeroAddress",
      );
    });

    it("reverts with RewardsScheduleAlreadyBound on a second binding", async () => {
      const { rewards, vault } = await networkHelpers.loadFixture(deployBound);
      await expect(rewards.bindSchedule(await vault.getAddress(), 1n))
        .to.be.revertedWithCustomError(rewards, "RewardsScheduleAlreadyBound")
        .withArgs(await vault.getAddress(), POOL_ID);
    });

    it("reverts with RewardsVaultTokenMismatch for a vault of another token", async () => {
      const { rewards, token, admin } = await networkHelpers.loadFixture(deployRewards);
      const other = await ethers.deployContract("OPGToken", [admin.address, 1n]);
      const otherVault = await ethers.deployContract("VestingVault", [
        await other.getAddress(),
        admin.address,
      ]);
      await expect(rewards.bindSchedule(await otherVault.getAddress(), POOL_ID))
        .to.be.revertedWithCustomError(rewards, "RewardsVaultTokenMismatch")
        .withArgs(await other.getAddress(), await token.getAddress());
    });

    it("reverts with RewardsNotScheduleBeneficiary before the rotation", async () => {
      const { rewards, vault, admin } = await networkHelpers.loadFixture(deployRewards);
      await expect(rewards.bindSchedule(await vault.getAddress(), POOL_ID))
        .to.be.revertedWithCustomError(rewards, "RewardsNotScheduleBeneficiary")
        .withArgs(POOL_ID, admin.address);
    });

    it("reverts with the vault's VestingUnknownSchedule for an unknown id", async () => {
      const { rewards, vault } = await networkHelpers.loadFixture(deployRewards);
      await expect(rewards.bindSchedule(await vault.getAddress(), 5n))
        .to.be.revertedWithCustomError(vault, "VestingUnknownSchedule")
        .withArgs(5n, 1n);
    });
  });

  describe("proposeRoot", () => {
    it("stores the pending root and emits RootProposed", async () => {
      const { rewards, updater, alice } = await networkHelpers.loadFixture(deployRewards);
      const t = tree([[alice.address, 10n]]);
      const tx = rewards.connect(updater).proposeRoot(t.root, 1n, 10n, ethers.id("d"), "ipfs://x");
      const validAt = BigInt(await networkHelpers.time.latest()) + 1n + DELAY;
      await expect(tx)
        .to.emit(rewards, "RootProposed")
        .withArgs(1n, t.root, 10n, ethers.id("d"), "ipfs://x", validAt);
      const pending = await rewards.pendingRoot();
      expect(pending.root).to.equal(t.root);
      expect(pending.epoch).to.equal(1n);
      expect(pending.validAt).to.equal(validAt);
      expect(pending.totalCumulative).to.equal(10n);
      expect(pending.dataHash).to.equal(ethers.id("d"));
      expect(pending.uri).to.equal("ipfs://x");
    });

    it("replaces a pending root and restarts its timelock", async () => {
      const { rewards, updater } = await networkHelpers.loadFixture(deployRewards);
      await rewards.connect(updater).proposeRoot(ethers.id("a"), 1n, 1n, ethers.ZeroHash, "");
      await networkHelpers.time.increase(DELAY);
      await rewards.connect(updater).proposeRoot(ethers.id("b"), 1n, 2n, ethers.ZeroHash, "");
      expect((await rewards.pendingRoot()).root).to.equal(ethers.id("b"));
      await expect(rewards.acceptRoot()).to.be.revertedWithCustomError(
        rewards,
        "RewardsTimelockNotElapsed",
      );
    });

    it("accepts a total equal to what was funded", async () => {
      const { rewards, updater } = await networkHelpers.loadFixture(deployRewards);
      await expect(
        rewards.connect(updater).proposeRoot(ethers.id("a"), 1n, FUNDING, ethers.ZeroHash, ""),
      ).to.emit(rewards, "RootProposed");
    });

    describe("with the rewards pool bound", () => {
      it("counts what the pool can release and pulls it in", async () => {
        const { rewards, vault, token, updater, poolStart } =
          await networkHelpers.loadFixture(deployBound);
        const at = poolStart + 30n * DAY;
        const releasable = await vault.releasableAt(POOL_ID, at);
        expect(releasable).to.equal(POOL / 3n);
        await networkHelpers.time.setNextBlockTimestamp(at);
        const total = FUNDING + releasable;
        await expect(
          rewards.connect(updater).proposeRoot(ethers.id("a"), 1n, total, ethers.ZeroHash, ""),
        )
          .to.emit(vault, "Released")
          .withArgs(POOL_ID, await rewards.getAddress(), releasable, await rewards.getAddress())
          .and.to.emit(rewards, "RootProposed");
        expect(await rewards.funded()).to.equal(total);
        expect(await token.balanceOf(await rewards.getAddress())).to.equal(total);
        expect((await vault.getSchedule(POOL_ID)).released).to.equal(releasable);
      });

      it("pulls nothing before the pool starts vesting", async () => {
        const { rewards, vault, updater } = await networkHelpers.loadFixture(deployBound);
        await expect(
          rewards.connect(updater).proposeRoot(ethers.id("a"), 1n, FUNDING, ethers.ZeroHash, ""),
        ).not.to.emit(vault, "Released");
        expect(await rewards.funded()).to.equal(FUNDING);
      });

      it("reverts with RewardsUnderfunded above funded() plus the releasable amount", async () => {
        const { rewards, vault, updater, poolStart } =
          await networkHelpers.loadFixture(deployBound);
        const at = poolStart + 45n * DAY;
        const available = FUNDING + (await vault.releasableAt(POOL_ID, at));
        await networkHelpers.time.setNextBlockTimestamp(at);
        await expect(
          rewards
            .connect(updater)
            .proposeRoot(ethers.id("a"), 1n, available + 1n, ethers.ZeroHash, ""),
        )
          .to.be.revertedWithCustomError(rewards, "RewardsUnderfunded")
          .withArgs(available + 1n, available);
        // Nothing was pulled: the revert undid the release too.
        expect((await vault.getSchedule(POOL_ID)).released).to.equal(0n);
      });
    });

    it("reverts for an account without UPDATER_ROLE", async () => {
      const { rewards, stranger } = await networkHelpers.loadFixture(deployRewards);
      await expect(
        rewards.connect(stranger).proposeRoot(ethers.id("a"), 1n, 1n, ethers.ZeroHash, ""),
      )
        .to.be.revertedWithCustomError(rewards, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, await rewards.UPDATER_ROLE());
    });

    it("reverts with RewardsZeroRoot", async () => {
      const { rewards, updater } = await networkHelpers.loadFixture(deployRewards);
      await expect(
        rewards.connect(updater).proposeRoot(ethers.ZeroHash, 1n, 1n, ethers.ZeroHash, ""),
      ).to.be.revertedWithCustomError(rewards, "RewardsZeroRoot");
    });

    it("reverts with RewardsEpochNotIncreasing for epoch 0 and for a repeated epoch", async () => {
      const { rewards, updater } = await networkHelpers.loadFixture(deployWithRoot);
      await expect(
        rewards.connect(updater).proposeRoot(ethers.id("a"), 1n, FUNDING, ethers.ZeroHash, ""),
      )
        .to.be.revertedWithCustomError(rewards, "RewardsEpochNotIncreasing")
        .withArgs(1n, 1n);
      const fresh = await networkHelpers.loadFixture(deployRewards);
      await expect(
        fresh.rewards
          .connect(fresh.updater)
          .proposeRoot(ethers.id("a"), 0n, 1n, ethers.ZeroHash, ""),
      )
        .to.be.revertedWithCustomError(fresh.rewards, "RewardsEpochNotIncreasing")
        .withArgs(0n, 0n);
    });

    it("reverts with RewardsCumulativeDecreased below the accepted total", async () => {
      const { rewards, updater, epoch1 } = await networkHelpers.loadFixture(deployWithRoot);
      await expect(
        rewards
          .connect(updater)
          .proposeRoot(ethers.id("a"), 2n, epoch1.total - 1n, ethers.ZeroHash, ""),
      )
        .to.be.revertedWithCustomError(rewards, "RewardsCumulativeDecreased")
        .withArgs(epoch1.total - 1n, epoch1.total);
    });

    it("reverts with RewardsUnderfunded above what came in, claims notwithstanding", async () => {
      const { rewards, updater, alice, epoch1 } = await networkHelpers.loadFixture(deployWithRoot);
      await rewards.claim(alice.address, ethers.parseEther("100"), epoch1.proofOf(alice.address));
      // Claims move tokens out but do not lower what may be committed.
      expect(await rewards.funded()).to.equal(FUNDING);
      await expect(
        rewards.connect(updater).proposeRoot(ethers.id("a"), 2n, FUNDING + 1n, ethers.ZeroHash, ""),
      )
        .to.be.revertedWithCustomError(rewards, "RewardsUnderfunded")
        .withArgs(FUNDING + 1n, FUNDING);
    });
  });

  describe("revokePendingRoot", () => {
    it("deletes the pending root and emits RootRevoked", async () => {
      const { rewards, updater, guardian } = await networkHelpers.loadFixture(deployRewards);
      await rewards.connect(updater).proposeRoot(ethers.id("a"), 3n, 1n, ethers.ZeroHash, "");
      await expect(rewards.connect(guardian).revokePendingRoot())
        .to.emit(rewards, "RootRevoked")
        .withArgs(3n, ethers.id("a"), guardian.address);
      expect((await rewards.pendingRoot()).root).to.equal(ethers.ZeroHash);
      await networkHelpers.time.increase(DELAY);
      await expect(rewards.acceptRoot()).to.be.revertedWithCustomError(
        rewards,
        "RewardsNoPendingRoot",
      );
    });

    it("leaves claims against the accepted root working", async () => {
      const { rewards, updater, guardian, bob, epoch1 } =
        await networkHelpers.loadFixture(deployWithRoot);
      await rewards
        .connect(updater)
        .proposeRoot(ethers.id("bad"), 2n, FUNDING, ethers.ZeroHash, "");
      await rewards.connect(guardian).revokePendingRoot();
      await expect(
        rewards.claim(bob.address, ethers.parseEther("200"), epoch1.proofOf(bob.address)),
      )
        .to.emit(rewards, "Claimed")
        .withArgs(bob.address, ethers.parseEther("200"), ethers.parseEther("200"));
    });

    it("reverts for an account without GUARDIAN_ROLE", async () => {
      const { rewards, updater } = await networkHelpers.loadFixture(deployRewards);
      await rewards.connect(updater).proposeRoot(ethers.id("a"), 1n, 1n, ethers.ZeroHash, "");
      await expect(rewards.connect(updater).revokePendingRoot())
        .to.be.revertedWithCustomError(rewards, "AccessControlUnauthorizedAccount")
        .withArgs(updater.address, await rewards.GUARDIAN_ROLE());
    });

    it("reverts with RewardsNoPendingRoot", async () => {
      const { rewards, guardian } = await networkHelpers.loadFixture(deployRewards);
      await expect(rewards.connect(guardian).revokePendingRoot()).to.be.revertedWithCustomError(
        rewards,
        "RewardsNoPendingRoot",
      );
    });
  });

  describe("acceptRoot", () => {
    it("makes the pending root current once the delay has passed, callable by anyone", async () => {
      const { rewards, updater, stranger } = await networkHelpers.loadFixture(deployRewards);
      await rewards.connect(updater).proposeRoot(ethers.id("a"), 4n, 7n, ethers.id("d"), "u");
      await networkHelpers.time.increase(DELAY);
      await expect(rewards.connect(stranger).acceptRoot())
        .to.emit(rewards, "RootAccepted")
        .withArgs(4n, ethers.id("a"), 7n);
      const current = await rewards.currentRoot();
      expect(current.root).to.equal(ethers.id("a"));
      expect(current.epoch).to.equal(4n);
      expect(current.totalCumulative).to.equal(7n);
      expect(current.dataHash).to.equal(ethers.id("d"));
      expect(current.uri).to.equal("u");
      expect(current.validAt).to.equal(BigInt(await networkHelpers.time.latest()));
      expect((await rewards.pendingRoot()).root).to.equal(ethers.ZeroHash);
    });

    it("accepts a total that counted the pool's releasable amount (it was pulled in)", async () => {
      const { rewards, vault, updater, poolEnd } = await networkHelpers.loadFixture(deployBound);
      await networkHelpers.time.increaseTo(poolEnd);
      await rewards
        .connect(updater)
        .proposeRoot(ethers.id("a"), 1n, FUNDING + POOL, ethers.ZeroHash, "");
      expect(await vault.releasable(POOL_ID)).to.equal(0n);
      await networkHelpers.time.increase(DELAY);
      await expect(rewards.acceptRoot())
        .to.emit(rewards, "RootAccepted")
        .withArgs(1n, ethers.id("a"), FUNDING + POOL);
    });

    it("reverts with RewardsTimelockNotElapsed one second early", async () => {
      const { rewards, updater } = await networkHelpers.loadFixture(deployRewards);
      await rewards.connect(updater).proposeRoot(ethers.id("a"), 1n, 1n, ethers.ZeroHash, "");
      const validAt = (await rewards.pendingRoot()).validAt;
      await networkHelpers.time.setNextBlockTimestamp(validAt - 1n);
      await expect(rewards.acceptRoot())
        .to.be.revertedWithCustomError(rewards, "RewardsTimelockNotElapsed")
        .withArgs(validAt, validAt - 1n);
    });

    describe("at the timelock boundary (validAt - 1, validAt, validAt + 1)", () => {
      for (const offset of [0n, 1n]) {
        it(`makes the pending root current at validAt + ${offset}`, async () => {
          const { rewards, updater } = await networkHelpers.loadFixture(deployRewards);
          await rewards.connect(updater).proposeRoot(ethers.id("a"), 1n, 1n, ethers.ZeroHash, "");
          const validAt = (await rewards.pendingRoot()).validAt;
          await networkHelpers.time.setNextBlockTimestamp(validAt + offset);
          await expect(rewards.acceptRoot())
            .to.emit(rewards, "RootAccepted")
            .withArgs(1n, ethers.id("a"), 1n);
          const current = await rewards.currentRoot();
          expect(current.root).to.equal(ethers.id("a"));
          expect(current.validAt).to.equal(validAt + offset);
        });
      }

      it("reverts at validAt - 1 and then succeeds at validAt", async () => {
        const { rewards, updater } = await networkHelpers.loadFixture(deployRewards);
        await rewards.connect(updater).proposeRoot(ethers.id("a"), 1n, 1n, ethers.ZeroHash, "");
        const validAt = (await rewards.pendingRoot()).validAt;
        await networkHelpers.time.setNextBlockTimestamp(validAt - 1n);
        await expect(rewards.acceptRoot())
          .to.be.revertedWithCustomError(rewards, "RewardsTimelockNotElapsed")
          .withArgs(validAt, validAt - 1n);
        await networkHelpers.time.setNextBlockTimestamp(validAt);
        await expect(rewards.acceptRoot()).to.emit(rewards, "RootAccepted");
      });
    });

    it("reverts with RewardsNoPendingRoot", async () => {
      const { rewards } = await networkHelpers.loadFixture(deployRewards);
      await expect(rewards.acceptRoot()).to.be.revertedWithCustomError(
        rewards,
        "RewardsNoPendingRoot",
      );
    });
  });

  describe("setDelay", () => {
    it("sets the delay for later proposals and emits DelaySet", async () => {
      const { rewards, admin, updater } = await networkHelpers.loadFixture(deployRewards);
      await expect(rewards.connect(admin).setDelay(60n))
        .to.emit(rewards, "DelaySet")
        .withArgs(DELAY, 60n);
      expect(await rewards.delay()).to.equal(60n);
      await rewards.connect(updater).proposeRoot(ethers.id("a"), 1n, 1n, ethers.ZeroHash, "");
      expect((await rewards.pendingRoot()).validAt).to.equal(
        BigInt(await networkHelpers.time.latest()) + 60n,
      );
    });

    it("reverts with RewardsDelayTooLong", async () => {
      const { rewards, admin } = await networkHelpers.loadFixture(deployRewards);
      await expect(rewards.connect(admin).setDelay(30n * 86400n + 1n))
        .to.be.revertedWithCustomError(rewards, "RewardsDelayTooLong")
        .withArgs(30n * 86400n + 1n, 30n * 86400n);
    });

    it("reverts for an account without DEFAULT_ADMIN_ROLE", async () => {
      const { rewards, updater } = await networkHelpers.loadFixture(deployRewards);
      await expect(rewards.connect(updater).setDelay(1n))
        .to.be.revertedWithCustomError(rewards, "AccessControlUnauthorizedAccount")
        .withArgs(updater.address, ethers.ZeroHash);
    });
  });

  describe("claim", () => {
    it("pays the account, callable by anyone on its behalf", async () => {
      const { rewards, token, alice, stranger, epoch1 } =
        await networkHelpers.loadFixture(deployWithRoot);
      const amount = ethers.parseEther("100");
      expect(
        await rewards
          .connect(stranger)
          .claim.staticCall(alice.address, amount, epoch1.proofOf(alice.address)),
      ).to.equal(amount);
      await expect(
        rewards.connect(stranger).claim(alice.address, amount, epoch1.proofOf(alice.address)),
      )
        .to.emit(rewards, "Claimed")
        .withArgs(alice.address, amount, amount)
        .and.to.emit(token, "Transfer")
        .withArgs(await rewards.getAddress(), alice.address, amount);
      expect(await token.balanceOf(alice.address)).to.equal(amount);
      expect(await token.balanceOf(stranger.address)).to.equal(0n);
      expect(await rewards.claimed(alice.address)).to.equal(amount);
      expect(await rewards.totalClaimed()).to.equal(amount);
      expect(await rewards.funded()).to.equal(FUNDING);
    });

    it("pays the only leaf of a one-leaf tree, whose proof is empty", async () => {
      const { rewards, token, updater, alice } = await networkHelpers.loadFixture(deployRewards);
      const t = tree([[alice.address, 42n]]);
      expect(t.proofOf(alice.address)).to.deep.equal([]);
      await rewards.connect(updater).proposeRoot(t.root, 1n, 42n, ethers.ZeroHash, "");
      await networkHelpers.time.increase(DELAY);
      await rewards.acceptRoot();
      await rewards.claim(alice.address, 42n, []);
      expect(await token.balanceOf(alice.address)).to.equal(42n);
    });

    it("reverts with RewardsNothingToClaim on a second claim", async () => {
      const { rewards, alice, epoch1 } = await networkHelpers.loadFixture(deployWithRoot);
      const amount = ethers.parseEther("100");
      await rewards.claim(alice.address, amount, epoch1.proofOf(alice.address));
      await expect(rewards.claim(alice.address, amount, epoch1.proofOf(alice.address)))
        .to.be.revertedWithCustomError(rewards, "RewardsNothingToClaim")
        .withArgs(alice.address, amount, amount);
    });

    it("pays only the difference after a new root, and old proofs stop paying", async () => {
      const { rewards, token, updater, alice, bob, carol, epoch1 } =
        await networkHelpers.loadFixture(deployWithRoot);
      await rewards.claim(alice.address, ethers.parseEther("100"), epoch1.proofOf(alice.address));
      const epoch2 = tree([
        [alice.address, ethers.parseEther("150")],
        [bob.address, ethers.parseEther("200")],
        [carol.address, ethers.parseEther("80")],
      ]);
      await rewards
        .connect(updater)
        .proposeRoot(epoch2.root, 2n, epoch2.total, ethers.ZeroHash, "");
      // Meanwhile claims keep working against epoch 1.
      await rewards.claim(carol.address, ethers.parseEther("50"), epoch1.proofOf(carol.address));
      await networkHelpers.time.increase(DELAY);
      await rewards.acceptRoot();
      await expect(
        rewards.claim(alice.address, ethers.parseEther("150"), epoch2.proofOf(alice.address)),
      )
        .to.emit(rewards, "Claimed")
        .withArgs(alice.address, ethers.parseEther("50"), ethers.parseEther("150"));
      await expect(
        rewards.claim(carol.address, ethers.parseEther("80"), epoch2.proofOf(carol.address)),
      )
        .to.emit(rewards, "Claimed")
        .withArgs(carol.address, ethers.parseEther("30"), ethers.parseEther("80"));
      await expect(
        rewards.claim(bob.address, ethers.parseEther("200"), epoch1.proofOf(bob.address)),
      )
        .to.be.revertedWithCustomError(rewards, "RewardsInvalidProof")
        .withArgs(bob.address, ethers.parseEther("200"));
      expect(await token.balanceOf(alice.address)).to.equal(ethers.parseEther("150"));
      expect(await rewards.totalClaimed()).to.equal(ethers.parseEther("230"));
      expect(await rewards.funded()).to.equal(FUNDING);
    });

    it("reverts with RewardsNothingToClaim for a stale leaf below what was already paid", async () => {
      const { rewards, updater, alice, epoch1 } = await networkHelpers.loadFixture(deployWithRoot);
      const high = tree([[alice.address, ethers.parseEther("150")]]);
      await rewards.connect(updater).proposeRoot(high.root, 2n, epoch1.total, ethers.ZeroHash, "");
      await networkHelpers.time.increase(DELAY);
      await rewards.acceptRoot();
      await rewards.claim(alice.address, ethers.parseEther("150"), high.proofOf(alice.address));
      const low = tree([[alice.address, ethers.parseEther("120")]]);
      await rewards.connect(updater).proposeRoot(low.root, 3n, epoch1.total, ethers.ZeroHash, "");
      await networkHelpers.time.increase(DELAY);
      await rewards.acceptRoot();
      await expect(
        rewards.claim(alice.address, ethers.parseEther("120"), low.proofOf(alice.address)),
      )
        .to.be.revertedWithCustomError(rewards, "RewardsNothingToClaim")
        .withArgs(alice.address, ethers.parseEther("120"), ethers.parseEther("150"));
    });

    it("reverts with RewardsInvalidProof for a wrong amount, account or proof", async () => {
      const { rewards, alice, bob, epoch1 } = await networkHelpers.loadFixture(deployWithRoot);
      await expect(
        rewards.claim(alice.address, ethers.parseEther("101"), epoch1.proofOf(alice.address)),
      )
        .to.be.revertedWithCustomError(rewards, "RewardsInvalidProof")
        .withArgs(alice.address, ethers.parseEther("101"));
      await expect(
        rewards.claim(bob.address, ethers.parseEther("100"), epoch1.proofOf(alice.address)),
      )
        .to.be.revertedWithCustomError(rewards, "RewardsInvalidProof")
        .withArgs(bob.address, ethers.parseEther("100"));
      const proof = epoch1.proofOf(alice.address);
      for (const bad of [[], [...proof, ethers.ZeroHash], proof.slice(0, -1)]) {
        await expect(rewards.claim(alice.address, ethers.parseEther("100"), bad))
          .to.be.revertedWithCustomError(rewards, "RewardsInvalidProof")
          .withArgs(alice.address, ethers.parseEther("100"));
      }
    });

    it("reverts with RewardsNoRoot before any root is accepted", async () => {
      const { rewards, updater, alice } = await networkHelpers.loadFixture(deployRewards);
      const t = tree([[alice.address, 1n]]);
      await rewards.connect(updater).proposeRoot(t.root, 1n, 1n, ethers.ZeroHash, "");
      await expect(
        rewards.claim(alice.address, 1n, t.proofOf(alice.address)),
      ).to.be.revertedWithCustomError(rewards, "RewardsNoRoot");
    });

    it("verifies every leaf of random trees as OpenZeppelin's StandardMerkleTree does", async () => {
      const { rewards, updater } = await networkHelpers.loadFixture(deployRewards);
      let epoch = 0n;
      let declared = 0n;
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.bigInt({ min: 1n, max: 10n ** 18n }), { minLength: 1, maxLength: 40 }),
          fc.nat(),
          async (amounts, pick) => {
            const accounts = amounts.map((_, i) =>
              ethers.getAddress("0x" + (0xabc000 + i).toString(16).padStart(40, "0")),
            );
            const leaves: Leaf[] = accounts.map((a, i) => [a, amounts[i]!]);
            const t = tree(leaves);
            epoch += 1n;
            // Declared totals may not decrease from root to root.
            if (t.total > declared) declared = t.total;
            await rewards
              .connect(updater)
              .proposeRoot(t.root, epoch, declared, ethers.ZeroHash, "");
            await networkHelpers.time.increase(DELAY);
            await rewards.acceptRoot();
            const proofs = leaves.map((_, i) => t.proof(i));
            // Every leaf's proof holds (the total paid is the tree's total: nothing skipped).
            expect(await rewards.claimMany.staticCall(accounts, amounts, proofs)).to.equal(t.total);
            // Changing any amount breaks it.
            const i = pick % leaves.length;
            const wrong = amounts.map((a, j) => (j === i ? a + 1n : a));
            await expect(rewards.claimMany.staticCall(accounts, wrong, proofs))
              .to.be.revertedWithCustomError(rewards, "RewardsInvalidProof")
              .withArgs(accounts[i]!, wrong[i]!);
          },
        ),
        { numRuns: 12 },
      );
    });
  });

  describe("claimMany", () => {
    it("pays every account, skipping those with nothing new", async () => {
      const { rewards, token, alice, bob, carol, epoch1 } =
        await networkHelpers.loadFixture(deployWithRoot);
      await rewards.claim(bob.address, ethers.parseEther("200"), epoch1.proofOf(bob.address));
      const accounts = [alice.address, bob.address, carol.address];
      const amounts = [ethers.parseEther("100"), ethers.parseEther("200"), ethers.parseEther("50")];
      const proofs = accounts.map((a) => epoch1.proofOf(a));
      expect(await rewards.claimMany.staticCall(accounts, amounts, proofs)).to.equal(
        ethers.parseEther("150"),
      );
      await expect(rewards.claimMany(accounts, amounts, proofs))
        .to.emit(rewards, "Claimed")
        .withArgs(alice.address, amounts[0], amounts[0])
        .and.to.emit(rewards, "Claimed")
        .withArgs(carol.address, amounts[2], amounts[2]);
      expect(await token.balanceOf(carol.address)).to.equal(amounts[2]);
      expect(await rewards.totalClaimed()).to.equal(ethers.parseEther("350"));
    });

    it("reverts with RewardsInvalidProof when one proof is bad", async () => {
      const { rewards, alice, bob, epoch1 } = await networkHelpers.loadFixture(deployWithRoot);
      await expect(
        rewards.claimMany(
          [alice.address, bob.address],
          [ethers.parseEther("100"), ethers.parseEther("201")],
          [epoch1.proofOf(alice.address), epoch1.proofOf(bob.address)],
        ),
      )
        .to.be.revertedWithCustomError(rewards, "RewardsInvalidProof")
        .withArgs(bob.address, ethers.parseEther("201"));
    });

    it("reverts with RewardsLengthMismatch", async () => {
      const { rewards, alice } = await networkHelpers.loadFixture(deployWithRoot);
      await expect(rewards.claimMany([alice.address], [1n, 2n], [[]]))
        .to.be.revertedWithCustomError(rewards, "RewardsLengthMismatch")
        .withArgs(1n, 2n, 1n);
      await expect(rewards.claimMany([alice.address], [1n], []))
        .to.be.revertedWithCustomError(rewards, "RewardsLengthMismatch")
        .withArgs(1n, 1n, 0n);
    });

    it("reverts with RewardsNoRoot before any root is accepted", async () => {
      const { rewards } = await networkHelpers.loadFixture(deployRewards);
      await expect(rewards.claimMany([], [], [])).to.be.revertedWithCustomError(
        rewards,
        "RewardsNoRoot",
      );
    });
  });

  describe("totalClaimed", () => {
    it("is funded() minus the balance: exact without plain transfers", async () => {
      const { rewards, token, alice, bob, epoch1 } =
        await networkHelpers.loadFixture(deployWithRoot);
      expect(await rewards.totalClaimed()).to.equal(0n);
      await rewards.claim(alice.address, ethers.parseEther("100"), epoch1.proofOf(alice.address));
      await rewards.claim(bob.address, ethers.parseEther("200"), epoch1.proofOf(bob.address));
      expect(await rewards.totalClaimed()).to.equal(ethers.parseEther("300"));
      expect(await rewards.totalClaimed()).to.equal(
        (await rewards.funded()) - (await token.balanceOf(await rewards.getAddress())),
      );
    });

    it("is lowered by a plain transfer, and floored at 0", async () => {
      const { rewards, token, alice, epoch1 } = await networkHelpers.loadFixture(deployWithRoot);
      await rewards.claim(alice.address, ethers.parseEther("100"), epoch1.proofOf(alice.address));
      await token.transfer(await rewards.getAddress(), ethers.parseEther("30"));
      expect(await rewards.totalClaimed()).to.equal(ethers.parseEther("70"));
      await token.transfer(await rewards.getAddress(), ethers.parseEther("100"));
      expect(await rewards.totalClaimed()).to.equal(0n);
    });
  });

  describe("funding invariant with the rewards pool", () => {
    it("caps every committed total at deposits plus the pool's releases, epoch after epoch", async () => {
      const { rewards, vault, token, updater, alice, bob, poolStart, poolEnd } =
        await networkHelpers.loadFixture(deployBound);
      const address = await rewards.getAddress();
      let cumulative: [bigint, bigint] = [0n, 0n];
      let paid = 0n;
      // Epochs every 10 days from 5 days before the pool starts to past its end.
      for (let epoch = 1n; epoch <= 12n; epoch++) {
        const at = poolStart - 5n * DAY + epoch * 10n * DAY;
        const releasable = await vault.releasableAt(POOL_ID, at);
        const available = (await rewards.funded()) + releasable;
        // Commit everything available on even epochs, a bit less on odd ones (never less than before).
        const previous = (await rewards.currentRoot()).totalCumulative;
        const less = available - epoch > previous ? available - epoch : previous;
        const total = epoch % 2n === 0n ? available : less;
        const share = (total * 2n) / 5n;
        cumulative = [share, total - share];
        const t = tree([
          [alice.address, cumulative[0]],
          [bob.address, cumulative[1]],
        ]);
        // One wei more than available never goes through.
        await networkHelpers.time.setNextBlockTimestamp(at);
        await expect(
          rewards.connect(updater).proposeRoot(t.root, epoch, available + 1n, ethers.ZeroHash, ""),
        )
          .to.be.revertedWithCustomError(rewards, "RewardsUnderfunded")
          .withArgs(available + 1n, available);
        await networkHelpers.time.setNextBlockTimestamp(at + 1n);
        await rewards.connect(updater).proposeRoot(t.root, epoch, t.total, ethers.ZeroHash, "");
        // The proposal pulled in what had vested.
        expect(await vault.releasable(POOL_ID)).to.equal(0n);
        await networkHelpers.time.increase(DELAY);
        await rewards.acceptRoot();
        for (const [who, amount] of [
          [alice, cumulative[0]],
          [bob, cumulative[1]],
        ] as const) {
          if (epoch % 3n === 0n && who === alice) continue; // alice skips some epochs
          const before = await rewards.claimed(who.address);
          if (amount > before) {
            await rewards.claim(who.address, amount, t.proofOf(who.address));
            paid += amount - before;
          }
        }
        const released = (await vault.getSchedule(POOL_ID)).released;
        const funded = await rewards.funded();
        expect(funded).to.equal((await rewards.deposits()) + released);
        expect(funded).to.equal((await token.balanceOf(address)) + paid);
        expect(await rewards.totalClaimed()).to.equal(paid);
        expect((await rewards.currentRoot()).totalCumulative).to.be.lte(funded);
        expect(paid).to.be.lte((await rewards.currentRoot()).totalCumulative);
      }
      // Past the pool's end: everything vested came in and is committed.
      expect(BigInt(await networkHelpers.time.latest())).to.be.gt(poolEnd);
      expect((await vault.getSchedule(POOL_ID)).released).to.equal(POOL);
      expect((await rewards.currentRoot()).totalCumulative).to.equal(FUNDING + POOL);
    });
  });
});
