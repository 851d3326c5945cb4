/**
 * Inference and enclave benchmark (CPU): inferences per second and p50/p99 latency per shipped
 * model, single-row and batched, ONNX Runtime alone and through the engine (validation,
 * quantisation, hashing); then the enclave's re-execution + signing overhead, batch signing and
 * attestation costs; then canonical hashing of a large output (409,600 values) in MB/s, the
 * element-by-element encoding against the typed-array one and native keccak over the raw bytes.
 * Writes reports/inference.json.
 *
 *   npm run bench:inference            # full run
 *   BENCH_QUICK=1 npm run bench:inference
 *   BENCH_ONLY=hashing npm run bench:inference   # the hashing rows alone (prints, writes nothing)
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join, resolve } from "node:path";

import { getAddress, keccak256, toBeHex } from "ethers";
import * as ort from "onnxruntime-node";
import { pino } from "pino";

import { keccak256 as keccakBytes } from "../../native/index.js";
import {
  InferenceEngine,
  encodeOutputs,
  encodeOutputsElementwise,
  outputHash,
  outputsToJson,
  type QuantisedTensor,
  type LoadedModel,
  type TensorJson,
} from "../../offchain/inference/index.js";
import { systemClock } from "../../offchain/chain/clock.js";
import { DigestSigner } from "../../offchain/chain/ecdsa.js";
import { ledgerDomain } from "../../offchain/chain/eip712.js";
import { LedgerHasher } from "../../offchain/chain/hasher.js";
import { readDocumentText, verifyAttestation } from "../../offchain/tee/attestation.js";
import { AWS_NITRO_ROOT_G1_PEM } from "../../offchain/tee/awsRoot.js";
import { DevAttestor } from "../../offchain/tee/devAttestation.js";
import { Enclave } from "../../offchain/tee/enclave.js";
import { prng } from "../models/generate.js";

const ROOT = resolve(import.meta.dirname, "../..");
const QUICK = process.env.BENCH_QUICK === "1";
const SINGLE_RUNS = QUICK ? 200 : 3000;
const BATCH = 32;
const BATCH_RUNS = QUICK ? 50 : 500;
const ENCLAVE_RUNS = QUICK ? 50 : 500;
const silent = pino({ level: "silent" });

/** perSecond counts rows (inferences) for model runs, operations for the enclave's rows. */
interface Stats {
  runs: number;
  rowsPerRun: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

function stats(samplesMs: number[], rowsPerRun: number): Stats {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const pick = (q: number): number =>
    sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
  const total = samplesMs.reduce((a, b) => a + b, 0);
  const round = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    runs: samplesMs.length,
    rowsPerRun,
    perSecond: Math.round((samplesMs.length * rowsPerRun * 1000) / total),
    p50Ms: round(pick(0.5)),
    p99Ms: round(pick(0.99)),
    meanMs: round(total / samplesMs.length),
  };
}

async function time(runs: number, fn: (i: number) => unknown): Promise<number[]> {
  for (let i = 0; i < Math.min(50, runs); i++) await fn(i); // warm-up
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn(i);
    out.push(performance.now() - t);
  }
  return out;
}

function inputsFor(model: LoadedModel, rows: number, seed: number): Record<string, TensorJson> {
  const next = prng(seed);
  const out: Record<string, TensorJson> = {};
  for (const spec of model.manifest.inputs) {
    const dims = spec.shape.map((d) => (typeof d === "number" ? d : rows));
    const count = dims.reduce((a, b) => a * b, 1);
    out[spec.name] = {
      dims,
      data: Array.from({ length: count }, () => Math.fround((next() / 2 ** 32) * 4 - 2)),
    };
  }
  return out;
}

function machine(): Record<string, unknown> {
  const run = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: "utf8" }).trim();
    } catch {
      return "unavailable";
    }
  };
  const lscpu = run("lscpu", []);
  const field = (name: string): string =>
    lscpu
      .split("\n")
      .find((l) => l.startsWith(`${name}:`))
      ?.split(":")[1]
      ?.trim() ?? "unknown";
  return {
    nproc: Number(run("nproc", [])),
    cpuModel:
      field("Model name") !== "unknown" ? field("Model name") : (cpus()[0]?.model ?? "unknown"),
    architecture: field("Architecture"),
    threadsPerCore: field("Thread(s) per core"),
    node: process.version,
    onnxruntime: ort.env.versions.node ?? ort.env.versions.common,
    provider: "cpu",
    intraOpNumThreads: 1,
  };
}

/**
 * Hashing throughput for one large output (a 640×640 map, 409,600 int64 values, 3.2 MB encoded):
 * outputHash as it was (encoding element by element, then native keccak), outputHash now (typed
 * arrays copied into the encoding), and native keccak alone over the same bytes: the ceiling.
 */
async function largeOutputHashing(): Promise<Record<string, unknown>> {
  const next = prng(4);
  const values = new BigInt64Array(409_600).map(() => BigInt(next() % 2_000_001) - 1_000_000n);
  const tensor: QuantisedTensor = { name: "mask", scale: 1_000_000, dims: [640, 640], values };
  const bytes = encodeOutputs([tensor]);
  const runs = QUICK ? 20 : 100;
  const hashOf = (b: Uint8Array): string => `0x${Buffer.from(keccakBytes(b)).toString("hex")}`;
  if (outputHash([tensor]) !== hashOf(encodeOutputsElementwise([tensor]))) {
    throw new Error("the typed-array encoding differs from the element-by-element one");
  }
  const row = (samples: number[]): Record<string, unknown> => {
    const s = stats(samples, 1);
    // At the median: the machine is shared, and the mean carries its stalls.
    return { ...s, mbPerSecond: Math.round((bytes.length / 1e6 / (s.p50Ms / 1000)) * 10) / 10 };
  };
  return {
    values: values.length,
    encodedBytes: bytes.length,
    elementwise: row(await time(runs, () => hashOf(encodeOutputsElementwise([tensor])))),
    typedArrays: row(await time(runs, () => outputHash([tensor]))),
    nativeKeccakOnly: row(await time(runs, () => keccakBytes(bytes))),
  };
}

async function main(): Promise<void> {
  const engine = new InferenceEngine({
    config: { provider: "cpu", intraOpNumThreads: 1 },
    logger: silent,
  });
  const models = await engine.loadModelsDir(join(ROOT, "models"));
  const perModel: Record<string, unknown> = {};

  for (const model of models) {
    const single = inputsFor(model, 1, 1);
    const batched = inputsFor(model, BATCH, 2);
    const feeds = (inputs: Record<string, TensorJson>): Record<string, ort.Tensor> =>
      Object.fromEntries(
        Object.entries(inputs).map(([name, t]) => [
          name,
          new ort.Tensor("float32", Float32Array.from(t.data as number[]), t.dims),
        ]),
      );
    const singleFeeds = feeds(single);
    const batchFeeds = feeds(batched);
    perModel[model.manifest.name] = {
      modelId: model.modelId,
      ortSingle: stats(await time(SINGLE_RUNS, () => model.session.run(singleFeeds)), 1),
      engineSingle: stats(await time(SINGLE_RUNS, () => engine.run(model.modelId, single)), 1),
      ortBatched: stats(await time(BATCH_RUNS, () => model.session.run(batchFeeds)), BATCH),
      engineBatched: stats(await time(BATCH_RUNS, () => engine.run(model.modelId, batched)), BATCH),
    };
    console.log(model.manifest.name, JSON.stringify(perModel[model.manifest.name]));
  }

  // Enclave: log + re-execution + comparison + EIP-712 signing, against a plain engine run. The
  // enclave reads the chain only for its client's signer and the rate: a fixed answer here.
  const nodeKey = new DigestSigner(keccak256("0x6e6f6465"));
  const node = getAddress("0x70997970c51812dc3a79c7f17720b8c4af1d6f54");
  const ledger = getAddress("0x5fbdb2315678afecb367f032d93f642f64180aa3");
  const attestor = new DevAttestor();
  const enclave = new Enclave({
    engine,
    attestor,
    chainId: 31337n,
    ledger,
    clientNode: node,
    chain: {
      signerOf: () => Promise.resolve(nodeKey.address),
      signerRecordOf: () => Promise.resolve({ node, since: 0n, until: 0n }),
      sampleRatePpm: () => Promise.resolve(1_000_000),
      nextSequenceOf: () => Promise.resolve(0n),
      latestBlockTimestamp: () => Promise.resolve(systemClock.now()),
      close: () => {},
    },
    clock: systemClock,
    limits: { maxOpenBatches: 1_000_000 },
  });
  await enclave.start();
  const hasher = new LedgerHasher(ledgerDomain(31337n, ledger));
  const risk = models.find((m) => m.manifest.name === "risk-mlp") as LoadedModel;
  const inputs = inputsFor(risk, 1, 3);
  const result = await engine.run(risk.modelId, inputs);
  const outputs = outputsToJson(result.outputs);
  let request = 0;
  const item = () => {
    const receipt = {
      requestId: keccak256(toBeHex(++request, 32)),
      modelId: risk.modelId,
      inputHash: result.inputHash,
      outputHash: result.outputHash,
      node,
      execConfigHash: result.execConfigHash,
      timestamp: systemClock.now(),
    };
    return { receipt, nodeSignature: nodeKey.sign(hasher.receiptDigest(receipt)), inputs, outputs };
  };
  const runOnly = stats(await time(ENCLAVE_RUNS, () => engine.run(risk.modelId, inputs)), 1);
  const verify = stats(
    await time(ENCLAVE_RUNS, () => enclave.submit([{ ...item(), force: true }])),
    1,
  );
  const logOnly = stats(await time(ENCLAVE_RUNS, () => enclave.submit([item()])), 1);
  const signBatch = stats(await time(ENCLAVE_RUNS, () => enclave.cutBatch(1)), 1);
  enclave.stop();
  const attest = stats(
    await time(QUICK ? 20 : 100, () => enclave.attestation(new Uint8Array(16))),
    1,
  );
  const nitroDoc = readDocumentText(
    readFileSync(join(ROOT, "test/fixtures/nitro/attestation_doc.b64")),
  );
  const at = new Date("2026-02-12T18:00:00Z");
  const verifyNitro = stats(
    await time(QUICK ? 20 : 200, () =>
      verifyAttestation(nitroDoc, { roots: [AWS_NITRO_ROOT_G1_PEM], at }),
    ),
    1,
  );
  const enclaveReport = {
    model: "risk-mlp",
    engineRun: runOnly,
    verify,
    overheadP50Ms: Math.round((verify.p50Ms - runOnly.p50Ms) * 1000) / 1000,
    logWithoutReexecution: logOnly,
    signBatch,
    issueDevAttestation: attest,
    verifyNitroAttestation: verifyNitro,
  };
  console.log("enclave", JSON.stringify(enclaveReport));
  const hashing = await largeOutputHashing();
  console.log("hashing", JSON.stringify(hashing));

  const report = {
    generatedAt: new Date().toISOString(),
    quick: QUICK,
    machine: machine(),
    models: perModel,
    enclave: enclaveReport,
    hashing,
  };
  mkdirSync(join(ROOT, "reports"), { recursive: true });
  writeFileSync(join(ROOT, "reports/inference.json"), JSON.stringify(report, null, 2) + "\n");
  console.log("wrote reports/inference.json");
  await engine.close();
}

if (process.env.BENCH_ONLY === "hashing")
  console.log("hashing", JSON.stringify(await largeOutputHashing()));
else await main();
