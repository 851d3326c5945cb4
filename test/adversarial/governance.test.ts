/**
 * Issue 13, item 7: "Governance is one key". Tried as an attacker would, on the system as
 * offchain/deploy/system.ts deploys it. Before the fix the deployer was the timelock's only proposer and
 * executor: it scheduled grantRole(SLASHER_ROLE, itself) on NodeStaking, executed it after the 2-day delay
 * and took a node's whole stake, while the node's operator, unbonding for 7 days, could not leave in time.
 * Each attack below fails if it works again; next to it, the honest path: token holders pass a proposal
 * that executes after the vote and the timelock, and a staker who starts unbonding when a hostile proposal
 * appears has withdrawn before it can execute.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { ZeroHash, id } from "ethers";
import { network } from "hardhat";

import { deploySystem } from "../../offchain/deploy/system.js";
import { buildProposal } from "../../offchain/governance/actions.js";
import {
  castVote,
  delegateVotes,
  executeProposal,
  governanceOf,
  localClock,
  propose,
  queueProposal,
} from "../../offchain/governance/proposals.js";
import { loadPlan } from "../../offchain/vesting/plan.js";

const { ethers, networkHelpers } = await network.create();
const OPG = 10n ** 18n;
const INFERENCE = 1;
const SLASHER_ROLE = id("SLASHER_ROLE");
const PROPOSER_ROLE = id("PROPOSER_ROLE");
const EXECUTOR_ROLE = id("EXECUTOR_ROLE");
const CANCELLER_ROLE = id("CANCELLER_ROLE");
const EVIDENCE = id("made-up evidence");
const MEASUREMENT = id("honest enclave image");

describe("adversarial: governance is not one key", function () {
  this.timeout(120_000);
  let dir: string;
  before(async () => (dir = await mkdtemp(path.join(tmpdir(), "opg-adversarial-gov-"))));
  after(async () => rm(dir, { recursive: true, force: true }));

  async function deployed() {
    const signers = await ethers.getSigners();
    const [deployer, operator, alice, bob, guardian, updater] = [
      signers[0]!,
      signers[14]!,
      signers[15]!,
      signers[16]!,
      signers[9]!,
      signers[8]!,
    ];
    const system = await deploySystem(ethers, {
      dir: path.join(dir, `${Date.now()}-${Math.random()}`),
      network: "adversarial",
      plan: await loadPlan("deployments/localhost/vesting-plan.json"),
      planFile: "plan",
      beneficiarySigners: signers,
      guardian: guardian.address,
      rewardsUpdater: updater.address,
    });
    const { token, staking } = system;
    // A GPU node staked at its role's minimum.
    const params = await staking.params();
    const node = ethers.Wallet.createRandom().address;
    await (await token.transfer(operator.address, params.minStakeInference)).wait();
    await (
      await token.connect(operator).approve(await staking.getAddress(), params.minStakeInference)
    ).wait();
    await (
      await staking
        .connect(operator)
        .register(
          node,
          INFERENCE,
          ethers.Wallet.createRandom().address,
          params.minStakeInference,
          "https://gpu",
        )
    ).wait();
    // Two holders with 25,000,000 OPG each: together above the 4 % quorum (40,000,000), alone below it.
    for (const holder of [alice, bob]) {
      await (await token.transfer(holder.address, 25_000_000n * OPG)).wait();
    }
    return { system, deployer, operator, alice, bob, node, params, h: governanceOf(system) };
  }

  describe("the deployer's key after deployment", () => {
    it("cannot schedule grantRole(SLASHER_ROLE, itself) in the timelock: it is not a proposer", async () => {
      const { system, deployer } = await networkHelpers.loadFixture(deployed);
      const { timelock, staking } = system;
      const grant = staking.interface.encodeFunctionData("grantRole", [
        SLASHER_ROLE,
        deployer.address,
      ]);
      await expect(
        timelock
          .connect(deployer)
          .schedule(await staking.getAddress(), 0n, grant, ZeroHash, ZeroHash, 2n * 86_400n),
      )
        .to.be.revertedWithCustomError(timelock, "AccessControlUnauthorizedAccount")
        .withArgs(deployer.address, PROPOSER_ROLE);
      await expect(
        timelock
          .connect(deployer)
          .execute(await staking.getAddress(), 0n, grant, ZeroHash, ZeroHash),
      )
        .to.be.revertedWithCustomError(timelock, "AccessControlUnauthorizedAccount")
        .withArgs(deployer.address, EXECUTOR_ROLE);
    });

    it("cannot make itself proposer, grant SLASHER_ROLE directly, or slash", async () => {
      const { system, deployer, node, params } = await networkHelpers.loadFixture(deployed);
      const { timelock, staking } = system;
      // The timelock administers itself: nobody else grants its roles.
      await expect(timelock.connect(deployer).grantRole(PROPOSER_ROLE, deployer.address))
        .to.be.revertedWithCustomError(timelock, "AccessControlUnauthorizedAccount")
        .withArgs(deployer.address, ZeroHash);
      await expect(staking.connect(deployer).grantRole(SLASHER_ROLE, deployer.address))
        .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
        .withArgs(deployer.address, ZeroHash);
      await expect(staking.connect(deployer).slash(node, 10_000n, deployer.address, true, EVIDENCE))
        .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
        .withArgs(deployer.address, SLASHER_ROLE);
      await expect(
        staking
          .connect(deployer)
          .slashAmount(node, params.minStakeInference, deployer.address, true, EVIDENCE),
      )
        .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
        .withArgs(deployer.address, SLASHER_ROLE);
      expect((await staking.stakeOf(node)).active).to.equal(params.minStakeInference);
    });

    it("cannot make the governor act for it, or cancel in the timelock", async () => {
      const { system, deployer } = await networkHelpers.loadFixture(deployed);
      const { governor, timelock, staking } = system;
      const grant = staking.interface.encodeFunctionData("grantRole", [
        SLASHER_ROLE,
        deployer.address,
      ]);
      await expect(governor.connect(deployer).relay(await staking.getAddress(), 0n, grant))
        .to.be.revertedWithCustomError(governor, "GovernorOnlyExecutor")
        .withArgs(deployer.address);
      await expect(timelock.connect(deployer).cancel(id("any operation")))
        .to.be.revertedWithCustomError(timelock, "AccessControlUnauthorizedAccount")
        .withArgs(deployer.address, CANCELLER_ROLE);
    });

    it("holds no role on any contract and does not own the vault", async () => {
      const { system, deployer } = await networkHelpers.loadFixture(deployed);
      const me = deployer.address;
      const roles: Array<[string, { hasRole(r: string, a: string): Promise<boolean> }, string[]]> =
        [
          [
            "NodeStaking",
            system.staking,
            ["GOVERNANCE_ROLE", "VETO_ROLE", "SLASHER_ROLE", "GOVERNANCE_SLASHER_ROLE"],
          ],
          ["TeeRegistry", system.tee, ["GOVERNANCE_ROLE"]],
          ["InferenceLedger", system.ledger, ["GOVERNOR_ROLE"]],
          ["ContributorRewards", system.rewards, ["UPDATER_ROLE", "GUARDIAN_ROLE"]],
          ["OPGTimelock", system.timelock, ["PROPOSER_ROLE", "EXECUTOR_ROLE", "CANCELLER_ROLE"]],
        ];
      for (const [name, contract, names] of roles) {
        for (const role of [ZeroHash, ...names.map((n) => id(n))]) {
          expect(await contract.hasRole(role, me), `${name} ${role}`).to.equal(false);
        }
      }
      expect(await system.vault.owner()).to.equal(await system.timelock.getAddress());
    });
  });

  describe("token holders", () => {
    it("pass a proposal that executes only after the vote and the timelock delay", async () => {
      const { system, alice, bob, h } = await networkHelpers.loadFixture(deployed);
      const { governor, timelock, tee } = system;
      const clock = localClock(ethers.provider);
      for (const holder of [alice, bob]) await delegateVotes(h.token, holder);
      const input = await buildProposal(
        { action: "approve-measurement", measurement: MEASUREMENT, label: "honest" },
        { addresses: system.addresses },
      );
      const p = await propose(h, alice, input);
      const [targets, values, datas, hash] = [
        input.calls.map((c) => c.target),
        [0n],
        input.calls.map((c) => c.data),
        id(input.description),
      ];
      // Pending: no votes yet; then Active: both vote; before the deadline it cannot be queued.
      await expect(governor.connect(bob).castVote(p.proposalId, 1))
        .to.be.revertedWithCustomError(governor, "GovernorUnexpectedProposalState")
        .withArgs(p.proposalId, 0, ethers.toBeHex(1n << 1n, 32));
      await clock(p.voteStart + 1n);
      for (const holder of [alice, bob]) await castVote(h, holder, p.proposalId, "for");
      await expect(governor.queue(targets, values, datas, hash))
        .to.be.revertedWithCustomError(governor, "GovernorUnexpectedProposalState")
        .withArgs(p.proposalId, 1, ethers.toBeHex(1n << 4n, 32));
      await clock(p.voteEnd + 1n);
      const q = await queueProposal(h, alice, p.proposalId);
      expect(q.eta - BigInt(await networkHelpers.time.latest())).to.equal(
        await timelock.getMinDelay(),
      );
      // Queued: the timelock refuses to run it before its delay.
      await expect(governor.execute(targets, values, datas, hash)).to.be.revertedWithCustomError(
        timelock,
        "TimelockUnexpectedOperationState",
      );
      expect(await tee.isMeasurementApproved(MEASUREMENT)).to.equal(false);
      await clock(q.eta);
      await executeProposal(h, bob, p.proposalId);
      expect(await tee.isMeasurementApproved(MEASUREMENT)).to.equal(true);
      expect(await governor.state(p.proposalId)).to.equal(7n); // Executed
    });

    it("cannot pass a proposal below the quorum", async () => {
      const { system, alice, h } = await networkHelpers.loadFixture(deployed);
      const clock = localClock(ethers.provider);
      await delegateVotes(h.token, alice);
      const input = await buildProposal(
        { action: "approve-measurement", measurement: MEASUREMENT, label: "alone" },
        { addresses: system.addresses },
      );
      const p = await propose(h, alice, input);
      await clock(p.voteStart + 1n);
      await castVote(h, alice, p.proposalId, "for");
      await clock(p.voteEnd + 1n);
      expect(await system.governor.state(p.proposalId)).to.equal(3n); // Defeated: 25M < 40M quorum
      await expect(
        system.governor.queue(
          input.calls.map((c) => c.target),
          [0n],
          input.calls.map((c) => c.data),
          id(input.description),
        ),
      )
        .to.be.revertedWithCustomError(system.governor, "GovernorUnexpectedProposalState")
        .withArgs(p.proposalId, 3, ethers.toBeHex(1n << 4n, 32));
    });
  });

  describe("a hostile proposal that passes", () => {
    it("lands after a staker who started unbonding when it appeared has withdrawn everything", async () => {
      const { system, deployer, operator, alice, bob, node, params, h } =
        await networkHelpers.loadFixture(deployed);
      const { staking, token } = system;
      const clock = localClock(ethers.provider);
      // Holders grant the deployer's key SLASHER_ROLE: the power that drained a node before.
      for (const holder of [alice, bob]) await delegateVotes(h.token, holder);
      const input = await buildProposal(
        {
          action: "call",
          target: "NodeStaking",
          signature: "grantRole(bytes32,address)",
          args: `${SLASHER_ROLE},${deployer.address}`,
        },
        { addresses: system.addresses },
      );
      const p = await propose(h, alice, input);
      // The operator sees it and starts unbonding the whole stake at once.
      await (await staking.connect(operator).unbond(node, params.minStakeInference)).wait();
      await clock(p.voteStart + 1n);
      for (const holder of [alice, bob]) await castVote(h, holder, p.proposalId, "for");
      await clock(p.voteEnd + 1n);
      const q = await queueProposal(h, alice, p.proposalId);
      // The stake is withdrawable before the proposal can execute.
      const entry = (await staking.unbondingEntries(node))[0]!;
      expect(entry.releaseTime).to.be.lessThan(q.eta);
      await clock(entry.releaseTime);
      const before = await token.balanceOf(operator.address);
      await (await staking.connect(operator).withdraw(node)).wait();
      expect((await token.balanceOf(operator.address)) - before).to.equal(params.minStakeInference);
      // Only then does the grant land; the slash finds nothing left to take.
      await clock(q.eta);
      await executeProposal(h, bob, p.proposalId);
      expect(await staking.hasRole(SLASHER_ROLE, deployer.address)).to.equal(true);
      expect(await staking.stakeOf(node)).to.deep.equal([0n, 0n]);
    });
  });
});
