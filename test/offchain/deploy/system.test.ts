/**
 * The whole-protocol deployment: wiring, governance handed to the governor and its timelock (the deployer
 * keeps no role anywhere), governance.json, the refusals made before anything is sent, and reruns that
 * change nothing.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { ZeroAddress, ZeroHash, id } from "ethers";
import { network } from "hardhat";

import { InputError } from "../../../offchain/common/errors.js";
import { deploySystem } from "../../../offchain/deploy/system.js";
import { checkExitWindow, resolveKeyHolders } from "../../../offchain/governance/params.js";
import { readGovernanceRecord } from "../../../offchain/governance/record.js";
import { loadPlan } from "../../../offchain/vesting/plan.js";

const PLAN_FILE = "deployments/localhost/vesting-plan.json";

describe("offchain/deploy/system", function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(path.join(tmpdir(), "opg-system-"))));
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  async function deployed() {
    const { ethers, networkHelpers } = await network.create();
    const signers = await ethers.getSigners();
    const plan = await loadPlan(PLAN_FILE);
    const options = {
      dir,
      network: "test",
      plan,
      planFile: PLAN_FILE,
      beneficiarySigners: signers,
      guardian: signers[9]!.address,
    };
    const system = await deploySystem(ethers, options);
    return { ethers, networkHelpers, signers, plan, options, system };
  }

  it("wires the contracts together and funds rewards from the plan's rewards-pool schedule", async () => {
    const { system, plan } = await deployed();
    const { ledger, staking, tee, registry, rewards, vault, token } = system;
    expect(await ledger.STAKING()).to.equal(await staking.getAddress());
    expect(await ledger.TEE_REGISTRY()).to.equal(await tee.getAddress());
    expect(await ledger.MODEL_REGISTRY()).to.equal(await registry.getAddress());
    expect(await staking.hasRole(await staking.SLASHER_ROLE(), await ledger.getAddress())).to.equal(
      true,
    );
    const poolId = plan.schedules.find((s) => s.categoryName === "rewards-pool")!.id;
    expect(system.rewardsScheduleId).to.equal(poolId);
    expect((await vault.getSchedule(poolId)).beneficiary).to.equal(await rewards.getAddress());
    const pool = await rewards.rewardsPool();
    expect(pool.vault).to.equal(await vault.getAddress());
    expect(pool.scheduleId).to.equal(BigInt(poolId));
    expect(await vault.isSealed()).to.equal(true);
    expect(await token.totalSupply()).to.equal(plan.totalSupply);
    const config = JSON.parse(await readFile(path.join(dir, "rewards.json"), "utf8")) as Record<
      string,
      unknown
    >;
    expect(config.genesisTime).to.equal(plan.schedules[poolId]!.params.start.toString());
    expect(config.epochLength).to.equal((30 * 86_400).toString());
  });

  it("leaves every governance role with the timelock, the timelock with the governor, and none with the deployer", async () => {
    const { system, signers } = await deployed();
    const { staking, tee, ledger, rewards, vault, timelock } = system;
    const t = await timelock.getAddress();
    const me = signers[0]!.address;
    const checks: Array<
      [string, { hasRole(role: string, a: string): Promise<boolean> }, string[]]
    > = [
      ["NodeStaking", staking, ["GOVERNANCE_ROLE", "GOVERNANCE_SLASHER_ROLE"]],
      ["TeeRegistry", tee, ["GOVERNANCE_ROLE"]],
      ["InferenceLedger", ledger, ["GOVERNOR_ROLE"]],
      ["ContributorRewards", rewards, []],
    ];
    for (const [name, contract, roles] of checks) {
      for (const role of [ZeroHash, ...roles.map((r) => id(r))]) {
        expect(await contract.hasRole(role, t), `${name} ${role} timelock`).to.equal(true);
        expect(await contract.hasRole(role, me), `${name} ${role} deployer`).to.equal(false);
      }
    }
    expect(await vault.owner()).to.equal(t);
    expect(await vault.pendingOwner()).to.equal(ZeroAddress);
    expect(await timelock.getMinDelay()).to.equal(2n * 86_400n);
    // The timelock: the governor alone proposes, cancels and executes; it administers itself.
    const g = await system.governor.getAddress();
    for (const role of ["PROPOSER_ROLE", "CANCELLER_ROLE", "EXECUTOR_ROLE"]) {
      expect(await timelock.hasRole(id(role), g), `governor ${role}`).to.equal(true);
      expect(await timelock.hasRole(id(role), me), `deployer ${role}`).to.equal(false);
    }
    expect(await timelock.hasRole(ZeroHash, t)).to.equal(true);
    expect(await timelock.hasRole(ZeroHash, me)).to.equal(false);
    expect(await timelock.hasRole(id("EXECUTOR_ROLE"), ZeroAddress)).to.equal(false);
    // The governor: OPG votes on the token's timestamp clock, behind this timelock.
    expect(await system.governor.token()).to.equal(await system.token.getAddress());
    expect(await system.governor.timelock()).to.equal(t);
    expect(await system.governor.CLOCK_MODE()).to.equal("mode=timestamp");
    expect(await system.governor.votingDelay()).to.equal(86_400n);
    expect(await system.governor.votingPeriod()).to.equal(5n * 86_400n);
    expect(await system.governor["quorumNumerator()"]()).to.equal(4n);
    // The guardian, not the timelock, holds the fast veto.
    expect(await staking.hasRole(id("VETO_ROLE"), signers[9]!.address)).to.equal(true);
    expect(await staking.hasRole(id("VETO_ROLE"), me)).to.equal(false);
    expect(await rewards.hasRole(await rewards.GUARDIAN_ROLE(), signers[9]!.address)).to.equal(
      true,
    );
  });

  it("writes governance.json with the holders it set up", async () => {
    const { system, signers } = await deployed();
    const record = await readGovernanceRecord(path.join(dir, "governance.json"));
    const t = await system.timelock.getAddress();
    expect(record.contracts.NodeStaking!.roles).to.deep.equal({
      DEFAULT_ADMIN_ROLE: [t],
      GOVERNANCE_ROLE: [t],
      GOVERNANCE_SLASHER_ROLE: [t],
      SLASHER_ROLE: [await system.ledger.getAddress()],
      VETO_ROLE: [signers[9]!.address],
    });
    expect(record.contracts.OPGTimelock!.roles!.PROPOSER_ROLE).to.deep.equal([
      await system.governor.getAddress(),
    ]);
    expect(record.contracts.VestingVault!.owner).to.equal(t);
    expect(record.labels[signers[9]!.address]).to.equal("guardian");
  });

  it("refuses, before sending anything, an unbonding delay that outlasts the governance path", async () => {
    const { ethers } = await network.create();
    const signers = await ethers.getSigners();
    const plan = await loadPlan(PLAN_FILE);
    const error = await deploySystem(ethers, {
      dir,
      network: "test",
      plan,
      planFile: PLAN_FILE,
      beneficiarySigners: signers,
      stakingParams: { unbondingDelay: 8n * 86_400n },
    }).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(InputError);
    expect((error as InputError).message).to.equal(
      "stakers cannot exit before a governance change lands under the deploy's parameters: NodeStaking's unbonding delay 691200 s (8 d) is not shorter than voting delay 86400 s (1 d) + voting period 432000 s (5 d) + timelock delay 172800 s (2 d) = 691200 s (8 d)",
    );
    expect(await ethers.provider.getTransactionCount(signers[0]!.address)).to.equal(0);
  });

  it("accepts an unbonding delay shorter than voting delay + voting period + timelock delay", () => {
    const DAY = 86_400n;
    const w = { votingDelay: DAY, votingPeriod: 3n * DAY, timelockDelay: 2n * DAY };
    expect(checkExitWindow({ ...w, unbondingDelay: 5n * DAY })).to.equal(DAY);
    expect(() => checkExitWindow({ ...w, unbondingDelay: 7n * DAY })).to.throw(
      InputError,
      /unbonding delay 604800 s \(7 d\) is not shorter than .* = 518400 s \(6 d\)/,
    );
  });

  describe("guardian and rewards updater", () => {
    const me = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
    const council = "0x000000000000000000000000000000000000c0DE";

    it("must be given on a chain that is not local (Sepolia), and the error names the missing option", () => {
      expect(() => resolveKeyHolders(11_155_111n, me, {})).to.throw(
        InputError,
        "chain 11155111 is not local: --guardian and --rewards-updater must be given",
      );
      expect(() => resolveKeyHolders(1n, me, { guardian: council })).to.throw(
        InputError,
        "chain 1 is not local: --rewards-updater must be given",
      );
      expect(() => resolveKeyHolders(1n, me, { rewardsUpdater: council })).to.throw(
        InputError,
        "chain 1 is not local: --guardian must be given",
      );
      expect(
        resolveKeyHolders(1n, me, { guardian: council, rewardsUpdater: council }),
      ).to.deep.equal({ guardian: council, rewardsUpdater: council, defaulted: [] });
    });

    it("default to the deployer on 31337 and 1337, and the deploy says so", async () => {
      for (const chainId of [31337n, 1337n]) {
        expect(resolveKeyHolders(chainId, me, {})).to.deep.equal({
          guardian: me,
          rewardsUpdater: me,
          defaulted: ["guardian", "rewardsUpdater"],
        });
      }
      const { ethers } = await network.create();
      const signers = await ethers.getSigners();
      const lines: string[] = [];
      await deploySystem(ethers, {
        dir,
        network: "test",
        plan: await loadPlan(PLAN_FILE),
        planFile: PLAN_FILE,
        beneficiarySigners: signers,
        log: (m) => lines.push(m),
      });
      expect(lines).to.include(
        `guardian not given (--guardian): local chain 31337, so it defaults to the deployer ${me}`,
      );
      expect(lines).to.include(
        `rewardsUpdater not given (--rewards-updater): local chain 31337, so it defaults to the deployer ${me}`,
      );
    });
  });

  it("changes nothing when run again", async () => {
    const { ethers, signers, options, system } = await deployed();
    const nonce = await ethers.provider.getTransactionCount(signers[0]!.address);
    const again = await deploySystem(ethers, options);
    expect(await ethers.provider.getTransactionCount(signers[0]!.address)).to.equal(nonce);
    expect(again.addresses).to.deep.equal(system.addresses);
  });

  it("says how to move the rewards pool when its beneficiary cannot sign here", async () => {
    const { ethers } = await network.create();
    const plan = await loadPlan(PLAN_FILE);
    const error = await deploySystem(ethers, {
      dir,
      network: "test",
      plan,
      planFile: PLAN_FILE,
    }).catch((e: unknown) => e);
    expect((error as Error).message).to.match(
      /rewards-pool schedule's beneficiary 0x976EA74026E726554dB657fA54763abd0C3a0aa9 must move it/,
    );
  });
});
