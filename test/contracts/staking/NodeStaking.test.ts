import { expect } from "chai";
import { network } from "hardhat";

import {
  BOUNTY_BPS,
  DELAY,
  EVIDENCE,
  HEARTBEAT_TIMEOUT,
  INFERENCE,
  JAIL_COOLDOWN,
  MIN_INFERENCE,
  MIN_VERIFIER,
  OPG,
  VERIFIER,
  VETO_WINDOW,
  stakingFixtures,
} from "./fixtures.js";

const { ethers, networkHelpers } = await network.create();
const { deployed, registered, unbonding } = stakingFixtures(ethers);
const loadFixture = networkHelpers.loadFixture.bind(networkHelpers);
const time = networkHelpers.time;

const ZERO = ethers.ZeroAddress;
const UINT96_MAX = 2n ** 96n - 1n;
const STAKE = 20_000n * OPG;
const JAIL_MISSED_HEARTBEAT = 1n;

describe("NodeStaking", () => {
  describe("constructor", () => {
    it("sets the token, the parameters and hands the roles to governance", async () => {
      const { staking, token, governance, deployer, veto, governanceSlasher, slasher, treasury } =
        await loadFixture(deployed);
      expect(await staking.token()).to.equal(await token.getAddress());
      const p = await staking.params();
      expect(p.minStakeInference).to.equal(MIN_INFERENCE);
      expect(p.minStakeVerifier).to.equal(MIN_VERIFIER);
      expect(p.unbondingDelay).to.equal(DELAY);
      expect(p.vetoWindow).to.equal(VETO_WINDOW);
      expect(p.heartbeatTimeout).to.equal(HEARTBEAT_TIMEOUT);
      expect(p.jailCooldown).to.equal(JAIL_COOLDOWN);
      expect(p.bountyBps).to.equal(BOUNTY_BPS);
      expect(p.burnSlashed).to.equal(false);
      expect(p.treasury).to.equal(treasury.address);
      expect(await staking.hasRole(await staking.DEFAULT_ADMIN_ROLE(), governance.address)).to.be
        .true;
      expect(await staking.hasRole(await staking.GOVERNANCE_ROLE(), governance.address)).to.be.true;
      expect(await staking.hasRole(await staking.VETO_ROLE(), veto.address)).to.be.true;
      expect(
        await staking.hasRole(await staking.GOVERNANCE_SLASHER_ROLE(), governanceSlasher.address),
      ).to.be.true;
      expect(await staking.hasRole(await staking.SLASHER_ROLE(), slasher.address)).to.be.true;
      expect(await staking.hasRole(await staking.DEFAULT_ADMIN_ROLE(), deployer.address)).to.be
        .false;
      expect(await staking.hasRole(await staking.GOVERNANCE_ROLE(), deployer.address)).to.be.false;
      expect(await staking.MAX_UNBONDING_ENTRIES()).to.equal(8n);
    });

    const params = {
      minStakeInference: MIN_INFERENCE,
      minStakeVerifier: MIN_VERIFIER,
      unbondingDelay: DELAY,
      vetoWindow: VETO_WINDOW,
      heartbeatTimeout: HEARTBEAT_TIMEOUT,
      jailCooldown: JAIL_COOLDOWN,
      bountyBps: BOUNTY_BPS,
      burnSlashed: true,
      treasury: ZERO,
    };

    it("reverts with StakingZeroAddress for a zero token or admin", async () => {
      const { deployer, token } = await loadFixture(deployed);
      const factory = await ethers.getContractFactory("NodeStaking");
      await expect(factory.deploy(ZERO, deployer.address, params)).to.be.revertedWithCustomError(
        factory,
        "StakingZeroAddress",
      );
      await expect(
        factory.deploy(await token.getAddress(), ZERO, params),
      ).to.be.revertedWithCustomError(factory, "StakingZeroAddress");
    });

    it("reverts with StakingInvalidParameter for out-of-range parameters", async () => {
      const { deployer, token } = await loadFixture(deployed);
      const factory = await ethers.getContractFactory("NodeStaking");
      await expect(
        factory.deploy(await token.getAddress(), deployer.address, {
          ...params,
          bountyBps: 5_001n,
        }),
      )
        .to.be.revertedWithCustomError(factory, "StakingInvalidParameter")
        .withArgs(ethers.encodeBytes32String("bountyBps"), 5_001n);
      await expect(
        factory.deploy(await token.getAddress(), deployer.address, {
          ...params,
          minStakeVerifier: 0n,
        }),
      )
        .to.be.revertedWithCustomError(factory, "StakingInvalidParameter")
        .withArgs(ethers.encodeBytes32String("minStake"), 0n);
    });

    it("reverts with StakingZeroAddress when the remainder goes to a zero treasury", async () => {
      const { deployer, token } = await loadFixture(deployed);
      const factory = await ethers.getContractFactory("NodeStaking");
      await expect(
        factory.deploy(await token.getAddress(), deployer.address, {
          ...params,
          burnSlashed: false,
        }),
      ).to.be.revertedWithCustomError(factory, "StakingZeroAddress");
    });
  });

  describe("register", () => {
    it("registers the node, pulls the stake and makes it active", async () => {
      const { staking, token, operator, signer, node, stakingAddress } =
        await loadFixture(deployed);
      const before = await token.balanceOf(operator.address);
      const tx = staking
        .connect(operator)
        .register(node, INFERENCE, signer.address, STAKE, "https://a.example");
      await expect(tx)
        .to.emit(staking, "NodeRegistered")
        .withArgs(node, operator.address, INFERENCE, signer.address, STAKE, "https://a.example");
      await expect(tx).to.emit(token, "Transfer").withArgs(operator.address, stakingAddress, STAKE);
      expect(await token.balanceOf(operator.address)).to.equal(before - STAKE);
      expect(await staking.isActive(node)).to.be.true;
      expect(await staking.roleOf(node)).to.equal(INFERENCE);
      expect(await staking.signerOf(node)).to.equal(signer.address);
      expect(await staking.nodeOfSigner(signer.address)).to.equal(node);
      expect(await staking.operatorOf(node)).to.equal(operator.address);
      expect(await staking.stakeOf(node)).to.deep.equal([STAKE, 0n]);
      const info = await staking.getNode(node);
      expect(info.lastHeartbeat).to.equal(BigInt(await time.latest()));
      expect(info.jailed).to.be.false;
      expect(info.exited).to.be.false;
      expect(await staking.heartbeatDeadline(node)).to.equal(
        info.lastHeartbeat + HEARTBEAT_TIMEOUT,
      );
    });

    it("accepts a VERIFIER node at exactly its minimum", async () => {
      const { staking, operator, signer, node } = await loadFixture(deployed);
      await staking.connect(operator).register(node, VERIFIER, signer.address, MIN_VERIFIER, "");
      expect(await staking.isActive(node)).to.be.true;
      expect(await staking.roleOf(node)).to.equal(VERIFIER);
    });

    it("reverts with StakingZeroAddress for a zero node or signer", async () => {
      const { staking, operator, signer, node } = await loadFixture(deployed);
      await expect(
        staking.connect(operator).register(ZERO, INFERENCE, signer.address, STAKE, ""),
      ).to.be.revertedWithCustomError(staking, "StakingZeroAddress");
      await expect(
        staking.connect(operator).register(node, INFERENCE, ZERO, STAKE, ""),
      ).to.be.revertedWithCustomError(staking, "StakingZeroAddress");
    });

    it("reverts with StakingNodeAlreadyRegistered for a taken id", async () => {
      const { staking, operator2, signer2, node } = await loadFixture(registered);
      await expect(staking.connect(operator2).register(node, INFERENCE, signer2.address, STAKE, ""))
        .to.be.revertedWithCustomError(staking, "StakingNodeAlreadyRegistered")
        .withArgs(node);
    });

    it("reverts with StakingInvalidRole for role NONE", async () => {
      const { staking, operator, signer, node } = await loadFixture(deployed);
      await expect(staking.connect(operator).register(node, 0, signer.address, STAKE, ""))
        .to.be.revertedWithCustomError(staking, "StakingInvalidRole")
        .withArgs(0);
    });

    it("reverts with StakingSignerTaken for a signer of another node", async () => {
      const { staking, operator2, signer, node, node2 } = await loadFixture(registered);
      await expect(staking.connect(operator2).register(node2, INFERENCE, signer.address, STAKE, ""))
        .to.be.revertedWithCustomError(staking, "StakingSignerTaken")
        .withArgs(signer.address, node);
    });

    it("reverts with StakingSignerTaken for a key another node rotated away from", async () => {
      const { staking, operator, operator2, signer, signer2, node, node2 } =
        await loadFixture(registered);
      await staking.connect(operator).rotateSigner(node, signer2.address);
      await expect(staking.connect(operator2).register(node2, INFERENCE, signer.address, STAKE, ""))
        .to.be.revertedWithCustomError(staking, "StakingSignerTaken")
        .withArgs(signer.address, node);
    });

    it("records the signer key as the node's for good, current since registration", async () => {
      const { staking, signer, node } = await loadFixture(registered);
      expect(await staking.signerRecordOf(signer.address)).to.deep.equal([
        node,
        BigInt(await time.latest()),
        0n,
      ]);
    });

    it("reverts with StakingInvalidAmount for zero or more than 96 bits", async () => {
      const { staking, operator, signer, node } = await loadFixture(deployed);
      await expect(staking.connect(operator).register(node, INFERENCE, signer.address, 0n, ""))
        .to.be.revertedWithCustomError(staking, "StakingInvalidAmount")
        .withArgs(0n);
      await expect(
        staking.connect(operator).register(node, INFERENCE, signer.address, UINT96_MAX + 1n, ""),
      )
        .to.be.revertedWithCustomError(staking, "StakingInvalidAmount")
        .withArgs(UINT96_MAX + 1n);
    });

    it("reverts with StakingInsufficientStake below the role's minimum", async () => {
      const { staking, operator, signer, node } = await loadFixture(deployed);
      await expect(
        staking.connect(operator).register(node, VERIFIER, signer.address, MIN_VERIFIER - 1n, ""),
      )
        .to.be.revertedWithCustomError(staking, "StakingInsufficientStake")
        .withArgs(node, MIN_VERIFIER - 1n, MIN_VERIFIER);
    });

    it("reverts with the token's error without an allowance", async () => {
      const { staking, token, stranger, signer, node, stakingAddress } =
        await loadFixture(deployed);
      await token.transfer(stranger.address, STAKE);
      await expect(staking.connect(stranger).register(node, INFERENCE, signer.address, STAKE, ""))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
        .withArgs(stakingAddress, 0n, STAKE);
    });
  });

  describe("increaseStake", () => {
    it("adds to the active stake", async () => {
      const { staking, token, operator, node, stakingAddress } = await loadFixture(registered);
      const tx = staking.connect(operator).increaseStake(node, 5n * OPG);
      await expect(tx)
        .to.emit(staking, "StakeIncreased")
        .withArgs(node, 5n * OPG, STAKE + 5n * OPG);
      await expect(tx)
        .to.emit(token, "Transfer")
        .withArgs(operator.address, stakingAddress, 5n * OPG);
      expect((await staking.stakeOf(node))[0]).to.equal(STAKE + 5n * OPG);
    });

    it("makes a node below its minimum active again", async () => {
      const { staking, operator, node } = await loadFixture(registered);
      await staking.connect(operator).unbond(node, 15_000n * OPG);
      expect(await staking.isActive(node)).to.be.false;
      await staking.connect(operator).increaseStake(node, 5_000n * OPG);
      expect(await staking.isActive(node)).to.be.true;
    });

    it("reverts with StakingUnknownNode for an unknown node", async () => {
      const { staking, operator, node2 } = await loadFixture(registered);
      await expect(staking.connect(operator).increaseStake(node2, OPG))
        .to.be.revertedWithCustomError(staking, "StakingUnknownNode")
        .withArgs(node2);
    });

    it("reverts with StakingNotOperator for anyone else", async () => {
      const { staking, operator, operator2, node } = await loadFixture(registered);
      await expect(staking.connect(operator2).increaseStake(node, OPG))
        .to.be.revertedWithCustomError(staking, "StakingNotOperator")
        .withArgs(node, operator2.address, operator.address);
    });

    it("reverts with StakingNodeExited after exit", async () => {
      const { staking, operator, node } = await loadFixture(registered);
      await staking.connect(operator).exit(node);
      await expect(staking.connect(operator).increaseStake(node, OPG))
        .to.be.revertedWithCustomError(staking, "StakingNodeExited")
        .withArgs(node);
    });

    it("reverts with StakingInvalidAmount for zero or more than 96 bits", async () => {
      const { staking, operator, node } = await loadFixture(registered);
      await expect(staking.connect(operator).increaseStake(node, 0n))
        .to.be.revertedWithCustomError(staking, "StakingInvalidAmount")
        .withArgs(0n);
      await expect(staking.connect(operator).increaseStake(node, UINT96_MAX))
        .to.be.revertedWithCustomError(staking, "StakingInvalidAmount")
        .withArgs(UINT96_MAX + STAKE);
    });
  });

  describe("unbond", () => {
    it("queues an entry releasable after the delay, without moving tokens", async () => {
      const { staking, token, operator, node, stakingAddress } = await loadFixture(registered);
      const balance = await token.balanceOf(stakingAddress);
      const tx = staking.connect(operator).unbond(node, 1_000n * OPG);
      const release = BigInt(await time.latest()) + 1n + DELAY;
      await expect(tx)
        .to.emit(staking, "UnbondingRequested")
        .withArgs(node, 0n, 1_000n * OPG, release);
      expect(await staking.stakeOf(node)).to.deep.equal([STAKE - 1_000n * OPG, 1_000n * OPG]);
      expect(await staking.unbondingEntries(node)).to.deep.equal([[1_000n * OPG, release]]);
      expect(await token.balanceOf(stakingAddress)).to.equal(balance);
      expect((await staking.getNode(node)).unbondingEntries).to.equal(1n);
    });

    it("makes the node inactive when the rest is below the minimum", async () => {
      const { staking, operator, node } = await loadFixture(registered);
      await staking.connect(operator).unbond(node, STAKE - MIN_INFERENCE);
      expect(await staking.isActive(node)).to.be.true;
      await staking.connect(operator).unbond(node, 1n);
      expect(await staking.isActive(node)).to.be.false;
    });

    it("never lets a later entry release before an earlier one, even after the delay is shortened", async () => {
      const { staking, operator, governance, node } = await loadFixture(registered);
      await staking.connect(operator).unbond(node, OPG);
      await staking.connect(governance).setUnbondingDelay(60n);
      await staking.connect(operator).unbond(node, OPG);
      const [first, second] = await staking.unbondingEntries(node);
      expect(second!.releaseTime).to.equal(first!.releaseTime);
    });

    it("reverts with StakingUnbondingQueueFull past MAX_UNBONDING_ENTRIES", async () => {
      const { staking, operator, node } = await loadFixture(registered);
      for (let i = 0; i < 8; i++) await staking.connect(operator).unbond(node, OPG);
      await expect(staking.connect(operator).unbond(node, OPG))
        .to.be.revertedWithCustomError(staking, "StakingUnbondingQueueFull")
        .withArgs(node, 8n);
    });

    it("reverts with StakingUnbondExceedsActive for more than the active stake", async () => {
      const { staking, operator, node } = await loadFixture(registered);
      await expect(staking.connect(operator).unbond(node, STAKE + 1n))
        .to.be.revertedWithCustomError(staking, "StakingUnbondExceedsActive")
        .withArgs(node, STAKE + 1n, STAKE);
    });

    it("reverts with StakingInvalidAmount for zero", async () => {
      const { staking, operator, node } = await loadFixture(registered);
      await expect(staking.connect(operator).unbond(node, 0n))
        .to.be.revertedWithCustomError(staking, "StakingInvalidAmount")
        .withArgs(0n);
    });

    it("reverts with StakingNodeExited, StakingNotOperator and StakingUnknownNode", async () => {
      const { staking, operator, operator2, node, node2 } = await loadFixture(registered);
      await expect(staking.connect(operator2).unbond(node, OPG))
        .to.be.revertedWithCustomError(staking, "StakingNotOperator")
        .withArgs(node, operator2.address, operator.address);
      await expect(staking.connect(operator).unbond(node2, OPG))
        .to.be.revertedWithCustomError(staking, "StakingUnknownNode")
        .withArgs(node2);
      await staking.connect(operator).exit(node);
      await expect(staking.connect(operator).unbond(node, OPG))
        .to.be.revertedWithCustomError(staking, "StakingNodeExited")
        .withArgs(node);
    });
  });

  describe("withdraw", () => {
    it("pays the matured entries only, oldest first", async () => {
      const { staking, token, operator, node } = await loadFixture(unbonding);
      const [first, second] = await staking.unbondingEntries(node);
      await time.increaseTo(second!.releaseTime);
      expect(await staking.withdrawable(node)).to.equal(3_000n * OPG);
      const before = await token.balanceOf(operator.address);
      await expect(staking.connect(operator).withdraw(node))
        .to.emit(staking, "Withdrawn")
        .withArgs(node, operator.address, 3_000n * OPG, 2n);
      expect(await token.balanceOf(operator.address)).to.equal(before + 3_000n * OPG);
      expect(await staking.unbondingEntries(node)).to.have.length(1);
      expect((await staking.stakeOf(node))[1]).to.equal(3_000n * OPG);
      expect(first!.releaseTime).to.be.lessThan(second!.releaseTime);
    });

    it("reverts with StakingNothingToWithdraw before the first release time", async () => {
      const { staking, operator, node } = await loadFixture(unbonding);
      const [first] = await staking.unbondingEntries(node);
      await time.setNextBlockTimestamp(first!.releaseTime - 1n);
      await expect(staking.connect(operator).withdraw(node))
        .to.be.revertedWithCustomError(staking, "StakingNothingToWithdraw")
        .withArgs(node, first!.releaseTime);
    });

    it("pays an entry exactly at its release time", async () => {
      const { staking, operator, node } = await loadFixture(unbonding);
      const [first] = await staking.unbondingEntries(node);
      await time.setNextBlockTimestamp(first!.releaseTime);
      await expect(staking.connect(operator).withdraw(node))
        .to.emit(staking, "Withdrawn")
        .withArgs(node, operator.address, 1_000n * OPG, 1n);
    });

    it("pays an entry one second after its release time", async () => {
      const { staking, operator, node } = await loadFixture(unbonding);
      const [first] = await staking.unbondingEntries(node);
      await time.setNextBlockTimestamp(first!.releaseTime + 1n);
      await expect(staking.connect(operator).withdraw(node))
        .to.emit(staking, "Withdrawn")
        .withArgs(node, operator.address, 1_000n * OPG, 1n);
    });

    it("counts an entry in withdrawable from its release time on, not a second before", async () => {
      const { staking, node } = await loadFixture(unbonding);
      const [first] = await staking.unbondingEntries(node);
      const expected: Array<[bigint, bigint]> = [
        [first!.releaseTime - 1n, 0n],
        [first!.releaseTime, 1_000n * OPG],
        [first!.releaseTime + 1n, 1_000n * OPG],
      ];
      for (const [at, amount] of expected) {
        await time.increaseTo(at);
        expect(await staking.withdrawable(node), `at ${at}`).to.equal(amount);
      }
    });

    it("reverts with StakingNothingToWithdraw(node, 0) with an empty queue", async () => {
      const { staking, operator, node } = await loadFixture(registered);
      await expect(staking.connect(operator).withdraw(node))
        .to.be.revertedWithCustomError(staking, "StakingNothingToWithdraw")
        .withArgs(node, 0n);
    });

    it("pops entries that a full slash emptied, paying nothing", async () => {
      const { staking, token, operator, slasher, node } = await loadFixture(unbonding);
      await staking.connect(slasher).slash(node, 10_000n, ZERO, false, EVIDENCE);
      await time.increase(DELAY + 10_000n);
      const before = await token.balanceOf(operator.address);
      await expect(staking.connect(operator).withdraw(node))
        .to.emit(staking, "Withdrawn")
        .withArgs(node, operator.address, 0n, 3n);
      expect(await token.balanceOf(operator.address)).to.equal(before);
      expect(await staking.unbondingEntries(node)).to.have.length(0);
    });

    it("reverts with StakingSlashPending while a governance slash is pending", async () => {
      const { staking, operator, governanceSlasher, node } = await loadFixture(unbonding);
      await staking
        .connect(governanceSlasher)
        .requestSlash(node, false, 1_000n, ZERO, false, EVIDENCE);
      await time.increase(DELAY + 10_000n);
      await expect(staking.connect(operator).withdraw(node))
        .to.be.revertedWithCustomError(staking, "StakingSlashPending")
        .withArgs(node, 1n);
    });

    it("reverts with StakingNotOperator and StakingUnknownNode", async () => {
      const { staking, operator, operator2, node, node2 } = await loadFixture(unbonding);
      await expect(staking.connect(operator2).withdraw(node))
        .to.be.revertedWithCustomError(staking, "StakingNotOperator")
        .withArgs(node, operator2.address, operator.address);
      await expect(staking.connect(operator).withdraw(node2))
        .to.be.revertedWithCustomError(staking, "StakingUnknownNode")
        .withArgs(node2);
    });
  });

  describe("exit", () => {
    it("queues all active stake, deactivates the node for good, and still lets it withdraw", async () => {
      const { staking, token, operator, node } = await loadFixture(registered);
      const tx = staking.connect(operator).exit(node);
      const release = BigInt(await time.latest()) + 1n + DELAY;
      await expect(tx).to.emit(staking, "NodeExited").withArgs(node, STAKE, release);
      await expect(tx).to.emit(staking, "UnbondingRequested").withArgs(node, 0n, STAKE, release);
      expect(await staking.isActive(node)).to.be.false;
      expect((await staking.getNode(node)).exited).to.be.true;
      expect(await staking.stakeOf(node)).to.deep.equal([0n, STAKE]);
      await time.increaseTo(release);
      const before = await token.balanceOf(operator.address);
      await staking.connect(operator).withdraw(node);
      expect(await token.balanceOf(operator.address)).to.equal(before + STAKE);
    });

    it("queues nothing when nothing is active", async () => {
      const { staking, operator, node } = await loadFixture(registered);
      await staking.connect(operator).unbond(node, STAKE);
      await expect(staking.connect(operator).exit(node))
        .to.emit(staking, "NodeExited")
        .withArgs(node, 0n, 0n);
      expect(await staking.unbondingEntries(node)).to.have.length(1);
    });

    it("reverts with StakingUnbondingQueueFull when the queue is full", async () => {
      const { staking, operator, node } = await loadFixture(registered);
      for (let i = 0; i < 8; i++) await staking.connect(operator).unbond(node, OPG);
      await expect(staking.connect(operator).exit(node))
        .to.be.revertedWithCustomError(staking, "StakingUnbondingQueueFull")
        .withArgs(node, 8n);
    });

    it("reverts with StakingNodeExited the second time, and StakingNotOperator for others", async () => {
      const { staking, operator, operator2, node } = await loadFixture(registered);
      await expect(staking.connect(operator2).exit(node))
        .to.be.revertedWithCustomError(staking, "StakingNotOperator")
        .withArgs(node, operator2.address, operator.address);
      await staking.connect(operator).exit(node);
      await expect(staking.connect(operator).exit(node))
        .to.be.revertedWithCustomError(staking, "StakingNodeExited")
        .withArgs(node);
    });
  });

  describe("rotateSigner", () => {
    it("keeps the old signer as a former signer of that node only (wasSignerOf)", async () => {
      const { staking, operator, signer, signer2, node, node2 } = await loadFixture(registered);
      expect(await staking.wasSignerOf(node, signer.address)).to.equal(true);
      expect(await staking.wasSignerOf(node, signer2.address)).to.equal(false);
      await staking.connect(operator).rotateSigner(node, signer2.address);
      expect(await staking.wasSignerOf(node, signer.address)).to.equal(true);
      expect(await staking.wasSignerOf(node, signer2.address)).to.equal(true);
      expect(await staking.wasSignerOf(node2, signer.address)).to.equal(false);
      expect(await staking.wasSignerOf(node, ZERO)).to.equal(false);
    });

    it("moves the node to the new signer and frees the old one", async () => {
      const { staking, operator, signer, signer2, node } = await loadFixture(registered);
      await expect(staking.connect(operator).rotateSigner(node, signer2.address))
        .to.emit(staking, "SignerRotated")
        .withArgs(node, signer.address, signer2.address);
      expect(await staking.signerOf(node)).to.equal(signer2.address);
      expect(await staking.nodeOfSigner(signer2.address)).to.equal(node);
      expect(await staking.nodeOfSigner(signer.address)).to.equal(ZERO);
      await expect(staking.connect(signer).heartbeat(node))
        .to.be.revertedWithCustomError(staking, "StakingNotSigner")
        .withArgs(node, signer.address, signer2.address);
    });

    it("reverts with StakingZeroAddress, StakingSignerTaken and StakingNotOperator", async () => {
      const { staking, operator, operator2, signer, signer2, node, node2 } =
        await loadFixture(registered);
      await expect(
        staking.connect(operator).rotateSigner(node, ZERO),
      ).to.be.revertedWithCustomError(staking, "StakingZeroAddress");
      await staking.connect(operator2).register(node2, INFERENCE, signer2.address, STAKE, "");
      await expect(staking.connect(operator).rotateSigner(node, signer2.address))
        .to.be.revertedWithCustomError(staking, "StakingSignerTaken")
        .withArgs(signer2.address, node2);
      await expect(staking.connect(operator2).rotateSigner(node, operator2.address))
        .to.be.revertedWithCustomError(staking, "StakingNotOperator")
        .withArgs(node, operator2.address, operator.address);
      expect(await staking.signerOf(node)).to.equal(signer.address);
    });

    it("lets the operator of an exited node replace a leaked key while its stake unbonds", async () => {
      // The current key signs valid evidence for any date: were rotation refused after exit, a thief holding it
      // could have the unbonding stake slashed once per offence cooldown until it is withdrawn.
      const { staking, operator, signer, signer2, node } = await loadFixture(registered);
      await staking.connect(operator).exit(node);
      await expect(staking.connect(operator).rotateSigner(node, signer2.address))
        .to.emit(staking, "SignerRotated")
        .withArgs(node, signer.address, signer2.address);
      const rotatedAt = BigInt(await time.latest());
      expect((await staking.signerStatus(node, signer.address, rotatedAt))[1]).to.equal(false);
      expect((await staking.signerStatus(node, signer.address, rotatedAt - 1n))[1]).to.equal(true);
    });

    it("records when each key was current: since its rotation in, until its rotation out", async () => {
      const { staking, operator, signer, signer2, node } = await loadFixture(registered);
      const since = (await staking.signerRecordOf(signer.address)).since;
      await time.increase(3_600n);
      await staking.connect(operator).rotateSigner(node, signer2.address);
      const rotatedAt = BigInt(await time.latest());
      expect(await staking.signerRecordOf(signer.address)).to.deep.equal([node, since, rotatedAt]);
      expect(await staking.signerRecordOf(signer2.address)).to.deep.equal([node, rotatedAt, 0n]);
      expect(await staking.signerRecordOf(ZERO)).to.deep.equal([ZERO, 0n, 0n]);
    });

    it("reverts with StakingSignerTaken for the node's own current key and for its former key", async () => {
      const { staking, operator, signer, signer2, node } = await loadFixture(registered);
      await expect(staking.connect(operator).rotateSigner(node, signer.address))
        .to.be.revertedWithCustomError(staking, "StakingSignerTaken")
        .withArgs(signer.address, node);
      await staking.connect(operator).rotateSigner(node, signer2.address);
      await expect(staking.connect(operator).rotateSigner(node, signer.address))
        .to.be.revertedWithCustomError(staking, "StakingSignerTaken")
        .withArgs(signer.address, node);
      expect(await staking.signerOf(node)).to.equal(signer2.address);
    });

    it("reverts with StakingSignerTaken for a key another node rotated away from", async () => {
      const { staking, operator, operator2, signer, signer2, stranger, node, node2 } =
        await loadFixture(registered);
      await staking.connect(operator2).register(node2, INFERENCE, signer2.address, STAKE, "");
      await staking.connect(operator2).rotateSigner(node2, stranger.address);
      await expect(staking.connect(operator).rotateSigner(node, signer2.address))
        .to.be.revertedWithCustomError(staking, "StakingSignerTaken")
        .withArgs(signer2.address, node2);
      expect(await staking.signerOf(node)).to.equal(signer.address);
    });
  });

  describe("signerStatus", () => {
    /** `node` rotated from `signer` to `signer2` at `rotatedAt`. */
    async function rotatedSigner() {
      const f = await registered();
      await time.increase(3_600n);
      await f.staking.connect(f.operator).rotateSigner(f.node, f.signer2.address);
      return { ...f, rotatedAt: BigInt(await time.latest()) };
    }

    it("accepts the current key at any time", async () => {
      const { staking, signer2, node, rotatedAt } = await loadFixture(rotatedSigner);
      for (const at of [0n, rotatedAt - 1n, rotatedAt, 2n ** 64n]) {
        expect(await staking.signerStatus(node, signer2.address, at)).to.deep.equal([
          BigInt(INFERENCE),
          true,
        ]);
      }
    });

    it("accepts a former key only for times before its rotation", async () => {
      const { staking, signer, node, rotatedAt } = await loadFixture(rotatedSigner);
      const expected: Array<[bigint, boolean]> = [
        [0n, true],
        [rotatedAt - 1n, true],
        [rotatedAt, false],
        [rotatedAt + 1n, false],
      ];
      for (const [at, valid] of expected) {
        expect(await staking.signerStatus(node, signer.address, at)).to.deep.equal([
          BigInt(INFERENCE),
          valid,
        ]);
      }
    });

    it("refuses a key of another node, a key never used and the zero key, with the node's role", async () => {
      const { staking, operator2, signer, stranger, node, node2, rotatedAt } =
        await loadFixture(rotatedSigner);
      await staking
        .connect(operator2)
        .register(node2, VERIFIER, stranger.address, MIN_VERIFIER, "");
      for (const [n, key, role] of [
        [node2, signer.address, VERIFIER],
        [node, stranger.address, INFERENCE],
        [node, ethers.Wallet.createRandom().address, INFERENCE],
        [node, ZERO, INFERENCE],
      ] as const) {
        expect(await staking.signerStatus(n, key, rotatedAt - 1n)).to.deep.equal([
          BigInt(role),
          false,
        ]);
      }
    });

    it("answers role NONE for an unknown node", async () => {
      const { staking, signer, node2 } = await loadFixture(rotatedSigner);
      expect(await staking.signerStatus(node2, signer.address, 0n)).to.deep.equal([0n, false]);
    });
  });

  describe("setPayee", () => {
    it("pays the operator by default, the payee once set, the operator again once cleared", async () => {
      const { staking, operator, reporter, node } = await loadFixture(registered);
      expect(await staking.payeeOf(node)).to.equal(operator.address);
      await expect(staking.connect(operator).setPayee(node, reporter.address))
        .to.emit(staking, "PayeeSet")
        .withArgs(node, reporter.address);
      expect(await staking.payeeOf(node)).to.equal(reporter.address);
      await expect(staking.connect(operator).setPayee(node, ZERO))
        .to.emit(staking, "PayeeSet")
        .withArgs(node, ZERO);
      expect(await staking.payeeOf(node)).to.equal(operator.address);
    });

    it("answers zero for an unknown node", async () => {
      const { staking, node2 } = await loadFixture(registered);
      expect(await staking.payeeOf(node2)).to.equal(ZERO);
    });

    it("reverts with StakingNotOperator for anyone else, and StakingUnknownNode", async () => {
      const { staking, operator, signer, node, node2 } = await loadFixture(registered);
      await expect(staking.connect(signer).setPayee(node, signer.address))
        .to.be.revertedWithCustomError(staking, "StakingNotOperator")
        .withArgs(node, signer.address, operator.address);
      await expect(staking.connect(operator).setPayee(node2, signer.address))
        .to.be.revertedWithCustomError(staking, "StakingUnknownNode")
        .withArgs(node2);
    });
  });

  describe("setMetadata", () => {
    it("records the new URI in an event", async () => {
      const { staking, operator, node } = await loadFixture(registered);
      await expect(staking.connect(operator).setMetadata(node, "https://b.example"))
        .to.emit(staking, "MetadataUpdated")
        .withArgs(node, "https://b.example");
    });

    it("reverts with StakingNotOperator and StakingNodeExited", async () => {
      const { staking, operator, operator2, node } = await loadFixture(registered);
      await expect(staking.connect(operator2).setMetadata(node, ""))
        .to.be.revertedWithCustomError(staking, "StakingNotOperator")
        .withArgs(node, operator2.address, operator.address);
      await staking.connect(operator).exit(node);
      await expect(staking.connect(operator).setMetadata(node, ""))
        .to.be.revertedWithCustomError(staking, "StakingNodeExited")
        .withArgs(node);
    });
  });

  describe("heartbeat", () => {
    it("moves the deadline forward", async () => {
      const { staking, signer, node } = await loadFixture(registered);
      await time.increase(600);
      await expect(staking.connect(signer).heartbeat(node))
        .to.emit(staking, "HeartbeatSent")
        .withArgs(node);
      const now = BigInt(await time.latest());
      expect((await staking.getNode(node)).lastHeartbeat).to.equal(now);
      expect(await staking.heartbeatDeadline(node)).to.equal(now + HEARTBEAT_TIMEOUT);
    });

    it("reverts with StakingUnknownNode, StakingNotSigner and StakingNodeExited", async () => {
      const { staking, operator, signer, node, node2 } = await loadFixture(registered);
      await expect(staking.connect(signer).heartbeat(node2))
        .to.be.revertedWithCustomError(staking, "StakingUnknownNode")
        .withArgs(node2);
      await expect(staking.connect(operator).heartbeat(node))
        .to.be.revertedWithCustomError(staking, "StakingNotSigner")
        .withArgs(node, operator.address, signer.address);
      await staking.connect(operator).exit(node);
      await expect(staking.connect(signer).heartbeat(node))
        .to.be.revertedWithCustomError(staking, "StakingNodeExited")
        .withArgs(node);
    });
  });

  describe("jailInactive", () => {
    it("lets anyone jail a node past its heartbeat deadline, without a slash", async () => {
      const { staking, stranger, node } = await loadFixture(registered);
      const deadline = await staking.heartbeatDeadline(node);
      await time.setNextBlockTimestamp(deadline + 1n);
      await expect(staking.connect(stranger).jailInactive(node))
        .to.emit(staking, "NodeJailed")
        .withArgs(node, JAIL_MISSED_HEARTBEAT, deadline + 1n + JAIL_COOLDOWN);
      expect(await staking.isActive(node)).to.be.false;
      expect(await staking.stakeOf(node)).to.deep.equal([STAKE, 0n]);
    });

    it("reverts with StakingHeartbeatNotMissed one second before the deadline", async () => {
      const { staking, stranger, node } = await loadFixture(registered);
      const deadline = await staking.heartbeatDeadline(node);
      await time.setNextBlockTimestamp(deadline - 1n);
      await expect(staking.connect(stranger).jailInactive(node))
        .to.be.revertedWithCustomError(staking, "StakingHeartbeatNotMissed")
        .withArgs(node, deadline);
    });

    it("reverts with StakingHeartbeatNotMissed at the deadline", async () => {
      const { staking, stranger, node } = await loadFixture(registered);
      const deadline = await staking.heartbeatDeadline(node);
      await time.setNextBlockTimestamp(deadline);
      await expect(staking.connect(stranger).jailInactive(node))
        .to.be.revertedWithCustomError(staking, "StakingHeartbeatNotMissed")
        .withArgs(node, deadline);
    });

    it("reverts with StakingNodeJailed, StakingUnknownNode and StakingNodeExited", async () => {
      const { staking, stranger, operator, node, node2 } = await loadFixture(registered);
      await time.increase(HEARTBEAT_TIMEOUT + 1n);
      await staking.connect(stranger).jailInactive(node);
      const { jailedUntil } = await staking.getNode(node);
      await expect(staking.connect(stranger).jailInactive(node))
        .to.be.revertedWithCustomError(staking, "StakingNodeJailed")
        .withArgs(node, jailedUntil);
      await expect(staking.connect(stranger).jailInactive(node2))
        .to.be.revertedWithCustomError(staking, "StakingUnknownNode")
        .withArgs(node2);
      await staking.connect(operator).exit(node);
      await expect(staking.connect(stranger).jailInactive(node))
        .to.be.revertedWithCustomError(staking, "StakingNodeExited")
        .withArgs(node);
    });
  });

  describe("unjail", () => {
    async function jailed() {
      const f = await registered();
      await time.increase(HEARTBEAT_TIMEOUT + 1n);
      await f.staking.connect(f.stranger).jailInactive(f.node);
      return f;
    }

    it("unjails after the cool-down and restarts the heartbeat clock", async () => {
      const { staking, operator, node } = await loadFixture(jailed);
      const { jailedUntil } = await staking.getNode(node);
      await time.setNextBlockTimestamp(jailedUntil);
      await expect(staking.connect(operator).unjail(node))
        .to.emit(staking, "NodeUnjailed")
        .withArgs(node);
      expect(await staking.isActive(node)).to.be.true;
      expect(await staking.heartbeatDeadline(node)).to.equal(jailedUntil + HEARTBEAT_TIMEOUT);
    });

    it("unjails one second after the cool-down", async () => {
      const { staking, operator, node } = await loadFixture(jailed);
      const { jailedUntil } = await staking.getNode(node);
      await time.setNextBlockTimestamp(jailedUntil + 1n);
      await expect(staking.connect(operator).unjail(node))
        .to.emit(staking, "NodeUnjailed")
        .withArgs(node);
      expect(await staking.isActive(node)).to.be.true;
    });

    it("reverts with StakingJailCooldown one second before the cool-down ends", async () => {
      const { staking, operator, node } = await loadFixture(jailed);
      const { jailedUntil } = await staking.getNode(node);
      await time.setNextBlockTimestamp(jailedUntil - 1n);
      await expect(staking.connect(operator).unjail(node))
        .to.be.revertedWithCustomError(staking, "StakingJailCooldown")
        .withArgs(node, jailedUntil);
    });

    it("reverts with StakingJailCooldown before the cool-down has passed", async () => {
      const { staking, operator, node } = await loadFixture(jailed);
      const { jailedUntil } = await staking.getNode(node);
      await expect(staking.connect(operator).unjail(node))
        .to.be.revertedWithCustomError(staking, "StakingJailCooldown")
        .withArgs(node, jailedUntil);
    });

    it("reverts with StakingNodeNotJailed, StakingNotOperator and StakingNodeExited", async () => {
      const { staking, operator, operator2, node } = await loadFixture(jailed);
      await expect(staking.connect(operator2).unjail(node))
        .to.be.revertedWithCustomError(staking, "StakingNotOperator")
        .withArgs(node, operator2.address, operator.address);
      await time.increase(JAIL_COOLDOWN);
      await staking.connect(operator).unjail(node);
      await expect(staking.connect(operator).unjail(node))
        .to.be.revertedWithCustomError(staking, "StakingNodeNotJailed")
        .withArgs(node);
      await staking.connect(operator).exit(node);
      await expect(staking.connect(operator).unjail(node))
        .to.be.revertedWithCustomError(staking, "StakingNodeExited")
        .withArgs(node);
    });
  });
});
