/**
 * Relayer benchmark (npm run bench:relayer): a hardhat node, the enclave and the relayer as separate
 * processes; OPG_BENCH_REQUESTS (default 10,000) HTTP requests per sampling rate (1.0, 0.1, 0.01)
 * with OPG_BENCH_CONCURRENCY (default 16) in flight. Measures HTTP in → signed receipt out
 * (throughput, p50/p99), then waits for every receipt to be anchored and reads receipts per
 * anchoring transaction and gas per receipt. Writes reports/relayer.json.
 */
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { cpus } from "node:os";

import { relayerStatus } from "../../offchain/cli/commands/relayer.js";
import { loadRelayerConfig } from "../../offchain/relayer/config.js";
import { startHardhatNode } from "../../test/helpers/processes.js";
import {
  RISK_MLP,
  deploySystem,
  relayerEnv,
  riskInput,
  startEnclave,
  startOpg,
  stopProc,
  writeRelayerConfig,
} from "../../test/e2e/relayer-system.js";

const N = Number(process.env.OPG_BENCH_REQUESTS ?? 10_000);
const CONCURRENCY = Number(process.env.OPG_BENCH_CONCURRENCY ?? 16);
const RATES = (process.env.OPG_BENCH_RATES ?? "1,0.1,0.01").split(",").map(Number);
/** Directory for a V8 CPU profile of each relayer process (`node --cpu-prof`), when set. */
const PROFILE_DIR = process.env.OPG_BENCH_PROFILE_DIR;

/**
 * The load generator: POSTs over CONCURRENCY kept-alive connections (node:http). It shares the
 * machine's cores with the relayer, so it is kept lean (fetch costs several times more per request).
 */
function client(concurrency: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  return {
    post(url: string, body: unknown): Promise<{ status: number; body: string }> {
      const payload = Buffer.from(JSON.stringify(body));
      return new Promise((resolve, reject) => {
        const req = request(
          url,
          {
            method: "POST",
            agent,
            headers: { "content-type": "application/json", "content-length": payload.length },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("error", reject);
            res.on("end", () =>
              resolve({
                status: res.statusCode ?? 0,
                body: Buffer.concat(chunks).toString("utf8"),
              }),
            );
          },
        );
        req.on("error", reject);
        req.end(payload);
      });
    },
    close: () => agent.destroy(),
  };
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); null elsewhere. */
function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/**
 * Event-loop delay and major GC pauses of the relayer since it started, from its Prometheus
 * /metrics (prom-client's monitorEventLoopDelay figures include its 10 ms sampling interval, which
 * is taken off here).
 */
async function loopAndGc(url: string): Promise<Record<string, number | null>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (re: RegExp) => {
    const m = re.exec(text);
    return m === null ? null : Number(m[1]);
  };
  const delay = (v: number | null) => (v === null ? null : Number((v * 1000 - 10).toFixed(1)));
  return {
    eventLoopDelayP99Ms: delay(read(/^opg_relayer_nodejs_eventloop_lag_p99_seconds (\S+)/m)),
    eventLoopDelayMaxMs: delay(read(/^opg_relayer_nodejs_eventloop_lag_max_seconds (\S+)/m)),
    majorGcPauses:
      read(/^opg_relayer_nodejs_gc_duration_seconds_count\{kind="major"\} (\S+)/m) ?? 0,
  };
}

/** Waits until the enclave has read the new rate from the chain (it re-reads every few seconds). */
async function waitForEnclaveRate(url: string, ratePpm: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const info = (await (await fetch(`${url}/info`)).json()) as { sampleRatePpm: number };
    if (info.sampleRatePpm === ratePpm) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the enclave did not pick up sample rate ${ratePpm} ppm`);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const node = await startHardhatNode();
const system = await deploySystem(node.url);
const enclave = await startEnclave(system, node.url);
const rows = [];
try {
  for (const rate of RATES) {
    // The rate is governance's (InferenceLedger.setSampleRate); the enclave reads it from the chain.
    await system.setSampleRate(Math.round(rate * 1_000_000), [enclave.address]);
    await waitForEnclaveRate(enclave.url, Math.round(rate * 1_000_000));
    const { file } = await writeRelayerConfig(system, enclave.url, node.url, {
      batch: { maxSize: 1024, maxAgeMs: 500 },
      listener: { enabled: false },
    });
    const relayer = await startOpg(["relayer", "start", "--config", file], {
      ...relayerEnv(system),
      ...(PROFILE_DIR === undefined
        ? {}
        : { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${PROFILE_DIR}` }),
    });
    const url = String(relayer.line.url);
    const http = client(CONCURRENCY);
    // Warm-up (not measured).
    for (let i = 0; i < 200; i++) {
      const res = await http.post(`${url}/v1/inferences`, {
        modelId: RISK_MLP.modelId,
        inputs: riskInput(i),
      });
      if (res.status !== 200)
        throw new Error(`warm-up request answered ${res.status}: ${res.body}`);
    }
    const latencies: number[] = [];
    let failed = 0;
    let next = 0;
    const cpuBefore = [cpuSeconds(relayer.child.pid), cpuSeconds(enclave.child.pid)];
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < N) {
          const i = next++;
          const t = performance.now();
          const res = await http.post(`${url}/v1/inferences`, {
            modelId: RISK_MLP.modelId,
            inputs: riskInput(i),
          });
          latencies.push(performance.now() - t);
          if (res.status !== 200) failed++;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = [cpuSeconds(relayer.child.pid), cpuSeconds(enclave.child.pid)];
    const cpuMsPerRequest = cpuAfter.map((after, i) =>
      after === null || cpuBefore[i] === null
        ? null
        : Number((((after - cpuBefore[i]!) * 1000) / N).toFixed(3)),
    );
    http.close();
    latencies.sort((a, b) => a - b);
    const dbPath = loadRelayerConfig(file, {}).store.path;
    const anchorStart = performance.now();
    let status = relayerStatus(dbPath);
    while (status.jobs.pending + status.jobs.batched > 0) {
      await new Promise((r) => setTimeout(r, 200));
      status = relayerStatus(dbPath);
    }
    const anchorDrain = (performance.now() - anchorStart) / 1000;
    const loop = await loopAndGc(url);
    await stopProc(relayer);
    const receipts = status.jobs.anchored;
    const row = {
      sampleRate: rate,
      requests: N,
      failed,
      concurrency: CONCURRENCY,
      receiptsPerSecond: Math.round(N / seconds),
      p50Ms: Number(percentile(latencies, 50).toFixed(2)),
      p99Ms: Number(percentile(latencies, 99).toFixed(2)),
      relayerCpuMsPerRequest: cpuMsPerRequest[0],
      ...loop,
      enclaveCpuMsPerRequest: cpuMsPerRequest[1],
      receiptsAnchored: receipts,
      anchoringTransactions: status.batches.anchored,
      receiptsPerTransaction: Math.round(receipts / status.batches.anchored),
      gasPerReceipt: Number((Number(status.gasUsed) / receipts).toFixed(1)),
      secondsToDrainAnchoringAfterLastRequest: Number(anchorDrain.toFixed(2)),
    };
    console.log(JSON.stringify(row));
    rows.push(row);
  }
} finally {
  await stopProc(enclave);
  await system.close();
  await node.stop();
}
await mkdir("reports", { recursive: true });
await writeFile(
  "reports/relayer.json",
  JSON.stringify(
    {
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "unknown", node: process.version },
      model: "risk-mlp (1 row, 16 features)",
      setup:
        "hardhat node + enclave process + relayer process + load generator, all on this machine",
      rows,
    },
    null,
    2,
  ) + "\n",
);
console.log("wrote reports/relayer.json");
