/**
 * The governance audit against a real in-process chain deployed by offchain/deploy/system.ts: clean, then
 * after governor proposals that add a key as a power holder or shorten the voting period below the
 * unbonding delay, and against records that are tampered with or leave a contract out.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { id } from "ethers";
import { network } from "hardhat";

import { InputError } from "../../../offchain/common/errors.js";
import { deploySystem } from "../../../offchain/deploy/system.js";
import {
  auditGovernance,
  formatGovernanceAudit,
  loadAuditInputs,
} from "../../../offchain/governance/audit.js";
import { governanceOf, localClock, passProposal } from "../../../offchain/governance/proposals.js";
import { loadPlan } from "../../../offchain/vesting/plan.js";

const { ethers, networkHelpers } = await network.create();

describe("offchain/governance/audit", function () {
  this.timeout(120_000);
  let root: string;
  before(async () => (root = await mkdtemp(path.join(tmpdir(), "opg-gov-audit-"))));
  after(async () => rm(root, { recursive: true, force: true }));

  async function deployed() {
    const signers = await ethers.getSigners();
    const dir = path.join(root, `${Date.now()}-${Math.random()}`);
    const system = await deploySystem(ethers, {
      dir,
      network: "audit",
      plan: await loadPlan("deployments/localhost/vesting-plan.json"),
      planFile: "plan",
      beneficiarySigners: signers,
      guardian: signers[9]!.address,
      rewardsUpdater: signers[8]!.address,
    });
    let n = 0;
    const govern = (target: string, data: string) =>
      passProposal(
        governanceOf(system),
        { proposer: signers[0]!, voters: [signers[0]!] },
        { calls: [{ target, value: 0n, data }], description: `audit test ${++n}` },
        localClock(ethers.provider),
      );
    return { system, dir, signers, govern };
  }

  it("finds nothing wrong with a fresh deployment, and lists every role of every contract", async () => {
    const { dir } = await networkHelpers.loadFixture(deployed);
    const { record, addresses } = await loadAuditInputs(dir);
    const audit = await auditGovernance(ethers.provider, record, addresses);
    expect(audit.problems).to.deep.equal([]);
    expect(audit.ok).to.equal(true);
    const items = (c: string) => audit.rows.filter((r) => r.contract === c).map((r) => r.item);
    expect(items("NodeStaking")).to.deep.equal([
      "DEFAULT_ADMIN_ROLE",
      "GOVERNANCE_ROLE",
      "SLASHER_ROLE",
      "GOVERNANCE_SLASHER_ROLE",
      "VETO_ROLE",
    ]);
    expect(items("ContributorRewards")).to.deep.equal([
      "DEFAULT_ADMIN_ROLE",
      "GUARDIAN_ROLE",
      "UPDATER_ROLE",
    ]);
    expect(items("VestingVault")).to.deep.equal(["owner", "pendingOwner"]);
    expect(audit.roleless).to.deep.equal(["OPGToken", "DevAttestationVerifier", "ModelRegistry"]);
    expect(formatGovernanceAudit(audit)).to.contain("AUDIT OK");
  });

  it("flags an EOA given a power by a proposal, and a power role taken from its expected holder", async () => {
    const { system, dir, signers, govern } = await networkHelpers.loadFixture(deployed);
    const key = signers[19]!.address;
    const staking = await system.staking.getAddress();
    const t = await system.timelock.getAddress();
    await govern(
      staking,
      system.staking.interface.encodeFunctionData("grantRole", [id("GOVERNANCE_ROLE"), key]),
    );
    await govern(
      await system.ledger.getAddress(),
      system.ledger.interface.encodeFunctionData("revokeRole", [id("GOVERNOR_ROLE"), t]),
    );
    const { record, addresses } = await loadAuditInputs(dir);
    const audit = await auditGovernance(ethers.provider, record, addresses);
    expect(audit.ok).to.equal(false);
    expect(audit.problems).to.deep.equal([
      `NodeStaking GOVERNANCE_ROLE is held by ${key}, which governance.json does not list`,
      `NodeStaking GOVERNANCE_ROLE is held by ${key}, an account without code (one key)`,
      `InferenceLedger GOVERNOR_ROLE: governance.json lists OPGTimelock (${t}), which does not hold it`,
    ]);
    const row = audit.rows.find(
      (r) => r.contract === "NodeStaking" && r.item === "GOVERNANCE_ROLE",
    )!;
    expect(row.ok).to.equal(false);
  });

  it("flags a voting period shortened below what stakers need to leave, as a setting and as an exit window", async () => {
    const { system, dir, govern } = await networkHelpers.loadFixture(deployed);
    const governor = await system.governor.getAddress();
    await govern(
      governor,
      system.governor.interface.encodeFunctionData("setVotingPeriod", [86_400n]),
    );
    const { record, addresses } = await loadAuditInputs(dir);
    const audit = await auditGovernance(ethers.provider, record, addresses);
    expect(audit.problems).to.deep.equal([
      "OPGGovernor votingPeriod is 86400, governance.json says 432000",
      "stakers cannot exit before a governance change lands under the parameters on chain: NodeStaking's unbonding delay 604800 s (7 d) is not shorter than voting delay 86400 s (1 d) + voting period 86400 s (1 d) + timelock delay 172800 s (2 d) = 345600 s (4 d)",
    ]);
  });

  it("flags a record that names the wrong holder or owner, or leaves a contract with roles out", async () => {
    const { dir, signers } = await networkHelpers.loadFixture(deployed);
    const { record, addresses } = await loadAuditInputs(dir);
    const other = signers[7]!.address;
    record.contracts.VestingVault!.owner = other;
    record.contracts.TeeRegistry!.roles!.GOVERNANCE_ROLE = [other];
    delete record.contracts.ContributorRewards;
    const audit = await auditGovernance(ethers.provider, record, addresses);
    expect(audit.problems).to.have.length(4);
    expect(audit.problems[0]).to.match(
      /^ContributorRewards \(0x[0-9a-fA-F]{40}\) has roles or an owner but governance.json does not cover it$/,
    );
    expect(audit.problems).to.include(
      `TeeRegistry GOVERNANCE_ROLE: governance.json lists ${other}, which does not hold it`,
    );
    expect(
      audit.problems.some((p) => /^TeeRegistry GOVERNANCE_ROLE is held by OPGTimelock/.test(p)),
    ).to.equal(true);
    expect(
      audit.problems.some((p) => /^VestingVault is owned by OPGTimelock .*, not 0x/.test(p)),
    ).to.equal(true);
  });

  it("refuses a record written for another chain", async () => {
    const { dir } = await networkHelpers.loadFixture(deployed);
    const { record, addresses } = await loadAuditInputs(dir);
    record.chainId = "11155111";
    const error = await auditGovernance(ethers.provider, record, addresses).catch(
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(InputError);
    expect((error as InputError).message).to.equal(
      "the governance record is for chain 11155111; this network is chain 31337",
    );
  });
});
