/** The whole-protocol deployment: wiring, governance handed to the timelock, and reruns that change nothing. */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { ZeroHash, id } from "ethers";
import { network } from "hardhat";

import { deploySystem } from "../../../offchain/deploy/system.js";
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

  it("leaves every governance role with the timelock and none with the deployer", async () => {
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
    expect(await timelock.getMinDelay()).to.equal(2n * 86_400n);
    // The guardian, not the timelock, holds the fast veto.
    expect(await staking.hasRole(id("VETO_ROLE"), signers[9]!.address)).to.equal(true);
    expect(await staking.hasRole(id("VETO_ROLE"), me)).to.equal(false);
    expect(await rewards.hasRole(await rewards.GUARDIAN_ROLE(), signers[9]!.address)).to.equal(
      true,
    );
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
