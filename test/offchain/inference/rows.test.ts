/**
 * InferenceEngine#runRow: single rows asked in the same event-loop turn run as one ONNX Runtime
 * call, and each caller still gets its own row's result: its own input hash, a [1, ...] output
 * within the model's tolerance of the same row run alone, and its own errors.
 */
import { expect } from "chai";
import { pino } from "pino";

import {
  InferenceEngine,
  UnknownModelError,
  compareOutputs,
  tolerancesOf,
  type LoadedModel,
} from "../../../offchain/inference/index.js";
import { MODELS_DIR } from "../../../scripts/models/generate.js";
import { sampleInputs } from "./reference.js";

describe("InferenceEngine#runRow (rows of one turn in one run)", () => {
  let engine: InferenceEngine;
  let risk: LoadedModel;
  let cnn: LoadedModel;
  before(async () => {
    engine = new InferenceEngine({
      config: { provider: "cpu" },
      logger: pino({ level: "silent" }),
    });
    [risk, cnn] = (await engine.loadModelsDir(MODELS_DIR)) as [LoadedModel, LoadedModel];
  });
  after(() => engine.close());

  const riskRow = (seed: number) => ({ features: { dims: [1, 16], data: sampleInputs(seed, 16) } });
  const cnnRow = (seed: number) => ({ signal: { dims: [1, 1, 32], data: sampleInputs(seed, 32) } });

  it("answers each of 420 concurrent rows (two models, risk-mlp over its maxBatch of 256) as if run alone", async () => {
    const asks = Array.from({ length: 420 }, (_, i) =>
      i % 3 === 0 ? { model: cnn, inputs: cnnRow(i) } : { model: risk, inputs: riskRow(i) },
    );
    const together = await Promise.all(asks.map((a) => engine.runRow(a.model.modelId, a.inputs)));
    let identical = 0;
    for (const [i, a] of asks.entries()) {
      const alone = await engine.run(a.model.modelId, a.inputs);
      const row = together[i]!;
      expect(row.modelId).to.equal(a.model.modelId);
      expect(row.inputHash).to.equal(alone.inputHash);
      expect(row.execConfigHash).to.equal(alone.execConfigHash);
      expect(row.outputs.map((o) => o.dims)).to.deep.equal(alone.outputs.map((o) => o.dims));
      const cmp = compareOutputs(row.outputs, alone.outputs, tolerancesOf(a.model.manifest));
      expect(cmp.agree, `row ${i}: ${cmp.maxDiff} (${cmp.where})`).to.equal(true);
      if (row.outputHash === alone.outputHash) identical++;
    }
    // Summation order rarely matters after quantisation; most rows are bit-identical.
    expect(identical).to.be.greaterThan(asks.length / 2);
  });

  it("makes one ONNX Runtime call per maxBatch rows of a turn", async () => {
    const session = risk.session as unknown as { run: (...args: unknown[]) => Promise<unknown> };
    const original = session.run.bind(session);
    let calls = 0;
    session.run = (...args) => {
      calls++;
      return original(...args);
    };
    try {
      await Promise.all(
        Array.from({ length: 280 }, (_, i) => engine.runRow(risk.modelId, riskRow(i))),
      );
      expect(calls).to.equal(2); // 256 + 24
      calls = 0;
      await engine.runRow(risk.modelId, riskRow(1));
      expect(calls).to.equal(1);
    } finally {
      session.run = original;
    }
  });

  it("runs alone what is not one row, and rejects only the bad request of a turn", async () => {
    const two = {
      features: { dims: [2, 16], data: [...sampleInputs(1, 16), ...sampleInputs(2, 16)] },
    };
    const [multi, good, unknown, bad] = await Promise.allSettled([
      engine.runRow(risk.modelId, two),
      engine.runRow(risk.modelId, riskRow(3)),
      engine.runRow(`0x${"11".repeat(32)}`, riskRow(4)),
      engine.runRow(risk.modelId, { features: { dims: [1, 15], data: sampleInputs(5, 15) } }),
    ]);
    expect(multi.status).to.equal("fulfilled");
    expect(
      (multi as PromiseFulfilledResult<{ outputs: { dims: number[] }[] }>).value.outputs[0]!.dims,
    ).to.deep.equal([2, 1]);
    expect(good.status).to.equal("fulfilled");
    expect(unknown.status).to.equal("rejected");
    expect((unknown as PromiseRejectedResult).reason).to.be.instanceOf(UnknownModelError);
    expect(bad.status).to.equal("rejected");
  });
});
