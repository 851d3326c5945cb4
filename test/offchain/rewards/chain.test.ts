/**
 * Rewards on a real chain (`hardhat node` over JSON-RPC): anchor enclave-signed batches, close epoch 1,
 * compute it from chain data, propose, wait out the timelock, accept, claim, verify; then a tampered
 * root for epoch 2 makes `opg rewards verify` exit 1. The CLI runs as a child process.
 */
import { mkdtemp, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { expect } from "chai";
import { keccak256, toUtf8Bytes } from "ethers";

import type { RewardsSource } from "../../../offchain/rewards/chain.js";
import { computeRewards } from "../../../offchain/rewards/compute.js";
import { runRewardsDemo } from "../../../offchain/rewards/demo.js";
import type { HardhatNode } from "../../helpers/processes.js";
import { ROOT, hardhat, run, startHardhatNode } from "../../helpers/processes.js";

import { DAY, MODEL_A, MODEL_B, POOL, POOL_EPOCHS, SHARES_A, deploySystem } from "./system.js";

const opg = (args: string[]) => run(process.execPath, [path.join(ROOT, "bin", "opg.mjs"), ...args]);

describe("rewards on a hardhat node", function () {
  this.timeout(300_000);
  let node: HardhatNode;
  let sys: Awaited<ReturnType<typeof deploySystem>>;
  let source: RewardsSource;
  let work: string;
  let cliBase: string[];

  before(async () => {
    node = await startHardhatNode();
    sys = await deploySystem(node.url);
    work = await mkdtemp(path.join(tmpdir(), "opg-rewards-"));
    const deployments = path.join(work, "deployments");
    await mkdir(path.join(deployments, "t"), { recursive: true });
    await writeFile(
      path.join(deployments, "t", "addresses.json"),
      JSON.stringify({
        ContributorRewards: await sys.rewards.getAddress(),
        InferenceLedger: await sys.ledger.getAddress(),
        ModelRegistry: await sys.registry.getAddress(),
      }),
    );
    await writeFile(
      path.join(deployments, "t", "rewards.json"),
      JSON.stringify({
        genesisTime: Number(sys.config.genesisTime),
        epochLength: Number(sys.config.epochLength),
        fromBlock: sys.config.fromBlock,
      }),
    );
    cliBase = ["--rpc", node.url, "--deployments", deployments, "--network", "t"];
    source = {
      provider: sys.provider,
      rewards: await sys.rewards.getAddress(),
      ledger: await sys.ledger.getAddress(),
      registry: await sys.registry.getAddress(),
      config: sys.config,
      chunkSize: 7, // several eth_getLogs requests even on a short chain
    };

    // Usage before genesis belongs to no epoch.
    await sys.anchor([MODEL_A, MODEL_A]);
    // Epoch 1: 5 receipts of A, 1 of B, in two batches.
    await sys.chain.nextBlockAt(sys.config.genesisTime + 100n);
    await sys.anchor([MODEL_A, MODEL_B, MODEL_A, MODEL_A]);
    await sys.anchor([MODEL_A, MODEL_A]);
    // Epoch 2: 3 receipts of B.
    await sys.chain.nextBlockAt(sys.config.genesisTime + DAY + 100n);
    await sys.anchor([MODEL_B, MODEL_B, MODEL_B]);
  });
  after(async () => {
    sys?.provider.destroy();
    await node?.stop();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it("computes epoch 1 from the anchored usage, the shares and the vested pool", async () => {
    const result = await computeRewards(source, 1n);
    const t = result.table;
    // The pool vests linearly over POOL_EPOCHS epochs: one epoch's worth by epoch 1's end.
    const pool = POOL / POOL_EPOCHS;
    expect(t.pool).to.equal(pool);
    expect(t.totalUsage).to.equal(6n);
    const poolA = (pool * 5n) / 6n;
    const poolB = pool / 6n;
    const [alice, bob, carol, dave] = await Promise.all(
      [sys.alice, sys.bob, sys.carol, sys.dave].map((s) => s.getAddress()),
    );
    const expected = new Map<string, bigint>([
      [alice!, (poolA * BigInt(SHARES_A[0]!)) / 10_000n],
      [bob!, (poolA * BigInt(SHARES_A[1]!)) / 10_000n],
      [carol!, (poolA * BigInt(SHARES_A[2]!)) / 10_000n],
      [dave!, poolB],
    ]);
    expect(new Map(t.accounts.map((a) => [a.account, a.cumulative]))).to.deep.equal(expected);
    const paid = [...expected.values()].reduce((s, v) => s + v, 0n);
    expect(t.paid).to.equal(paid);
    expect(t.dust).to.equal(pool - paid);
    expect(t.dust > 0n).to.equal(true);
    // The root is OpenZeppelin's over the same leaves.
    const oz = StandardMerkleTree.of(
      [...expected].map(([a, v]) => [a, v.toString()]),
      ["address", "uint256"],
    );
    expect(result.root).to.equal(oz.root);
  });

  it("closes epoch 1: propose, timelock, accept, a contributor claims, and verify confirms the root", async () => {
    const alice = await sys.alice.getAddress();
    const before = await sys.token.balanceOf(alice);
    const lines: string[] = [];
    const summary = await runRewardsDemo({
      source,
      updater: sys.updater,
      sender: sys.relayer,
      contributor: alice,
      chain: sys.chain,
      log: (l) => lines.push(l),
      outDir: path.join(work, "reports"),
      epoch: 1n,
    });
    expect(summary.verified).to.equal(true);
    expect((await sys.token.balanceOf(alice)) - before).to.equal(summary.claimed);
    expect(await sys.rewards.claimed(alice)).to.equal(summary.claimed);
    const current = await sys.rewards.currentRoot();
    expect(current.root).to.equal(summary.root);
    expect(current.dataHash).to.equal(summary.dataHash);
    expect(lines.join("\n")).to.match(/PASS {2}root/);

    const table = JSON.parse(
      await readFile(path.join(work, "reports", "epoch-1", "table.json"), "utf8"),
    ) as { root: string; totalCumulative: string };
    expect(table.root).to.equal(summary.root);
    expect(BigInt(table.totalCumulative)).to.equal(summary.totalCumulative);
  });

  it("opg rewards verify --epoch 1 recomputes from chain data alone and exits 0", async () => {
    const r = await opg(["rewards", "verify", "--epoch", "1", ...cliBase]);
    expect(r.code, r.stderr + r.stdout).to.equal(0);
    expect(r.stdout).to.match(/PASS {2}on-chain root: accepted root for epoch 1/);
    expect(r.stdout).to.match(/PASS {2}root: 0x[0-9a-f]{64}/);
    expect(r.stdout).to.match(/PASS {2}dataHash/);
    expect(r.stdout).to.contain("epoch 1 verified: the on-chain root matches");
  });

  it("carries epoch 1's dust into epoch 2 and cumulative amounts never decrease", async () => {
    const closed = sys.config.genesisTime + 2n * DAY;
    if ((await sys.chain.now()) < closed) await sys.chain.mineAt(closed);
    const e0 = await computeRewards(source, 1n);
    const e1 = await computeRewards(source, 2n);
    expect(e1.table.carriedIn).to.equal(e0.table.dust);
    expect(e1.table.pool).to.equal(POOL / POOL_EPOCHS + e0.table.dust);
    for (const a of e0.table.accounts) {
      const later = e1.table.accounts.find((b) => b.account === a.account);
      expect(later!.cumulative >= a.cumulative).to.equal(true);
    }
    expect(e1.table.totalCumulative).to.equal(e0.table.totalCumulative + e1.table.paid);
  });

  it("opg rewards verify exits 1 when the proposed root differs from the recomputation", async () => {
    const e1 = await computeRewards(source, 2n);
    const bogus = keccak256(toUtf8Bytes("tampered"));
    await (
      await sys.rewards
        .connect(sys.updater)
        .proposeRoot(bogus, 2n, e1.table.totalCumulative, e1.dataHash, "tampered")
    ).wait();
    const r = await opg(["rewards", "verify", "--epoch", "2", ...cliBase]);
    expect(r.code, r.stderr).to.equal(1);
    expect(r.stdout).to.match(/PASS {2}on-chain root: pending root for epoch 2/);
    expect(r.stdout).to.contain(`FAIL  root: chain has ${bogus}, recomputed ${e1.root}`);
    expect(r.stdout).to.match(/PASS {2}dataHash/);
    expect(r.stderr).to.contain("VerificationError: the chain's root for epoch 2 does not match");
  });

  it("opg rewards compute writes the table and proofs; propose and claim work from the CLI", async () => {
    const out = path.join(work, "cli-reports");
    const c = await opg(["rewards", "compute", "--epoch", "2", "--out", out, ...cliBase]);
    expect(c.code, c.stderr).to.equal(0);
    expect(c.stderr).not.to.contain("scanning blocks"); // no progress bar: stderr is not a terminal
    const csv = await readFile(path.join(out, "epoch-2", "table.csv"), "utf8");
    expect(csv.split("\n")[0]).to.equal("account,epoch_amount,cumulative_amount");
    const updater = await sys.updater.getAddress();
    const p = await opg([
      "rewards",
      "propose",
      "--epoch",
      "2",
      "--from",
      updater,
      "--out",
      out,
      ...cliBase,
    ]);
    expect(p.code, p.stderr).to.equal(0);
    expect(p.stdout).to.match(/proposed epoch 2 in tx 0x[0-9a-f]{64}/);
    await sys.chain.mineAt((await sys.chain.now()) + 3n * DAY);
    const relayer = await sys.relayer.getAddress();
    const acc = await opg(["rewards", "accept", "--from", relayer, ...cliBase]);
    expect(acc.code, acc.stderr).to.equal(0);
    const dave = await sys.dave.getAddress();
    const cl = await opg([
      "rewards",
      "claim",
      "--epoch",
      "2",
      "--account",
      dave,
      "--from",
      relayer,
      "--proof",
      path.join(out, "epoch-2", "proofs", `${dave}.json`),
      ...cliBase,
    ]);
    expect(cl.code, cl.stderr).to.equal(0);
    const e1 = await computeRewards(source, 2n);
    const daveRow = e1.table.accounts.find((a) => a.account === dave)!;
    expect(await sys.rewards.claimed(dave)).to.equal(daveRow.cumulative);
    const v = await opg(["rewards", "verify", "--epoch", "2", ...cliBase]);
    expect(v.code, v.stdout).to.equal(0);
  });

  it("npx hardhat opg:rewards:verify --network e2e prints the same checks (tasks call the same code)", async () => {
    const dir = path.join(ROOT, "deployments", "e2e");
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    try {
      for (const f of ["addresses.json", "rewards.json"]) {
        await writeFile(
          path.join(dir, f),
          await readFile(path.join(work, "deployments", "t", f), "utf8"),
        );
      }
      const env = { OPG_E2E_RPC_URL: node.url };
      const ok = await hardhat(["opg:rewards:verify", "--network", "e2e", "--epoch", "1"], env);
      expect(ok.code, ok.stderr + ok.stdout).to.equal(0);
      expect(ok.stdout).to.match(/PASS {2}root: 0x[0-9a-f]{64}/);
      const bad = await hardhat(["opg:rewards:verify", "--network", "e2e", "--epoch", "x"], env);
      expect(bad.code).to.equal(2);
      expect(bad.stderr).to.contain("InputError: the epoch must be an integer from 1");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("exits 2 on bad input: a malformed epoch, an epoch not closed yet, a bad address", async () => {
    const bad = await opg(["rewards", "verify", "--epoch", "one", ...cliBase]);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.contain("InputError: the epoch must be an integer from 1");
    const open = await opg(["rewards", "compute", "--epoch", "500", ...cliBase]);
    expect(open.code).to.equal(2);
    expect(open.stderr).to.contain("InputError: epoch 500 has not closed yet");
    const addr = await opg(["rewards", "verify", "--epoch", "1", "--rewards", "0x12", ...cliBase]);
    expect(addr.code).to.equal(2);
    expect(addr.stderr).to.contain("InputError: --rewards is not an address");
  });
});
