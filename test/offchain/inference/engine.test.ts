import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { expect } from "chai";
import { keccak256, toUtf8Bytes } from "ethers";
import * as ort from "onnxruntime-node";
import { pino } from "pino";

import {
  InferenceEngine,
  ModelLoadError,
  NoModelsLoadedError,
  ProviderUnavailableError,
  UnknownModelError,
  canonicalJson,
  chooseProvider,
  cudaUnavailable,
  execConfig,
  execConfigHash,
  parseEngineConfig,
  parseManifest,
} from "../../../offchain/inference/index.js";
import { InputError } from "../../../offchain/common/errors.js";
import { MODELS_DIR } from "../../../scripts/models/generate.js";
import { mixedModelsDir, type MixedModelsDir } from "./models-dir.js";
import { sampleInputs } from "./reference.js";

const silent = pino({ level: "silent" });
const RISK_DIR = join(MODELS_DIR, "risk-mlp");

async function rejects<E extends Error>(
  p: Promise<unknown>,
  type: new (...args: never[]) => E,
  fragment: string,
): Promise<E> {
  try {
    await p;
  } catch (error) {
    expect(error).to.be.instanceOf(type);
    expect(
      (error as Error).message + JSON.stringify((error as { details?: unknown }).details ?? {}),
    ).to.contain(fragment);
    return error as E;
  }
  return expect.fail(`expected ${type.name} containing "${fragment}"`);
}

describe("InferenceEngine", () => {
  let tmp: string;
  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), "opg-engine-"));
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  /** A copy of risk-mlp whose manifest has been edited by `edit`. */
  function editedModel(edit: (m: Record<string, unknown>) => void): string {
    const dir = join(tmp, "risk-mlp");
    cpSync(RISK_DIR, dir, { recursive: true });
    const m = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as Record<
      string,
      unknown
    >;
    edit(m);
    writeFileSync(join(dir, "manifest.json"), JSON.stringify(m));
    return dir;
  }

  describe("loadModel", () => {
    it("creates one session per modelId and reuses it", async () => {
      const engine = new InferenceEngine({ config: { provider: "cpu" }, logger: silent });
      const a = await engine.loadModel(RISK_DIR);
      const b = await engine.loadModel(RISK_DIR);
      expect(b).to.equal(a);
      expect(b.session).to.equal(a.session);
      expect(engine.list()).to.have.length(1);
      expect(engine.has(a.modelId.toUpperCase().replace("0X", "0x"))).to.be.true;
      await engine.close();
    });

    it("accepts the expected modelId and refuses another", async () => {
      const engine = new InferenceEngine({ config: { provider: "cpu" }, logger: silent });
      const manifest = parseManifest(
        JSON.parse(readFileSync(join(RISK_DIR, "manifest.json"), "utf8")),
      );
      await engine.loadModel(RISK_DIR, manifest.modelId);
      await rejects(
        engine.loadModel(RISK_DIR, `0x${"00".repeat(32)}`),
        ModelLoadError,
        "does not hash to its modelId",
      );
      await engine.close();
    });

    it("refuses a model file whose keccak-256 differs from the manifest's modelId", async () => {
      const dir = editedModel(() => undefined);
      const bytes = readFileSync(join(dir, "model.onnx"));
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0x01;
      writeFileSync(join(dir, "model.onnx"), bytes);
      const err = await rejects(
        new InferenceEngine({ logger: silent }).loadModel(dir),
        ModelLoadError,
        "does not hash to its modelId",
      );
      expect(err.details.keccak256).to.equal(keccak256(bytes));
    });

    it("refuses a missing manifest, a missing model file and a folder without models", async () => {
      const engine = new InferenceEngine({ logger: silent });
      await rejects(
        engine.loadModel(join(tmp, "nope")),
        ModelLoadError,
        "cannot read model manifest",
      );
      const dir = editedModel((m) => (m.modelFile = "other.onnx"));
      await rejects(engine.loadModel(dir), ModelLoadError, "cannot read model file");
      const empty = mkdtempSync(join(tmp, "empty-"));
      await rejects(engine.loadModelsDir(empty), ModelLoadError, "no models");
      await rejects(
        engine.loadModelsDir(join(tmp, "missing")),
        ModelLoadError,
        "cannot read models folder",
      );
    });

    it("refuses a manifest naming tensors the model does not have", async () => {
      const dir = editedModel((m) => ((m.inputs as Array<{ name: string }>)[0]!.name = "amount"));
      await rejects(
        new InferenceEngine({ logger: silent }).loadModel(dir),
        ModelLoadError,
        '"missing":["amount"]',
      );
    });
  });

  describe("loadModels", () => {
    let mixed: MixedModelsDir;
    beforeEach(() => {
      mixed = mixedModelsDir();
    });
    afterEach(() => mixed.remove());

    it("loads the good and the symlinked models and reports the broken one by name", async () => {
      const lines: Array<Record<string, unknown>> = [];
      const logger = pino(
        { level: "info" },
        { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
      );
      const engine = new InferenceEngine({ config: { provider: "cpu" }, logger });
      const { models, failures } = await engine.loadModels(mixed.root);
      expect(models.map((m) => m.manifest.name)).to.deep.equal(["risk-mlp", "seq-cnn"]);
      expect(models.map((m) => m.dir)).to.deep.equal([mixed.good, mixed.linked]);
      expect(failures).to.have.length(1);
      expect(failures[0]).to.deep.include({ dir: mixed.broken, error: "ModelLoadError" });
      expect(failures[0]!.message).to.contain("invalid model manifest");
      expect(JSON.stringify(failures[0]!.details)).to.contain("outputScale");
      expect(engine.failures).to.deep.equal(failures);
      const logged = lines.find((l) => l.at === "InferenceEngine#loadModels");
      expect(logged).to.deep.include({ dir: mixed.broken, error: "ModelLoadError" });
      expect(logged!.msg).to.equal("model folder broken not loaded");
      // The models that loaded run as usual.
      const run = await engine.run(models[1]!.modelId, {
        signal: { dims: [1, 1, 32], data: sampleInputs(3, 32) },
      });
      expect(run.outputs[0]!.dims).to.deep.equal([1, 4]);
      await engine.close();
    });

    it("reports a dangling symlink by its name instead of skipping it", async () => {
      symlinkSync(join(mixed.root, "gone"), join(mixed.root, "dangling"), "dir");
      const engine = new InferenceEngine({ config: { provider: "cpu" }, logger: silent });
      const { failures } = await engine.loadModels(mixed.root);
      expect(failures.map((f) => f.dir)).to.deep.equal([
        mixed.broken,
        join(mixed.root, "dangling"),
      ]);
      expect(failures[1]!.message).to.contain("cannot be followed");
      await engine.close();
    });

    it("refuses with NoModelsLoadedError, naming every failure, when no model loads", async () => {
      rmSync(mixed.good, { recursive: true });
      rmSync(mixed.linked);
      const engine = new InferenceEngine({ config: { provider: "cpu" }, logger: silent });
      const err = await rejects(
        engine.loadModels(mixed.root),
        NoModelsLoadedError,
        "no models loaded from",
      );
      expect(err).to.be.instanceOf(ModelLoadError);
      expect(err.message).to.contain(mixed.broken);
      expect((err.details.failures as Array<{ dir: string }>).map((f) => f.dir)).to.deep.equal([
        mixed.broken,
      ]);
    });

    it("refuses a second folder holding the same model file under another manifest", async () => {
      const twin = join(mixed.root, "risk-twin");
      cpSync(mixed.good, twin, { recursive: true });
      const m = JSON.parse(readFileSync(join(twin, "manifest.json"), "utf8")) as Record<
        string,
        unknown
      >;
      m.tolerance = 1000;
      writeFileSync(join(twin, "manifest.json"), JSON.stringify(m));
      const engine = new InferenceEngine({ config: { provider: "cpu" }, logger: silent });
      const { models, failures } = await engine.loadModels(mixed.root);
      expect(models.map((x) => x.dir)).to.deep.equal([mixed.good, mixed.linked]);
      expect(failures.map((f) => f.dir)).to.deep.equal([mixed.broken, twin]);
      expect(failures[1]!.message).to.contain("with a different manifest");
      await engine.close();
    });
  });

  describe("manifest validation", () => {
    const base = JSON.parse(readFileSync(join(RISK_DIR, "manifest.json"), "utf8")) as Record<
      string,
      unknown
    >;
    const cases: Array<[string, (m: Record<string, unknown>) => void, string]> = [
      ["a wrong schema id", (m) => (m.schema = "v2"), "schema"],
      [
        "a modelId that is not 32 bytes of hex",
        (m) => (m.modelId = "0x1234"),
        "modelId: 0x + 64 lowercase hex",
      ],
      ["a model file outside the folder", (m) => (m.modelFile = "../x.onnx"), "modelFile"],
      ["no inputs", (m) => (m.inputs = []), "inputs"],
      [
        "an unsupported input dtype",
        (m) => ((m.inputs as Array<Record<string, unknown>>)[0]!.dtype = "bfloat16"),
        "inputs.0.dtype",
      ],
      [
        "an integer output with a scale (integer outputs are exact)",
        (m) =>
          Object.assign((m.outputs as Array<Record<string, unknown>>)[0]!, {
            dtype: "int64",
            scale: 10,
          }),
        "outputs.0",
      ],
      [
        "a zero dimension",
        (m) => ((m.inputs as Array<Record<string, unknown>>)[0]!.shape = [0, 16]),
        "inputs.0.shape.0",
      ],
      ["a fractional output scale", (m) => (m.outputScale = 0.5), "outputScale"],
      ["a negative tolerance", (m) => (m.tolerance = -1), "tolerance"],
      ["an unknown field", (m) => (m.extra = 1), "extra"],
      [
        "a tensor name used twice",
        (m) => ((m.outputs as Array<Record<string, unknown>>)[0]!.name = "features"),
        "is used twice",
      ],
    ];
    for (const [what, edit, fragment] of cases) {
      it(`rejects ${what}`, () => {
        const m = structuredClone(base);
        edit(m);
        try {
          parseManifest(m, "test");
          expect.fail("expected ModelLoadError");
        } catch (error) {
          expect(error).to.be.instanceOf(ModelLoadError);
          expect(JSON.stringify((error as ModelLoadError).details.problems)).to.contain(fragment);
        }
      });
    }
  });

  describe("run", () => {
    it("answers UnknownModelError for a modelId that is not loaded", async () => {
      const engine = new InferenceEngine({ logger: silent });
      await rejects(engine.run(`0x${"11".repeat(32)}`, {}), UnknownModelError, "is not loaded");
    });

    it("never has more runs in flight than maxConcurrentRuns", async () => {
      const engine = new InferenceEngine({
        config: { provider: "cpu", maxConcurrentRuns: 2 },
        logger: silent,
      });
      const model = await engine.loadModel(RISK_DIR);
      const realRun = model.session.run.bind(model.session);
      let active = 0;
      let peak = 0;
      (model.session as { run: unknown }).run = async (feeds: ort.InferenceSession.FeedsType) => {
        active++;
        peak = Math.max(peak, active);
        await new Promise((r) => setTimeout(r, 5));
        try {
          return await realRun(feeds);
        } finally {
          active--;
        }
      };
      const runs = Array.from({ length: 10 }, (_, i) =>
        engine.run(model.modelId, { features: { dims: [1, 16], data: sampleInputs(i, 16) } }),
      );
      const results = await Promise.all(runs);
      expect(results).to.have.length(10);
      expect(peak).to.equal(2);
      expect(engine.inFlight).to.equal(0);
      await engine.close();
    });
  });

  describe("execution provider", () => {
    const cpuOnly = [
      { name: "cpu", bundled: true },
      { name: "cuda", bundled: false },
    ];
    const withCuda = [
      { name: "cpu", bundled: true },
      { name: "cuda", bundled: true },
    ];

    it("reports cuda as not bundled on this machine", () => {
      expect(ort.listSupportedBackends().find((b) => b.name === "cuda")?.bundled).to.equal(false);
    });

    it("auto picks cuda when its provider is present, else cpu", () => {
      expect(chooseProvider(parseEngineConfig({ provider: "auto" }), withCuda).provider).to.equal(
        "cuda",
      );
      expect(chooseProvider(parseEngineConfig({ provider: "auto" }), cpuOnly)).to.deep.include({
        provider: "cpu",
        fellBack: false,
      });
    });

    it("fails clearly when cuda is asked for and cannot load (this machine)", () => {
      try {
        new InferenceEngine({ config: { provider: "cuda" }, logger: silent });
        expect.fail("expected ProviderUnavailableError");
      } catch (error) {
        expect(error).to.be.instanceOf(ProviderUnavailableError);
        expect((error as ProviderUnavailableError).message).to.equal(
          "execution provider cuda cannot be loaded",
        );
        expect((error as ProviderUnavailableError).details.why).to.contain("not bundled");
      }
    });

    it("falls back to cpu, logged, when the config allows it", async () => {
      const lines: string[] = [];
      const logger = pino({ level: "info" }, { write: (l: string) => lines.push(l) });
      const engine = new InferenceEngine({
        config: { provider: "cuda", allowCpuFallback: true },
        logger,
      });
      expect(engine.provider).to.equal("cpu");
      expect(engine.execConfig.provider).to.equal("cpu");
      expect(lines.join("")).to.contain("fell back to cpu");
      const model = await engine.loadModel(RISK_DIR);
      const result = await engine.run(model.modelId, {
        features: { dims: [1, 16], data: sampleInputs(9, 16) },
      });
      expect(result.execConfigHash).to.equal(engine.execConfigHash);
      await engine.close();
    });

    it("falls back to cpu when auto chose cuda and its session cannot load, and fails when cuda was asked for", () => {
      const auto = cudaUnavailable(
        parseEngineConfig({ provider: "auto" }),
        "libcudart.so.12 not found",
      );
      expect(auto).to.deep.equal({
        provider: "cpu",
        reason: "cuda unavailable (libcudart.so.12 not found); fell back to cpu",
        fellBack: true,
      });
      expect(() =>
        cudaUnavailable(parseEngineConfig({ provider: "cuda" }), "libcudart.so.12 not found"),
      ).to.throw(ProviderUnavailableError, "execution provider cuda cannot be loaded");
    });

    it("tries to create a real cuda session when the provider claims to be present, and says why it failed", async () => {
      const engine = new InferenceEngine({
        config: { provider: "cuda" },
        logger: silent,
        backends: withCuda,
      });
      expect(engine.provider).to.equal("cuda");
      const err = await rejects(
        engine.loadModel(RISK_DIR),
        ProviderUnavailableError,
        "execution provider cuda cannot be loaded",
      );
      expect(String(err.details.why)).to.match(/cuda/i);
      expect(engine.list()).to.have.length(0);
    });

    it("falls back to cpu after a failed cuda session when allowed, and the exec config says cpu", async () => {
      const engine = new InferenceEngine({
        config: { provider: "cuda", allowCpuFallback: true },
        logger: silent,
        backends: withCuda,
      });
      const model = await engine.loadModel(RISK_DIR);
      expect(engine.provider).to.equal("cpu");
      const result = await engine.run(model.modelId, {
        features: { dims: [1, 16], data: sampleInputs(10, 16) },
      });
      expect(result.execConfigHash).to.equal(execConfigHash(execConfig(engine.config, "cpu")));
      await engine.close();
    });

    it("rejects an invalid engine config", () => {
      expect(() => parseEngineConfig({ provider: "tpu" })).to.throw(
        InputError,
        "invalid inference engine config",
      );
      expect(() => parseEngineConfig({ maxConcurrentRuns: 0 })).to.throw(InputError);
    });

    it("hashes provider, ORT version and options into execConfigHash", () => {
      const config = parseEngineConfig({ provider: "cpu" });
      const cpu = execConfig(config, "cpu");
      expect(cpu).to.deep.equal({
        runtime: "onnxruntime-node",
        ortVersion: "1.30.0",
        provider: "cpu",
        options: {
          executionMode: "sequential",
          graphOptimizationLevel: "all",
          interOpNumThreads: 1,
          intraOpNumThreads: 1,
        },
      });
      expect(canonicalJson(cpu)).to.equal(
        '{"options":{"executionMode":"sequential","graphOptimizationLevel":"all","interOpNumThreads":1,"intraOpNumThreads":1},"ortVersion":"1.30.0","provider":"cpu","runtime":"onnxruntime-node"}',
      );
      expect(execConfigHash(cpu)).to.equal(keccak256(toUtf8Bytes(canonicalJson(cpu))));
      expect(execConfigHash(execConfig(config, "cuda"))).to.not.equal(execConfigHash(cpu));
      expect(
        execConfigHash(execConfig(parseEngineConfig({ intraOpNumThreads: 2 }), "cpu")),
      ).to.not.equal(execConfigHash(cpu));
      expect(execConfigHash({ ...cpu, ortVersion: "1.29.0" })).to.not.equal(execConfigHash(cpu));
    });

    it("adds per-output scale and tolerance to a model's execConfigHash, and nothing without them", async () => {
      const engine = new InferenceEngine({ config: { provider: "cpu" }, logger: silent });
      const plain = await engine.loadModel(RISK_DIR);
      const input = { features: { dims: [1, 16], data: sampleInputs(7, 16) } };
      // A manifest with only the single tolerance: the engine's hash, as it always was.
      expect(engine.execConfigHashFor(plain)).to.equal(engine.execConfigHash);
      expect((await engine.run(plain.modelId, input)).execConfigHash).to.equal(
        execConfigHash(engine.execConfig),
      );
      await engine.close();

      const tolerance = { mode: "elementwise", abs: 2, rel: 0.001 } as const;
      const dir = editedModel((m) => {
        (m.outputs as Array<Record<string, unknown>>)[0]!.tolerance = tolerance;
        (m.outputs as Array<Record<string, unknown>>)[0]!.scale = 1_000_000_000;
      });
      const judged = new InferenceEngine({ config: { provider: "cpu" }, logger: silent });
      const model = await judged.loadModel(dir);
      const expected = execConfigHash({
        ...judged.execConfig,
        outputs: { risk: { scale: 1_000_000_000, tolerance } },
      });
      expect(judged.execConfigHashFor(model)).to.equal(expected);
      expect(expected).to.not.equal(judged.execConfigHash);
      const result = await judged.run(model.modelId, input);
      expect(result.execConfigHash).to.equal(expected);
      expect(result.outputs[0]!.scale).to.equal(1_000_000_000);
      await judged.close();
    });
  });
});
