import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { expect } from "chai";
import { keccak256 } from "ethers";
import { pino } from "pino";

import { InferenceEngine, type LoadedModel } from "../../../offchain/inference/index.js";
import { MODELS_DIR, diffCommitted, expectedFiles } from "../../../scripts/models/generate.js";
import { riskMlpReference, sampleInputs, seqCnnReference } from "./reference.js";

const silent = pino({ level: "silent" });

describe("shipped models", () => {
  let engine: InferenceEngine;
  let risk: LoadedModel;
  let cnn: LoadedModel;

  before(async () => {
    engine = new InferenceEngine({ config: { provider: "cpu" }, logger: silent });
    [risk, cnn] = (await engine.loadModelsDir(MODELS_DIR)) as [LoadedModel, LoadedModel];
  });
  after(() => engine.close());

  describe("the generator", () => {
    it("reproduces every committed file byte for byte", () => {
      expect(diffCommitted()).to.deep.equal([]);
      expect([...expectedFiles().keys()].sort()).to.deep.equal([
        "risk-mlp/manifest.json",
        "risk-mlp/model.onnx",
        "seq-cnn/manifest.json",
        "seq-cnn/model.onnx",
      ]);
    });

    it("reports a committed file that differs by one byte, and missing files", () => {
      const tmp = mkdtempSync(join(tmpdir(), "opg-models-"));
      try {
        cpSync(MODELS_DIR, tmp, { recursive: true });
        const path = join(tmp, "seq-cnn", "model.onnx");
        const bytes = readFileSync(path);
        bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
        writeFileSync(path, bytes);
        rmSync(join(tmp, "risk-mlp", "manifest.json"));
        expect(diffCommitted(tmp)).to.deep.equal(["risk-mlp/manifest.json", "seq-cnn/model.onnx"]);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });

    it("writes manifests whose modelId is the keccak-256 of the model file", () => {
      for (const name of ["risk-mlp", "seq-cnn"]) {
        const manifest = JSON.parse(
          readFileSync(join(MODELS_DIR, name, "manifest.json"), "utf8"),
        ) as { modelId: string };
        expect(manifest.modelId).to.equal(
          keccak256(readFileSync(join(MODELS_DIR, name, "model.onnx"))),
        );
      }
    });
  });

  describe("risk-mlp (tabular MLP)", () => {
    it("loads under its modelId with its manifest", () => {
      expect(risk.manifest.name).to.equal("risk-mlp");
      expect(engine.get(risk.modelId)).to.equal(risk);
    });

    it("matches the TypeScript reference on a batch of 8 rows", async () => {
      const data = sampleInputs(1, 8 * 16);
      const result = await engine.run(risk.modelId, { features: { dims: [8, 16], data } });
      const out = result.raw.risk as Float32Array;
      expect(out).to.have.length(8);
      for (let r = 0; r < 8; r++) {
        const [expected] = riskMlpReference(data.slice(r * 16, r * 16 + 16));
        expectNear(out[r]!, expected as number, 1e-5, `row ${r}`);
        const q = BigInt(Math.round((expected as number) * risk.manifest.outputScale));
        const diff = (result.outputs[0]?.values[r] as bigint) - q;
        expect(diff <= 2n && diff >= -2n, `row ${r} quantised diff ${diff}`).to.be.true;
      }
    });

    it("gives a batched row the same canonical output as the row alone", async () => {
      const data = sampleInputs(2, 4 * 16);
      const batched = await engine.run(risk.modelId, { features: { dims: [4, 16], data } });
      const single = await engine.run(risk.modelId, {
        features: { dims: [1, 16], data: data.slice(16, 32) },
      });
      expect(single.outputs[0]?.values[0]).to.equal(batched.outputs[0]?.values[1]);
    });
  });

  describe("seq-cnn (convolution block)", () => {
    it("matches the TypeScript reference on a batch of 4 signals", async () => {
      const data = sampleInputs(3, 4 * 32);
      const result = await engine.run(cnn.modelId, { signal: { dims: [4, 1, 32], data } });
      const out = result.raw.probs as Float32Array;
      expect(out).to.have.length(16);
      for (let r = 0; r < 4; r++) {
        const expected = seqCnnReference(data.slice(r * 32, r * 32 + 32));
        expected.forEach((p, k) => expectNear(out[r * 4 + k]!, p, 1e-5, `signal ${r} class ${k}`));
        expectNear(
          expected.reduce((a, b) => a + b, 0),
          1,
          1e-12,
          `signal ${r} sum`,
        );
      }
    });

    it("returns hashes over the canonical encodings and the engine's exec config", async () => {
      const data = sampleInputs(4, 32);
      const a = await engine.run(cnn.modelId, { signal: { dims: [1, 1, 32], data } });
      const b = await engine.run(cnn.modelId, { signal: { dims: [1, 1, 32], data } });
      expect(a.inputHash).to.equal(b.inputHash);
      expect(a.outputHash).to.equal(b.outputHash);
      expect(a.execConfigHash).to.equal(engine.execConfigHash);
      const other = await engine.run(cnn.modelId, {
        signal: { dims: [1, 1, 32], data: sampleInputs(5, 32) },
      });
      expect(other.inputHash).to.not.equal(a.inputHash);
      expect(other.outputHash).to.not.equal(a.outputHash);
    });
  });
});

/**
 * |actual - expected| <= tolerance for plain floats. (chai's closeTo is overridden by the Hardhat
 * chai matchers for bigint-like values and rejects non-integer numbers when the plugin is loaded.)
 */
function expectNear(actual: number, expected: number, tolerance: number, what: string): void {
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).to.be.at.most(tolerance);
}
