/**
 * The soak: a simulated month (or week) of one GPU node and one TEE node on a `hardhat node`, by
 * time travel, with everything that happens to a node that runs itself: a steady request load
 * (HTTP and on chain), heartbeats and registration renewals by `opg node run`, the enclave rotated to
 * a new key, a new enclave image approved through governance and the old one retired, RPC outages
 * (the fault proxy between every service and the chain), and relayer kill -9s. Every service is its
 * own process: the enclave, the relayer, the two keepers.
 *
 * Used by `npm run soak` (scripts/soak.ts: a month, reports/soak.json) and by the short variant in
 * `npm test` (test/e2e/soak.test.ts: a week). At the end: every accepted request is anchored exactly
 * once and none is lost, how long anchoring stalled at worst, and whether readiness told the truth.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { buildProposal } from "../../offchain/governance/actions.js";
import { passProposal } from "../../offchain/governance/proposals.js";
import { relayerStatus } from "../../offchain/cli/commands/relayer.js";
import { loadLedgerAbis } from "../../offchain/chain/artifacts.js";
import { parseReceiptBundle } from "../../offchain/chain/bundle.js";
import { verifyReceiptBundle } from "../../offchain/chain/verify.js";
import { encodeInputs } from "../../offchain/inference/tensor.js";
import { openDatabaseReadOnly } from "../../offchain/relayer/db.js";
import { loadRelayerConfig } from "../../offchain/relayer/config.js";
import { RpcFaultProxy } from "../../offchain/relayer/testing/rpc-proxy.js";
import { freePort, rpc, startHardhatNode } from "../helpers/processes.js";
import {
  RISK_MLP,
  deploySystem,
  devMeasurement,
  relayerEnv,
  riskInput,
  startEnclave,
  startOpg,
  stopProc,
  writeRelayerConfig,
  type Proc,
} from "./relayer-system.js";

const HOUR = 3_600;
const DAY = 24 * HOUR;
const IMAGE_V2 = "opg-enclave-dev-v2";

export interface SoakOptions {
  days: number;
  /** Simulated hours per step (each step: a wave of requests, then time moves on). */
  stepHours: number;
  requestsPerStep: number;
  /** Wall-clock seconds of each RPC outage. */
  outageSeconds: number;
  log: (line: string) => void;
}

export interface SoakReport {
  simulatedDays: number;
  steps: number;
  stepHours: number;
  wallSeconds: number;
  requests: {
    http: number;
    accepted: number;
    onChain: number;
    fulfilled: number;
    /** Requests not answered 200, by status (or "network") and error name. */
    refused: Record<string, number>;
  };
  anchored: {
    receipts: number;
    batches: number;
    duplicates: number;
    lost: number;
    onChainCount: number;
  };
  /** Wall-clock seconds from a wave's end to every receipt anchored; the worst and the 95th percentile. */
  anchoringStall: { maxSeconds: number; p95Seconds: number; boundSeconds: number };
  events: {
    outages: number;
    kills: number;
    enclaveRotations: number;
    imageApproved: boolean;
    imageRetired: boolean;
    heartbeats: number;
    registrations: number;
  };
  readiness: {
    samples: number;
    notReady: number;
    /** Samples that said ready while the chain was cut off (must be 0). */
    readyDuringOutage: number;
    /** Outages during which readiness never said not ready (must be 0). */
    outagesUnreported: number;
    /** Keeper samples that said ready while the node's heartbeat was overdue on chain (must be 0). */
    keeperReadyWhileOverdue: number;
    /** Samples (one per node per step) at which a node's last heartbeat was past its timeout. */
    nodesOverdue: number;
  };
  bundlesVerified: number;
}

interface Sample {
  step: number;
  ready: boolean;
  reason?: string;
  outage: boolean;
}

async function getJson(url: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Longer than ChainClock's refresh interval (1 s), so every service has seen a time jump. */
const CLOCK_SETTLE_MS = 1_300;

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const started = Date.now();
  const node = await startHardhatNode();
  const proxy = await RpcFaultProxy.start(node.url, 7);
  // Shorter governance than production (1 h + 1 day + 1 day instead of 8 days), so that an image
  // can be approved and the old one retired within a simulated week; unbonding stays shorter than
  // that, as the deploy requires; heartbeats are due every 6 hours.
  const system = await deploySystem(node.url, {
    votingDelay: BigInt(HOUR),
    votingPeriod: BigInt(DAY),
    timelockDelay: BigInt(DAY),
    stakingParams: { unbondingDelay: BigInt(2 * DAY), heartbeatTimeout: BigInt(6 * HOUR) },
  });
  const procs: Proc[] = [];
  const work = await mkdtemp(path.join(tmpdir(), "opg-soak-"));
  // The enclave in use (replaced at each rotation), stopped at the end like every other process.
  let enclave: Awaited<ReturnType<typeof startEnclave>> | undefined;
  try {
    enclave = await startEnclave(system, proxy.url);
    const enclavePort = new URL(enclave.url).port;
    const { file } = await writeRelayerConfig(system, enclave.url, proxy.url, {
      batch: { maxSize: 256, maxAgeMs: 300 },
      listener: { confirmations: 1 },
      enclave: { url: enclave.url, recheckMs: 500 },
    });
    const storePath = loadRelayerConfig(file, {}).store.path;
    const startRelayer = async (): Promise<Proc & { url: string }> => {
      const p = await startOpg(["relayer", "start", "--config", file], relayerEnv(system));
      procs.push(p);
      return { ...p, url: String(p.line.url) };
    };
    let relayer = await startRelayer();

    const keeper = async (
      nodeAddress: string,
      key: string,
      enclaveUrl?: string,
    ): Promise<Proc & { url: string }> => {
      const kfile = path.join(work, `node-${nodeAddress}.json`);
      await writeFile(
        kfile,
        JSON.stringify({
          chain: {
            rpcUrl: proxy.url,
            chainId: 31337,
            ledger: await system.ledger.getAddress(),
            pollIntervalMs: 200,
          },
          node: { address: nodeAddress },
          ...(enclaveUrl !== undefined ? { enclave: { url: enclaveUrl } } : {}),
          store: { path: path.join(work, `node-${nodeAddress}.db`) },
          api: { port: await freePort() },
          log: { level: "warn" },
        }),
      );
      const p = await startOpg(["node", "run", "--config", kfile], { OPG_NODE_SIGNER_KEY: key });
      procs.push(p);
      return { ...p, url: String(p.line.url) };
    };
    const gpuKeeper = await keeper(system.gpuNode, system.nodeSigner.privateKey);
    const teeKeeper = await keeper(system.teeNode, system.teeSigner.privateKey, enclave.url);

    // Governance runs alongside: its waits are met by the steps below as simulated time passes.
    const waiters: Array<{ t: bigint; resolve: () => void }> = [];
    const chainNow = async (): Promise<bigint> =>
      BigInt(
        (
          (await system.provider.send("eth_getBlockByNumber", ["latest", false])) as {
            timestamp: string;
          }
        ).timestamp,
      );
    const waitUntil = async (t: bigint): Promise<void> => {
      if ((await chainNow()) >= t) return;
      await new Promise<void>((resolve) => waiters.push({ t, resolve }));
    };
    const actors = { proposer: system.proposer, voters: [system.proposer] };
    let imageApproved = false;
    let imageRetired = false;
    let imageSwitchDue = false;
    const approveV2 = buildProposal(
      { action: "approve-measurement", measurement: devMeasurement(IMAGE_V2), label: "dev v2" },
      { addresses: system.governance.addresses },
    ).then((p) => passProposal(system.governance, actors, p, waitUntil));
    void approveV2.then(() => {
      imageApproved = true;
      imageSwitchDue = true;
      o.log("governance approved enclave image v2");
    });
    let retireV1: Promise<unknown> | null = null;

    const steps = Math.round((o.days * 24) / o.stepHours);
    const at = (fraction: number): number => Math.max(1, Math.round(steps * fraction));
    const outageSteps = new Set([at(0.15), at(0.45), at(0.75)]);
    const killSteps = new Set([at(0.2), at(0.5), at(0.8)]);
    const rotateStep = at(0.6);
    const accepted = new Set<string>();
    const refused: Record<string, number> = {};
    const refusals: string[] = [];
    const chainRequests: string[] = [];
    const stalls: number[] = [];
    const samples: Sample[] = [];
    let keeperReadyWhileOverdue = 0;
    let nodesOverdue = 0;
    let http = 0;
    let kills = 0;
    let outages = 0;
    let rotations = 0;
    const timeout = Number((await system.staking.params()).heartbeatTimeout);

    const wave = async (step: number): Promise<void> => {
      const sent = Array.from({ length: o.requestsPerStep }, (_, j) =>
        fetch(`${relayer.url}/v1/inferences`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            modelId: RISK_MLP.modelId,
            inputs: riskInput(step * 100 + j),
            idempotencyKey: `soak-${step}-${j}`,
          }),
          signal: AbortSignal.timeout(30_000),
        })
          .then(async (r) => {
            if (r.status === 200) return (await r.json()) as { requestId: string };
            const body = (await r.json().catch(() => ({}))) as { error?: string; message?: string };
            const why = `${r.status} ${body.error ?? ""}`.trim();
            refused[why] = (refused[why] ?? 0) + 1;
            if (refusals.length < 20) {
              refusals.push(`step ${step}: ${why}: ${body.message ?? ""}`);
              o.log(`refused: step ${step}: ${why}: ${body.message ?? ""}`);
            }
            return null;
          })
          .catch(() => {
            refused.network = (refused.network ?? 0) + 1;
            return null;
          }),
      );
      http += sent.length;
      for (const r of await Promise.all(sent)) if (r !== null) accepted.add(r.requestId);
    };
    const sampleReadiness = async (step: number, outage: boolean): Promise<void> => {
      try {
        const r = await getJson(`${relayer.url}/readyz`);
        if (outage && r.json.ready === true)
          o.log(`step ${step}: /readyz said ready during the outage`);
        samples.push({
          step,
          ready: r.json.ready === true,
          ...(typeof r.json.reason === "string" ? { reason: r.json.reason } : {}),
          outage,
        });
      } catch {
        // the relayer is restarting
      }
    };
    const drain = async (): Promise<number> => {
      const t0 = Date.now();
      for (;;) {
        const s = relayerStatus(storePath);
        if (s.jobs.pending + s.jobs.batched === 0) return (Date.now() - t0) / 1000;
        if (Date.now() - t0 > 120_000)
          throw new Error(
            `anchoring did not drain: ${JSON.stringify(s.jobs)}\n--- relayer ---\n${relayer.output().slice(-5000)}\n--- enclave ---\n${enclave?.output().slice(-3000) ?? ""}`,
          );
        await sleep(100);
      }
    };

    for (let step = 1; step <= steps; step++) {
      if (outageSteps.has(step)) {
        // The chain is cut off for every service: requests are still accepted, anchoring waits,
        // and readiness says why; when it comes back, anchoring catches up by itself.
        outages++;
        proxy.addRule({ method: "*", when: "before", action: { type: "drop" } });
        const until = Date.now() + o.outageSeconds * 1000;
        while (Date.now() < until) {
          await wave(step);
          await sampleReadiness(step, true);
          await sleep(300);
        }
        proxy.clearRules();
        o.log(`step ${step}: RPC outage of ${o.outageSeconds} s`);
      } else if (killSteps.has(step)) {
        const inflight = wave(step);
        await sleep(15 + Math.random() * 30);
        await stopProc(relayer, "SIGKILL");
        kills++;
        await inflight;
        relayer = await startRelayer();
        o.log(`step ${step}: relayer killed with SIGKILL mid-wave and restarted`);
      } else if (step === rotateStep || imageSwitchDue) {
        // The enclave restarts (a new key; with image v2 once governance approved it): the TEE
        // keeper registers the new key, the relayer checks it and moves its pending receipts over.
        const image = imageApproved ? ["--image", IMAGE_V2] : [];
        await stopProc(enclave);
        enclave = await startEnclave(system, proxy.url, ["--port", enclavePort, ...image], {
          register: false,
        });
        rotations++;
        if (imageSwitchDue) {
          imageSwitchDue = false;
          retireV1 = buildProposal(
            {
              action: "revoke-measurement",
              measurement: devMeasurement(),
              forCause: "false",
            },
            { addresses: system.governance.addresses },
          ).then((p) => passProposal(system.governance, actors, p, waitUntil));
          void retireV1.then(() => {
            imageRetired = true;
            o.log("governance retired enclave image v1");
          });
        }
        for (let i = 0; i < 300; i++) {
          const r = await getJson(`${relayer.url}/readyz`).catch(() => null);
          if (r?.status === 200) break;
          await sleep(100);
        }
        o.log(
          `step ${step}: enclave restarted with a new key ${enclave.address}${image.length > 0 ? " (image v2)" : ""}`,
        );
        await wave(step);
      } else {
        await wave(step);
      }
      if (step % 6 === 0) {
        const input = encodeInputs([
          {
            name: "features",
            dtype: "float32",
            dims: [1, 16],
            data: Float32Array.from(riskInput(step).features.data),
          },
        ]);
        const tx = await system.ledger.connect(system.requester).getFunction("requestInference")(
          RISK_MLP.modelId,
          input,
          0,
          30 * DAY,
          0,
        );
        const mined = await tx.wait();
        for (const l of mined!.logs) {
          const parsed = system.ledger.interface.parseLog(l);
          if (parsed?.name === "InferenceRequested")
            chainRequests.push(String(parsed.args.requestId));
        }
      }
      stalls.push(await drain());
      await sampleReadiness(step, false);
      // The keepers are truthful: ready only while the node's heartbeat is within its timeout.
      for (const k of [
        { url: gpuKeeper.url, node: system.gpuNode },
        { url: teeKeeper.url, node: system.teeNode },
      ]) {
        const r = await getJson(`${k.url}/readyz`).catch(() => null);
        const last = Number((await system.staking.getNode(k.node)).lastHeartbeat);
        const overdue = Number(await chainNow()) - last > timeout;
        if (overdue) {
          nodesOverdue++;
          o.log(`step ${step}: node ${k.node} is past its heartbeat timeout`);
        }
        if (r?.status === 200 && overdue) keeperReadyWhileOverdue++;
      }
      // Time moves on; the keepers have a moment to heartbeat and renew before the next wave.
      await rpc(node.url, "evm_increaseTime", [o.stepHours * HOUR]);
      await rpc(node.url, "evm_mine");
      const now = await chainNow();
      for (const w of waiters.splice(0)) {
        if (w.t <= now) w.resolve();
        else waiters.push(w);
      }
      // The services read chain time through a clock refreshed every second (offchain/chain/clock.ts):
      // wait past a refresh so the relayer and the enclave agree on the time again before the wave.
      await sleep(CLOCK_SETTLE_MS);
      if (step % Math.max(1, Math.round(24 / o.stepHours)) === 0)
        o.log(
          `day ${Math.round((step * o.stepHours) / 24)}: ${accepted.size} accepted, worst stall ${Math.max(...stalls).toFixed(1)} s`,
        );
    }
    // Governance still under way (its waits outlast the run's end) is carried to its end: time moves
    // to each wait in turn.
    const settle = async (p: Promise<unknown>): Promise<void> => {
      let done = false;
      void p.finally(() => (done = true)).catch(() => undefined);
      while (!done) {
        const next = waiters.reduce<bigint | null>(
          (m, w) => (m === null || w.t < m ? w.t : m),
          null,
        );
        if (next !== null) {
          const now = await chainNow();
          // In steps no longer than the run's, so the keepers heartbeat and renew on the way.
          const jump = Math.min(Number(next - now), o.stepHours * HOUR);
          if (jump > 0) await rpc(node.url, "evm_increaseTime", [jump]);
          await rpc(node.url, "evm_mine");
          const t = await chainNow();
          for (const w of waiters.splice(0)) {
            if (w.t <= t) w.resolve();
            else waiters.push(w);
          }
        }
        await sleep(CLOCK_SETTLE_MS);
      }
      await p;
    };
    await settle(approveV2);
    if (retireV1 !== null) await settle(retireV1);

    // The end: every accepted request anchored exactly once; on-chain requests fulfilled.
    await rpc(node.url, "evm_mine");
    stalls.push(await drain());
    const ledger = system.ledger;
    let lost = 0;
    const abis = loadLedgerAbis();
    let verified = 0;
    const ids = [...accepted];
    for (const [i, id] of ids.entries()) {
      const r = await getJson(`${relayer.url}/v1/receipts/${id}`);
      if (r.json.status !== "anchored") {
        lost++;
        continue;
      }
      if (i % Math.max(1, Math.floor(ids.length / 25)) === 0) {
        const checks = await verifyReceiptBundle(
          parseReceiptBundle(JSON.stringify(r.json.bundle)),
          system.provider,
          abis,
        );
        if (checks.every((c) => c.ok)) verified++;
        else
          throw new Error(`bundle of ${id} failed: ${JSON.stringify(checks.filter((c) => !c.ok))}`);
      }
    }
    const fulfilled = (await ledger.queryFilter(ledger.filters.InferenceFulfilled())).length;
    const events = await ledger.queryFilter(
      ledger.filters.BatchAnchored(undefined, undefined, system.gpuNode),
    );
    const onChainCount = events.reduce((n, e) => n + Number(e.args.count), 0);
    const status = relayerStatus(storePath);
    // Each anchored receipt once: the store's anchored jobs are as many as the chain's counts, and
    // no request id sits in two anchored batches.
    const reader = openDatabaseReadOnly(storePath);
    const dupRow = reader
      .prepare(
        "SELECT COUNT(*) AS n FROM (SELECT request_id FROM jobs WHERE batch_enclave IS NOT NULL GROUP BY request_id HAVING COUNT(*) > 1)",
      )
      .get() as { n: number };
    reader.close();
    const heartbeats = (await system.staking.queryFilter(system.staking.filters.HeartbeatSent()))
      .length;
    const registrations = (await system.tee.queryFilter(system.tee.filters.EnclaveRegistered()))
      .length;
    const sorted = [...stalls].sort((a, b) => a - b);
    const outageSamples = samples.filter((s) => s.outage);
    const outagesUnreported = [...outageSteps].filter(
      (step) => !outageSamples.some((s) => s.step === step && !s.ready),
    ).length;
    return {
      simulatedDays: o.days,
      steps,
      stepHours: o.stepHours,
      wallSeconds: Math.round((Date.now() - started) / 1000),
      requests: {
        http,
        accepted: accepted.size,
        onChain: chainRequests.length,
        fulfilled,
        refused,
      },
      anchored: {
        receipts: status.jobs.anchored,
        batches: status.batches.anchored,
        duplicates: Number(dupRow.n),
        lost,
        onChainCount,
      },
      anchoringStall: {
        maxSeconds: Number(sorted.at(-1)!.toFixed(2)),
        p95Seconds: Number(sorted[Math.floor(sorted.length * 0.95)]!.toFixed(2)),
        boundSeconds: 60,
      },
      events: {
        outages,
        kills,
        enclaveRotations: rotations,
        imageApproved,
        imageRetired,
        heartbeats,
        registrations,
      },
      readiness: {
        samples: samples.length,
        notReady: samples.filter((s) => !s.ready).length,
        readyDuringOutage: outageSamples.filter((s) => s.ready).length,
        outagesUnreported,
        keeperReadyWhileOverdue,
        nodesOverdue,
      },
      bundlesVerified: verified,
    };
  } finally {
    for (const p of procs) await stopProc(p, "SIGKILL");
    if (enclave !== undefined) await stopProc(enclave, "SIGKILL");
    await proxy.close();
    await system.close();
    await node.stop();
  }
}
