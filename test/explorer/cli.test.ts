/**
 * `opg explorer --rpc <url>` as an operator runs it: against a `hardhat node` on a free loopback port with
 * the protocol deployed by `opg:deploy`. The server hands out the record and the published plan, forwards
 * read methods only, and the page's vesting audit passes in chromium; bad input exits 2 naming the problem.
 */
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { chromium } from "playwright-core";

import type { HardhatNode } from "../helpers/processes.js";
import { ROOT, freePort, hardhat, run, startHardhatNode } from "../helpers/processes.js";

import { CHROMIUM, CHROMIUM_ARGS, ensureBuilt } from "./browser.js";
import { PLAN_FILE } from "./seed.js";

const OPG = path.join(ROOT, "bin", "opg.mjs");

interface RpcAnswer {
  id: unknown;
  result?: unknown;
  error?: { code: number; message: string };
}

async function post(url: string, body: unknown): Promise<RpcAnswer | RpcAnswer[]> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return (await res.json()) as RpcAnswer | RpcAnswer[];
}

/** Starts `opg explorer` and resolves with its URL once it prints it. */
function startCli(
  args: string[],
): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const child = spawn(process.execPath, [OPG, "explorer", ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`opg explorer did not start:\n${output}`)),
      60_000,
    );
    const onData = (d: Buffer): void => {
      output += d.toString();
      const match = /OPG explorer: (http:\/\/\S+)/.exec(output);
      if (match !== null) {
        clearTimeout(timer);
        resolve({ child, url: match[1]!, output: () => output });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`opg explorer exited with ${code}:\n${output}`));
    });
  });
}

describe("explorer: opg explorer --rpc against a hardhat node", function () {
  this.timeout(240_000);
  let node: HardhatNode;
  let cli: { child: ChildProcess; url: string; output: () => string };
  const recordDir = path.join(ROOT, "deployments", "e2e");

  before(async () => {
    ensureBuilt();
    await rm(recordDir, { recursive: true, force: true });
    node = await startHardhatNode();
    const deployed = await hardhat(["opg:deploy", "--network", "e2e", "--plan", PLAN_FILE], {
      OPG_E2E_RPC_URL: node.url,
    });
    expect(deployed.code, deployed.stdout + deployed.stderr).to.equal(0);
    cli = await startCli(["--rpc", node.url, "--port", "0", "--network", "e2e"]);
  });

  after(async () => {
    if (cli !== undefined && cli.child.exitCode === null) {
      const exited = new Promise((r) => cli.child.once("exit", r));
      cli.child.kill("SIGTERM");
      await exited;
    }
    await node?.stop();
    await rm(recordDir, { recursive: true, force: true });
  });

  it("prints its address and the chain it reads", () => {
    expect(cli.output()).to.match(
      /chain 31337 via http:\/\/127\.0\.0\.1:\d+ \(read methods only\)/,
    );
  });

  it("serves the page, and the deployment record with the published plan", async () => {
    const page = await fetch(cli.url);
    expect(page.status).to.equal(200);
    expect(await page.text()).to.include("OPG transparency explorer");
    const view = (await (await fetch(new URL("deployment.json", cli.url))).json()) as {
      record: { chainId: string; contracts: Record<string, unknown> };
      plan: { schedules: unknown[] };
    };
    expect(view.record.chainId).to.equal("31337");
    expect(view.record.contracts).to.have.property("VestingVault");
    expect(view.plan.schedules).to.have.length(6);
    const escape = await fetch(new URL("../package.json", cli.url.replace(/\/$/, "/assets/")));
    expect(escape.status).to.be.oneOf([403, 404]);
  });

  it("forwards read methods to the node", async () => {
    const answer = (await post(new URL("rpc", cli.url).toString(), {
      jsonrpc: "2.0",
      id: 7,
      method: "eth_chainId",
      params: [],
    })) as RpcAnswer;
    expect(answer).to.deep.include({ id: 7, result: "0x7a69" });
  });

  it("caps eth_getLogs ranges and refuses a duplicate method key, answering reads after", async () => {
    const rpc = new URL("rpc", cli.url).toString();
    const statusOf = async (text: string): Promise<[number, RpcAnswer]> => {
      const res = await fetch(rpc, { method: "POST", body: text });
      return [res.status, (await res.json()) as RpcAnswer];
    };
    const [wide, answer] = await statusOf(
      '{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"fromBlock":"0x0","toBlock":"0xffffffffff"}]}',
    );
    expect(wide).to.equal(400);
    expect(answer.error?.message).to.include("cap of 10000");
    const [dup] = await statusOf(
      '{"jsonrpc":"2.0","id":2,"method":"eth_sendTransaction","method":"eth_chainId","params":[]}',
    );
    expect(dup).to.equal(400);
    const within = (await post(rpc, {
      jsonrpc: "2.0",
      id: 3,
      method: "eth_getLogs",
      params: [{ fromBlock: "earliest", toBlock: "latest" }],
    })) as RpcAnswer;
    expect(within.result).to.be.an("array").that.is.not.empty; // the deployment's events
  });

  it("refuses methods that sign or change state, alone or inside a batch", async () => {
    const rpc = new URL("rpc", cli.url).toString();
    const send = (await post(rpc, {
      jsonrpc: "2.0",
      id: 1,
      method: "eth_sendTransaction",
      params: [{ from: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", value: "0x1" }],
    })) as RpcAnswer;
    expect(send.error?.code).to.equal(-32601);
    expect(send.error?.message).to.include("eth_sendTransaction");
    const batch = (await post(rpc, [
      { jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] },
      { jsonrpc: "2.0", id: 2, method: "hardhat_mine", params: [] },
    ])) as RpcAnswer[];
    expect(batch.map((a) => a.error?.code)).to.deep.equal([-32601, -32601]);
    expect(batch[1]!.error?.message).to.include("hardhat_mine");
    const bad = await fetch(rpc, { method: "POST", body: "{not json" });
    expect(bad.status).to.equal(400);
  });

  it("shows the vesting audit's verdict in chromium", async function () {
    if (!existsSync(CHROMIUM)) this.skip();
    const profile = await mkdtemp(path.join(tmpdir(), "opg-chromium-"));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      await page.goto(cli.url);
      await page.waitForSelector("body[data-ready=true]", { timeout: 60_000 });
      expect(await page.locator("#vesting .verdict").innerText()).to.include(
        "the chain matches the published plan",
      );
      expect(await page.locator("#nodes").innerText()).to.include("0 registered nodes");
    } finally {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    }
  });

  describe("on bad input", () => {
    it("exits 2 naming the RPC URL when the node does not answer", async () => {
      const url = `http://127.0.0.1:${await freePort()}`;
      const r = await run(process.execPath, [OPG, "explorer", "--rpc", url]);
      expect(r.code).to.equal(2);
      expect(r.stderr).to.include("cannot reach the JSON-RPC endpoint");
      expect(r.stderr).to.include(url);
    });

    it("exits 2 on a port out of range", async () => {
      const r = await run(process.execPath, [
        OPG,
        "explorer",
        "--rpc",
        node.url,
        "--port",
        "70000",
      ]);
      expect(r.code).to.equal(2);
      expect(r.stderr).to.include("--port must be an integer from 0 to 65535");
    });

    it("exits 2 on a --max-log-range that is not a whole number of blocks", async () => {
      for (const value of ["0", "-5", "1.5", "many"]) {
        const r = await run(process.execPath, [
          OPG,
          "explorer",
          "--rpc",
          node.url,
          `--max-log-range=${value}`,
        ]);
        expect(r.code, value).to.equal(2);
        expect(r.stderr).to.include("--max-log-range must be a whole number of blocks, at least 1");
      }
    });

    it("exits 2 on a relayer that is not an http(s) URL", async () => {
      const r = await run(process.execPath, [
        OPG,
        "explorer",
        "--rpc",
        node.url,
        "--network",
        "e2e",
        "--relayer",
        "ftp://relayer.example",
      ]);
      expect(r.code).to.equal(2);
      expect(r.stderr).to.include("--relayer must be an http(s) URL");
    });

    it("exits 2 naming the record file when the network has no deployment", async () => {
      const r = await run(process.execPath, [
        OPG,
        "explorer",
        "--rpc",
        node.url,
        "--network",
        "no-such-network",
      ]);
      expect(r.code).to.equal(2);
      expect(r.stderr).to.include("cannot read the deployment record");
      expect(r.stderr).to.include(path.join("deployments", "no-such-network", "deployment.json"));
    });
  });
});
