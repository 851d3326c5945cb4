/** Deployment, audit, calendar and release against a real (in-process) chain. */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { network } from "hardhat";

import { VerificationError } from "../../../offchain/common/errors.js";
import { readRecord } from "../../../offchain/chain/deployment.js";
import { auditVault } from "../../../offchain/vesting/audit.js";
import {
  buildCalendar,
  calendarCsv,
  calendarJson,
  periodBoundaries,
} from "../../../offchain/vesting/calendar.js";
import { readVault } from "../../../offchain/vesting/chain.js";
import { deployVesting } from "../../../offchain/vesting/deploy.js";
import { loadPlan, parsePlan, parseTime } from "../../../offchain/vesting/plan.js";
import { parseIds, releaseSchedules } from "../../../offchain/vesting/release.js";

const PLAN_FILE = "deployments/localhost/vesting-plan.json";
const OPG = 10n ** 18n;

describe("offchain/vesting on a chain", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "opg-deploy-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe("deployVesting", () => {
    it("deploys, creates the plan in batches, seals and records every step", async () => {
      const { ethers } = await network.create();
      const [deployer] = await ethers.getSigners();
      const plan = await loadPlan(PLAN_FILE);
      const logs: string[] = [];
      const result = await deployVesting(deployer!, {
        dir,
        network: "test",
        plan,
        planFile: PLAN_FILE,
        batchSize: 4,
        log: (m) => logs.push(m),
      });
      expect(await result.vault.isSealed()).to.equal(true);
      expect(await result.vault.planHash()).to.equal(result.planHash);
      const record = (await readRecord(dir))!;
      expect(record.vesting!.batches.map((b) => b.count)).to.deep.equal([4, 2]);
      expect(record.vesting!.sealed).to.not.equal(null);
      expect(Object.keys(record.pending)).to.deep.equal([]);
      const addresses = JSON.parse(
        await readFile(path.join(dir, "addresses.json"), "utf8"),
      ) as Record<string, string>;
      expect(addresses.VestingVault).to.equal(await result.vault.getAddress());
      expect(logs.filter((l) => l.includes("created"))).to.have.length(2);
    });

    it("is idempotent: a second run sends no transaction", async () => {
      const { ethers } = await network.create();
      const [deployer] = await ethers.getSigners();
      const plan = await loadPlan(PLAN_FILE);
      await deployVesting(deployer!, { dir, network: "test", plan, planFile: PLAN_FILE });
      const nonce = await ethers.provider.getTransactionCount(deployer!.address);
      const again = await deployVesting(deployer!, {
        dir,
        network: "test",
        plan,
        planFile: PLAN_FILE,
      });
      expect(await ethers.provider.getTransactionCount(deployer!.address)).to.equal(nonce);
      expect(await again.vault.scheduleCount()).to.equal(6n);
    });

    it("resumes after an interruption between batches, and adopts an interrupted contract deployment", async () => {
      const { ethers } = await network.create();
      const [deployer] = await ethers.getSigners();
      const plan = await loadPlan(PLAN_FILE);
      const first = await deployVesting(deployer!, {
        dir,
        network: "test",
        plan: { ...plan, schedules: plan.schedules.slice(0, 2) },
        planFile: PLAN_FILE,
      }).catch((e: unknown) => e);
      // A shortened plan is a different plan: the record now refuses the full one...
      expect(first).to.not.be.instanceOf(Error);
      const refused = await deployVesting(deployer!, {
        dir,
        network: "test",
        plan,
        planFile: PLAN_FILE,
      }).catch((e: unknown) => e);
      expect(refused).to.be.instanceOf(VerificationError);
      expect((refused as VerificationError).message).to.match(/plan file changed/);

      // ...so simulate a crash properly: create two schedules by hand, drop the seal, and forget the vault
      // was recorded (only its pending entry remains).
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir);
      const token = await ethers.deployContract("OPGToken", [deployer!.address, plan.totalSupply]);
      const vaultNonce = await ethers.provider.getTransactionCount(deployer!.address);
      const vault = await ethers.deployContract("VestingVault", [
        await token.getAddress(),
        deployer!.address,
      ]);
      await token.approve(await vault.getAddress(), plan.totalSupply);
      await vault.createSchedules(plan.schedules.slice(0, 2).map((s) => s.params));
      const { chainId } = await ethers.provider.getNetwork();
      await writeFile(
        path.join(dir, "deployment.json"),
        JSON.stringify({
          network: "test",
          chainId: chainId.toString(),
          deployer: deployer!.address,
          contracts: {
            OPGToken: {
              address: await token.getAddress(),
              txHash: token.deploymentTransaction()!.hash,
              block: 1,
              args: [],
            },
          },
          pending: {
            VestingVault: {
              address: await vault.getAddress(),
              nonce: vaultNonce,
              txHash: vault.deploymentTransaction()!.hash,
            },
          },
        }),
      );
      const logs: string[] = [];
      const resumed = await deployVesting(deployer!, {
        dir,
        network: "test",
        plan,
        planFile: PLAN_FILE,
        log: (m) => logs.push(m),
      });
      expect(await resumed.vault.getAddress()).to.equal(await vault.getAddress());
      expect(logs[1]).to.match(/adopted the interrupted deployment/);
      expect(logs[2]).to.match(/schedules 2\.\.5 created/);
      expect(await vault.planHash()).to.equal(resumed.planHash);
      expect(await vault.isSealed()).to.equal(true);
    });

    it("refuses a vault whose schedules are not the plan's prefix", async () => {
      const { ethers } = await network.create();
      const [deployer] = await ethers.getSigners();
      const plan = await loadPlan(PLAN_FILE);
      const token = await ethers.deployContract("OPGToken", [deployer!.address, plan.totalSupply]);
      const vault = await ethers.deployContract("VestingVault", [
        await token.getAddress(),
        deployer!.address,
      ]);
      await token.approve(await vault.getAddress(), plan.totalSupply);
      await vault.createSchedule(plan.schedules[1]!.params); // out of order
      const { chainId } = await ethers.provider.getNetwork();
      const entry = (c: { getAddress(): Promise<string> }) =>
        c.getAddress().then((address) => ({ address, txHash: "0x", block: 0, args: [] }));
      await writeFile(
        path.join(dir, "deployment.json"),
        JSON.stringify({
          network: "test",
          chainId: chainId.toString(),
          deployer: deployer!.address,
          contracts: { OPGToken: await entry(token), VestingVault: await entry(vault) },
          pending: {},
        }),
      );
      const error = await deployVesting(deployer!, {
        dir,
        network: "test",
        plan,
        planFile: PLAN_FILE,
      }).catch((e: unknown) => e);
      expect(error).to.be.instanceOf(VerificationError);
      expect((error as Error).message).to.equal(
        "the vault holds 1 schedule(s) that are not the plan's first 1",
      );
    });

    it("refuses a record from another chain or whose contracts have no code", async () => {
      const { ethers } = await network.create();
      const [deployer] = await ethers.getSigners();
      const plan = await loadPlan(PLAN_FILE);
      const base = { network: "test", deployer: deployer!.address, pending: {} };
      await writeFile(
        path.join(dir, "deployment.json"),
        JSON.stringify({ ...base, chainId: "1", contracts: {} }),
      );
      const wrongChain = await deployVesting(deployer!, {
        dir,
        network: "test",
        plan,
        planFile: PLAN_FILE,
      }).catch((e: unknown) => e);
      expect((wrongChain as Error).message).to.match(/is for chain 1, not 31337/);
      await writeFile(
        path.join(dir, "deployment.json"),
        JSON.stringify({
          ...base,
          chainId: "31337",
          contracts: { OPGToken: { address: deployer!.address, txHash: "0x", block: 0, args: [] } },
        }),
      );
      const noCode = await deployVesting(deployer!, {
        dir,
        network: "test",
        plan,
        planFile: PLAN_FILE,
      }).catch((e: unknown) => e);
      expect((noCode as Error).message).to.match(/OPGToken in the deployment record has no code/);
    });
  });

  describe("auditVault", () => {
    async function deployed() {
      const { ethers, networkHelpers } = await network.create();
      const signers = await ethers.getSigners();
      const plan = await loadPlan(PLAN_FILE);
      const d = await deployVesting(signers[0]!, {
        dir,
        network: "test",
        plan,
        planFile: PLAN_FILE,
      });
      return { ...d, plan, ethers, networkHelpers, signers };
    }

    it("says OK for the deployed plan, and notes releases and rotations", async () => {
      const { vault, token, plan, networkHelpers, signers } = await deployed();
      await networkHelpers.time.increaseTo(parseTime("2027-06-21T00:00:00Z"));
      await vault.release(4);
      const beneficiary = signers.find((s) => s.address === plan.schedules[4]!.params.beneficiary)!;
      await vault.connect(beneficiary).transferBeneficiary(4, signers[9]!.address);
      const report = await auditVault(vault, token, plan);
      expect(report.differences).to.deep.equal([]);
      expect(report.ok).to.equal(true);
      expect(report.notes).to.include(
        `schedule 4 (ecosystem-unlocks): beneficiary rotated ${beneficiary.address} -> ${signers[9]!.address}`,
      );
      expect(report.notes).to.include(
        "schedule 4 (ecosystem-unlocks): 40,000,000 OPG released so far",
      );
    });

    it("lists every field that differs from the file", async () => {
      const { vault, token, plan } = await deployed();
      const json = JSON.parse(await readFile(PLAN_FILE, "utf8")) as {
        schedules: Array<Record<string, unknown>>;
      };
      json.schedules[0]!.end = "2031-01-22T00:00:00Z";
      json.schedules[1]!.revocable = false;
      json.schedules[3]!.beneficiary = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720";
      const tampered = parsePlan(json);
      const report = await auditVault(vault, token, tampered);
      expect(report.ok).to.equal(false);
      expect(report.differences[0]).to.match(
        /^plan hash: chain 0x[0-9a-f]{64}, published file 0x[0-9a-f]{64}$/,
      );
      expect(report.differences).to.include(
        "schedule 0 (team-founders): end is 2031-01-21T00:00:00Z on chain, 2031-01-22T00:00:00Z in the plan",
      );
      expect(report.differences).to.include(
        "schedule 1 (team-engineering): revocable is true on chain, false in the plan",
      );
      expect(report.differences).to.include(
        "schedule 3 (investors-strategic): beneficiary is 0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65 on chain, 0xa0Ee7A142d267C1f36714E4a8F75612F20a79720 by the plan and its rotations",
      );
      expect(plan.schedules).to.have.length(6);
    });

    it("reports a missing schedule, an unsealed vault and a revocation", async () => {
      const { ethers } = await network.create();
      const [deployer] = await ethers.getSigners();
      const plan = await loadPlan(PLAN_FILE);
      const token = await ethers.deployContract("OPGToken", [deployer!.address, plan.totalSupply]);
      const vault = await ethers.deployContract("VestingVault", [
        await token.getAddress(),
        deployer!.address,
      ]);
      await token.approve(await vault.getAddress(), plan.totalSupply);
      await vault.createSchedules(plan.schedules.slice(0, 2).map((s) => s.params));
      await vault.revoke(1, deployer!.address);
      const report = await auditVault(vault, token, plan);
      expect(report.differences).to.include(
        "the vault is not sealed: schedules can still be added",
      );
      expect(report.differences).to.include("schedule count: chain 2, published file 6");
      expect(report.notes).to.include(
        "schedule 1 (team-engineering): revoked, vesting capped at 0 OPG",
      );
    });
  });

  describe("calendar", () => {
    it("shows the 8,080,000 OPG tranche on 2027-06-21 and totals that match the chain", async () => {
      const { ethers } = await network.create();
      const [deployer] = await ethers.getSigners();
      const plan = await loadPlan(PLAN_FILE);
      const { vault } = await deployVesting(deployer!, {
        dir,
        network: "test",
        plan,
        planFile: PLAN_FILE,
      });
      const state = await readVault(vault);
      const from = parseTime("2027-01-01T00:00:00Z");
      const to = parseTime("2031-12-31T00:00:00Z");
      const rows = buildCalendar(state.schedules, { from, to, period: "month" });
      const june = rows.find((r) => r.date === "2027-06-21T00:00:00Z")!;
      expect(june.entries.map((e) => [e.scheduleId, e.kind, e.amount])).to.deep.equal([
        [4, "tranche", 8_080_000n * OPG],
      ]);
      for (const row of rows) expect(row.totalVested).to.equal(await vault.totalVestedAt(row.at));
      // Everything vests within the window, and the unlocks add up to the plan's total.
      const sum = rows.reduce((a, r) => a + r.amount, 0n);
      expect(sum).to.equal(700_000_000n * OPG);
      expect(calendarCsv(rows).split("\n")[0]).to.equal(
        "date,schedule_id,name,category,kind,amount_opg,total_vested_opg",
      );
      expect(calendarCsv(rows)).to.contain("2027-06-21T00:00:00Z,4,#4,ecosystem,tranche,8080000,");
      expect(JSON.stringify(calendarJson(rows))).to.contain('"amount":"8080000"');
    });

    it("cuts periods at month, week (Monday) and day boundaries in UTC", () => {
      const from = parseTime("2027-01-15T12:00:00Z");
      const to = parseTime("2027-03-01T00:00:00Z");
      const iso = (ts: bigint[]) =>
        ts.map((t) => new Date(Number(t) * 1000).toISOString().slice(0, 10));
      expect(iso(periodBoundaries(from, to, "month"))).to.deep.equal(["2027-02-01", "2027-03-01"]);
      expect(iso(periodBoundaries(from, parseTime("2027-02-01T00:00:00Z"), "week"))).to.deep.equal([
        "2027-01-18",
        "2027-01-25",
        "2027-02-01",
      ]);
      expect(periodBoundaries(from, parseTime("2027-01-18T00:00:00Z"), "day")).to.have.length(3);
    });
  });

  describe("releaseSchedules", () => {
    it("releases what is due, skips the rest and rejects unknown ids", async () => {
      const { ethers, networkHelpers } = await network.create();
      const signers = await ethers.getSigners();
      const plan = await loadPlan(PLAN_FILE);
      const { vault, token } = await deployVesting(signers[0]!, {
        dir,
        network: "test",
        plan,
        planFile: PLAN_FILE,
      });
      await networkHelpers.time.increaseTo(parseTime("2027-03-21T00:00:00Z") - 1n);
      const result = await releaseSchedules(vault.connect(signers[8]), null);
      expect(result.released.map((r) => r.id)).to.deep.equal([4, 5]);
      expect(result.released[0]!.amount).to.equal(31_920_000n * OPG);
      expect(result.skipped).to.deep.equal([0, 1, 2, 3]);
      expect(await token.balanceOf(plan.schedules[4]!.params.beneficiary)).to.equal(
        31_920_000n * OPG,
      );
      const none = await releaseSchedules(vault, [0]);
      expect(none).to.deep.equal({ released: [], skipped: [0], txHash: null });
      const error = await releaseSchedules(vault, [6]).catch((e: unknown) => e);
      expect((error as Error).message).to.equal("schedule 6 does not exist");
    });

    it("parses id lists", () => {
      expect(parseIds("all")).to.equal(null);
      expect(parseIds("0, 3,7")).to.deep.equal([0, 3, 7]);
      expect(() => parseIds("1,x")).to.throw('"x" is not a schedule id');
    });
  });
});
