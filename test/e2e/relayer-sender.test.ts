/**
 * The transaction sender against a real `hardhat node`, through a loopback RPC proxy that drops,
 * delays and fails answers (also after a transaction was really sent), and with automine off:
 * dropped transactions come back, stuck ones are replaced with higher fees, a nonce whose intent
 * was done elsewhere is filled, and every intent is mined exactly once with contiguous nonces.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { DatabaseSync } from "node:sqlite";

import { expect } from "chai";
import type { Contract, JsonRpcProvider, Wallet } from "ethers";

import { openDatabase } from "../../offchain/relayer/db.js";
import { TxSender } from "../../offchain/relayer/sender/index.js";
import type { TxIntent, TxSenderOptions } from "../../offchain/relayer/sender/index.js";
import {
  devProvider,
  deployToken,
  fundedWallet,
  until,
} from "../../offchain/relayer/testing/chain.js";
import { RpcFaultProxy } from "../../offchain/relayer/testing/rpc-proxy.js";
import type { HardhatNode } from "../helpers/processes.js";
import { rpc, startHardhatNode } from "../helpers/processes.js";

describe("e2e: relayer transaction sender on a hardhat node", function () {
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
    dir = await mkdtemp(path.join(tmpdir(), "opg-sender-e2e-"));
    db = openDatabase(path.join(dir, "relayer.db"));
    wallet = await fundedWallet(provider);
    token = await deployToken(provider, wallet.address);
  });
  afterEach(async () => {
    for (const s of senders.splice(0)) await s.stop();
    await provider.send("evm_setAutomine", [true]);
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

  function transfer(key: string, to: string, amount: bigint): TxIntent {
    return {
      key,
      kind: "anchor",
      to: token.target as string,
      data: token.interface.encodeFunctionData("transfer", [to, amount]),
    };
  }

  const recipient = (i: number) => `0x${(0xbeef0000 + i).toString(16).padStart(40, "0")}`;

  /** Transactions from the signer in mined blocks, as [nonce, to, hash]. */
  async function minedFromSigner(): Promise<{ nonce: number; to: string; hash: string }[]> {
    const head = await provider.getBlockNumber();
    const found: { nonce: number; to: string; hash: string }[] = [];
    for (let n = 0; n <= head; n++) {
      const block = await provider.getBlock(n, true);
      for (const tx of block?.prefetchedTransactions ?? []) {
        if (tx.from === wallet.address) found.push({ nonce: tx.nonce, to: tx.to!, hash: tx.hash });
      }
    }
    return found.sort((a, b) => a.nonce - b.nonce);
  }

  /** The max fee of `hash` while it waits in the node's pool (raw RPC: no ethers result cache). */
  async function mempoolFeeFor(hash: string): Promise<bigint | undefined> {
    const tx = await rpc<{ blockNumber: string | null; maxFeePerGas: string } | null>(
      node.url,
      "eth_getTransactionByHash",
      [hash],
    );
    return tx !== null && tx.blockNumber === null ? BigInt(tx.maxFeePerGas) : undefined;
  }

  it("through a faulty RPC proxy, confirms every intent exactly once with contiguous nonces", async () => {
    const proxy = await RpcFaultProxy.start(node.url, 42);
    const flaky = devProvider(proxy.url);
    // Answers lost after the node acted: the transaction is out, the sender is told it failed.
    proxy.addRule({
      method: "eth_sendRawTransaction",
      when: "after",
      action: { type: "error", message: "upstream gone" },
      probability: 0.3,
    });
    proxy.addRule({
      method: "eth_sendRawTransaction",
      when: "after",
      action: { type: "drop" },
      probability: 0.2,
    });
    proxy.addRule({
      method: "eth_sendRawTransaction",
      when: "before",
      action: { type: "drop" },
      probability: 0.2,
    });
    proxy.addRule({
      method: "eth_getTransactionReceipt",
      when: "after",
      action: { type: "error" },
      probability: 0.2,
    });
    proxy.addRule({
      method: "eth_getTransactionCount",
      when: "before",
      action: { type: "drop" },
      probability: 0.1,
    });
    proxy.addRule({
      method: "eth_getTransactionByHash",
      when: "after",
      action: { type: "delay", ms: 80 },
      probability: 0.3,
    });
    proxy.addRule({
      method: "eth_estimateGas",
      when: "before",
      action: { type: "error" },
      probability: 0.1,
    });
    proxy.addRule({
      method: "*",
      when: "after",
      action: { type: "delay", ms: 20 },
      probability: 0.1,
    });
    try {
      const s = sender({ provider: flaky, stuckAfterMs: 3_000, rpcTimeoutMs: 2_000 });
      s.start();
      const n = 24;
      for (let i = 0; i < n; i++) s.submit(transfer(`job-${i}`, recipient(i), BigInt(i + 1)));
      const outcomes = await Promise.all(Array.from({ length: n }, (_, i) => s.wait(`job-${i}`)));

      expect(outcomes.filter((o) => o.status !== "confirmed")).to.deep.equal([]);
      expect(proxy.stats.faults.eth_sendRawTransaction ?? 0).to.be.greaterThan(3);
      const mined = await minedFromSigner();
      expect(mined.map((t) => t.nonce)).to.deep.equal(Array.from({ length: n }, (_, i) => i));
      expect(new Set(mined.map((t) => t.hash))).to.deep.equal(
        new Set(outcomes.map((o) => o.txHash)),
      );
      expect(await provider.getTransactionCount(wallet.address, "pending")).to.equal(n);
      for (let i = 0; i < n; i++) {
        expect(await token.getFunction("balanceOf")(recipient(i))).to.equal(BigInt(i + 1));
      }
    } finally {
      flaky.destroy();
      await proxy.close();
    }
  });

  it("with automine off, resends a transaction dropped from the node's pool", async () => {
    await provider.send("evm_setAutomine", [false]);
    await provider.send("evm_setIntervalMining", [0]);
    const s = sender({ stuckAfterMs: 60_000 });
    s.start();
    s.submit(transfer("drop-me", recipient(1), 5n));
    const first = await until(
      async () => {
        const hash = db.prepare("SELECT hash FROM sender_attempts").get() as
          { hash: string } | undefined;
        return hash !== undefined && (await mempoolFeeFor(hash.hash)) !== undefined
          ? hash.hash
          : undefined;
      },
      10_000,
      "the first attempt in the pool",
    );
    expect(await provider.send("hardhat_dropTransaction", [first])).to.equal(true);
    await until(async () => (await mempoolFeeFor(first)) === undefined, 10_000, "the drop");
    await until(async () => (await mempoolFeeFor(first)) !== undefined, 10_000, "the resend");
    await provider.send("evm_mine", []);
    const outcome = await s.wait("drop-me");
    expect(outcome).to.include({ status: "confirmed", txHash: first });
    expect((await minedFromSigner()).map((t) => t.hash)).to.deep.equal([first]);
  });

  it("with automine off, replaces a stuck transaction with bumped fees, and only one is mined", async () => {
    await provider.send("evm_setAutomine", [false]);
    await provider.send("evm_setIntervalMining", [0]);
    const s = sender({ stuckAfterMs: 400, feeBumpPercent: 15 });
    s.start();
    s.submit(transfer("stuck", recipient(2), 9n));
    const attempts = () =>
      db
        .prepare(
          "SELECT hash, max_fee_per_gas AS fee FROM sender_attempts ORDER BY created_at, rowid",
        )
        .all() as {
        hash: string;
        fee: string;
      }[];
    await until(() => attempts().length >= 2, 10_000, "a replacement");
    const [a0, a1] = attempts() as [{ hash: string; fee: string }, { hash: string; fee: string }];
    expect(BigInt(a1.fee)).to.be.at.least((BigInt(a0.fee) * 115n) / 100n);
    // The pool holds the replacement, not the original.
    await until(
      async () => (await mempoolFeeFor(a1.hash)) === BigInt(a1.fee),
      10_000,
      "replacement in pool",
    );
    expect(await provider.getTransactionCount(wallet.address, "pending")).to.equal(1);
    await s.stop();
    const all = attempts();
    await provider.send("evm_mine", []);

    const again = sender({ stuckAfterMs: 60_000 });
    again.start();
    const outcome = await again.wait("stuck");
    expect(outcome.status).to.equal("confirmed");
    expect(all.map((a) => a.hash)).to.include(outcome.txHash);
    const mined = await minedFromSigner();
    expect(mined).to.have.length(1);
    expect(mined[0]!.hash).to.equal(outcome.txHash);
    expect(await token.getFunction("balanceOf")(recipient(2))).to.equal(9n);
  });

  it("fills the nonce of an intent that was done elsewhere with a zero-value self-transfer", async () => {
    await provider.send("evm_setAutomine", [false]);
    await provider.send("evm_setIntervalMining", [0]);
    let doneElsewhere = false;
    const s = sender({ stuckAfterMs: 60_000 });
    s.registerDoneCheck("anchor", () => Promise.resolve(doneElsewhere));
    s.start();
    s.submit(transfer("raced", recipient(3), 4n));
    const hash = await until(
      () =>
        (db.prepare("SELECT hash FROM sender_attempts").get() as { hash: string } | undefined)
          ?.hash,
      10_000,
      "the first attempt",
    );
    await until(async () => (await mempoolFeeFor(hash)) !== undefined, 10_000, "in pool");
    // Another relayer anchors the same work; our transaction disappears from the pool.
    doneElsewhere = true;
    await provider.send("hardhat_dropTransaction", [hash]);
    expect(await s.wait("raced")).to.deep.equal({
      status: "confirmed",
      txHash: "",
      blockNumber: 0,
      gasUsed: 0n,
      reason: "already done",
    });
    await until(
      () =>
        (db.prepare("SELECT COUNT(*) AS n FROM sender_attempts").get() as { n: number }).n === 2,
      10_000,
      "the filler",
    );
    await provider.send("evm_mine", []);
    // The next intent takes the next nonce; the filler closed the gap.
    doneElsewhere = false;
    s.submit(transfer("next", recipient(4), 1n));
    await until(
      async () => (await provider.getTransactionCount(wallet.address, "pending")) === 2,
      10_000,
      "next sent",
    );
    await provider.send("evm_mine", []);
    expect((await s.wait("next")).status).to.equal("confirmed");
    const mined = await minedFromSigner();
    expect(mined.map((t) => [t.nonce, t.to])).to.deep.equal([
      [0, wallet.address],
      [1, token.target],
    ]);
    expect(await token.getFunction("balanceOf")(recipient(3))).to.equal(0n);
  });
});
