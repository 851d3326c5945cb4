/**
 * The vesting tasks as a protocol engineer and an auditor run them: against a real `hardhat node`
 * JSON-RPC chain on a free loopback port, through the Hardhat CLI, checking output and exit codes.
 */
import { readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";

import { parseTime } from "../../offchain/vesting/plan.js";
import type { HardhatNode } from "../helpers/processes.js";
import { ROOT, hardhat, rpc, startHardhatNode } from "../helpers/processes.js";

const PLAN = "deployments/localhost/vesting-plan.json";

describe("e2e: vesting tasks on a hardhat node", function () {
  this.timeout(300_000);
  let node: HardhatNode;
  let env: NodeJS.ProcessEnv;
  const recordDir = path.join(ROOT, "deployments", "e2e");

  before(async () => {
    await rm(recordDir, { recursive: true, force: true });
    node = await startHardhatNode();
    env = { OPG_E2E_RPC_URL: node.url };
  });
  after(async () => {
    await node?.stop();
    await rm(recordDir, { recursive: true, force: true });
  });

  it("opg:deploy creates and seals the plan, and a second run changes nothing", async () => {
    const first = await hardhat(
      ["opg:deploy", "--network", "e2e", "--plan", PLAN, "--batch-size", "4"],
      env,
    );
    expect(first.code, first.stderr).to.equal(0);
    expect(first.stdout).to.match(/schedules 0\.\.3 created/);
    expect(first.stdout).to.match(/schedules 4\.\.5 created/);
    expect(first.stdout).to.match(/plan sealed with hash 0x[0-9a-f]{64}/);
    const second = await hardhat(["opg:deploy", "--network", "e2e", "--plan", PLAN], env);
    expect(second.code, second.stderr).to.equal(0);
    expect(second.stdout).to.match(/VestingVault: already deployed/);
    expect(second.stdout).to.match(/plan already sealed/);
  });

  it("opg:vesting:calendar lists the 8,080,000 OPG tranche on 2027-06-21 (table, CSV and JSON)", async () => {
    const table = await hardhat(["opg:vesting:calendar", "--network", "e2e", "--plan", PLAN], env);
    expect(table.code, table.stderr).to.equal(0);
    expect(table.stdout).to.match(
      /2027-06-21 │ #4 ecosystem-unlocks\s+│ ecosystem\s+│ tranche │\s+8,080,000 │/,
    );
    const csv = await hardhat(
      ["opg:vesting:calendar", "--network", "e2e", "--csv", "--to", "2027-07-01T00:00:00Z"],
      env,
    );
    // Without --plan the calendar names schedules from the plan the deployment record names.
    expect(csv.stdout).to.contain(
      "2027-06-21T00:00:00Z,4,ecosystem-unlocks,ecosystem,tranche,8080000,",
    );
    const json = await hardhat(
      ["opg:vesting:calendar", "--network", "e2e", "--json", "--plan", PLAN],
      env,
    );
    const rows = JSON.parse(json.stdout) as Array<{
      date: string;
      unlocks: Array<{ name: string; amount: string }>;
    }>;
    const june = rows.find((r) => r.date === "2027-06-21T00:00:00Z")!;
    expect(june.unlocks).to.deep.equal([
      {
        scheduleId: 4,
        name: "ecosystem-unlocks",
        category: "ecosystem",
        kind: "tranche",
        amount: "8080000",
      },
    ]);
    const bad = await hardhat(
      ["opg:vesting:calendar", "--network", "e2e", "--period", "year"],
      env,
    );
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.contain("--period must be month, week or day");
  });

  it("opg:vesting:audit says OK for the published plan and exits 1 listing each difference otherwise", async () => {
    const ok = await hardhat(["opg:vesting:audit", "--network", "e2e", "--plan", PLAN], env);
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stdout).to.contain("AUDIT OK");
    // Without --plan: the plan the deployment record names (not deployments/e2e/vesting-plan.json).
    const recorded = await hardhat(["opg:vesting:audit", "--network", "e2e"], env);
    expect(recorded.code, recorded.stderr).to.equal(0);
    expect(recorded.stdout).to.equal(ok.stdout);
    const tampered = path.join(tmpdir(), `opg-tampered-${process.pid}.json`);
    await writeFile(
      tampered,
      (await readFile(PLAN, "utf8"))
        .replace('"8080000"', '"8080001"')
        .replace('"11920000"', '"11919999"'),
    );
    const diff = await hardhat(["opg:vesting:audit", "--network", "e2e", "--plan", tampered], env);
    await rm(tampered);
    expect(diff.code).to.equal(1);
    expect(diff.stdout).to.contain("AUDIT FAILED: 3 difference(s)");
    expect(diff.stdout).to.contain(
      "schedule 4 (ecosystem-unlocks): tranche 2 amount is 8,080,000 OPG on chain, 8,080,001 OPG in the plan",
    );
  });

  it("opg:vesting:release pays the tranche when it is due, and rejects bad ids with exit code 2", async () => {
    const early = await hardhat(["opg:vesting:release", "--network", "e2e", "--ids", "4"], env);
    expect(early.code, early.stderr).to.equal(0);
    expect(early.stdout).to.contain("Nothing is releasable now.");
    await rpc(node.url, "evm_setNextBlockTimestamp", [Number(parseTime("2027-06-21T00:00:00Z"))]);
    await rpc(node.url, "evm_mine");
    const due = await hardhat(["opg:vesting:release", "--network", "e2e", "--ids", "4"], env);
    expect(due.code, due.stderr).to.equal(0);
    expect(due.stdout).to.contain(
      "schedule 4: 40,000,000 OPG -> 0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
    );
    const bad = await hardhat(["opg:vesting:release", "--network", "e2e", "--ids", "4,x"], env);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.contain('"x" is not a schedule id');
    const unknown = await hardhat(["opg:vesting:release", "--network", "e2e", "--ids", "9"], env);
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.contain("schedule 9 does not exist");
  });
});
