import { expect } from "chai";
import { keccak256 } from "ethers";

import {
  InferenceInputError,
  InferenceInputTooLargeError,
  InferenceOutputError,
  band,
  compareOutputs,
  decodeInputs,
  encodeInputs,
  encodeInputsElementwise,
  encodeOutputs,
  encodeOutputsElementwise,
  enclaveItemBound,
  inputBounds,
  inputsToJson,
  jsonRequestBound,
  inputHash,
  outputHash,
  outputsFromJson,
  outputsToJson,
  parseManifest,
  quantise,
  scaleOf,
  tolerancesOf,
  validateInputs,
  type InputTensor,
  type ModelManifest,
  type OutputTolerance,
  type QuantisedTensor,
} from "../../../offchain/inference/index.js";
import { prng } from "../../../scripts/models/generate.js";
import { InputError } from "../../../offchain/common/errors.js";

/** A two-input manifest that exercises symbolic dims shared across tensors and every dtype. */
const manifest: ModelManifest = parseManifest({
  schema: "opg.model-manifest/1",
  name: "two-inputs",
  modelFile: "model.onnx",
  modelId: `0x${"ab".repeat(32)}`,
  inputs: [
    { name: "x", dtype: "float32", shape: ["batch", 2] },
    { name: "ids", dtype: "int64", shape: ["batch"] },
    { name: "mask", dtype: "int32", shape: ["batch", 1] },
  ],
  outputs: [{ name: "y", dtype: "float32", shape: ["batch", 3] }],
  outputScale: 1000,
  tolerance: 2,
  maxBatch: 4,
});

const good = {
  x: { dims: [1, 2], data: [1.5, -0] },
  ids: { dims: [1], data: ["-2"] },
  mask: { dims: [1, 1], data: [7] },
};

function expectInputError(fn: () => unknown, fragment: string): void {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(InferenceInputError);
    expect((error as Error).message).to.contain(fragment);
    return;
  }
  expect.fail(`expected InferenceInputError containing "${fragment}"`);
}

describe("canonical tensors", () => {
  describe("encodeInputs", () => {
    it("encodes the documented byte layout (vector 1: float32, int32, int64, sorted by name)", () => {
      const bytes = encodeInputs(validateInputs(manifest, good));
      const expected = [
        "4f504754 01 01 0003", // magic "OPGT", version 1, kind 1 = inputs, 3 tensors
        "0003 696473 03 00000000 01 00000001", // "ids": int64, scale 0, rank 1, dims [1]
        "feffffffffffffff", // -2 (int64 LE)
        "0004 6d61736b 02 00000000 02 00000001 00000001", // "mask": int32, rank 2, dims [1, 1]
        "07000000", // 7 (int32 LE)
        "0001 78 01 00000000 02 00000001 00000002", // "x": float32, rank 2, dims [1, 2]
        "0000c03f 00000000", // 1.5, -0 written as +0 (float32 LE)
      ]
        .join("")
        .replace(/ /g, "");
      expect(bytes.toString("hex")).to.equal(expected);
      expect(inputHash(validateInputs(manifest, good))).to.equal(
        keccak256(Buffer.from(expected, "hex")),
      );
    });

    it("does not depend on the order the caller lists tensors in", () => {
      const reordered = { mask: good.mask, x: good.x, ids: good.ids };
      expect(inputHash(validateInputs(manifest, reordered))).to.equal(
        inputHash(validateInputs(manifest, good)),
      );
    });

    it("changes when any value changes", () => {
      const changed = { ...good, x: { dims: [1, 2], data: [1.5, 1e-45] } };
      expect(inputHash(validateInputs(manifest, changed))).to.not.equal(
        inputHash(validateInputs(manifest, good)),
      );
    });
  });

  describe("encodeOutputs", () => {
    it("encodes quantised outputs as fixed64 with the scale (vector 2)", () => {
      const t: QuantisedTensor = quantise("y", [0.0015, -0.0025, 1], [1, 3], 1000);
      expect([...t.values]).to.deep.equal([2n, -3n, 1000n]);
      const expected = [
        "4f504754 01 02 0001", // magic, version 1, kind 2 = outputs, 1 tensor
        "0001 79 10 000003e8 02 00000001 00000003", // "y": fixed64, scale 1000, rank 2, dims [1, 3]
        "0200000000000000 fdffffffffffffff e803000000000000", // 2, -3, 1000 (int64 LE)
      ]
        .join("")
        .replace(/ /g, "");
      expect(encodeOutputs([t]).toString("hex")).to.equal(expected);
      expect(outputHash([t])).to.equal(keccak256(Buffer.from(expected, "hex")));
    });
  });

  describe("the typed-array fast path", () => {
    // Random tensors of every dtype, with the values that have more than one bit pattern or sit
    // at the edges (-0, ±max, subnormals), some viewed at an offset into a larger buffer.
    const next = prng(15);
    const u32 = (): number => next() >>> 0;
    const randomData = (dtype: InputTensor["dtype"], n: number): InputTensor["data"] => {
      const pad = u32() % 3; // a view that does not start at byte 0 of its buffer
      if (dtype === "float32") {
        const bits = new Uint32Array(n + pad).map(u32);
        const f = new Float32Array(bits.buffer);
        for (let i = 0; i < f.length; i++) {
          if (!Number.isFinite(f[i])) f[i] = 1.5;
          if (i % 7 === 0) f[i] = -0;
          if (i % 11 === 0) f[i] = 1e-45;
        }
        return f.subarray(pad);
      }
      if (dtype === "int32") return new Int32Array(n + pad).map(u32).subarray(pad);
      const b = new BigInt64Array(n + pad).map(() =>
        BigInt.asIntN(64, (BigInt(u32()) << 32n) | BigInt(u32())),
      );
      b[pad] = -(2n ** 63n);
      return b.subarray(pad);
    };
    const dtypes = ["float32", "int32", "int64"] as const;
    const names = ["x", "ids", "mask", "é", "a_long_tensor_name"];

    it("encodes inputs byte for byte as the element-by-element encoding (200 random sets)", () => {
      for (let run = 0; run < 200; run++) {
        const count = 1 + (u32() % names.length);
        const tensors: InputTensor[] = names.slice(0, count).map((name) => {
          const dtype = dtypes[u32() % 3] as InputTensor["dtype"];
          const dims = [1 + (u32() % 5), 1 + (u32() % 40)];
          return { name, dtype, dims, data: randomData(dtype, dims[0]! * dims[1]!) };
        });
        expect(encodeInputs(tensors).equals(encodeInputsElementwise(tensors))).to.equal(
          true,
          `run ${run}`,
        );
      }
    });

    it("encodes outputs byte for byte as the element-by-element encoding (200 random sets)", () => {
      for (let run = 0; run < 200; run++) {
        const tensors: QuantisedTensor[] = names.slice(0, 1 + (u32() % 3)).map((name) => {
          const n = 1 + (u32() % 300);
          return {
            name,
            scale: u32(),
            dims: [n],
            values: randomData("int64", n) as BigInt64Array,
          };
        });
        expect(encodeOutputs(tensors).equals(encodeOutputsElementwise(tensors))).to.equal(
          true,
          `run ${run}`,
        );
      }
    });

    it("leaves the caller's float32 -0 untouched while writing it as +0", () => {
      const data = new Float32Array([-0, 2]);
      const bytes = encodeInputs([{ name: "x", dtype: "float32", dims: [2], data }]);
      expect(bytes.subarray(-8).toString("hex")).to.equal("0000000000000040");
      expect(Object.is(data[0], -0)).to.equal(true);
    });

    it("hashes a 409,600-value output as the element-by-element encoding does", () => {
      const values = randomData("int64", 409_600) as BigInt64Array;
      const t: QuantisedTensor = { name: "y", scale: 1000, dims: [640, 640], values };
      expect(outputHash([t])).to.equal(keccak256(encodeOutputsElementwise([t])));
    });
  });

  describe("decodeInputs (binary requests)", () => {
    const tensors = validateInputs(manifest, good);
    const bytes = encodeInputs(tensors);

    it("reads the canonical encoding back: the same tensors, and the same bytes again", () => {
      const decoded = decodeInputs(bytes);
      expect(encodeInputs(decoded).equals(bytes)).to.equal(true);
      expect(decoded.map((t) => [t.name, t.dtype, t.dims])).to.deep.equal([
        ["ids", "int64", [1]],
        ["mask", "int32", [1, 1]],
        ["x", "float32", [1, 2]],
      ]);
      expect(inputHash(validateInputs(manifest, inputsToJson(decoded, manifest)))).to.equal(
        keccak256(bytes),
      );
    });

    it("reads a view that does not start at byte 0 of its buffer", () => {
      const padded = Buffer.concat([Buffer.from([9, 9, 9]), bytes]).subarray(3);
      expect(encodeInputs(decodeInputs(padded)).equals(bytes)).to.equal(true);
    });

    const broken: Array<[string, Buffer, string]> = [
      ["another magic", Buffer.concat([Buffer.from("OPGX"), bytes.subarray(4)]), '"OPGT"'],
      [
        "outputs",
        Buffer.concat([bytes.subarray(0, 5), Buffer.from([2]), bytes.subarray(6)]),
        "kind 2",
      ],
      ["trailing bytes", Buffer.concat([bytes, Buffer.from([0])]), "1 bytes after the last tensor"],
      ["a cut body", bytes.subarray(0, bytes.length - 1), "needs 8 data bytes"],
      ["an empty body", Buffer.alloc(0), "ends inside the header"],
      [
        "names out of order",
        encodeInputsElementwise(tensors).fill(0x7a, 10, 13), // "ids" -> "zzz": after "mask"
        "out of name order",
      ],
    ];
    for (const [what, body, fragment] of broken) {
      it(`refuses ${what} with an InferenceInputError naming the offset`, () => {
        expectInputError(() => decodeInputs(body), fragment);
      });
    }

    it("refuses a tensor whose dtype is not the manifest's", () => {
      const asInt = [{ name: "x", dtype: "int32" as const, dims: [1, 2], data: new Int32Array(2) }];
      expectInputError(
        () => inputsToJson(asInt, manifest),
        'input "x": dtype int32, expected float32',
      );
    });
  });

  describe("maxInputBytes and the size bounds", () => {
    const capped = parseManifest({ ...manifest, maxInputBytes: 32 });

    it("bounds inputs by the shapes at maxBatch when the manifest sets no maxInputBytes", () => {
      // x: 4×2 float32, ids: 4 int64, mask: 4×1 int32 = 16 values, 32 + 32 + 16 bytes
      expect(inputBounds(manifest)).to.deep.equal({ values: 16, bytes: 80 });
      expect(jsonRequestBound(manifest)).to.equal(64 * 1024 + 24 * 16);
      expect(enclaveItemBound(manifest)).to.equal(64 * 1024 + 24 * (16 + 12));
    });

    it("caps the bounds at maxInputBytes", () => {
      expect(inputBounds(capped)).to.deep.equal({ values: 8, bytes: 32 });
    });

    it("accepts inputs up to maxInputBytes", () => {
      expect(validateInputs(capped, good)).to.have.length(3); // 8 + 8 + 4 = 20 bytes
    });

    it("refuses inputs over maxInputBytes with InferenceInputTooLargeError (413), naming the limit", () => {
      const two = {
        x: { dims: [2, 2], data: [1, 2, 3, 4] },
        ids: { dims: [2], data: [1, 2] },
        mask: { dims: [2, 1], data: [1, 0] },
      }; // 16 + 16 + 8 = 40 bytes
      try {
        validateInputs(capped, two);
        expect.fail("expected InferenceInputTooLargeError");
      } catch (error) {
        expect(error).to.be.instanceOf(InferenceInputTooLargeError);
        const e = error as InferenceInputTooLargeError;
        expect(e.httpStatus).to.equal(413);
        expect(e.message).to.equal("inputs are 40 bytes, over the model's maxInputBytes 32");
        expect(e.details).to.deep.include({ bytes: 40, maxInputBytes: 32 });
      }
    });
  });

  describe("quantise", () => {
    it("rounds half away from zero and writes -0 as 0", () => {
      expect([...quantise("y", [0.25, -0.25, 0.75, -0, -0.1], [5], 2).values]).to.deep.equal([
        1n,
        -1n,
        2n,
        0n,
        0n,
      ]);
    });

    it("rejects NaN and Infinity outputs naming the element", () => {
      expect(() => quantise("y", [0, NaN], [2], 10)).to.throw(
        InferenceOutputError,
        'output "y" value 1 is NaN',
      );
      expect(() => quantise("y", [-Infinity], [1], 10)).to.throw(InferenceOutputError, "-Infinity");
    });

    it("rejects values outside the exact fixed-point range", () => {
      expect(() => quantise("y", [2 ** 40], [1], 2 ** 20)).to.throw(
        InferenceOutputError,
        "out of fixed-point range",
      );
    });
  });

  describe("validateInputs", () => {
    it("accepts matching inputs and converts them to typed arrays", () => {
      const [ids, mask, x] = validateInputs(manifest, {
        ...good,
        x: { dims: [1, 2], data: [0.1, 2] },
      }).sort((a, b) => a.name.localeCompare(b.name));
      expect(ids?.data).to.be.instanceOf(BigInt64Array);
      expect(mask?.data).to.be.instanceOf(Int32Array);
      expect(x?.data).to.be.instanceOf(Float32Array);
      expect(x?.data[0]).to.equal(Math.fround(0.1));
    });

    it("rejects a missing tensor", () =>
      expectInputError(
        () => validateInputs(manifest, { x: good.x, ids: good.ids }),
        'missing input tensor "mask"',
      ));
    it("rejects an unknown tensor", () =>
      expectInputError(
        () => validateInputs(manifest, { ...good, extra: good.x }),
        'unknown input tensor "extra"',
      ));
    it("rejects a non-object", () =>
      expectInputError(() => validateInputs(manifest, [] as never), "inputs must be an object"));
    it("rejects a tensor without dims/data", () =>
      expectInputError(
        () => validateInputs(manifest, { ...good, x: { dims: [1, 2] } as never }),
        "must be { dims",
      ));
    it("rejects a wrong rank", () =>
      expectInputError(
        () => validateInputs(manifest, { ...good, x: { dims: [2], data: [1, 2] } }),
        'input "x": rank 1, expected 2',
      ));
    it("rejects a wrong fixed dimension", () =>
      expectInputError(
        () => validateInputs(manifest, { ...good, x: { dims: [1, 3], data: [1, 2, 3] } }),
        "dimension 1 is 3, expected 2",
      ));
    it("rejects a non-positive dimension", () =>
      expectInputError(
        () => validateInputs(manifest, { ...good, x: { dims: [0, 2], data: [] } }),
        "dimension 0 is 0",
      ));
    it("rejects a symbolic dimension above its bound (maxBatch)", () =>
      expectInputError(
        () =>
          validateInputs(manifest, { ...good, x: { dims: [5, 2], data: new Array(10).fill(0) } }),
        "above its bound 4",
      ));
    it("rejects a symbolic dimension bound to two sizes", () =>
      expectInputError(
        () => validateInputs(manifest, { ...good, ids: { dims: [2], data: [1, 2] } }),
        'dimension "batch" is 2 here but 1 in "x"',
      ));
    it("rejects a value count that does not match the dims", () =>
      expectInputError(
        () => validateInputs(manifest, { ...good, x: { dims: [1, 2], data: [1] } }),
        "1 values, expected 2",
      ));
    it("rejects NaN", () =>
      expectInputError(
        () => validateInputs(manifest, { ...good, x: { dims: [1, 2], data: [1, NaN] } }),
        "value 1 is NaN",
      ));
    it("rejects Infinity", () =>
      expectInputError(
        () => validateInputs(manifest, { ...good, x: { dims: [1, 2], data: [Infinity, 1] } }),
        "value 0 is Infinity",
      ));
    it("rejects a float32 overflow", () =>
      expectInputError(
        () => validateInputs(manifest, { ...good, x: { dims: [1, 2], data: [1e39, 1] } }),
        "overflows float32",
      ));
    it("rejects a string where a float is expected", () =>
      expectInputError(
        () => validateInputs(manifest, { ...good, x: { dims: [1, 2], data: ["1", 1] } }),
        "expected a number",
      ));
    it("rejects a non-integer int32", () =>
      expectInputError(
        () => validateInputs(manifest, { ...good, mask: { dims: [1, 1], data: [1.5] } }),
        "is not an int32",
      ));
    it("rejects an int32 out of range", () =>
      expectInputError(
        () => validateInputs(manifest, { ...good, mask: { dims: [1, 1], data: [2 ** 31] } }),
        "is not an int32",
      ));
    it("rejects an int64 beyond 64 bits", () =>
      expectInputError(
        () =>
          validateInputs(manifest, { ...good, ids: { dims: [1], data: ["9223372036854775808"] } }),
        "is not an int64",
      ));
    it("rejects an unsafe int64 number", () =>
      expectInputError(
        () => validateInputs(manifest, { ...good, ids: { dims: [1], data: [2 ** 60] } }),
        "is not an int64",
      ));
  });

  describe("compareOutputs (tolerance 2)", () => {
    const reference = quantise("y", [0.5, 0.25, 0.125], [1, 3], 1000);
    const shifted = (delta: bigint, index = 1): QuantisedTensor => {
      const values = BigInt64Array.from(reference.values);
      values[index] = (values[index] as bigint) + delta;
      return { ...reference, values };
    };

    it("agrees when a GPU result is exactly equal", () => {
      expect(compareOutputs([reference], [reference], 2)).to.deep.include({
        agree: true,
        maxDiff: 0n,
        where: "",
      });
    });
    it("agrees when a GPU result is just inside the tolerance (+2, -2)", () => {
      expect(compareOutputs([reference], [shifted(2n)], 2)).to.deep.include({
        agree: true,
        maxDiff: 2n,
        where: "y[1]",
      });
      expect(compareOutputs([reference], [shifted(-2n, 2)], 2).agree).to.be.true;
    });
    it("disagrees when a GPU result is just outside the tolerance (+3)", () => {
      expect(compareOutputs([reference], [shifted(3n)], 2)).to.deep.include({
        agree: false,
        maxDiff: 3n,
        where: "y[1]",
      });
      expect(compareOutputs([reference], [shifted(-3n, 0)], 2).agree).to.be.false;
    });
    it("disagrees when the shapes or names differ", () => {
      expect(compareOutputs([reference], [{ ...reference, dims: [3, 1] }], 2).agree).to.be.false;
      expect(compareOutputs([reference], [{ ...reference, name: "z" }], 2).agree).to.be.false;
      expect(compareOutputs([reference], [], 2)).to.deep.include({ agree: false, maxDiff: -1n });
    });
  });

  describe("compareOutputs per output and mode", () => {
    /** A quantised tensor straight from its int values (scale 1000). */
    const q = (name: string, dims: number[], values: number[]): QuantisedTensor => ({
      name,
      scale: 1000,
      dims,
      values: BigInt64Array.from(values.map(BigInt)),
    });
    const judge = (
      ref: QuantisedTensor,
      cand: QuantisedTensor,
      tolerance: OutputTolerance,
    ): ReturnType<typeof compareOutputs> =>
      compareOutputs([ref], [cand], { [ref.name]: tolerance });

    describe("elementwise with abs and rel", () => {
      const tol: OutputTolerance = { mode: "elementwise", abs: 2, rel: 0.01 };
      const ref = q("p", [1, 2], [1000, 100000]);

      it("takes the band around the enclave's value: abs + floor(rel × |x|)", () => {
        expect(band(tol, 100000n)).to.equal(1002n);
        expect(band(tol, -1000n)).to.equal(12n);
        expect(band({ abs: 0, rel: 0.001 }, 999n)).to.equal(0n);
      });
      it("agrees exactly at the bound, under rel, and names the mode", () => {
        const cmp = judge(ref, q("p", [1, 2], [988, 101002]), tol);
        expect(cmp).to.deep.include({ agree: true, maxDiff: 1002n, where: "p[1]" });
        expect(cmp.outputs).to.deep.equal([
          {
            name: "p",
            mode: "elementwise",
            agree: true,
            maxDiff: 1002n,
            where: "p[1]",
            outside: 0,
          },
        ]);
      });
      it("disagrees one unit beyond it, at the element past its band", () => {
        expect(judge(ref, q("p", [1, 2], [1000, 101003]), tol)).to.deep.include({
          agree: false,
          where: "p[1]",
        });
        // 13 off a small value is out though 1002 off the large one is in.
        const cmp = judge(ref, q("p", [1, 2], [1013, 101002]), tol);
        expect(cmp).to.deep.include({ agree: false, maxDiff: 1002n, where: "p[0]" });
      });
      it("judges each output by its own tolerance", () => {
        const a = q("a", [1, 2], [0, 0]);
        const b = q("b", [1, 2], [0, 0]);
        const tols = {
          a: { mode: "elementwise", abs: 5, rel: 0 },
          b: { mode: "elementwise", abs: 0, rel: 0 },
        } as const;
        expect(compareOutputs([a, b], [q("a", [1, 2], [5, 0]), b], tols).agree).to.be.true;
        const cmp = compareOutputs([a, b], [a, q("b", [1, 2], [1, 0])], tols);
        expect(cmp).to.deep.include({ agree: false, where: "b[0]" });
        expect(cmp.outputs.map((o) => o.agree)).to.deep.equal([true, false]);
        expect(compareOutputs([a], [a], { other: tols.a })).to.deep.include({
          agree: false,
          where: 'no tolerance for tensor "a"',
        });
      });
    });

    describe("argmax", () => {
      const exact: OutputTolerance = { mode: "argmax", abs: 0, rel: 0 };
      const ref = q("c", [2, 3], [100, 500, 300, 700, 200, 100]);

      it("agrees when every row's top class is the same, whatever the scores", () => {
        const cmp = judge(ref, q("c", [2, 3], [0, 900, 100, 400, 399, 0]), exact);
        expect(cmp.agree).to.be.true;
        expect(cmp.outputs[0]).to.deep.include({ mode: "argmax", maxDiff: 400n, outside: 6 });
      });
      it("disagrees when one row's top class differs, naming the row", () => {
        expect(judge(ref, q("c", [2, 3], [100, 500, 300, 100, 200, 700]), exact)).to.deep.include({
          agree: false,
          where: "c row 1: class 2, expected 0",
        });
      });
      it("accepts either class of an exact tie in the enclave's output", () => {
        const tie = q("c", [1, 3], [500, 500, 0]);
        expect(judge(tie, q("c", [1, 3], [400, 600, 0]), exact).agree).to.be.true;
        expect(judge(tie, q("c", [1, 3], [600, 400, 0]), exact).agree).to.be.true;
        expect(judge(tie, q("c", [1, 3], [0, 0, 1]), exact).agree).to.be.false;
      });
      it("accepts a near tie exactly within the band, and not one unit beyond", () => {
        const near = q("c", [1, 3], [500, 480, 0]);
        const flipped = q("c", [1, 3], [480, 500, 0]);
        expect(judge(near, flipped, { mode: "argmax", abs: 20, rel: 0 }).agree).to.be.true;
        expect(judge(near, flipped, { mode: "argmax", abs: 19, rel: 0 }).agree).to.be.false;
        // rel: floor(0.04 × 500) = 20.
        expect(judge(near, flipped, { mode: "argmax", abs: 0, rel: 0.04 }).agree).to.be.true;
      });
    });

    describe("topk", () => {
      const k2 = (abs: number): OutputTolerance => ({ mode: "topk", abs, rel: 0, k: 2 });
      const ref = q("c", [1, 4], [400, 300, 200, 100]);

      it("agrees when the top-k sets are equal, in any order", () => {
        expect(judge(ref, q("c", [1, 4], [300, 400, 5, 5]), k2(0)).agree).to.be.true;
      });
      it("disagrees when the sets differ", () => {
        expect(judge(ref, q("c", [1, 4], [100, 200, 300, 400]), k2(0))).to.deep.include({
          agree: false,
          where: "c row 0: top 2 [2, 3], expected [0, 1]",
        });
        expect(judge(ref, q("c", [1, 4], [400, 100, 300, 5]), k2(0)).agree).to.be.false;
      });
      it("accepts a class tied within the band at the k-th place, and not one unit beyond", () => {
        const promoted = q("c", [1, 4], [400, 100, 300, 5]);
        expect(judge(ref, promoted, k2(100)).agree).to.be.true;
        expect(judge(ref, promoted, k2(99)).agree).to.be.false;
      });
    });

    describe("fraction", () => {
      const tol: OutputTolerance = { mode: "fraction", abs: 1, rel: 0, maxFraction: 0.25 };
      const ref = q("m", [2, 4], [0, 0, 0, 0, 0, 0, 0, 0]);

      it("agrees with exactly maxFraction of the elements outside the band", () => {
        const cmp = judge(ref, q("m", [2, 4], [1, 1, 9, 0, 0, -9, 0, 0]), tol);
        expect(cmp).to.deep.include({ agree: true, maxDiff: 9n });
        expect(cmp.outputs[0]).to.deep.include({ mode: "fraction", outside: 2 });
      });
      it("disagrees with one element more", () => {
        expect(judge(ref, q("m", [2, 4], [2, 1, 9, 0, 0, -9, 0, 0]), tol)).to.deep.include({
          agree: false,
          where: "m: 3 of 8 elements outside the band, at most 2 allowed",
        });
      });
    });
  });

  describe("per-output manifest fields", () => {
    const base = {
      schema: "opg.model-manifest/1",
      name: "classifier",
      modelFile: "model.onnx",
      modelId: `0x${"cd".repeat(32)}`,
      inputs: [{ name: "x", dtype: "float32", shape: ["batch", 2] }],
      outputs: [
        {
          name: "probs",
          dtype: "float32",
          shape: ["batch", 4],
          scale: 1_000_000_000,
          tolerance: { mode: "topk", abs: 2, rel: 0.001, k: 2 },
        },
        { name: "logits", dtype: "float32", shape: ["batch", 4] },
      ],
      outputScale: 1000,
      tolerance: 3,
      maxBatch: 4,
    };
    const withOutput = (edit: Record<string, unknown>, top: Record<string, unknown> = {}) => ({
      ...base,
      ...top,
      outputs: [{ ...base.outputs[0], ...edit }, base.outputs[1]],
    });
    const problems = (json: unknown): string[] => {
      try {
        parseManifest(json);
      } catch (error) {
        expect(error).to.be.instanceOf(InputError);
        return (error as InputError).details.problems as string[];
      }
      return expect.fail("expected an InputError");
    };

    it("resolves each output's scale and tolerance, the single number for the rest", () => {
      const m = parseManifest(base);
      expect(tolerancesOf(m)).to.deep.equal({
        probs: { mode: "topk", abs: 2, rel: 0.001, k: 2 },
        logits: { mode: "elementwise", abs: 3, rel: 0 },
      });
      expect(m.outputs.map((o) => scaleOf(m, o))).to.deep.equal([1_000_000_000, 1000]);
    });
    it("quantises a small probability at its output's scale, not to zero", () => {
      const m = parseManifest(base);
      const probs = quantise("probs", [0.0000012], [1, 1], scaleOf(m, m.outputs[0]!));
      expect(probs.values[0]).to.equal(1200n);
      expect(quantise("p", [0.0000012], [1, 1], m.outputScale).values[0]).to.equal(0n);
      const json = [
        { name: "probs", scale: 1_000_000_000, dims: [1, 4], values: ["1", "2", "3", "4"] },
        { name: "logits", scale: 1000, dims: [1, 4], values: ["1", "2", "3", "4"] },
      ];
      expect(outputsFromJson(m, json).map((t) => t.scale)).to.deep.equal([1_000_000_000, 1000]);
      expect(() => outputsFromJson(m, [{ ...json[0], scale: 1000 }, json[1]])).to.throw(
        InferenceInputError,
        '"probs" scale 1000, expected 1000000000',
      );
    });
    for (const [what, json, field] of [
      [
        "topk without k",
        withOutput({ tolerance: { mode: "topk", abs: 0, rel: 0 } }),
        "outputs.0.tolerance.k",
      ],
      [
        "k above the classes",
        withOutput({ tolerance: { mode: "topk", abs: 0, rel: 0, k: 5 } }),
        "outputs.0.tolerance.k",
      ],
      [
        "k outside topk",
        withOutput({ tolerance: { mode: "argmax", abs: 0, rel: 0, k: 1 } }),
        "outputs.0.tolerance.k",
      ],
      [
        "fraction without maxFraction",
        withOutput({ tolerance: { mode: "fraction", abs: 0, rel: 0 } }),
        "outputs.0.tolerance.maxFraction",
      ],
      [
        "maxFraction above 1",
        withOutput({ tolerance: { mode: "fraction", abs: 0, rel: 0, maxFraction: 1.5 } }),
        "outputs.0.tolerance.maxFraction",
      ],
      [
        "maxFraction outside fraction",
        withOutput({ tolerance: { mode: "elementwise", abs: 0, rel: 0, maxFraction: 0.1 } }),
        "outputs.0.tolerance.maxFraction",
      ],
      [
        "a negative rel",
        withOutput({ tolerance: { mode: "elementwise", abs: 0, rel: -0.1 } }),
        "outputs.0.tolerance.rel",
      ],
      [
        "a fractional abs",
        withOutput({ tolerance: { mode: "elementwise", abs: 0.5, rel: 0 } }),
        "outputs.0.tolerance.abs",
      ],
      [
        "an unknown mode",
        withOutput({ tolerance: { mode: "cosine", abs: 0, rel: 0 } }),
        "outputs.0.tolerance.mode",
      ],
      [
        "a tolerance without rel",
        withOutput({ tolerance: { mode: "argmax", abs: 0 } }),
        "outputs.0.tolerance.rel",
      ],
      ["a zero scale", withOutput({ scale: 0 }), "outputs.0.scale"],
      [
        "argmax over a symbolic class axis",
        withOutput({ shape: ["batch", "n"], tolerance: { mode: "argmax", abs: 0, rel: 0 } }),
        "outputs.0.shape",
      ],
      [
        "no tolerance for an output",
        withOutput({}, { tolerance: undefined }),
        "outputs.1.tolerance",
      ],
    ] as const) {
      it(`refuses ${what} with an InputError naming ${field}`, () => {
        const found = problems(json);
        expect(
          found.some((p) => p.startsWith(`${field}:`)),
          found.join("; "),
        ).to.be.true;
      });
    }
    it("still reads a manifest with only the single tolerance", () => {
      expect(tolerancesOf(manifest)).to.deep.equal({
        y: { mode: "elementwise", abs: 2, rel: 0 },
      });
    });
  });

  describe("outputsFromJson", () => {
    const t = quantise("y", [0.5, 0.25, 0.125], [1, 3], 1000);

    it("round-trips outputsToJson", () => {
      const back = outputsFromJson(manifest, outputsToJson([t]));
      expect(outputHash(back)).to.equal(outputHash([t]));
    });
    it("rejects a wrong scale", () =>
      expectInputError(
        () => outputsFromJson(manifest, [{ ...outputsToJson([t])[0], scale: 10 }]),
        "scale 10, expected 1000",
      ));
    it("rejects a value count mismatch", () =>
      expectInputError(
        () => outputsFromJson(manifest, [{ ...outputsToJson([t])[0], values: ["1"] }]),
        "has 1 values, expected 3",
      ));
    it("rejects non-decimal values", () =>
      expectInputError(
        () => outputsFromJson(manifest, [{ ...outputsToJson([t])[0], values: ["1", "x", "2"] }]),
        "value 1 is not a decimal int64",
      ));
    it("rejects dims that do not fit the shape", () =>
      expectInputError(
        () => outputsFromJson(manifest, [{ ...outputsToJson([t])[0], dims: [1, 4] }]),
        "do not fit shape",
      ));
    it("rejects a missing tensor and a non-list", () => {
      expectInputError(
        () => outputsFromJson(manifest, [{ ...outputsToJson([t])[0], name: "z" }]),
        'missing tensor "y"',
      );
      expectInputError(() => outputsFromJson(manifest, {}), "must be a list");
    });
  });
});
