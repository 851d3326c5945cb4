import { expect } from "chai";
import { keccak256 } from "ethers";

import {
  InferenceInputError,
  InferenceOutputError,
  compareOutputs,
  encodeInputs,
  encodeOutputs,
  inputHash,
  outputHash,
  outputsFromJson,
  outputsToJson,
  parseManifest,
  quantise,
  validateInputs,
  type ModelManifest,
  type QuantisedTensor,
} from "../../../offchain/inference/index.js";

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
    it("rejects a symbolic dimension above maxBatch", () =>
      expectInputError(
        () =>
          validateInputs(manifest, { ...good, x: { dims: [5, 2], data: new Array(10).fill(0) } }),
        "above maxBatch 4",
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
      expect(compareOutputs([reference], [reference], 2)).to.deep.equal({
        agree: true,
        maxDiff: 0n,
        where: "",
      });
    });
    it("agrees when a GPU result is just inside the tolerance (+2, -2)", () => {
      expect(compareOutputs([reference], [shifted(2n)], 2)).to.deep.equal({
        agree: true,
        maxDiff: 2n,
        where: "y[1]",
      });
      expect(compareOutputs([reference], [shifted(-2n, 2)], 2).agree).to.be.true;
    });
    it("disagrees when a GPU result is just outside the tolerance (+3)", () => {
      expect(compareOutputs([reference], [shifted(3n)], 2)).to.deep.equal({
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
