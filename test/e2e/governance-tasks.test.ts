/**
 * Governance as a protocol engineer and a token holder run it: against a real `hardhat node` on a free
 * loopback port, through the Hardhat CLI. The deploy hands everything to the governor; the audit says so
 * (exit 0); a measurement is approved through opg:gov:delegate / propose / vote / queue / execute with each
 * step refused (exit 2, saying what to wait for) when it comes too early; a raw-call proposal that grants an
 * EOA SLASHER_ROLE passes, and the audit then fails (exit 1), as it does against a tampered record.
 */
import { readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { Interface, id } from "ethers";

import type { HardhatNode } from "../helpers/processes.js";
import { ROOT, hardhat, rpc, startHardhatNode } from "../helpers/processes.js";

const PLAN = "deployments/localhost/vesting-plan.json";
const DAY = 86_400;
const MEASUREMENT = id("opg e2e enclave image");
/** Hardhat's account #19: a key, no code. */
const EOA = "0x8626f6940E2eb28930eFb4CeF49B2d1F2C9C1199";

describe("e2e: governance tasks on a hardhat node", function () {
  this.timeout(600_000);
  let node: HardhatNode;
  let env: NodeJS.ProcessEnv;
  const recordDir = path.join(ROOT, "deployments", "e2e");
  const gov = (args: string[]) =>
    hardhat([...args.slice(0, 1), "--network", "e2e", ...args.slice(1)], env);
  const travel = async (seconds: number) => {
    await rpc(node.url, "evm_increaseTime", [seconds]);
    await rpc(node.url, "evm_mine");
  };
  /** The id printed by opg:gov:propose. */
  const proposalIdOf = (stdout: string) => /proposed (\d+)/.exec(stdout)![1]!;

  before(async () => {
    await rm(recordDir, { recursive: true, force: true });
    node = await startHardhatNode();
    env = { OPG_E2E_RPC_URL: node.url };
    const deployed = await gov(["opg:deploy", "--plan", PLAN]);
    expect(deployed.code, deployed.stderr).to.equal(0);
    expect(deployed.stdout).to.contain(
      "OPGTimelock PROPOSER_ROLE, CANCELLER_ROLE, EXECUTOR_ROLE -> OPGGovernor",
    );
    expect(deployed.stdout).to.contain("OPGTimelock: deployer renounced PROPOSER_ROLE");
    expect(deployed.stdout).to.match(
      /guardian not given \(--guardian\): local chain 31337, so it defaults to the deployer/,
    );
  });
  after(async () => {
    await node?.stop();
    await rm(recordDir, { recursive: true, force: true });
  });

  it("opg:governance:audit passes on the fresh deployment (table and JSON)", async () => {
    const table = await gov(["opg:governance:audit"]);
    expect(table.code, table.stderr + table.stdout).to.equal(0);
    expect(table.stdout).to.match(/NodeStaking\s+│ SLASHER_ROLE\s+│ InferenceLedger 0x/);
    expect(table.stdout).to.match(/OPGTimelock\s+│ PROPOSER_ROLE\s+│ OPGGovernor 0x/);
    expect(table.stdout).to.match(/VestingVault\s+│ owner\s+│ OPGTimelock 0x/);
    expect(table.stdout).to.contain("AUDIT OK");
    const json = await gov(["opg:governance:audit", "--json"]);
    const report = JSON.parse(json.stdout) as {
      ok: boolean;
      rows: Array<{ contract: string; item: string }>;
    };
    expect(report.ok).to.equal(true);
    expect(
      report.rows.filter((r) => r.contract === "OPGTimelock").map((r) => r.item),
    ).to.deep.equal([
      "DEFAULT_ADMIN_ROLE",
      "PROPOSER_ROLE",
      "CANCELLER_ROLE",
      "EXECUTOR_ROLE",
      "getMinDelay",
    ]);
  });

  it("approves a measurement through delegate, propose, vote, queue and execute, refusing each step too early", async () => {
    expect((await gov(["opg:gov:status"])).stdout).to.contain("no proposals");
    const args = [
      "--action",
      "approve-measurement",
      "--measurement",
      MEASUREMENT,
      "--label",
      "e2e",
    ];
    const undelegated = await gov(["opg:gov:propose", ...args]);
    expect(undelegated.code).to.equal(2);
    expect(undelegated.stderr).to.contain("has 0 votes; proposing needs 1000000000000000000000000");

    const delegated = await gov(["opg:gov:delegate"]);
    expect(delegated.code, delegated.stderr).to.equal(0);
    expect(delegated.stdout).to.match(/delegated \(tx 0x[0-9a-f]{64}\) to 0xf39F/);
    const proposed = await gov(["opg:gov:propose", ...args]);
    expect(proposed.code, proposed.stderr).to.equal(0);
    expect(proposed.stdout).to.contain(
      `call: TeeRegistry.approveMeasurement(${MEASUREMENT}, "e2e")`,
    );
    const pid = proposalIdOf(proposed.stdout);
    const again = await gov(["opg:gov:propose", ...args]);
    expect(again.code).to.equal(2);
    expect(again.stderr).to.contain("this proposal exists already (Pending)");

    const early = await gov(["opg:gov:vote", "--id", pid, "--support", "for"]);
    expect(early.code).to.equal(2);
    expect(early.stderr).to.contain("proposal is Pending: votes are taken only while it is Active");
    await travel(DAY + 1);
    const bad = await gov(["opg:gov:vote", "--id", pid, "--support", "maybe"]);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.contain("--support must be for, against or abstain");
    const voted = await gov([
      "opg:gov:vote",
      "--id",
      pid,
      "--support",
      "for",
      "--reason",
      "reviewed build",
    ]);
    expect(voted.code, voted.stderr).to.equal(0);
    expect(voted.stdout).to.match(/voted for with [\d,]+ votes on \d+/);

    const notYet = await gov(["opg:gov:queue", "--id", pid]);
    expect(notYet.code).to.equal(2);
    expect(notYet.stderr).to.contain("proposal is Active: only a Succeeded proposal can be queued");
    await travel(5 * DAY);
    const queued = await gov(["opg:gov:queue", "--id", pid]);
    expect(queued.code, queued.stderr).to.equal(0);
    expect(queued.stdout).to.match(/queued \d+ in the timelock .*; executable from 20\d\d-/);

    const locked = await gov(["opg:gov:execute", "--id", pid]);
    expect(locked.code).to.equal(2);
    expect(locked.stderr).to.contain("proposal is queued in the timelock until");
    await travel(2 * DAY);
    const executed = await gov(["opg:gov:execute", "--id", pid]);
    expect(executed.code, executed.stderr).to.equal(0);
    expect(executed.stdout).to.match(/executed \d+ \(tx 0x[0-9a-f]{64}, \d+ gas\)/);

    const status = await gov(["opg:gov:status", "--id", pid]);
    expect(status.stdout).to.contain("state:       Executed");
    expect(status.stdout).to.contain(`1. TeeRegistry.approveMeasurement(${MEASUREMENT}, "e2e")`);
    const all = JSON.parse((await gov(["opg:gov:status", "--json"])).stdout) as Array<{
      id: string;
      state: string;
    }>;
    expect(all).to.deep.equal([{ ...all[0], id: pid, state: "Executed" }]);
    const approved = await rpc<string>(node.url, "eth_call", [
      {
        to: (
          JSON.parse(await readFile(path.join(recordDir, "addresses.json"), "utf8")) as Record<
            string,
            string
          >
        ).TeeRegistry,
        data: new Interface(["function isMeasurementApproved(bytes32)"]).encodeFunctionData(
          "isMeasurementApproved",
          [MEASUREMENT],
        ),
      },
      "latest",
    ]);
    expect(BigInt(approved)).to.equal(1n);
  });

  it("refuses proposals it can check before sending: a bad unbonding delay, arguments that do not fit", async () => {
    const long = await gov([
      "opg:gov:propose",
      "--action",
      "set-unbonding-delay",
      "--seconds",
      String(8 * DAY),
    ]);
    expect(long.code).to.equal(2);
    expect(long.stderr).to.contain(
      "NodeStaking's unbonding delay 691200 s (8 d) is not shorter than voting delay 86400 s (1 d) + voting period 432000 s (5 d) + timelock delay 172800 s (2 d) = 691200 s (8 d)",
    );
    const misfit = await gov([
      "opg:gov:propose",
      "--action",
      "call",
      "--target",
      "NodeStaking",
      "--signature",
      "setMinStake(uint8,uint256)",
      "--args",
      "1",
    ]);
    expect(misfit.code).to.equal(2);
    expect(misfit.stderr).to.contain("--args has 1 value(s); the signature takes 2");
    const unknown = await gov(["opg:gov:propose", "--action", "mint"]);
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.contain('unknown action "mint"');
    const noId = await gov(["opg:gov:execute", "--id", "12x"]);
    expect(noId.code).to.equal(2);
    expect(noId.stderr).to.contain('"12x" is not a proposal id');
  });

  it("opg:governance:audit exits 1 once a proposal grants an EOA SLASHER_ROLE, and against a tampered record", async () => {
    const proposed = await gov([
      "opg:gov:propose",
      "--action",
      "call",
      "--target",
      "NodeStaking",
      "--signature",
      "grantRole(bytes32,address)",
      "--args",
      `${id("SLASHER_ROLE")},${EOA}`,
      "--description",
      "make account 19 a slasher",
    ]);
    expect(proposed.code, proposed.stderr).to.equal(0);
    expect(proposed.stdout).to.contain(
      `call: NodeStaking.grantRole(${id("SLASHER_ROLE")}, ${EOA})`,
    );
    const pid = proposalIdOf(proposed.stdout);
    await travel(DAY + 1);
    expect((await gov(["opg:gov:vote", "--id", pid, "--support", "for"])).code).to.equal(0);
    await travel(5 * DAY);
    expect((await gov(["opg:gov:queue", "--id", pid])).code).to.equal(0);
    await travel(2 * DAY);
    expect((await gov(["opg:gov:execute", "--id", pid])).code).to.equal(0);

    const audit = await gov(["opg:governance:audit"]);
    expect(audit.code).to.equal(1);
    expect(audit.stdout).to.contain("AUDIT FAILED: 2 problem(s)");
    expect(audit.stdout).to.contain(
      `NodeStaking SLASHER_ROLE is held by ${EOA}, which governance.json does not list`,
    );
    expect(audit.stdout).to.contain(
      `NodeStaking SLASHER_ROLE is held by ${EOA}, an account without code (one key)`,
    );

    // A record that names another ledger: the holder on chain differs from it.
    const record = await readFile(path.join(recordDir, "governance.json"), "utf8");
    const tampered = path.join(tmpdir(), `opg-governance-${process.pid}.json`);
    const parsed = JSON.parse(record) as {
      contracts: Record<string, { roles?: Record<string, string[]> }>;
    };
    parsed.contracts.NodeStaking!.roles!.SLASHER_ROLE = [EOA];
    parsed.contracts.OPGTimelock!.roles!.PROPOSER_ROLE = [
      "0x000000000000000000000000000000000000dEaD",
    ];
    await writeFile(tampered, JSON.stringify(parsed));
    const diff = await gov(["opg:governance:audit", "--record", tampered]);
    expect(diff.code).to.equal(1);
    expect(diff.stdout).to.match(
      /OPGTimelock PROPOSER_ROLE is held by OPGGovernor \(0x[0-9a-fA-F]{40}\), which governance.json does not list/,
    );
    expect(diff.stdout).to.contain("NodeStaking SLASHER_ROLE is held by InferenceLedger");
    const missing = await gov(["opg:governance:audit", "--record", `${tampered}.absent`]);
    expect(missing.code).to.equal(2);
    expect(missing.stderr).to.contain("no governance record at");
    await writeFile(tampered, "{");
    const broken = await gov(["opg:governance:audit", "--record", tampered]);
    await rm(tampered);
    expect(broken.code).to.equal(2);
    expect(broken.stderr).to.contain("is not valid JSON");
  });
});
