/**
 * What the enclave's checks cost per receipt (npm run bench:enclave-checks): CPU microseconds of
 * each step `Enclave.submit` and the batch cut run for one risk-mlp receipt, measured with
 * process.cpuUsage over many receipts on this machine, next to the re-execution that a sampled
 * receipt adds. In process, no chain: the steps are the library functions the enclave calls
 * (offchain/tee/enclave.ts), in its order. Writes reports/enclave-checks.json.
 *
 *   OPG_BENCH_RECEIPTS   receipts per step (default 5,000)
 *   OPG_BENCH_PER_POST   receipts per authenticated POST, to spread x-opg-auth over (default 6)
 */
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";

import { Wallet, keccak256, toBeHex } from "ethers";
import { pino } from "pino";

import { buildTreeFromHashes, nativeBackend } from "../../native/index.js";
import { DigestSigner, ecdsaBackend, recoverSigner } from "../../offchain/chain/ecdsa.js";
import { ledgerDomain, type Receipt } from "../../offchain/chain/eip712.js";
import { LedgerHasher, receiptLeafHash } from "../../offchain/chain/hasher.js";
import {
  InferenceEngine,
  inputHash,
  outputHash,
  outputsFromJson,
  outputsToJson,
  receiptFor,
  validateInputs,
  type TensorJson,
} from "../../offchain/inference/index.js";
import { stringifyJson } from "../../offchain/common/json.js";
import { authHeader, authenticate } from "../../offchain/tee/auth.js";
import { isSelected } from "../../offchain/tee/sampling.js";
import { MODELS_DIR } from "../models/generate.js";

const N = Number(process.env.OPG_BENCH_RECEIPTS ?? 5_000);
const PER_POST = Number(process.env.OPG_BENCH_PER_POST ?? 6);

/** CPU µs per call of `fn` over `n` calls (user + system, this process). */
function cpuMicros(n: number, fn: (i: number) => void): number {
  for (let i = 0; i < Math.min(n, 200); i++) fn(i); // warm up
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) fn(i);
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / n;
}

const engine = new InferenceEngine({
  config: { provider: "cpu" },
  logger: pino({ level: "silent" }),
});
await engine.loadModelsDir(MODELS_DIR);
const model = engine.get(
  (await import("../../models/risk-mlp/manifest.json", { with: { type: "json" } })).default.modelId,
);
const domain = ledgerDomain(31337n, Wallet.createRandom().address);
const hasher = new LedgerHasher(domain);
const nodeSigner = new DigestSigner(Wallet.createRandom().privateKey);
const node = Wallet.createRandom().address;
const enclaveAddress = Wallet.createRandom().address;

// Distinct honest receipts, as the relayer sends them (inputs and outputs as JSON).
const DISTINCT = 256;
const items: Array<{
  receipt: Receipt;
  nodeSignature: string;
  inputs: Record<string, TensorJson>;
  outputs: unknown;
}> = [];
for (let i = 0; i < DISTINCT; i++) {
  const data = Array.from({ length: 16 }, (_, j) => Math.sin(i * 16 + j));
  const inputs = { features: { dims: [1, 16], data } };
  const result = await engine.run(model.modelId, inputs);
  const receipt = receiptFor(result, {
    requestId: keccak256(toBeHex(i + 1, 32)),
    node,
    timestamp: 1_800_000_000n,
  });
  items.push({
    receipt,
    nodeSignature: nodeSigner.sign(hasher.receiptDigest(receipt)),
    inputs,
    outputs: outputsToJson(result.outputs),
  });
}
const item = (i: number) => items[i % DISTINCT]!;
const digests = items.map((it) => hasher.receiptDigest(it.receipt));
const secret = randomBytes(32);

const steps: Array<{ step: string; micros: number }> = [];
const add = (step: string, micros: number) => steps.push({ step, micros });

add(
  "receipt EIP-712 struct hash and digest",
  cpuMicros(N, (i) => {
    hasher.receiptStructHash(item(i).receipt);
    hasher.receiptDigest(item(i).receipt);
  }),
);
add(
  "node signature recovered (the node's signer?)",
  cpuMicros(N, (i) => recoverSigner(digests[i % DISTINCT]!, item(i).nodeSignature)),
);
add(
  "inputs validated against the manifest and hashed",
  cpuMicros(N, (i) => inputHash(validateInputs(model.manifest, item(i).inputs))),
);
add(
  "outputs parsed and hashed",
  cpuMicros(N, (i) => outputHash(outputsFromJson(model.manifest, item(i).outputs))),
);
add(
  "the draw (keccak256(secret || digest) < rate)",
  cpuMicros(N, (i) => isSelected(secret, digests[i % DISTINCT]!, 0.01)),
);
add(
  "leaf hash",
  cpuMicros(N, (i) => receiptLeafHash(item(i).receipt)),
);
// A batch of 1,024: the root over its leaves and one signature, per receipt.
const leaves = items.map((it) => receiptLeafHash(it.receipt));
const batchLeaves = Array.from({ length: 1024 }, (_, i) => leaves[i % DISTINCT]!);
const enclaveSigner = new DigestSigner(Wallet.createRandom().privateKey);
add(
  "batch of 1,024: Merkle root and signature, per receipt",
  cpuMicros(Math.max(10, Math.round(N / 100)), () => {
    const tree = buildTreeFromHashes(batchLeaves);
    enclaveSigner.sign(keccak256(tree.root));
  }) / 1024,
);
// x-opg-auth: one per POST, whose body carries PER_POST receipts.
const body = Buffer.from(stringifyJson({ items: items.slice(0, PER_POST) }));
const header = authHeader(nodeSigner, enclaveAddress, "POST", "/v1/receipts", 1_800_000_000n, body);
add(
  `x-opg-auth checked, per receipt (${PER_POST} per POST)`,
  cpuMicros(Math.round(N / PER_POST), () =>
    authenticate(header, enclaveAddress, "POST", "/v1/receipts", body, 1_800_000_000n),
  ) / PER_POST,
);
const checks = steps.reduce((s, r) => s + r.micros, 0);

// What a sampled receipt adds: the CPU re-execution (async: measured over sequential runs).
const reN = Math.round(N / 5);
const r0 = process.cpuUsage();
for (let i = 0; i < reN; i++) await engine.run(model.modelId, item(i).inputs);
const rd = process.cpuUsage(r0);
const reexecution = (rd.user + rd.system) / reN;
await engine.close();

const report = {
  model: "risk-mlp",
  receipts: N,
  receiptsPerPost: PER_POST,
  ecdsa: ecdsaBackend,
  nativeMerkle: nativeBackend !== null,
  steps: steps.map((s) => ({ step: s.step, cpuMicros: Number(s.micros.toFixed(1)) })),
  checksCpuMicros: Number(checks.toFixed(1)),
  reexecutionCpuMicros: Number(reexecution.toFixed(1)),
};
console.log(`enclave checks per receipt (risk-mlp, ${N} receipts; ecdsa ${ecdsaBackend}):`);
for (const s of report.steps) console.log(`  ${s.cpuMicros.toFixed(1).padStart(8)} µs  ${s.step}`);
console.log(`  ${report.checksCpuMicros.toFixed(1).padStart(8)} µs  all checks (every receipt)`);
console.log(
  `  ${report.reexecutionCpuMicros.toFixed(1).padStart(8)} µs  re-execution on CPU (sampled receipts only)`,
);
await mkdir("reports", { recursive: true });
await writeFile("reports/enclave-checks.json", JSON.stringify(report, null, 2) + "\n");
console.log("wrote reports/enclave-checks.json");
