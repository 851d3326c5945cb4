/**
 * startExplorer on its own (no browser): the two ways to reach a chain, the read-only passthrough over an
 * in-process EIP-1193 provider, and the errors a caller gets for a wrong set-up.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { network } from "hardhat";

import { MAX_RPC_BODY, startRpcBridge } from "../../offchain/chain/rpc-bridge.js";
import type { RunningRpcBridge } from "../../offchain/chain/rpc-bridge.js";
import { InputError } from "../../offchain/common/errors.js";
import {
  DEFAULT_MAX_LOG_BLOCK_RANGE,
  READ_METHODS,
  startExplorer,
} from "../../offchain/explorer/server.js";
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

interface RpcErrorAnswer {
  id: unknown;
  error: { code: number; message: string; data?: unknown };
}

/** POSTs `text` as it is (duplicate keys survive) and returns the HTTP status and the answer. */
async function postRaw(
  explorer: RunningExplorer,
  text: string,
): Promise<{ status: number; json: unknown }> {
  const res = await fetch(new URL("rpc", explorer.url), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: text,
  });
  return { status: res.status, json: await res.json() };
}

/** GET with the request target sent byte for byte (fetch would normalise dot segments). */
function rawGet(url: string, target: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path: target, method: "GET" }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Whether the explorer still serves the page and answers a read. */
async function stillUp(explorer: RunningExplorer): Promise<void> {
  expect((await fetch(explorer.url)).status).to.equal(200);
  expect(await rpc(explorer, { jsonrpc: "2.0", id: 9, method: "eth_chainId" })).to.deep.equal({
    jsonrpc: "2.0",
    id: 9,
    result: "0x7a69",
  });
}

const ALICE = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"; // an unlocked Hardhat account
const SEND = {
  from: ALICE,
  to: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  value: "0x1",
};

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

    describe("a body that is not unambiguous JSON-RPC", () => {
      /** The sender's nonce: it moves if a transaction got through. */
      const nonceOfAlice = async (): Promise<unknown> =>
        provider.request({ method: "eth_getTransactionCount", params: [ALICE, "latest"] });

      /** The answer to an invalid request: JSON-RPC error -32600 naming the problem. */
      const invalid = (id: unknown, problem: string): unknown => ({
        jsonrpc: "2.0",
        id,
        error: { code: -32600, message: `invalid JSON-RPC request: ${problem}` },
      });

      /** Posts `text`: HTTP 400 with `answer`, no transaction sent, and the server still up. */
      async function expectRefused(text: string, answer: unknown): Promise<void> {
        const before = await nonceOfAlice();
        const { status, json } = await postRaw(explorer, text);
        expect(status, text).to.equal(400);
        expect(json).to.deep.equal(answer);
        expect(await nonceOfAlice()).to.equal(before);
        await stillUp(explorer);
      }

      const send = JSON.stringify(SEND);

      it("refuses a duplicate method key, and the node never sees either call", async () => {
        const twice = invalid(null, 'the key "method" appears twice in one object');
        await expectRefused(
          `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","method":"eth_sendTransaction","params":[${send}]}`,
          twice,
        );
        // The same key written with an escape: equal once unescaped.
        await expectRefused(
          `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","\\u006dethod":"eth_sendTransaction","params":[${send}]}`,
          twice,
        );
      });

      it("refuses a duplicate key inside params", async () => {
        await expectRefused(
          '{"jsonrpc":"2.0","id":2,"method":"eth_call","params":[{"to":"0x0000000000000000000000000000000000000001","to":"0x0000000000000000000000000000000000000002"},"latest"]}',
          invalid(null, 'the key "to" appears twice in one object'),
        );
      });

      it("refuses a case-variant method key, naming it", async () => {
        await expectRefused(
          `{"jsonrpc":"2.0","id":3,"method":"eth_chainId","Method":"eth_sendTransaction","params":[${send}]}`,
          invalid(
            3,
            'the call has the unexpected key "Method" (a call has only jsonrpc, id, method, params)',
          ),
        );
      });

      it("refuses an extra key, a missing jsonrpc and params that are not an array", async () => {
        const cases: Array<[unknown, string]> = [
          [
            { jsonrpc: "2.0", id: 4, method: "eth_chainId", params: [], from: ALICE },
            'the call has the unexpected key "from"',
          ],
          [{ id: 4, method: "eth_chainId" }, 'the call has no jsonrpc "2.0"'],
          [
            { jsonrpc: "2.0", id: 4, method: "eth_getBalance", params: { address: ALICE } },
            "the call has params that are not an array",
          ],
          [{ jsonrpc: "2.0", id: [4], method: "eth_chainId" }, "the call has an id that is not"],
        ];
        for (const [body, problem] of cases) {
          const { status, json } = await postRaw(explorer, JSON.stringify(body));
          expect(status, problem).to.equal(400);
          expect((json as RpcErrorAnswer).error.code).to.equal(-32600);
          expect((json as RpcErrorAnswer).error.message).to.include(problem);
        }
        await stillUp(explorer);
      });

      it("refuses a whole batch with one bad call, naming that call, and runs none of it", async () => {
        await expectRefused(
          `[{"jsonrpc":"2.0","id":"a","method":"eth_blockNumber","params":[]},{"jsonrpc":"2.0","id":"b","method":"eth_chainId","METHOD":"eth_sendTransaction","params":[${send}]}]`,
          invalid(
            "b",
            'call 1 of the batch has the unexpected key "METHOD" (a call has only jsonrpc, id, method, params)',
          ),
        );
      });
    });

    describe("eth_getLogs block ranges (default cap)", () => {
      const getLogs = (filter: Record<string, unknown>) =>
        postRaw(
          explorer,
          JSON.stringify({ jsonrpc: "2.0", id: 7, method: "eth_getLogs", params: [filter] }),
        );

      it(`caps them at ${DEFAULT_MAX_LOG_BLOCK_RANGE} blocks: 0 to 0xffffffffff is a 400 naming the range and the cap`, async () => {
        const { status, json } = await getLogs({ fromBlock: "0x0", toBlock: "0xffffffffff" });
        expect(status).to.equal(400);
        expect(json).to.deep.equal({
          jsonrpc: "2.0",
          id: 7,
          error: {
            code: -32005,
            message:
              "eth_getLogs block range 0 to 1099511627775 is 1099511627776 blocks, more than this explorer's cap of 10000 (maxLogBlockRange, opg explorer --max-log-range): ask for smaller ranges",
            data: {
              fromBlock: "0x0",
              toBlock: "0xffffffffff",
              blocks: "1099511627776",
              maxLogBlockRange: 10000,
            },
          },
        });
        await stillUp(explorer);
      });

      it("forwards a range within the cap, and a blockHash filter", async () => {
        const within = await getLogs({ fromBlock: "earliest", toBlock: "latest" });
        expect(within.status).to.equal(200);
        expect((within.json as { result: unknown }).result).to.be.an("array");
        const latest = (await provider.request({
          method: "eth_getBlockByNumber",
          params: ["latest", false],
        })) as { hash: string };
        const byHash = await getLogs({ blockHash: latest.hash });
        expect(byHash.status).to.equal(200);
        expect((byHash.json as { result: unknown }).result).to.be.an("array");
      });

      it("refuses a filter with an unknown key or a block that is neither a number nor a tag", async () => {
        const unknown = await getLogs({ fromBlock: "0x0", toBlok: "latest" });
        expect(unknown.status).to.equal(400);
        expect((unknown.json as RpcErrorAnswer).error).to.deep.include({ code: -32602 });
        expect((unknown.json as RpcErrorAnswer).error.message).to.include('"toBlok"');
        const junk = await getLogs({ fromBlock: 0, toBlock: "latest" });
        expect(junk.status).to.equal(400);
        expect((junk.json as RpcErrorAnswer).error.message).to.include("fromBlock is not");
      });
    });

    it("answers 413 to a body over the limit, and stays up", async () => {
      const res = await fetch(new URL("rpc", explorer.url), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: " ".repeat(MAX_RPC_BODY + 1),
      });
      expect(res.status).to.equal(413);
      expect(((await res.json()) as RpcErrorAnswer).error.message).to.equal(
        `request body too large: more than ${MAX_RPC_BODY} bytes`,
      );
      await stillUp(explorer);
    });

    it("answers 400 to a malformed URI and to any path escaping the page, and stays up", async () => {
      for (const target of [
        "/%E0%A4%A",
        "/assets/%ZZ",
        "/..%2f..%2fetc/passwd",
        "/../../../../etc/passwd",
        "/assets/../../package.json",
        "/%2e%2e/%2e%2e/package.json",
        "/assets/..%5c..%5cpackage.json",
        "/index.html%00.png",
      ]) {
        const { status, body } = await rawGet(explorer.url, target);
        expect(status, target).to.equal(400);
        expect(body, target).to.match(/^(malformed URI|path not allowed)/);
        expect(body).to.not.include("root:");
        await stillUp(explorer);
      }
      expect((await rawGet(explorer.url, "/no-such-file.js")).status).to.equal(404);
    });

    it("serves the record with no plan when the record names none", async () => {
      const view = (await (await fetch(new URL("deployment.json", explorer.url))).json()) as {
        record: { network: string };
        plan: unknown;
        rewards: unknown;
        relayer: boolean;
      };
      expect(view).to.deep.include({
        plan: null,
        rewards: null,
        relayer: false,
        maxLogBlockRange: DEFAULT_MAX_LOG_BLOCK_RANGE,
      });
      expect(view.record.network).to.equal("t");
    });
  });
  describe("over a JSON-RPC URL, with maxLogBlockRange 100", () => {
    let bridge: RunningRpcBridge;
    let explorer: RunningExplorer;
    /** Each body the node's side received, as text. */
    const received: string[] = [];
    let recorder: ReturnType<typeof createServer>;

    before(async () => {
      // A chain longer than the cap.
      await provider.request({ method: "hardhat_mine", params: ["0xc8"] });
      bridge = await startRpcBridge({ provider });
      // Between the explorer and the bridge: records what the explorer sends, passes it on.
      recorder = createServer((req, res) => {
        let text = "";
        req.setEncoding("utf8");
        req.on("data", (d: string) => (text += d));
        req.on("end", () => {
          received.push(text);
          void fetch(bridge.url, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: text,
          }).then(async (upstream) => {
            res.writeHead(upstream.status, { "content-type": "application/json" });
            res.end(await upstream.text());
          });
        });
      });
      await new Promise<void>((resolve) => recorder.listen(0, "127.0.0.1", resolve));
      const { port } = recorder.address() as AddressInfo;
      explorer = await startExplorer({
        rpcUrl: `http://127.0.0.1:${port}/`,
        deploymentDir: recordDir,
        distDir: DIST,
        maxLogBlockRange: 100,
      });
    });
    after(async () => {
      await explorer.close();
      recorder.closeAllConnections();
      await new Promise<void>((resolve) => recorder.close(() => resolve()));
      await bridge.close();
    });

    const getLogs = (filter: Record<string, unknown>) =>
      postRaw(
        explorer,
        JSON.stringify({ jsonrpc: "2.0", id: 5, method: "eth_getLogs", params: [filter] }),
      );

    it("forwards each call rebuilt from its checked fields, not the body as sent", async () => {
      received.length = 0;
      const { status, json } = await postRaw(
        explorer,
        '  {"params":[],  "method":"eth_chainId","id":5,"jsonrpc":"2.0"}\n',
      );
      expect(status).to.equal(200);
      expect(json).to.deep.equal({ jsonrpc: "2.0", id: 5, result: "0x7a69" });
      expect(received).to.deep.equal([
        '{"jsonrpc":"2.0","id":5,"method":"eth_chainId","params":[]}',
      ]);
    });

    it("never forwards a body with a duplicate or case-variant method key", async () => {
      received.length = 0;
      // JSON.parse keeps the last "method" (a read); a node may act on the first.
      const send = JSON.stringify(SEND);
      for (const text of [
        `{"jsonrpc":"2.0","id":1,"method":"eth_sendTransaction","method":"eth_chainId","params":[${send}]}`,
        `{"jsonrpc":"2.0","id":1,"Method":"eth_sendTransaction","method":"eth_chainId","params":[${send}]}`,
        `[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"eth_sendTransaction","method":"eth_chainId","params":[${send}]}]`,
      ]) {
        const { status } = await postRaw(explorer, text);
        expect(status, text).to.equal(400);
      }
      expect(received).to.deep.equal([]);
    });

    it('caps "earliest" to "latest" on a chain longer than the cap, resolving latest on the chain', async () => {
      const head = BigInt((await provider.request({ method: "eth_blockNumber" })) as string);
      expect(head > 100n).to.equal(true);
      const { status, json } = await getLogs({ fromBlock: "earliest", toBlock: "latest" });
      expect(status).to.equal(400);
      expect((json as RpcErrorAnswer).error.message).to.equal(
        `eth_getLogs block range 0 to ${head} is ${head + 1n} blocks, more than this explorer's cap of 100 (maxLogBlockRange, opg explorer --max-log-range): ask for smaller ranges`,
      );
      // No toBlock means latest: from 0 that is the whole chain again.
      const open = await getLogs({ fromBlock: "0x0" });
      expect(open.status).to.equal(400);
      expect((open.json as RpcErrorAnswer).error.data).to.deep.include({
        blocks: (head + 1n).toString(),
      });
    });

    it("forwards exactly 100 blocks, with the range resolved to the numbers it checked", async () => {
      const head = BigInt((await provider.request({ method: "eth_blockNumber" })) as string);
      const from = `0x${(head - 99n).toString(16)}`;
      received.length = 0;
      const { status, json } = await getLogs({ fromBlock: from, toBlock: "latest" });
      expect(status).to.equal(200);
      expect((json as { result: unknown }).result).to.be.an("array");
      expect(received.map((b) => JSON.parse(b) as unknown)).to.deep.equal([
        { jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] },
        {
          jsonrpc: "2.0",
          id: 5,
          method: "eth_getLogs",
          params: [{ fromBlock: from, toBlock: `0x${head.toString(16)}` }],
        },
      ]);
      const over = await getLogs({ fromBlock: `0x${(head - 100n).toString(16)}` });
      expect(over.status).to.equal(400);
      expect((over.json as RpcErrorAnswer).error.data).to.deep.include({ blocks: "101" });
    });

    it("answers 413 and 400 for an oversized body and a malformed URI, and stays up", async () => {
      const big = await fetch(new URL("rpc", explorer.url), {
        method: "POST",
        body: "[".repeat(MAX_RPC_BODY + 10),
      });
      expect(big.status).to.equal(413);
      expect((await rawGet(explorer.url, "/%E0%A4%A")).status).to.equal(400);
      expect((await fetch(explorer.url)).status).to.equal(200);
      expect(await rpc(explorer, { jsonrpc: "2.0", id: 1, method: "eth_chainId" })).to.deep.include(
        { result: "0x7a69" },
      );
    });

    it("refuses a cap that is not a positive whole number", async () => {
      for (const maxLogBlockRange of [0, -1, 1.5, Number.NaN]) {
        const error: unknown = await startExplorer({
          provider,
          deploymentDir: recordDir,
          distDir: DIST,
          maxLogBlockRange,
        }).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(InputError);
        expect((error as Error).message).to.include("maxLogBlockRange");
      }
    });
  });
});
