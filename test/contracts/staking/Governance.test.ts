import { expect } from "chai";
import { network } from "hardhat";

import { deployStakingAndTee } from "../../../offchain/staking/deploy.js";
import { DELAY, INFERENCE, OPG, SUPPLY, VERIFIER, stakingFixtures } from "./fixtures.js";

const { ethers, networkHelpers } = await network.create();
const { deployed, registered } = stakingFixtures(ethers);
const loadFixture = networkHelpers.loadFixture.bind(networkHelpers);
const time = networkHelpers.time;

const ZERO = ethers.ZeroAddress;
const name = (s: string) => ethers.encodeBytes32String(s);

describe("NodeStaking governance", () => {
  describe("parameter setters", () => {
    const cases: Array<{
      fn:
        | "setUnbondingDelay"
        | "setVetoWindow"
        | "setHeartbeatTimeout"
        | "setJailCooldown"
        | "setBountyBps";
      event: string;
      field: "unbondingDelay" | "vetoWindow" | "heartbeatTimeout" | "jailCooldown" | "bountyBps";
      ok: bigint;
      bad: bigint[];
    }> = [
      {
        fn: "setUnbondingDelay",
        event: "UnbondingDelaySet",
        field: "unbondingDelay",
        ok: 0n,
        bad: [365n * 86_400n + 1n],
      },
      {
        fn: "setVetoWindow",
        event: "VetoWindowSet",
        field: "vetoWindow",
        ok: 30n * 86_400n,
        bad: [30n * 86_400n + 1n],
      },
      {
        fn: "setHeartbeatTimeout",
        event: "HeartbeatTimeoutSet",
        field: "heartbeatTimeout",
        ok: 1n,
        bad: [0n, 30n * 86_400n + 1n],
      },
      {
        fn: "setJailCooldown",
        event: "JailCooldownSet",
        field: "jailCooldown",
        ok: 0n,
        bad: [90n * 86_400n + 1n],
      },
      { fn: "setBountyBps", event: "BountyBpsSet", field: "bountyBps", ok: 5_000n, bad: [5_001n] },
    ];
    for (const c of cases) {
      describe(c.fn, () => {
        it(`sets ${c.field} and emits ${c.event}`, async () => {
          const { staking, governance } = await loadFixture(deployed);
          await expect(staking.connect(governance)[c.fn](c.ok))
            .to.emit(staking, c.event)
            .withArgs(c.ok);
          expect((await staking.params())[c.field]).to.equal(c.ok);
        });
        for (const bad of c.bad) {
          it(`reverts with StakingInvalidParameter for ${bad}`, async () => {
            const { staking, governance } = await loadFixture(deployed);
            await expect(staking.connect(governance)[c.fn](bad))
              .to.be.revertedWithCustomError(staking, "StakingInvalidParameter")
              .withArgs(name(c.field), bad);
          });
        }
      });
    }

    describe("setMinStake", () => {
      it("sets each role's minimum, which isActive follows at once", async () => {
        const { staking, governance, node } = await loadFixture(registered);
        await expect(staking.connect(governance).setMinStake(INFERENCE, 20_000n * OPG + 1n))
          .to.emit(staking, "MinStakeSet")
          .withArgs(INFERENCE, 20_000n * OPG + 1n);
        expect(await staking.minStake(INFERENCE)).to.equal(20_000n * OPG + 1n);
        expect(await staking.isActive(node)).to.be.false;
        await staking.connect(governance).setMinStake(VERIFIER, 7n);
        expect(await staking.minStake(VERIFIER)).to.equal(7n);
        expect(await staking.minStake(0)).to.equal(0n);
      });

      it("reverts with StakingInvalidRole for NONE and StakingInvalidParameter for 0 or > 96 bits", async () => {
        const { staking, governance } = await loadFixture(deployed);
        await expect(staking.connect(governance).setMinStake(0, OPG))
          .to.be.revertedWithCustomError(staking, "StakingInvalidRole")
          .withArgs(0);
        for (const bad of [0n, 2n ** 96n]) {
          await expect(staking.connect(governance).setMinStake(INFERENCE, bad))
            .to.be.revertedWithCustomError(staking, "StakingInvalidParameter")
            .withArgs(name("minStake"), bad);
        }
      });
    });

    describe("setSlashDestination", () => {
      it("switches between burning and a treasury", async () => {
        const { staking, governance, stranger } = await loadFixture(deployed);
        await expect(staking.connect(governance).setSlashDestination(true, ZERO))
          .to.emit(staking, "SlashDestinationSet")
          .withArgs(true, ZERO);
        expect((await staking.params()).burnSlashed).to.be.true;
        await staking.connect(governance).setSlashDestination(false, stranger.address);
        expect((await staking.params()).treasury).to.equal(stranger.address);
      });

      it("reverts with StakingZeroAddress for a zero treasury when not burning", async () => {
        const { staking, governance } = await loadFixture(deployed);
        await expect(
          staking.connect(governance).setSlashDestination(false, ZERO),
        ).to.be.revertedWithCustomError(staking, "StakingZeroAddress");
      });
    });
  });

  describe("views of unknown nodes and requests", () => {
    it("answer zero, and heartbeatDeadline reverts with StakingUnknownNode", async () => {
      const { staking, node } = await loadFixture(deployed);
      const info = await staking.getNode(node);
      expect(info.operator).to.equal(ZERO);
      expect(info.role).to.equal(0n);
      expect(await staking.isActive(node)).to.be.false;
      expect(await staking.roleOf(node)).to.equal(0n);
      expect(await staking.signerOf(node)).to.equal(ZERO);
      expect(await staking.nodeOfSigner(node)).to.equal(ZERO);
      expect(await staking.stakeOf(node)).to.deep.equal([0n, 0n]);
      expect(await staking.unbondingEntries(node)).to.deep.equal([]);
      expect(await staking.withdrawable(node)).to.equal(0n);
      expect((await staking.slashRequest(1n)).status).to.equal(0n);
      expect(await staking.slashRequestCount()).to.equal(0n);
      await expect(staking.heartbeatDeadline(node))
        .to.be.revertedWithCustomError(staking, "StakingUnknownNode")
        .withArgs(node);
    });
  });

  describe("deployment with a TimelockController holding governance", () => {
    async function timelocked() {
      const [deployer, proposer, operator, signer, ledger] = await ethers.getSigners();
      const timelock = await ethers.deployContract("OPGTimelock", [
        86_400n,
        [proposer!.address],
        [ZERO], // anyone executes once the delay has passed
        ZERO,
      ]);
      const token = await ethers.deployContract("OPGToken", [deployer!.address, SUPPLY]);
      const contracts = await deployStakingAndTee(ethers, {
        token: await token.getAddress(),
        governance: await timelock.getAddress(),
      });
      return {
        ...contracts,
        timelock,
        token,
        deployer: deployer!,
        proposer: proposer!,
        operator: operator!,
        signer: signer!,
        ledger: ledger!,
      };
    }

    it("leaves the deployer with no role and burns slashes when no treasury is given", async () => {
      const { staking, tee, deployer, timelock } = await loadFixture(timelocked);
      const timelockAddress = await timelock.getAddress();
      for (const c of [staking, tee]) {
        expect(await c.hasRole(await c.DEFAULT_ADMIN_ROLE(), timelockAddress)).to.be.true;
        expect(await c.hasRole(await c.GOVERNANCE_ROLE(), timelockAddress)).to.be.true;
        expect(await c.hasRole(await c.DEFAULT_ADMIN_ROLE(), deployer.address)).to.be.false;
        expect(await c.hasRole(await c.GOVERNANCE_ROLE(), deployer.address)).to.be.false;
      }
      expect((await staking.params()).burnSlashed).to.be.true;
    });

    it("changes a parameter only through schedule, delay and execute", async () => {
      const { staking, timelock, proposer } = await loadFixture(timelocked);
      await expect(staking.connect(proposer).setUnbondingDelay(DELAY * 2n))
        .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
        .withArgs(proposer.address, await staking.GOVERNANCE_ROLE());
      const target = await staking.getAddress();
      const data = staking.interface.encodeFunctionData("setUnbondingDelay", [DELAY * 2n]);
      const salt = ethers.id("unbonding delay x2");
      await timelock.connect(proposer).schedule(target, 0n, data, ethers.ZeroHash, salt, 86_400n);
      await expect(
        timelock.execute(target, 0n, data, ethers.ZeroHash, salt),
      ).to.be.revertedWithCustomError(timelock, "TimelockUnexpectedOperationState");
      await time.increase(86_400n);
      await expect(timelock.execute(target, 0n, data, ethers.ZeroHash, salt))
        .to.emit(staking, "UnbondingDelaySet")
        .withArgs(DELAY * 2n);
      expect((await staking.params()).unbondingDelay).to.equal(DELAY * 2n);
    });

    it("grants SLASHER_ROLE to a new evidence contract through the timelock", async () => {
      const { staking, timelock, proposer, ledger } = await loadFixture(timelocked);
      const target = await staking.getAddress();
      const data = staking.interface.encodeFunctionData("grantRole", [
        await staking.SLASHER_ROLE(),
        ledger.address,
      ]);
      await timelock
        .connect(proposer)
        .schedule(target, 0n, data, ethers.ZeroHash, ethers.ZeroHash, 86_400n);
      await time.increase(86_400n);
      await timelock.execute(target, 0n, data, ethers.ZeroHash, ethers.ZeroHash);
      expect(await staking.hasRole(await staking.SLASHER_ROLE(), ledger.address)).to.be.true;
    });
  });
});
