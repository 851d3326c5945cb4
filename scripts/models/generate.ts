/**
 * Builds the models shipped in models/<name>/ (model.onnx + manifest.json) from code, with
 * deterministic weights from a seeded PRNG, so anyone can regenerate them and get the same bytes.
 *
 *   npx tsx scripts/models/generate.ts           # write models/*
 *   npx tsx scripts/models/generate.ts --check   # exit 1 if a committed file differs
 *
 * The weights are exported (`riskMlpWeights`, `seqCnnWeights`) so the tests can compute the
 * expected outputs with plain TypeScript maths, independently of ONNX Runtime.
 */
import { readFileSync, mkdirSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { keccak256 } from "ethers";
import onnxProto from "onnx-proto";
import { prng } from "../../offchain/common/prng.js";

const { onnx } = onnxProto;

export const MODELS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../models");
const OPSET = 13;
const IR_VERSION = 7;

// ---------------------------------------------------------------- deterministic weights

export { prng };

/**
 * `count` weights k/256 with k uniform in [-range, range]: exact in float32, so the TS reference
 * and ONNX Runtime start from identical numbers.
 */
function weights(next: () => number, count: number, range: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(((next() % (2 * range + 1)) - range) / 256);
  return out;
}

export interface DenseLayer {
  in: number;
  out: number;
  /** Row-major [out][in] (Gemm with transB = 1). */
  w: number[];
  b: number[];
}

function dense(next: () => number, nIn: number, nOut: number): DenseLayer {
  return { in: nIn, out: nOut, w: weights(next, nIn * nOut, 64), b: weights(next, nOut, 32) };
}

export interface RiskMlpWeights {
  layers: [DenseLayer, DenseLayer, DenseLayer];
}

/** Transaction-risk MLP: 16 features -> 32 ReLU -> 16 ReLU -> 1 sigmoid. */
export function riskMlpWeights(): RiskMlpWeights {
  const next = prng(0x0a11ce);
  return { layers: [dense(next, 16, 32), dense(next, 32, 16), dense(next, 16, 1)] };
}

export interface SeqCnnWeights {
  channels: number;
  kernel: number;
  length: number;
  /** Conv weight [channels][1][kernel]. */
  convW: number[];
  convB: number[];
  head: DenseLayer;
}

/**
 * Sequence classifier over a 32-step activity signal: Conv1d(1 -> 8, k = 5, pad 2) -> ReLU ->
 * global average pool -> dense 8 -> 4 -> softmax.
 */
export function seqCnnWeights(): SeqCnnWeights {
  const next = prng(0xc0ffee);
  const channels = 8;
  const kernel = 5;
  return {
    channels,
    kernel,
    length: 32,
    convW: weights(next, channels * kernel, 96),
    convB: weights(next, channels, 32),
    head: dense(next, channels, 4),
  };
}

// ---------------------------------------------------------------- ONNX graph helpers

function f32Tensor(name: string, dims: number[], values: number[]): onnxProto.onnx.ITensorProto {
  const raw = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => raw.writeFloatLE(v, i * 4));
  return { name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: raw };
}

function valueInfo(name: string, dims: Array<number | string>): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: {
          dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  };
}

function intAttr(name: string, i: number): onnxProto.onnx.IAttributeProto {
  return { name, i, type: onnx.AttributeProto.AttributeType.INT };
}

function intsAttr(name: string, ints: number[]): onnxProto.onnx.IAttributeProto {
  return { name, ints, type: onnx.AttributeProto.AttributeType.INTS };
}

function gemm(input: string, output: string, prefix: string): onnxProto.onnx.INodeProto {
  return {
    opType: "Gemm",
    name: `${prefix}_gemm`,
    input: [input, `${prefix}.w`, `${prefix}.b`],
    output: [output],
    attribute: [intAttr("transB", 1)],
  };
}

function denseInits(prefix: string, l: DenseLayer): onnxProto.onnx.ITensorProto[] {
  return [f32Tensor(`${prefix}.w`, [l.out, l.in], l.w), f32Tensor(`${prefix}.b`, [l.out], l.b)];
}

function encodeModel(graph: onnxProto.onnx.IGraphProto, doc: string): Uint8Array {
  const model: onnxProto.onnx.IModelProto = {
    irVersion: IR_VERSION,
    producerName: "opg scripts/models/generate.ts",
    producerVersion: "1",
    docString: doc,
    opsetImport: [{ domain: "", version: OPSET }],
    graph,
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

// ---------------------------------------------------------------- the models

export interface GeneratedModel {
  name: string;
  onnx: Uint8Array;
  manifest: Record<string, unknown>;
}

function riskMlp(): GeneratedModel {
  const { layers } = riskMlpWeights();
  const [l1, l2, l3] = layers;
  const graph: onnxProto.onnx.IGraphProto = {
    name: "risk_mlp",
    node: [
      gemm("features", "h1", "l1"),
      { opType: "Relu", name: "relu1", input: ["h1"], output: ["a1"] },
      gemm("a1", "h2", "l2"),
      { opType: "Relu", name: "relu2", input: ["h2"], output: ["a2"] },
      gemm("a2", "logit", "l3"),
      { opType: "Sigmoid", name: "sigmoid", input: ["logit"], output: ["risk"] },
    ],
    initializer: [...denseInits("l1", l1), ...denseInits("l2", l2), ...denseInits("l3", l3)],
    input: [valueInfo("features", ["batch", 16])],
    output: [valueInfo("risk", ["batch", 1])],
  };
  const bytes = encodeModel(graph, "Transaction risk score: MLP 16-32-16-1, sigmoid output");
  return {
    name: "risk-mlp",
    onnx: bytes,
    manifest: {
      schema: "opg.model-manifest/1",
      name: "risk-mlp",
      description: "Tabular classifier: probability that a transaction is fraudulent (16 features)",
      modelFile: "model.onnx",
      modelId: keccak256(bytes),
      inputs: [{ name: "features", dtype: "float32", shape: ["batch", 16] }],
      outputs: [{ name: "risk", dtype: "float32", shape: ["batch", 1] }],
      outputScale: 1_000_000,
      tolerance: 2,
      maxBatch: 256,
    },
  };
}

function seqCnn(): GeneratedModel {
  const w = seqCnnWeights();
  const graph: onnxProto.onnx.IGraphProto = {
    name: "seq_cnn",
    node: [
      {
        opType: "Conv",
        name: "conv",
        input: ["signal", "conv.w", "conv.b"],
        output: ["c"],
        attribute: [intsAttr("kernel_shape", [w.kernel]), intsAttr("pads", [2, 2])],
      },
      { opType: "Relu", name: "relu", input: ["c"], output: ["r"] },
      { opType: "GlobalAveragePool", name: "gap", input: ["r"], output: ["p"] },
      {
        opType: "Flatten",
        name: "flatten",
        input: ["p"],
        output: ["f"],
        attribute: [intAttr("axis", 1)],
      },
      gemm("f", "logits", "head"),
      {
        opType: "Softmax",
        name: "softmax",
        input: ["logits"],
        output: ["probs"],
        attribute: [intAttr("axis", 1)],
      },
    ],
    initializer: [
      f32Tensor("conv.w", [w.channels, 1, w.kernel], w.convW),
      f32Tensor("conv.b", [w.channels], w.convB),
      ...denseInits("head", w.head),
    ],
    input: [valueInfo("signal", ["batch", 1, w.length])],
    output: [valueInfo("probs", ["batch", 4])],
  };
  const bytes = encodeModel(
    graph,
    "Activity sequence classifier: Conv1d(1->8,k5) ReLU GAP dense softmax(4)",
  );
  return {
    name: "seq-cnn",
    onnx: bytes,
    manifest: {
      schema: "opg.model-manifest/1",
      name: "seq-cnn",
      description: "Convolutional classifier over a 32-step account activity signal (4 classes)",
      modelFile: "model.onnx",
      modelId: keccak256(bytes),
      inputs: [{ name: "signal", dtype: "float32", shape: ["batch", 1, w.length] }],
      outputs: [{ name: "probs", dtype: "float32", shape: ["batch", 4] }],
      outputScale: 1_000_000,
      tolerance: 2,
      maxBatch: 256,
    },
  };
}

/**
 * Not shipped: a model over a 3×640×640 image (1,228,800 float32 values, 4.9 MB canonical), the
 * per-channel means, for the large-tensor tests (test/offchain/relayer/large-tensors.test.ts).
 */
export function imageMeanModel(): GeneratedModel {
  const graph: onnxProto.onnx.IGraphProto = {
    name: "image_mean",
    node: [
      { opType: "GlobalAveragePool", name: "gap", input: ["image"], output: ["p"] },
      {
        opType: "Flatten",
        name: "flatten",
        input: ["p"],
        output: ["means"],
        attribute: [intAttr("axis", 1)],
      },
    ],
    initializer: [],
    input: [valueInfo("image", [1, 3, 640, 640])],
    output: [valueInfo("means", [1, 3])],
  };
  const bytes = encodeModel(graph, "Per-channel means of a 3x640x640 image");
  return {
    name: "image-mean",
    onnx: bytes,
    manifest: {
      schema: "opg.model-manifest/1",
      name: "image-mean",
      modelFile: "model.onnx",
      modelId: keccak256(bytes),
      inputs: [{ name: "image", dtype: "float32", shape: [1, 3, 640, 640] }],
      outputs: [{ name: "means", dtype: "float32", shape: [1, 3] }],
      outputScale: 1_000_000,
      tolerance: 2,
      maxBatch: 1,
    },
  };
}

/**
 * Not shipped: an erf GELU over 64 features, y = x · ½ · (1 + erf(x / √2)), written out op by op
 * as exporters write it. ONNX Runtime fuses the pattern into one Gelu kernel from graph
 * optimisation level "extended" on, whose result differs from the op-by-op one in the last bits:
 * the calibration tests' model with a divergence to measure (test/offchain/inference/calibrate.test.ts).
 */
export function geluModel(): GeneratedModel {
  const scalar = (name: string, v: number) => f32Tensor(name, [], [v]);
  const graph: onnxProto.onnx.IGraphProto = {
    name: "gelu",
    node: [
      { opType: "Div", name: "div", input: ["x", "sqrt2"], output: ["d"] },
      { opType: "Erf", name: "erf", input: ["d"], output: ["e"] },
      { opType: "Add", name: "add", input: ["e", "one"], output: ["a"] },
      { opType: "Mul", name: "mul", input: ["x", "a"], output: ["m"] },
      { opType: "Mul", name: "half", input: ["m", "half"], output: ["y"] },
    ],
    initializer: [scalar("sqrt2", Math.SQRT2), scalar("one", 1), scalar("half", 0.5)],
    input: [valueInfo("x", ["batch", 64])],
    output: [valueInfo("y", ["batch", 64])],
  };
  const bytes = encodeModel(graph, "erf GELU over 64 features, op by op");
  return {
    name: "gelu",
    onnx: bytes,
    manifest: {
      schema: "opg.model-manifest/1",
      name: "gelu",
      modelFile: "model.onnx",
      modelId: keccak256(bytes),
      inputs: [{ name: "x", dtype: "float32", shape: ["batch", 64] }],
      outputs: [
        {
          name: "y",
          dtype: "float32",
          shape: ["batch", 64],
          scale: 4_000_000_000,
          tolerance: { mode: "elementwise", abs: 2000, rel: 0 },
        },
      ],
      outputScale: 1_000_000,
      maxBatch: 64,
    },
  };
}

export function generateModels(): GeneratedModel[] {
  return [riskMlp(), seqCnn()];
}

/**
 * JSON with 2-space indentation where arrays of scalars stay on one line (the layout prettier
 * gives these manifests, so the committed files pass `prettier --check` unchanged).
 */
export function formatJson(value: unknown, indent = ""): string {
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== "object")) {
      return `[${value.map((v) => JSON.stringify(v)).join(", ")}]`;
    }
    return `[\n${value.map((v) => inner + formatJson(v, inner)).join(",\n")}\n${indent}]`;
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).map(
      ([k, v]) => `${inner}${JSON.stringify(k)}: ${formatJson(v, inner)}`,
    );
    return `{\n${entries.join(",\n")}\n${indent}}`;
  }
  return JSON.stringify(value);
}

/** The exact bytes each committed file must have: path relative to models/ -> bytes. */
export function expectedFiles(): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  for (const m of generateModels()) {
    files.set(`${m.name}/model.onnx`, m.onnx);
    files.set(`${m.name}/manifest.json`, Buffer.from(formatJson(m.manifest) + "\n"));
  }
  return files;
}

/** Paths (relative to models/) whose bytes differ from what the generator produces. */
export function diffCommitted(dir = MODELS_DIR): string[] {
  const differing: string[] = [];
  for (const [rel, bytes] of expectedFiles()) {
    const path = join(dir, rel);
    if (!existsSync(path) || !Buffer.from(bytes).equals(readFileSync(path))) differing.push(rel);
  }
  return differing;
}

function main(): void {
  if (process.argv.includes("--check")) {
    const differing = diffCommitted();
    if (differing.length > 0) {
      console.error(`models differ from the generator: ${differing.join(", ")}`);
      process.exitCode = 1;
    } else console.log("models/ matches the generator byte for byte");
    return;
  }
  for (const [rel, bytes] of expectedFiles()) {
    const path = join(MODELS_DIR, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, bytes);
    console.log(`wrote models/${rel} (${bytes.length} bytes)`);
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url))
  main();
