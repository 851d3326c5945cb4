/**
 * The deployment's preflight (offchain/deploy/preflight.ts): each configuration problem is refused by a
 * DeployPreflightError naming it before the first transaction, the plan lists the transactions in order,
 * and off local chains (an in-process chain with id 4242) the quorum verifier is deployed with its
 * attesters and governed by the timelock like every other contract.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { ZeroAddress, ZeroHash, id } from "ethers";
import { network } from "hardhat";

import { readRecord } from "../../../offchain/chain/deployment.js";
import {
  DeployPreflightError,
  checkVerifierConfig,
  formatPreflight,
  parseVerifierOptions,
  preflightSystem,
  type PreflightProblem,
} from "../../../offchain/deploy/preflight.js";
import { deploySystem, type SystemDeployOptions } from "../../../offchain/deploy/system.js";
import { readGovernanceRecord } from "../../../offchain/governance/record.js";
import { loadPlan } from "../../../offchain/vesting/plan.js";

const PLAN_FILE = "deployments/localhost/vesting-plan.json";
const A = "0x000000000000000000000000000000000000000A";
const B = "0x000000000000000000000000000000000000000b";
const C = "0x000000000000000000000000000000000000000C";

describe("offchain/deploy/preflight", function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(path.join(tmpdir(), "opg-preflight-"))));
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  async function chain(chainId?: number) {
    const connection = await network.create(chainId === undefined ? {} : { override: { chainId } });
    const signers = await connection.ethers.getSigners();
    const base: SystemDeployOptions = {
      dir,
      network: "test",
      plan: await loadPlan(PLAN_FILE),
      planFile: PLAN_FILE,
      beneficiarySigners: signers,
    };
    return { ...connection, signers, base };
  }

  /** The refusal's problem, and that the deployer sent nothing. */
  async function refused(
    c: Awaited<ReturnType<typeof chain>>,
    options: SystemDeployOptions,
  ): Promise<{ problem: PreflightProblem; message: string }> {
    const error = await deploySystem(c.ethers, options).catch((e: unknown) => e);
    expect(error, "refused").to.be.instanceOf(DeployPreflightError);
    expect(await c.ethers.provider.getTransactionCount(c.signers[0]!.address)).to.equal(0);
    const { problem, message } = error as DeployPreflightError;
    return { problem, message };
  }

  describe("the plan", () => {
    it("lists every transaction in order with its key arguments, and sends nothing", async () => {
      const c = await chain();
      const p = await preflightSystem(c.ethers, { ...c.base, guardian: c.signers[9]!.address });
      const text = formatPreflight(p, "test");
      const order = [
        "deploy OPGToken",
        "deploy VestingVault",
        "call   VestingVault.createSchedules  schedules 0..5",
        "call   VestingVault.seal",
        "deploy NodeStaking",
        "deploy DevAttestationVerifier",
        "deploy TeeRegistry  staking NodeStaking, verifier DevAttestationVerifier",
        "deploy InferenceLedger",
        "deploy ContributorRewards",
        "deploy OPGTimelock",
        "deploy OPGGovernor",
        "call   OPGTimelock.renounceRole",
      ];
      let at = 0;
      for (const line of order) {
        const next = text.indexOf(line, at);
        expect(next, line).to.be.greaterThan(-1);
        at = next;
      }
      expect(text).to.contain("Preflight OK for test (chain 31337, local)");
      expect(p.estimatedCost).to.be.greaterThan(0n);
      expect(await c.ethers.provider.getTransactionCount(c.signers[0]!.address)).to.equal(0);
    });

    it("marks the steps a finished deployment already made as done", async () => {
      const c = await chain();
      await deploySystem(c.ethers, c.base);
      const p = await preflightSystem(c.ethers, c.base);
      expect(p.steps.filter((s) => !s.done)).to.deep.equal([]);
      expect(p.estimatedCost).to.equal(0n);
    });

    it("says when the rewards pool's beneficiary cannot sign here (the run will pause there)", async () => {
      const c = await chain();
      const p = await preflightSystem(c.ethers, { ...c.base, beneficiarySigners: [] });
      expect(p.notes.join("\n")).to.match(
        /beneficiary 0x976EA74026E726554dB657fA54763abd0C3a0aa9 is not an account here/,
      );
    });
  });

  describe("refusals before the first transaction", () => {
    it("refuses a chain that is not local without a verifier (problem verifier)", async () => {
      const c = await chain(4242);
      const r = await refused(c, { ...c.base, guardian: A, rewardsUpdater: B });
      expect(r.problem).to.equal("verifier");
      expect(r.message).to.equal(
        "chain 4242 is not local: deploy the quorum verifier with its attesters",
      );
    });

    it("refuses the development verifier off local chains (problem chain)", async () => {
      const c = await chain(4242);
      const r = await refused(c, {
        ...c.base,
        guardian: A,
        rewardsUpdater: B,
        verifier: { kind: "dev" },
      });
      expect(r.problem).to.equal("chain");
    });

    it("refuses to resume a deployment with another kind of verifier (problem verifier)", async () => {
      const c = await chain();
      await deploySystem(c.ethers, c.base);
      const verifier = { kind: "quorum" as const, attesters: [A, B], threshold: 1, maxAge: 60n };
      const error = await preflightSystem(c.ethers, { ...c.base, verifier }).catch(
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(DeployPreflightError);
      expect((error as DeployPreflightError).problem).to.equal("verifier");
      expect((error as Error).message).to.equal(
        "this deployment started with DevAttestationVerifier; it cannot continue with QuorumAttestationVerifier",
      );
    });

    it("refuses a missing guardian off local chains (problem governance)", async () => {
      const c = await chain(4242);
      const verifier = { kind: "quorum" as const, attesters: [A, B], threshold: 2, maxAge: 3600n };
      const r = await refused(c, { ...c.base, rewardsUpdater: B, verifier });
      expect(r.problem).to.equal("governance");
      expect(r.message).to.equal("chain 4242 is not local: --guardian must be given");
      const me = await refused(c, {
        ...c.base,
        guardian: c.signers[0]!.address,
        rewardsUpdater: B,
        verifier,
      });
      expect(me.message).to.match(/--guardian must not be the deployer/);
    });

    it("refuses governance under which stakers cannot exit first (problem governance)", async () => {
      const c = await chain();
      const r = await refused(c, { ...c.base, stakingParams: { unbondingDelay: 8n * 86_400n } });
      expect(r.problem).to.equal("governance");
      expect(r.message).to.match(/^stakers cannot exit before a governance change lands/);
      const q = await refused(c, { ...c.base, quorumPercent: 0n });
      expect(q.message).to.equal("the governor's quorum 0% is not in 1..100");
    });

    it("refuses a plan without a rewards-pool schedule (problem plan)", async () => {
      const c = await chain();
      const plan = {
        ...c.base.plan,
        schedules: c.base.plan.schedules.filter((s) => s.categoryName !== "rewards-pool"),
      };
      const r = await refused(c, { ...c.base, plan });
      expect(r.problem).to.equal("plan");
    });

    it("refuses a deployer that cannot pay for the plan (problem balance)", async () => {
      const c = await chain();
      await c.networkHelpers.setBalance(c.signers[0]!.address, 10n ** 15n);
      const r = await refused(c, c.base);
      expect(r.problem).to.equal("balance");
      expect(r.message).to.match(/holds 0\.001 ETH; the deployment needs about [0-9.]+ ETH$/);
    });
  });

  describe("quorum verifier options", () => {
    const quorum = (attesters: string[], threshold: number, maxAge = 86_400n) => ({
      kind: "quorum" as const,
      attesters,
      threshold,
      maxAge,
    });
    const problemOf = (f: () => unknown): string => {
      try {
        f();
      } catch (e) {
        expect(e).to.be.instanceOf(DeployPreflightError);
        return (e as Error).message;
      }
      throw new Error("not refused");
    };

    it("parses --verifier quorum --attesters 0xA,0xB,0xC --threshold 2", () => {
      expect(
        parseVerifierOptions({
          verifier: "quorum",
          attesters: `${A}, ${B.toLowerCase()},${C}`,
          threshold: 2,
          maxAge: 600n,
        }),
      ).to.deep.equal(quorum([A, "0x000000000000000000000000000000000000000B", C], 2, 600n));
      expect(parseVerifierOptions({ verifier: "", attesters: "", threshold: 0, maxAge: 1n })).to.be
        .undefined;
      expect(
        problemOf(() =>
          parseVerifierOptions({ verifier: "", attesters: A, threshold: 1, maxAge: 1n }),
        ),
      ).to.equal("--attesters and --threshold need --verifier quorum");
      expect(
        problemOf(() =>
          parseVerifierOptions({ verifier: "quorum", attesters: "0x12", threshold: 1, maxAge: 1n }),
        ),
      ).to.equal("attester 0x12 is not an address");
    });

    it("needs attesters >= threshold >= 1, distinct non-zero attesters and a max age within 7 days", () => {
      expect(problemOf(() => checkVerifierConfig(4242n, quorum([], 1)))).to.equal(
        "the quorum verifier needs at least one attester",
      );
      expect(problemOf(() => checkVerifierConfig(4242n, quorum([A, B], 3)))).to.equal(
        "the quorum threshold 3 is not in 1..2 (the number of attesters)",
      );
      expect(problemOf(() => checkVerifierConfig(4242n, quorum([A, B], 0)))).to.equal(
        "the quorum threshold 0 is not in 1..2 (the number of attesters)",
      );
      expect(problemOf(() => checkVerifierConfig(4242n, quorum([A, A.toLowerCase()], 1)))).to.equal(
        `attester ${A} is listed twice`,
      );
      expect(problemOf(() => checkVerifierConfig(4242n, quorum([ZeroAddress], 1)))).to.equal(
        "an attester is the zero address",
      );
      expect(problemOf(() => checkVerifierConfig(4242n, quorum([A], 1, 8n * 86_400n)))).to.match(
        /max age 691200 s is not in 1\.\.604800 s/,
      );
      expect(checkVerifierConfig(4242n, quorum([A, B, C], 2))).to.deep.equal(quorum([A, B, C], 2));
      expect(checkVerifierConfig(31337n, undefined)).to.deep.equal({ kind: "dev" });
    });

    it("deploys the quorum verifier on chain 4242, governed by the timelock, and records it", async () => {
      const c = await chain(4242);
      const [a1, a2, a3] = [c.signers[5]!, c.signers[6]!, c.signers[7]!].map((s) => s.address);
      const system = await deploySystem(c.ethers, {
        ...c.base,
        guardian: c.signers[9]!.address,
        rewardsUpdater: c.signers[8]!.address,
        verifier: quorum([a1!, a2!, a3!], 2, 3_600n),
      });
      const q = system.quorumVerifier!;
      expect(system.devVerifier).to.equal(undefined);
      expect(await system.tee.verifier()).to.equal(await q.getAddress());
      expect(await q.attesters()).to.deep.equal([a1, a2, a3]);
      expect(await q.threshold()).to.equal(2n);
      expect(await q.maxAge()).to.equal(3_600n);
      const t = await system.timelock.getAddress();
      const me = c.signers[0]!.address;
      for (const role of [ZeroHash, id("GOVERNANCE_ROLE")]) {
        expect(await q.hasRole(role, t)).to.equal(true);
        expect(await q.hasRole(role, me)).to.equal(false);
      }
      const record = await readRecord(dir);
      expect(record!.contracts.QuorumAttestationVerifier!.address).to.equal(await q.getAddress());
      expect(record!.contracts.DevAttestationVerifier).to.equal(undefined);
      const governance = await readGovernanceRecord(path.join(dir, "governance.json"));
      expect(governance.contracts.QuorumAttestationVerifier!.roles).to.deep.equal({
        DEFAULT_ADMIN_ROLE: [t],
        GOVERNANCE_ROLE: [t],
      });
    });
  });
});
