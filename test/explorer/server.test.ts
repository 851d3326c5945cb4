/**
 * startExplorer on its own (no browser): the two ways to reach a chain, the read-only passthrough over an
 * in-process EIP-1193 provider, and the errors a caller gets for a wrong set-up.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { network } from "hardhat";

import { InputError } from "../../offchain/common/errors.js";
import { READ_METHODS, startExplorer } from "../../offchain/explorer/server.js";
import type { Eip1193Provider, RunningExplorer } from "../../offchain/explorer/server.js";

import { DIST, ensureBuilt } from "./browser.js";

async function rpc(explorer: RunningExplorer, body: unknown): Promise<unknown> {
  const res = await fetch(new URL("rpc", explorer.url), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return res.json();
}

describe("explorer: startExplorer", function () {
  this.timeout(60_000);
  let work: string;
  let recordDir: string;
  let provider: Eip1193Provider;

  before(async () => {
    ensureBuilt();
    ({ provider } = await network.create());
    work = await mkdtemp(path.join(tmpdir(), "opg-explorer-server-"));
    recordDir = path.join(work, "deployment");
    await mkdir(recordDir);
    await writeFile(
      path.join(recordDir, "deployment.json"),
      JSON.stringify({
        network: "t",
        chainId: "31337",
        deployer: "0x",
        contracts: {},
        pending: {},
      }),
    );
  });
  after(() => rm(work, { recursive: true, force: true }));

  describe("when set up wrongly", () => {
    it("rejects neither or both of rpcUrl and provider", async () => {
      for (const options of [
        { deploymentDir: recordDir },
        { deploymentDir: recordDir, provider, rpcUrl: "http://127.0.0.1:1" },
      ]) {
        const error: unknown = await startExplorer(options).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(InputError);
        expect((error as Error).message).to.include("exactly one chain");
      }
    });

    it("rejects a page that is not built, naming the folder", async () => {
      const error: unknown = await startExplorer({
        provider,
        deploymentDir: recordDir,
        distDir: work,
      }).catch((e: unknown) => e);
      expect(error).to.be.instanceOf(InputError);
      expect((error as InputError).details).to.deep.equal({ distDir: work });
    });

    it("rejects a folder without a deployment record, naming the file", async () => {
      const error: unknown = await startExplorer({ provider, deploymentDir: work }).catch(
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(InputError);
      expect((error as InputError).details).to.deep.equal({
        file: path.join(work, "deployment.json"),
      });
    });
  });

  describe("over an in-process provider", () => {
    let explorer: RunningExplorer;
    before(async () => {
      explorer = await startExplorer({ provider, deploymentDir: recordDir, distDir: DIST });
    });
    after(() => explorer.close());

    it("answers read methods, single and batched, keeping the ids", async () => {
      expect(await rpc(explorer, { jsonrpc: "2.0", id: 3, method: "eth_chainId" })).to.deep.equal({
        jsonrpc: "2.0",
        id: 3,
        result: "0x7a69",
      });
      const batch = (await rpc(explorer, [
        { jsonrpc: "2.0", id: "a", method: "eth_blockNumber", params: [] },
        {
          jsonrpc: "2.0",
          id: "b",
          method: "eth_getCode",
          params: [`0x${"00".repeat(20)}`, "latest"],
        },
      ])) as Array<{ id: string; result: string }>;
      expect(batch.map((a) => a.id)).to.deep.equal(["a", "b"]);
      expect(batch[1]!.result).to.equal("0x");
    });

    it("passes the provider's errors on as JSON-RPC errors", async () => {
      const answer = (await rpc(explorer, {
        jsonrpc: "2.0",
        id: 1,
        method: "eth_getBalance",
        params: ["not an address", "latest"],
      })) as { error?: { code: number; message: string } };
      expect(answer.error?.message).to.be.a("string").and.not.equal("");
    });

    it("refuses every method outside READ_METHODS", async () => {
      for (const method of ["eth_sendTransaction", "eth_sign", "hardhat_setBalance", "evm_mine"]) {
        expect(READ_METHODS.has(method)).to.equal(false);
        const answer = (await rpc(explorer, { jsonrpc: "2.0", id: 1, method, params: [] })) as {
          error?: { code: number; message: string };
        };
        expect(answer.error).to.deep.equal({
          code: -32601,
          message: `the explorer forwards read methods only, not ${method}`,
        });
      }
    });

    it("answers 400 to a request without a method and 405 to GET /rpc", async () => {
      const res = await fetch(new URL("rpc", explorer.url), { method: "POST", body: "[]" });
      expect(res.status).to.equal(400);
      expect((await fetch(new URL("rpc", explorer.url))).status).to.equal(405);
    });

    it("serves the record with no plan when the record names none", async () => {
      const view = (await (await fetch(new URL("deployment.json", explorer.url))).json()) as {
        record: { network: string };
        plan: unknown;
        rewards: unknown;
        relayer: boolean;
      };
      expect(view).to.deep.include({ plan: null, rewards: null, relayer: false });
      expect(view.record.network).to.equal("t");
    });
  });
});
