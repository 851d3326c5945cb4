import { readFile } from "node:fs/promises";

import { expect } from "chai";

import { InputError } from "../../../offchain/common/errors.js";
import {
  PlanError,
  formatOpg,
  loadPlan,
  parsePlan,
  parseTime,
} from "../../../offchain/vesting/plan.js";

const LOCALHOST_PLAN = "deployments/localhost/vesting-plan.json";

async function localhostJson(): Promise<
  { schedules: Array<Record<string, unknown>> } & Record<string, unknown>
> {
  return JSON.parse(await readFile(LOCALHOST_PLAN, "utf8")) as never;
}

function problemsOf(json: unknown): string[] {
  try {
    parsePlan(json, "test.json");
  } catch (error) {
    expect(error).to.be.instanceOf(PlanError);
    expect((error as PlanError).exitCode).to.equal(2);
    return (error as PlanError).problems;
  }
  throw new Error("expected the plan to be rejected");
}

describe("offchain/vesting/plan", () => {
  describe("the localhost plan", () => {
    it("is valid and holds the 8,080,000 OPG tranche on 2027-06-21 among the four categories", async () => {
      const plan = await loadPlan(LOCALHOST_PLAN);
      const categories = new Set(plan.schedules.map((s) => s.categoryName));
      expect([...categories].sort()).to.deep.equal([
        "ecosystem",
        "investor",
        "rewards-pool",
        "team",
      ]);
      const tranche = plan.schedules
        .flatMap((s) => s.params.tranches)
        .find((t) => t.amount === 8_080_000n * 10n ** 18n);
      expect(tranche?.timestamp).to.equal(parseTime("2027-06-21T00:00:00Z"));
    });
  });

  describe("parsePlan", () => {
    it("names the path of a missing field and of a wrong type", async () => {
      const json = await localhostJson();
      delete json.schedules[0]!.total;
      json.schedules[1]!.revocable = "yes";
      const problems = problemsOf(json);
      expect(problems.some((p) => p.startsWith("schedules[0].total"))).to.equal(true);
      expect(problems.some((p) => p.startsWith("schedules[1].revocable"))).to.equal(true);
    });

    it("rejects an unchecksummed beneficiary and says the checksummed form", async () => {
      const json = await localhostJson();
      json.schedules[0]!.beneficiary = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";
      expect(problemsOf(json)).to.deep.equal([
        "schedules[0].beneficiary: is not checksummed (expected 0x70997970C51812dc3A010C7d01b50e0d17dc79C8)",
      ]);
    });

    it("rejects non-addresses, numbers as amounts, too many decimals and non-UTC times", async () => {
      const json = await localhostJson();
      json.schedules[0]!.beneficiary = "0x1234";
      json.schedules[1]!.total = 5;
      json.schedules[2]!.total = "1.0000000000000000001";
      json.schedules[3]!.start = "2027-01-21T00:00:00+01:00";
      const problems = problemsOf(json);
      expect(problems).to.have.length(4);
      expect(problems[0]).to.equal("schedules[0].beneficiary: is not an address");
      expect(problems[1]).to.match(/^schedules\[1\]\.total: /);
      expect(problems[2]).to.match(/^schedules\[2\]\.total: must be a decimal string/);
      expect(problems[3]).to.match(/^schedules\[3\]\.start: must be ISO-8601 UTC/);
    });

    it("rejects impossible dates", async () => {
      const json = await localhostJson();
      json.schedules[0]!.end = "2031-02-30T00:00:00Z";
      expect(problemsOf(json)).to.deep.equal([
        "schedules[0] (team-founders): end 2031-02-30T00:00:00Z is not a real date",
      ]);
    });

    it("checks what the vault checks: times, cliff amount, tranche order and sum, supply", async () => {
      const json = await localhostJson();
      json.schedules[0]!.end = "2026-01-01T00:00:00Z";
      json.schedules[1]!.cliffAmount = "60000000";
      const tranches = json.schedules[2]!.tranches as Array<{ at: string; amount: string }>;
      tranches[1]!.at = tranches[0]!.at;
      tranches[2]!.amount = "0";
      (json.token as { totalSupply: string }).totalSupply = "100";
      const problems = problemsOf(json);
      expect(problems).to.include(
        "schedules[0] (team-founders): start 2027-01-21T00:00:00Z must be before end 2026-01-01T00:00:00Z",
      );
      expect(problems).to.include(
        "schedules[1] (team-engineering): cliffAmount 60000000 exceeds total 50000000",
      );
      expect(problems).to.include(
        "schedules[2] (investors-seed): tranches[1].at 2027-07-21T00:00:00Z must be after the previous tranche",
      );
      expect(problems).to.include("schedules[2] (investors-seed): tranches[2].amount must be > 0");
      expect(problems).to.include(
        "schedules[2] (investors-seed): tranches add up to 110,000,000 OPG but total is 120000000",
      );
      expect(problems).to.include("schedules add up to 700,000,000 OPG, more than the supply 100");
    });

    it("rejects duplicate names, unknown fields and an unknown kind", async () => {
      const json = await localhostJson();
      json.schedules[1]!.name = json.schedules[0]!.name;
      expect(problemsOf(json)).to.deep.equal([
        'schedules[1] (team-founders): name "team-founders" is used twice',
      ]);
      const extra = await localhostJson();
      extra.schedules[0]!.unlockEarly = true;
      expect(problemsOf(extra)[0]).to.match(/unlockEarly/);
      const kind = await localhostJson();
      kind.schedules[0]!.kind = "exponential";
      expect(problemsOf(kind)[0]).to.match(/^schedules\[0\]\.kind/);
    });

    it("rejects a cliff outside [start, end]", async () => {
      const json = await localhostJson();
      json.schedules[0]!.cliff = "2026-01-01T00:00:00Z";
      expect(problemsOf(json)).to.deep.equal([
        "schedules[0] (team-founders): cliff 2026-01-01T00:00:00Z must lie between start and end",
      ]);
    });
  });

  describe("loadPlan", () => {
    it("says which file is missing and how to fix it", async () => {
      const error = await loadPlan("deployments/nowhere/vesting-plan.json").catch(
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(InputError);
      expect((error as InputError).format()).to.match(/cannot read the vesting plan .*nowhere/);
    });
  });

  describe("formatOpg", () => {
    it("keeps every wei unless asked to truncate", () => {
      expect(formatOpg(1_234_567_000_000_000_000_000_001n)).to.equal(
        "1,234,567.000000000000000001",
      );
      expect(formatOpg(1_234_567_899_000_000_000_000_000n, 2)).to.equal("1,234,567.89");
      expect(formatOpg(0n)).to.equal("0");
    });
  });
});
