/**
 * startRpcBridge in front of Hardhat's in-process chain: what a separate service (ethers'
 * JsonRpcProvider, the relayer) sees of it. Single and batch calls, writes (a signed transaction),
 * a provider's error as the call's JSON-RPC error, and malformed bodies.
 */
import { expect } from "chai";
import { JsonRpcProvider, Wallet, parseEther } from "ethers";
import { network } from "hardhat";

import {
  MAX_RPC_BODY,
  startRpcBridge,
  type RunningRpcBridge,
} from "../../../offchain/chain/rpc-bridge.js";
import { InputError } from "../../../offchain/common/errors.js";
import { hardhatAccountKey } from "../../../offchain/demo/relayer.js";

async function post(
  bridge: RunningRpcBridge,
  body: string,
): Promise<{ status: number; json: unknown }> {
  const res = await fetch(bridge.url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  return { status: res.status, json: await res.json() };
}

describe("offchain/chain rpc-bridge", function () {
  this.timeout(60_000);
  let bridge: RunningRpcBridge;
  let provider: JsonRpcProvider;
  let chainId: string;

  before(async () => {
    const connection = await network.create();
    chainId = (await connection.provider.request({ method: "eth_chainId" })) as string;
    bridge = await startRpcBridge({ provider: connection.provider });
    provider = new JsonRpcProvider(bridge.url, undefined, { staticNetwork: true });
  });
  after(async () => {
    provider.destroy();
    await bridge.close();
  });

  it("listens on loopback", () => {
    expect(bridge.url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  });

  it("answers a single call with its id", async () => {
    const res = await post(
      bridge,
      JSON.stringify({ jsonrpc: "2.0", id: 7, method: "eth_chainId" }),
    );
    expect(res.status).to.equal(200);
    expect(res.json).to.deep.equal({ jsonrpc: "2.0", id: 7, result: chainId });
  });

  it("answers a batch in order, each call its own result or error", async () => {
    const res = await post(
      bridge,
      JSON.stringify([
        { jsonrpc: "2.0", id: "a", method: "eth_chainId", params: [] },
        { jsonrpc: "2.0", id: "b", method: "opg_noSuchMethod", params: [] },
        { jsonrpc: "2.0", id: "c", method: "eth_blockNumber" },
      ]),
    );
    expect(res.status).to.equal(200);
    const answers = res.json as Array<{ id: string; result?: unknown; error?: { code: number } }>;
    expect(answers.map((a) => a.id)).to.deep.equal(["a", "b", "c"]);
    expect(answers[0]!.result).to.equal(chainId);
    expect(answers[1]!.error?.code).to.be.a("number");
    expect(answers[1]!.result).to.equal(undefined);
    expect(answers[2]!.result).to.match(/^0x[0-9a-f]+$/);
  });

  it("forwards writes: a signed transaction sent through ethers is mined", async () => {
    const [from] = (await provider.send("eth_accounts", [])) as string[];
    const to = Wallet.createRandom().address;
    const wallet = hardhatAccountKey(from!).connect(provider);
    const tx = await wallet.sendTransaction({ to, value: parseEther("1.5") });
    const receipt = await tx.wait();
    expect(receipt?.status).to.equal(1);
    expect(await provider.getBalance(to)).to.equal(parseEther("1.5"));
  });

  it("finds a Hardhat default account's key and refuses any other address", () => {
    expect(hardhatAccountKey("0x70997970C51812dc3A010C7d01b50e0d17dc79C8").address).to.equal(
      "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    );
    expect(() => hardhatAccountKey(Wallet.createRandom().address)).to.throw(
      InputError,
      /default accounts/,
    );
  });

  it("answers a call the provider refuses with the provider's code and message", async () => {
    const res = await post(
      bridge,
      JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "eth_getBalance",
        params: ["not-an-address", "latest"],
      }),
    );
    expect(res.status).to.equal(200);
    const answer = res.json as { id: number; error?: { code: number; message: string } };
    expect(answer.id).to.equal(1);
    expect(answer.error?.code).to.equal(-32602);
    expect(answer.error?.message).to.match(/address|argument/i);
  });

  it("passes a revert's code and data through, so ethers decodes the revert", async () => {
    // Runtime code that reverts every call with the 4 bytes 0xdeadbeef, deployed with eth_sendTransaction.
    const runtime = "63deadbeef60e01b60005260046000fd";
    const size = (runtime.length / 2).toString(16).padStart(2, "0");
    const [from] = (await provider.send("eth_accounts", [])) as string[];
    const hash = (await provider.send("eth_sendTransaction", [
      { from, data: `0x60${size}600c60003960${size}6000f3${runtime}` },
    ])) as string;
    const deployed = await provider.getTransactionReceipt(hash);
    const error = (await provider
      .call({ to: deployed!.contractAddress!, data: "0x" })
      .catch((e: unknown) => e)) as { code?: string; data?: string };
    expect(error.code).to.equal("CALL_EXCEPTION");
    expect(error.data).to.equal("0xdeadbeef");
  });

  it("answers 400 to a body that is not JSON or not a JSON-RPC request, 405 to GET", async () => {
    const parse = await post(bridge, "{nope");
    expect(parse.status).to.equal(400);
    expect((parse.json as { error: { code: number } }).error.code).to.equal(-32700);
    for (const body of ["[]", '{"id":1}', "[1]"]) {
      const invalid = await post(bridge, body);
      expect(invalid.status, body).to.equal(400);
      expect((invalid.json as { error: { code: number } }).error.code).to.equal(-32600);
    }
    expect((await fetch(bridge.url)).status).to.equal(405);
  });

  it("answers 400 to a key twice in one object and 413 to a body over the limit, then still answers", async () => {
    const dup = await post(bridge, '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","id":2}');
    expect(dup.status).to.equal(400);
    expect((dup.json as { error: { message: string } }).error.message).to.include(
      'the key "id" appears twice',
    );
    const big = await post(bridge, " ".repeat(MAX_RPC_BODY + 1));
    expect(big.status).to.equal(413);
    const ok = await post(bridge, JSON.stringify({ jsonrpc: "2.0", id: 3, method: "eth_chainId" }));
    expect(ok.json).to.deep.equal({ jsonrpc: "2.0", id: 3, result: chainId });
  });
});
