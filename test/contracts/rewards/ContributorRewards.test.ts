import { expect } from "chai";
import { network } from "hardhat";

import { buildTree } from "../../../native/index.js";

const { ethers, networkHelpers } = await network.create();

const DELAY = 3600n;
const FUNDING = ethers.parseEther("1000");

type Leaf = [string, bigint];

function tree(leaves: Leaf[]) {
  const t = buildTree(leaves, ["address", "uint256"]);
  const total = leaves.reduce((sum, [, amount]) => sum + amount, 0n);
  const proofOf = (account: string) => t.proof(leaves.findIndex(([a]) => a === account));
  return { root: t.root, total, proofOf };
}

async function deployRewards() {
  const [admin, updater, guardian, alice, bob, carol, stranger] = await ethers.getSigners();
  const token = await ethers.deployContract("OPGToken", [
    admin!.address,
    ethers.parseEther("1000000"),
  ]);
  const rewards = await ethers.deployContract("ContributorRewards", [
    await token.getAddress(),
    admin!.address,
    updater!.address,
    guardian!.address,
    DELAY,
  ]);
  await token.transfer(await rewards.getAddress(), FUNDING);
  return {
    token,
    rewards,
    admin: admin!,
    updater: updater!,
    guardian: guardian!,
    alice: alice!,
    bob: bob!,
    carol: carol!,
    stranger: stranger!,
  };
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
    it("sets the token, roles and delay", async () => {
      const { rewards, token, admin, updater, guardian } =
        await networkHelpers.loadFixture(deployRewards);
      expect(await rewards.TOKEN()).to.equal(await token.getAddress());
      expect(await rewards.delay()).to.equal(DELAY);
      expect(await rewards.MAX_DELAY()).to.equal(30n * 86400n);
      expect(await rewards.hasRole(await rewards.DEFAULT_ADMIN_ROLE(), admin.address)).to.be.true;
      expect(await rewards.hasRole(await rewards.UPDATER_ROLE(), updater.address)).to.be.true;
      expect(await rewards.hasRole(await rewards.GUARDIAN_ROLE(), guardian.address)).to.be.true;
      expect(await rewards.funded()).to.equal(FUNDING);
      expect((await rewards.currentRoot()).root).to.equal(ethers.ZeroHash);
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

    it("reverts with RewardsUnderfunded above the balance plus everything claimed", async () => {
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

    it("reverts with RewardsTimelockNotElapsed one second early", async () => {
      const { rewards, updater } = await networkHelpers.loadFixture(deployRewards);
      await rewards.connect(updater).proposeRoot(ethers.id("a"), 1n, 1n, ethers.ZeroHash, "");
      const validAt = (await rewards.pendingRoot()).validAt;
      await networkHelpers.time.setNextBlockTimestamp(validAt - 1n);
      await expect(rewards.acceptRoot())
        .to.be.revertedWithCustomError(rewards, "RewardsTimelockNotElapsed")
        .withArgs(validAt, validAt - 1n);
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

    it("reverts with RewardsInvalidProof for a wrong amount or account", async () => {
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
    });

    it("reverts with RewardsNoRoot before any root is accepted", async () => {
      const { rewards, updater, alice } = await networkHelpers.loadFixture(deployRewards);
      const t = tree([[alice.address, 1n]]);
      await rewards.connect(updater).proposeRoot(t.root, 1n, 1n, ethers.ZeroHash, "");
      await expect(
        rewards.claim(alice.address, 1n, t.proofOf(alice.address)),
      ).to.be.revertedWithCustomError(rewards, "RewardsNoRoot");
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

  describe("funding invariant", () => {
    it("never lets committed totals exceed the balance plus claims, over random epochs", async () => {
      const { rewards, token, updater, alice, bob } =
        await networkHelpers.loadFixture(deployRewards);
      let cumulative: [bigint, bigint] = [0n, 0n];
      for (let epoch = 1n; epoch <= 6n; epoch++) {
        cumulative = [cumulative[0] + epoch * 7n, cumulative[1] + epoch * 11n];
        const t = tree([
          [alice.address, cumulative[0]],
          [bob.address, cumulative[1]],
        ]);
        await rewards.connect(updater).proposeRoot(t.root, epoch, t.total, ethers.ZeroHash, "");
        await networkHelpers.time.increase(DELAY);
        await rewards.acceptRoot();
        if (epoch % 2n === 0n)
          await rewards.claim(alice.address, cumulative[0], t.proofOf(alice.address));
        await rewards.claim(bob.address, cumulative[1], t.proofOf(bob.address));
        const balance = await token.balanceOf(await rewards.getAddress());
        expect(await rewards.funded()).to.equal(balance + (await rewards.totalClaimed()));
        expect(await rewards.funded()).to.equal(FUNDING);
        expect((await rewards.currentRoot()).totalCumulative).to.be.lte(await rewards.funded());
      }
    });
  });
});
