/**
 * The relayer as a node operator runs it: a `hardhat node` chain, the enclave and the relayer as
 * separate processes. Requests come over HTTP and on chain; every receipt ends anchored and
 * verifies against the chain with `opg receipt verify`; a relayer killed with SIGKILL at random
 * points loses nothing and anchors nothing twice; a lying GPU node is caught and slashed.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { JsonRpcProvider, NonceManager, getBytes, keccak256 } from "ethers";

import { parseReceiptBundle } from "../../offchain/chain/bundle.js";
import { verifyReceiptProof } from "../../offchain/chain/merkle.js";
import { encodeInputs, type InputTensor } from "../../offchain/inference/tensor.js";
import { runRewardsDemo } from "../../offchain/rewards/demo.js";
import { epochAt } from "../../offchain/rewards/epochs.js";
import { resolveSource } from "../../offchain/rewards/source.js";
import { geluModel } from "../../scripts/models/generate.js";
import type { HardhatNode } from "../helpers/processes.js";
import { rpc, run, startHardhatNode } from "../helpers/processes.js";
import {
  RISK_MLP,
  SEQ_CNN,
  account,
  deploySystem,
  getJson,
  postJson,
  relayerEnv,
  riskInput,
  startEnclave,
  startOpg,
  stopProc,
  until,
  writeRelayerConfig,
  type Proc,
  type System,
} from "./relayer-system.js";

/**
 * Input ranges of their own: the tests share one enclave, which answers a request id it has logged
 * (HTTP ids follow the inputs) with the receipt it logged then, already batched under another store.
 */
const KILL_INPUTS = 100_000;
const RESTART_INPUTS = 300_000;
const ONE_ENCLAVE_INPUTS = 400_000;

describe("e2e: relayer service on a hardhat node", function () {
  this.timeout(480_000);
  let node: HardhatNode;
  let system: System;
  let enclave: Awaited<ReturnType<typeof startEnclave>>;
  const running: Proc[] = [];

  before(async () => {
    node = await startHardhatNode();
    system = await deploySystem(node.url);
    enclave = await startEnclave(system, node.url);
  });
  after(async () => {
    for (const p of running) await stopProc(p, "SIGKILL");
    if (enclave !== undefined) await stopProc(enclave, "SIGKILL");
    await system?.close();
    await node?.stop();
  });

  async function startRelayer(file: string): Promise<Proc & { url: string }> {
    const proc = await startOpg(["relayer", "start", "--config", file], relayerEnv(system));
    running.push(proc);
    return { ...proc, url: String(proc.line.url) };
  }

  it("anchors HTTP and on-chain requests; every receipt verifies with opg receipt verify", async () => {
    const { file, dir } = await writeRelayerConfig(system, enclave.url, node.url, {
      log: { level: "warn" },
    });
    const relayer = await startRelayer(file);

    const models = await getJson(`${relayer.url}/v1/models`);
    expect((models.json.models as Array<{ modelId: string }>).map((m) => m.modelId)).to.include(
      RISK_MLP.modelId,
    );
    // Clear 4xx errors.
    expect((await postJson(`${relayer.url}/v1/inferences`, { modelId: "0x12" })).status).to.equal(
      400,
    );
    const unknown = await postJson(`${relayer.url}/v1/inferences`, {
      modelId: `0x${"ab".repeat(32)}`,
      inputs: riskInput(0),
    });
    expect(unknown.status).to.equal(404);
    expect((await getJson(`${relayer.url}/v1/receipts/0x${"00".repeat(32)}`)).status).to.equal(404);

    // HTTP requests: answered with a signed receipt and the enclave's verdict.
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await postJson(`${relayer.url}/v1/inferences`, {
        modelId: RISK_MLP.modelId,
        inputs: riskInput(i),
      });
      expect(res.status, JSON.stringify(res.json)).to.equal(200);
      expect(res.json.status).to.equal("pending");
      const v = res.json.verification as { selected: boolean; verdict: { agree: boolean } };
      expect(v.selected).to.equal(true);
      expect(v.verdict.agree).to.equal(true);
      ids.push(String(res.json.requestId));
    }

    // On-chain requests: the input is the canonical encoding.
    const tensors: InputTensor[] = [
      {
        name: "features",
        dtype: "float32",
        dims: [1, 16],
        data: Float32Array.from(riskInput(99).features.data),
      },
    ];
    const input = encodeInputs(tensors);
    const ledger = system.ledger.connect(system.admin);
    const chainIds: string[] = [];
    for (let i = 0; i < 2; i++) {
      const tx = await ledger.getFunction("requestInference")(RISK_MLP.modelId, input, 0, 3600, 0);
      const receipt = await tx.wait();
      const log = receipt!.logs
        .map((l) => ledger.interface.parseLog(l))
        .find((p) => p?.name === "InferenceRequested");
      chainIds.push(String(log!.args.requestId));
    }
    await rpc(node.url, "evm_mine"); // one confirmation
    for (const id of chainIds) {
      await until(`fulfilment of ${id}`, async () =>
        BigInt(String(await system.ledger.getFunction("requestHashOf")(id))) === 0n ? true : null,
      ).catch((e: unknown) => {
        throw new Error(`${String(e)}\n${relayer.output().slice(-4000)}`);
      });
    }
    expect(keccak256(input)).to.equal(keccak256(getBytes(input)));

    // Everything anchors; each bundle verifies against the chain.
    for (const id of [...ids, ...chainIds]) {
      const res = await until(`anchoring of ${id}`, async () => {
        const r = await getJson(`${relayer.url}/v1/receipts/${id}`);
        return r.json.status === "anchored" ? r : null;
      }).catch(async (e: unknown) => {
        const r = await getJson(`${relayer.url}/v1/receipts/${id}`);
        throw new Error(
          `${String(e)}\n${JSON.stringify(r.json)}\n${relayer.output().slice(-4000)}`,
        );
      });
      const bundle = parseReceiptBundle(JSON.stringify(res.json.bundle));
      const root = String(await system.ledger.getFunction("rootOf")(bundle.batchId));
      expect(verifyReceiptProof(root, bundle.receipt, bundle.proof)).to.equal(true);
    }
    for (const id of [ids[0]!, chainIds[0]!]) {
      const r = await getJson(`${relayer.url}/v1/receipts/${id}`);
      const bundleFile = path.join(dir, `${id}.json`);
      await writeFile(bundleFile, JSON.stringify(r.json.bundle));
      const verify = await run(process.execPath, [
        "bin/opg.mjs",
        "receipt",
        "verify",
        bundleFile,
        "--rpc",
        node.url,
      ]);
      expect(verify.code, verify.stdout + verify.stderr).to.equal(0);
      expect(verify.stdout).to.not.match(/FAIL/);
    }
    const health = await getJson(`${relayer.url}/readyz`);
    expect(health.json.ready).to.equal(true);
    const metrics = await (await fetch(`${relayer.url}/metrics`)).text();
    expect(metrics).to.match(/opg_relayer_receipts_anchored_total \d+/);
    expect(metrics).to.match(/opg_relayer_queue_depth\{queue="unbatched"\} 0/);
    const status = await run(process.execPath, [
      "bin/opg.mjs",
      "relayer",
      "status",
      "--config",
      file,
      "--json",
    ]);
    expect(status.code, status.stderr).to.equal(0);
    expect((JSON.parse(status.stdout) as { jobs: { anchored: number } }).jobs.anchored).to.equal(
      22,
    );
    await stopProc(relayer);
  });

  it("one relayer per enclave: a second relayer (its own store) is refused at start-up while the first serves, and starts once the first has stopped", async () => {
    const first = await writeRelayerConfig(system, enclave.url, node.url);
    const second = await writeRelayerConfig(system, enclave.url, node.url);
    const a = await startRelayer(first.file);
    const refused = await startRelayer(second.file).then(
      () => expect.fail("the second relayer started"),
      (e: unknown) => (e as Error).message,
    );
    expect(refused).to.match(/^opg relayer exited with 1:/);
    expect(refused).to.include(`the enclave at ${enclave.url} is held by another relayer`);
    const held = (await getJson(`${enclave.url}/info`)).json.relayer as { id: string };
    expect(refused).to.include(held.id);
    // The first relayer goes on serving.
    const served = await postJson(`${a.url}/v1/inferences`, {
      modelId: RISK_MLP.modelId,
      inputs: riskInput(ONE_ENCLAVE_INPUTS),
    });
    expect(served.status, JSON.stringify(served.json)).to.equal(200);
    // Stopped cleanly, it frees the enclave at once: the second relayer starts and serves.
    await stopProc(a);
    const b = await startRelayer(second.file);
    const next = await postJson(`${b.url}/v1/inferences`, {
      modelId: RISK_MLP.modelId,
      inputs: riskInput(ONE_ENCLAVE_INPUTS + 1),
    });
    expect(next.status, JSON.stringify(next.json)).to.equal(200);
    expect(((await getJson(`${enclave.url}/info`)).json.relayer as { id: string }).id).to.not.equal(
      held.id,
    );
    await stopProc(b);
  });

  it("kill -9 at random points of a 2,000-request run: every accepted request is anchored exactly once", async () => {
    const { file } = await writeRelayerConfig(system, enclave.url, node.url, {
      // Receipts a kill left stranded are sent to the enclave again after 10 s, within the wait below.
      batch: { maxSize: 128, maxAgeMs: 100, strandedAfterMs: 10_000 },
    });
    const fromBlock = (await system.provider.getBlockNumber()) + 1;
    const total = 2_000;
    const killAt = new Set([300, 900, 1500].map((n) => n + Math.floor(Math.random() * 200)));
    let relayer = await startRelayer(file);
    const accepted = new Set<string>();
    let next = 0;
    let kills = 0;
    while (next < total) {
      const wave = Array.from({ length: 16 }, () => next++).filter((i) => i < total);
      const results = await Promise.allSettled(
        wave.map((i) =>
          postJson(`${relayer.url}/v1/inferences`, {
            modelId: RISK_MLP.modelId,
            inputs: riskInput(KILL_INPUTS + i),
          }),
        ),
      );
      for (const r of results)
        if (r.status === "fulfilled" && r.value.status === 200)
          accepted.add(String(r.value.json.requestId));
      if ([...killAt].some((k) => k >= next - wave.length && k < next)) {
        // Kill mid-flight: fire a wave and kill while it is being served.
        const inflight = Promise.allSettled(
          Array.from({ length: 16 }, (_, j) =>
            postJson(`${relayer.url}/v1/inferences`, {
              modelId: RISK_MLP.modelId,
              inputs: riskInput(KILL_INPUTS + total + next + j),
            }),
          ),
        );
        await new Promise((r) => setTimeout(r, Math.random() * 20));
        await stopProc(relayer, "SIGKILL");
        kills++;
        for (const r of await inflight)
          if (r.status === "fulfilled" && r.value.status === 200)
            accepted.add(String(r.value.json.requestId));
        relayer = await startRelayer(file);
      }
    }
    expect(kills).to.equal(3);
    expect(accepted.size).to.be.greaterThanOrEqual(total);

    const roots = new Map<bigint, string>();
    for (const id of accepted) {
      const res = await until(`anchoring of ${id}`, async () => {
        const r = await getJson(`${relayer.url}/v1/receipts/${id}`);
        return r.json.status === "anchored" ? r : null;
      });
      const bundle = parseReceiptBundle(JSON.stringify(res.json.bundle));
      if (!roots.has(bundle.batchId))
        roots.set(
          bundle.batchId,
          String(await system.ledger.getFunction("rootOf")(bundle.batchId)),
        );
      expect(verifyReceiptProof(roots.get(bundle.batchId)!, bundle.receipt, bundle.proof)).to.equal(
        true,
      );
    }
    // On chain: the anchored receipts of this run are exactly the store's jobs, each once.
    const status = await run(process.execPath, [
      "bin/opg.mjs",
      "relayer",
      "status",
      "--config",
      file,
      "--json",
    ]);
    const jobs = (JSON.parse(status.stdout) as { jobs: Record<string, number> }).jobs;
    await until("store fully anchored", async () => {
      const s = await run(process.execPath, [
        "bin/opg.mjs",
        "relayer",
        "status",
        "--config",
        file,
        "--json",
      ]);
      const j = (JSON.parse(s.stdout) as { jobs: Record<string, number> }).jobs;
      return j.pending === 0 && j.batched === 0 ? j : null;
    }).catch(async (e: unknown) => {
      const s = await run(process.execPath, [
        "bin/opg.mjs",
        "relayer",
        "status",
        "--config",
        file,
        "--json",
      ]);
      throw new Error(`${String(e)}\n${s.stdout}\n${relayer.output().slice(-6000)}`);
    });
    const events = await system.ledger.queryFilter(
      system.ledger.filters.BatchAnchored(),
      fromBlock,
    );
    const onChain = events.reduce(
      (sum, e) => sum + Number((e as unknown as { args: { count: bigint } }).args.count),
      0,
    );
    const final = await run(process.execPath, [
      "bin/opg.mjs",
      "relayer",
      "status",
      "--config",
      file,
      "--json",
    ]);
    const anchored =
      (JSON.parse(final.stdout) as { jobs: Record<string, number> }).jobs.anchored ?? 0;
    expect(onChain).to.equal(anchored);
    expect(anchored).to.be.greaterThanOrEqual(accepted.size);
    expect(jobs.rejected ?? 0).to.equal(0);
    await stopProc(relayer);
  });

  it("an enclave restarted with a new key at the same URL: /readyz says so, and requests sent at once are served by the new key", async () => {
    // The relayer checks the enclave's key only every 10 minutes here: what brings the new key in
    // use is a refused request (the enclave answers 403 to a signature made for its old key) and
    // the readiness probe, which each check the enclave at the URL right away.
    const { file } = await writeRelayerConfig(system, enclave.url, node.url, {
      listener: { enabled: false },
      enclave: { recheckMs: 600_000 },
    });
    const relayer = await startRelayer(file);
    const port = new URL(enclave.url).port;
    const restart = async (): Promise<void> => {
      const old = enclave.address;
      await stopProc(enclave);
      enclave = await startEnclave(system, node.url, ["--port", port]);
      expect(enclave.address).to.not.equal(old);
    };

    await restart();
    const answers = await Promise.all(
      [1, 2, 3]
        .map((i) => RESTART_INPUTS + i)
        .map((i) =>
          postJson(`${relayer.url}/v1/inferences`, {
            modelId: RISK_MLP.modelId,
            inputs: riskInput(i),
          }),
        ),
    );
    for (const a of answers) {
      expect(a.status, JSON.stringify(a.json)).to.equal(200);
      expect((a.json.verification as { enclave: string }).enclave).to.equal(enclave.address);
    }

    await restart();
    const probe = await getJson(`${relayer.url}/readyz`);
    expect(probe.status).to.equal(503);
    expect(String(probe.json.reason)).to.contain(
      `now holds key ${enclave.address}, not checked yet`,
    );
    await until("the relayer to check the new key", async () => {
      const r = await getJson(`${relayer.url}/readyz`);
      return r.status === 200 ? r : null;
    });
    const later = await postJson(`${relayer.url}/v1/inferences`, {
      modelId: RISK_MLP.modelId,
      inputs: riskInput(RESTART_INPUTS + 4),
    });
    expect(later.status).to.equal(200);
    await stopProc(relayer);
  });

  it("a GPU node returning wrong outputs is caught by the enclave; anyone reports the published evidence and it is slashed", async () => {
    const { file } = await writeRelayerConfig(system, enclave.url, node.url, {
      faultInjection: { corruptOutputs: true },
      listener: { enabled: false },
      // The operator does not report its own node: a watcher does, from the enclave's evidence.
      evidence: { submit: false },
    });
    const before = await system.staking.getNode(system.gpuNode);
    expect(before.jailed).to.equal(false);
    const relayer = await startRelayer(file);
    const res = await postJson(`${relayer.url}/v1/inferences`, {
      modelId: RISK_MLP.modelId,
      inputs: riskInput(7),
    });
    expect(res.status).to.equal(200);
    expect(res.json.status).to.equal("rejected");
    const v = res.json.verification as { verdict: { agree: boolean; outputHash: string } };
    expect(v.verdict.agree).to.equal(false);
    // A watcher reads the enclave's GET /evidence and reports it: the bounty is the watcher's.
    const watcher = account(5);
    const balanceBefore = await system.token.balanceOf(watcher.address);
    const args = [
      "bin/opg.mjs",
      "evidence",
      "report",
      "--enclave",
      enclave.url,
      "--rpc",
      node.url,
      "--ledger",
      await system.ledger.getAddress(),
      "--key-env",
      "WATCHER_KEY",
    ];
    const reported = await run(process.execPath, args, { WATCHER_KEY: watcher.privateKey });
    expect(reported.code, reported.stdout + reported.stderr).to.equal(0);
    expect(reported.stdout).to.match(/SLASHED {2}#\d+ contradicted against node/);
    // The real NodeStaking: the GPU node loses the CONTRADICTED_RECEIPT share of its stake and is jailed.
    const after = await system.staking.getNode(system.gpuNode);
    expect(after.jailed).to.equal(true);
    const bounty = (await system.token.balanceOf(watcher.address)) - balanceBefore;
    const params = await system.staking.params();
    const slashedAmount = before.active - after.active;
    expect(bounty).to.equal((slashedAmount * params.bountyBps) / 10_000n);
    // The same evidence again: skipped, nothing sent.
    const again = await run(process.execPath, args, { WATCHER_KEY: watcher.privateKey });
    expect(again.code).to.equal(0);
    expect(again.stdout).to.match(/SKIPPED {2}#\d+ contradicted .*already slashed/);
    expect(after.active < before.active).to.equal(true);
    expect(await system.staking.isActive(system.gpuNode)).to.equal(false);
    const slashed = await system.ledger.queryFilter(system.ledger.filters.OffenceSlashed());
    expect(slashed).to.have.length(1);
    expect(String((slashed[0] as unknown as { args: { node: string } }).args.node)).to.equal(
      system.gpuNode,
    );
    await stopProc(relayer);
  });

  it("rewards for the epoch of the relayer's anchored usage: computed from the chain, proposed, verified", async () => {
    // The runs above anchored real usage through the relayer; close that epoch and recompute it.
    // A provider without ethers' short result cache: the test mines blocks and reads them right away.
    const provider = new JsonRpcProvider(node.url, undefined, {
      staticNetwork: true,
      cacheTimeout: -1,
    });
    const source = await resolveSource(provider, { deploymentDir: system.deploymentDir });
    const latest = await provider.getBlock("latest");
    const epoch = epochAt(source.config, BigInt(latest!.timestamp));
    expect(epoch, "the runs happened after the rewards genesis").to.be.greaterThan(0n);
    const lines: string[] = [];
    const summary = await runRewardsDemo({
      source,
      updater: new NonceManager(account(0).connect(provider)),
      sender: account(2).connect(provider),
      contributor: system.adminAddress,
      chain: {
        now: async () => BigInt((await provider.getBlock("latest"))!.timestamp),
        mineAt: async (t) => {
          await rpc(node.url, "evm_setNextBlockTimestamp", [Number(t)]);
          await rpc(node.url, "evm_mine");
        },
      },
      log: (line) => lines.push(line),
      outDir: await mkdtemp(path.join(tmpdir(), "opg-e2e-rewards-")),
      epoch,
    });
    // The relayer's anchored receipts are the usage the rewards were computed from.
    const anchored = await system.ledger.queryFilter(system.ledger.filters.BatchAnchored(), 0);
    const receipts = anchored.reduce((sum, log) => sum + Number(log.args.count), 0);
    expect(lines.join("\n")).to.contain(`usage: ${receipts} receipts`);
    expect(summary.verified, lines.join("\n")).to.equal(true);
    expect(summary.claimed).to.be.greaterThan(0n);
    provider.destroy();
  });

  it("a model published with opg model publish is listed by /v1/models as registered, not served here; the served ones with their manifests", async () => {
    // The rewards test before this one moved the chain past the enclave's one-day registration.
    await system.renewEnclave(enclave.address);
    const dir = await mkdtemp(path.join(tmpdir(), "opg-e2e-hub-"));
    const gelu = geluModel();
    await writeFile(path.join(dir, "model.onnx"), gelu.onnx);
    await writeFile(path.join(dir, "manifest.json"), JSON.stringify(gelu.manifest));
    const [a, b] = [account(10).address, account(11).address];
    const publish = (contributors: string) =>
      run(
        process.execPath,
        [
          "bin/opg.mjs",
          "model",
          "publish",
          dir,
          "--rpc",
          node.url,
          "--deployment",
          system.deploymentDir,
          "--contributors",
          contributors,
          "--metadata-uri",
          "ipfs://gelu",
          "--key-env",
          "OPG_TEST_PUBLISHER_KEY",
          "--json",
        ],
        { OPG_TEST_PUBLISHER_KEY: account(9).privateKey },
      );
    const bad = await publish(`${a}:6000,${b}:3000`);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.contain(
      "ContributorSharesError: the shares sum to 9000 basis points, not 10000",
    );
    const done = await publish(`${a}:6000,${b}:4000`);
    expect(done.code, done.stderr).to.equal(0);
    const registration = JSON.parse(done.stdout) as {
      modelId: string;
      owner: string;
      specHash: string;
    };
    expect(registration.modelId).to.equal(gelu.manifest.modelId);
    expect(registration.owner).to.equal(account(9).address);
    const again = await publish(`${a}:10000`);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.contain("reverted with ModelRegistryAlreadyRegistered");
    expect(again.stderr).to.contain(`owner: ${account(9).address}`);

    const { file } = await writeRelayerConfig(system, enclave.url, node.url, {
      log: { level: "warn" },
    });
    const relayer = await startRelayer(file);
    const models = (await getJson(`${relayer.url}/v1/models`)).json as {
      models: Array<{ modelId: string; registered: boolean }>;
      registered: Array<{
        modelId: string;
        status: string;
        served: boolean;
        manifest: { name: string } | null;
        metadataUri: string;
        specHash: string;
        contributors: Array<{ address: string; shareBps: number }>;
      }>;
    };
    const byId = new Map(models.registered.map((m) => [m.modelId, m]));
    const listed = byId.get(gelu.manifest.modelId as string);
    expect(listed).to.deep.include({
      status: "registered, not served here",
      served: false,
      manifest: null,
      metadataUri: "ipfs://gelu",
      specHash: registration.specHash,
    });
    expect(listed!.contributors).to.deep.equal([
      { address: a, shareBps: 6000 },
      { address: b, shareBps: 4000 },
    ]);
    for (const [m, name] of [
      [RISK_MLP, "risk-mlp"],
      [SEQ_CNN, "seq-cnn"],
    ] as const) {
      expect(byId.get(m.modelId)).to.deep.include({ status: "served", served: true });
      expect(byId.get(m.modelId)!.manifest!.name).to.equal(name);
    }
    expect(models.models.every((m) => m.registered)).to.equal(true);
    await stopProc(relayer);
  });
});
