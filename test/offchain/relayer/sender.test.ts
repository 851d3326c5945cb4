/**
 * The transaction sender against a real JSON-RPC chain (a `hardhat node` on loopback): idempotent
 * intents, one transaction per intent, the done check, revert reasons, restart recovery and the
 * single-writer lease. Each test uses a fresh key and a fresh store.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { DatabaseSync } from "node:sqlite";

import { expect } from "chai";
import type { Contract, JsonRpcProvider, Wallet } from "ethers";

import { openDatabase } from "../../../offchain/relayer/db.js";
import {
  IntentConflictError,
  IntentInvalidError,
  IntentUnknownError,
  SenderConfigError,
  SenderLockedError,
  TxSender,
} from "../../../offchain/relayer/sender/index.js";
import type { TxIntent, TxSenderOptions } from "../../../offchain/relayer/sender/index.js";
import {
  devProvider,
  deployToken,
  fundedWallet,
  until,
} from "../../../offchain/relayer/testing/chain.js";
import { RpcFaultProxy } from "../../../offchain/relayer/testing/rpc-proxy.js";
import type { HardhatNode } from "../../helpers/processes.js";
import { startHardhatNode } from "../../helpers/processes.js";

describe("offchain/relayer/sender", function () {
  this.timeout(60_000);
  let node: HardhatNode;
  let provider: JsonRpcProvider;
  let dir: string;
  let db: DatabaseSync;
  let wallet: Wallet;
  let token: Contract;
  const senders: TxSender[] = [];

  before(async () => {
    node = await startHardhatNode();
    provider = devProvider(node.url);
  });
  after(async () => {
    provider?.destroy();
    await node?.stop();
  });
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "opg-sender-"));
    db = openDatabase(path.join(dir, "relayer.db"));
    wallet = await fundedWallet(provider);
    token = await deployToken(provider, wallet.address);
  });
  afterEach(async () => {
    for (const s of senders.splice(0)) await s.stop();
    db.close();
    await rm(dir, { recursive: true, force: true });
  });

  function sender(extra: Partial<TxSenderOptions> = {}): TxSender {
    const s = new TxSender({
      db,
      provider,
      signer: wallet,
      confirmations: 1,
      pollIntervalMs: 50,
      revertInterface: token.interface,
      ...extra,
    });
    senders.push(s);
    return s;
  }

  function transfer(key: string, to: string, amount: bigint, gasLimit?: bigint): TxIntent {
    return {
      key,
      kind: "anchor",
      to: token.target as string,
      data: token.interface.encodeFunctionData("transfer", [to, amount]),
      ...(gasLimit !== undefined ? { gasLimit } : {}),
    };
  }

  const alice = "0x00000000000000000000000000000000000A11CE";
  const bob = "0x0000000000000000000000000000000000000B0B";

  describe("constructor", () => {
    it("refuses a fee bump below 10 % and a confirmation depth below 1", () => {
      expect(() => sender({ feeBumpPercent: 9 })).to.throw(SenderConfigError, /feeBumpPercent/);
      expect(() => sender({ confirmations: 0 })).to.throw(SenderConfigError, /confirmations/);
      expect(() => sender({ maxFeePerGasCap: 0n })).to.throw(SenderConfigError, /maxFeePerGasCap/);
    });
  });

  describe("submit", () => {
    it("rejects a bad kind, target, calldata or gas limit with IntentInvalidError", () => {
      const s = sender();
      const good = transfer("k", alice, 1n);
      expect(() => s.submit({ ...good, key: "" })).to.throw(IntentInvalidError, /key/);
      expect(() => s.submit({ ...good, kind: "mint" as never })).to.throw(
        IntentInvalidError,
        /kind/,
      );
      expect(() => s.submit({ ...good, to: "0x1234" })).to.throw(IntentInvalidError, /address/);
      expect(() => s.submit({ ...good, data: "0xabc" })).to.throw(IntentInvalidError, /hex/);
      expect(() => s.submit({ ...good, gasLimit: 1n })).to.throw(IntentInvalidError, /gasLimit/);
      expect(s.status("k")).to.equal(undefined);
    });

    it("is a no-op for the same key and payload, and IntentConflictError for another payload", () => {
      const s = sender();
      s.submit(transfer("k", alice, 1n));
      s.submit({ ...transfer("k", alice, 1n), to: (token.target as string).toLowerCase() });
      expect(s.status("k")).to.include({ state: "queued", attempts: 0 });
      expect(() => s.submit(transfer("k", alice, 2n)))
        .to.throw(IntentConflictError)
        .with.property("details")
        .that.has.property("key", "k");
    });

    it("wait() on an unknown key rejects with IntentUnknownError", async () => {
      const err = await sender()
        .wait("nope")
        .catch((e: unknown) => e);
      expect(err).to.be.instanceOf(IntentUnknownError);
    });
  });

  describe("sending", () => {
    it("confirms each intent with one transaction, nonces 0..n-1, and counts through the hooks", async () => {
      const counts = { sent: 0, confirmed: 0, gas: 0n };
      const s = sender({
        metrics: {
          onSent: () => void counts.sent++,
          onConfirmed: () => void counts.confirmed++,
          gasUsed: (_k, gas) => void (counts.gas += gas),
        },
      });
      s.start();
      for (let i = 0; i < 3; i++) s.submit(transfer(`t${i}`, alice, 10n + BigInt(i)));
      const outcomes = await Promise.all([0, 1, 2].map((i) => s.wait(`t${i}`)));
      expect(outcomes.map((o) => o.status)).to.deep.equal(["confirmed", "confirmed", "confirmed"]);
      expect(new Set(outcomes.map((o) => o.txHash)).size).to.equal(3);
      const nonces = await Promise.all(
        outcomes.map(async (o) => (await provider.getTransaction(o.txHash))!.nonce),
      );
      expect(nonces.sort()).to.deep.equal([0, 1, 2]);
      expect(await provider.getTransactionCount(wallet.address, "latest")).to.equal(3);
      expect(await token.getFunction("balanceOf")(alice)).to.equal(33n);
      expect(counts).to.deep.equal({
        sent: 3,
        confirmed: 3,
        gas: outcomes.reduce((a, o) => a + o.gasUsed, 0n),
      });
      expect(s.status("t1")).to.include({ state: "confirmed", nonce: 1, attempts: 1 });

      // Submitting a finished key again sends nothing and answers the same outcome.
      s.submit(transfer("t1", alice, 11n));
      expect(await s.wait("t1")).to.deep.equal(outcomes[1]);
      await new Promise((r) => setTimeout(r, 200));
      expect(await provider.getTransactionCount(wallet.address, "latest")).to.equal(3);
    });

    it("waits for the configured confirmation depth", async () => {
      const s = sender({ confirmations: 3 });
      s.start();
      s.submit(transfer("deep", alice, 1n));
      await until(() => s.status("deep")?.state === "mined", 10_000, "mined");
      await provider.send("evm_mine", []);
      await new Promise((r) => setTimeout(r, 300));
      expect(s.status("deep")?.state).to.equal("mined");
      await provider.send("evm_mine", []);
      const outcome = await s.wait("deep");
      expect(outcome.status).to.equal("confirmed");
      expect((await provider.getBlockNumber()) - outcome.blockNumber + 1).to.equal(3);
    });
  });

  describe("done check", () => {
    it("short-circuits an intent that is already done: confirmed, nothing sent", async () => {
      const s = sender();
      const seen: string[] = [];
      s.registerDoneCheck("anchor", (intent) => {
        seen.push(intent.key);
        return Promise.resolve(intent.key === "done");
      });
      s.start();
      s.submit(transfer("done", alice, 5n));
      expect(await s.wait("done")).to.deep.equal({
        status: "confirmed",
        txHash: "",
        blockNumber: 0,
        gasUsed: 0n,
        reason: "already done",
      });
      expect(seen).to.include("done");
      expect(await provider.getTransactionCount(wallet.address, "latest")).to.equal(0);
    });
  });

  describe("reverts", () => {
    it("fails a mined, reverted transaction with the decoded custom error, nonce consumed", async () => {
      const s = sender();
      s.start();
      s.submit(transfer("big", alice, 10n ** 30n, 100_000n));
      const outcome = await s.wait("big");
      expect(outcome.status).to.equal("failed");
      expect(outcome.txHash).to.match(/^0x[0-9a-f]{64}$/);
      expect(outcome.reason).to.equal(
        `ERC20InsufficientBalance(${wallet.address}, ${10n ** 24n}, ${10n ** 30n})`,
      );
      expect((await provider.getTransactionReceipt(outcome.txHash))!.status).to.equal(0);
      expect(await provider.getTransactionCount(wallet.address, "latest")).to.equal(1);
    });

    it("fails an intent whose gas estimate reverts without sending it or spending a nonce", async () => {
      const s = sender();
      s.start();
      s.submit(transfer("est", alice, 10n ** 30n));
      s.submit(transfer("ok", alice, 1n));
      const failed = await s.wait("est");
      expect(failed).to.include({ status: "failed", txHash: "" });
      expect(failed.reason).to.match(/^ERC20InsufficientBalance\(/);
      const ok = await s.wait("ok");
      expect((await provider.getTransaction(ok.txHash))!.nonce).to.equal(0);
      expect(await provider.getTransactionCount(wallet.address, "latest")).to.equal(1);
    });

    it("answers a mined revert as confirmed when the done check says the work is done", async () => {
      const s = sender({ confirmations: 2 });
      let done = false;
      s.registerDoneCheck("anchor", () => Promise.resolve(done));
      s.start();
      s.submit(transfer("r", alice, 10n ** 30n, 100_000n));
      await until(() => s.status("r")?.state === "mined", 10_000, "mined");
      done = true; // e.g. another relayer anchored the same receipt first
      await provider.send("evm_mine", []);
      const outcome = await s.wait("r");
      expect(outcome).to.include({ status: "confirmed", reason: "already done" });
      expect((await provider.getTransactionReceipt(outcome.txHash))!.status).to.equal(0);
    });
  });

  describe("retry", () => {
    /** A sender for a funded key holding no tokens: its transfers fail until it gets some. */
    async function unfunded(): Promise<{ s: TxSender; address: string }> {
      const other = await fundedWallet(provider);
      return { s: sender({ signer: other }), address: other.address };
    }

    async function fund(address: string, amount: bigint): Promise<void> {
      const tx = (await token.connect(wallet).getFunction("transfer")(address, amount)) as {
        wait(): Promise<unknown>;
      };
      await tx.wait();
    }

    it("queues a failed intent again under its key once its cause is gone, without its old reason", async () => {
      const { s, address } = await unfunded();
      s.start();
      s.submit(transfer("pay", alice, 5n));
      const failed = await s.wait("pay");
      expect(failed).to.include({ status: "failed", txHash: "" });
      expect(failed.reason).to.match(/^ERC20InsufficientBalance\(/);
      await fund(address, 5n);
      // The same key and payload again: a no-op until retried.
      s.submit(transfer("pay", alice, 5n));
      expect(await s.wait("pay")).to.deep.equal(failed);
      // ethers answers an identical call made within 250 ms from its cache: the estimate that
      // failed would fail again however the chain changed. The batcher waits longer than that.
      await new Promise((r) => setTimeout(r, 300));
      expect(s.retry("pay")).to.equal(true);
      const confirmed = await s.wait("pay");
      expect(confirmed.status).to.equal("confirmed");
      expect(confirmed).to.not.have.property("reason");
      expect(s.status("pay")).to.not.have.property("reason");
      expect(await token.getFunction("balanceOf")(alice)).to.equal(5n);
    });

    it("sends a mined, reverted intent again with a new nonce", async () => {
      const { s, address } = await unfunded();
      s.start();
      s.submit(transfer("mined", bob, 3n, 100_000n));
      const failed = await s.wait("mined");
      expect(failed.status).to.equal("failed");
      expect(failed.txHash).to.match(/^0x[0-9a-f]{64}$/);
      await fund(address, 3n);
      expect(s.retry("mined")).to.equal(true);
      const confirmed = await s.wait("mined");
      expect(confirmed.status).to.equal("confirmed");
      expect(confirmed.txHash).to.not.equal(failed.txHash);
      expect((await provider.getTransaction(confirmed.txHash))!.nonce).to.equal(1);
      expect(await provider.getTransactionCount(address, "latest")).to.equal(2);
    });

    it("does nothing to an intent that has not failed, or to an unknown key", async () => {
      const s = sender();
      s.start();
      expect(s.retry("nope")).to.equal(false);
      s.submit(transfer("ok", alice, 1n));
      expect(s.retry("ok")).to.equal(false); // queued
      const outcome = await s.wait("ok");
      expect(s.retry("ok")).to.equal(false); // confirmed
      await new Promise((r) => setTimeout(r, 200));
      expect(await s.wait("ok")).to.deep.equal(outcome);
      expect(await provider.getTransactionCount(wallet.address, "latest")).to.equal(1);
    });
  });

  describe("restart recovery", () => {
    it("resends persisted attempts after a stop, without a second nonce or transaction", async () => {
      // The first sender signs and records, but its broadcasts never reach the node.
      const proxy = await RpcFaultProxy.start(node.url);
      const flaky = devProvider(proxy.url);
      proxy.addRule({ method: "eth_sendRawTransaction", when: "before", action: { type: "drop" } });
      const first = sender({ provider: flaky });
      first.start();
      first.submit(transfer("a", alice, 1n));
      first.submit(transfer("b", bob, 2n));
      await until(() => first.status("b")?.nonce === 1, 10_000, "both signed");
      const recorded = db
        .prepare("SELECT hash, nonce FROM sender_attempts ORDER BY nonce")
        .all() as { hash: string; nonce: number }[];
      await first.stop();
      flaky.destroy();
      await proxy.close();
      expect(await provider.getTransactionCount(wallet.address, "pending")).to.equal(0);

      const second = sender();
      second.start();
      const [a, b] = await Promise.all([second.wait("a"), second.wait("b")]);
      expect([a.txHash, b.txHash]).to.deep.equal([recorded[0]!.hash, recorded[1]!.hash]);
      expect(await provider.getTransactionCount(wallet.address, "latest")).to.equal(2);
      expect(await token.getFunction("balanceOf")(alice)).to.equal(1n);
    });

    it("finds a transaction that went out although the node's answer was lost", async () => {
      const proxy = await RpcFaultProxy.start(node.url);
      const flaky = devProvider(proxy.url);
      proxy.addRule({ method: "eth_sendRawTransaction", when: "after", action: { type: "error" } });
      const first = sender({ provider: flaky });
      first.start();
      first.submit(transfer("x", alice, 7n));
      await until(async () => (await provider.getTransactionCount(wallet.address)) === 1);
      await first.stop();
      flaky.destroy();
      await proxy.close();

      const second = sender();
      second.start();
      const x = await second.wait("x");
      expect(x.status).to.equal("confirmed");
      expect(await provider.getTransactionCount(wallet.address, "latest")).to.equal(1);
      expect(await token.getFunction("balanceOf")(alice)).to.equal(7n);
    });
  });

  describe("single writer", () => {
    it("refuses a second sender on the same store and signer until the first stops", async () => {
      const first = sender();
      first.start();
      const second = sender();
      expect(() => second.start())
        .to.throw(SenderLockedError)
        .with.property("details")
        .that.include({ signer: wallet.address, pid: process.pid });
      await first.stop();
      second.start();
      second.submit(transfer("w", alice, 1n));
      expect((await second.wait("w")).status).to.equal("confirmed");
    });

    it("takes over the lease of a process that is gone", () => {
      const dead = spawnSync(process.execPath, ["-e", "process.pid"]).pid;
      const s = sender();
      db.prepare(
        "INSERT INTO sender_leases (signer, owner, pid, expires_at) VALUES (?, 'crashed', ?, ?)",
      ).run(wallet.address, dead, Date.now() + 60_000);
      expect(() => s.start()).not.to.throw();
    });
  });
});
