/**
 * InferenceEngine: ONNX Runtime sessions keyed by modelId, created once and reused, with a bound
 * on concurrent runs. Models are loaded from models/<name>/ and must hash to their manifest's
 * modelId. Every run returns canonical (quantised) outputs with inputHash, outputHash and the
 * engine's execConfigHash.
 */
import { readFile, readdir, stat } from "node:fs/promises";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";

import { keccak256 } from "ethers";
import * as ort from "onnxruntime-node";
import { pino, type Logger } from "pino";

import { BaseError } from "../common/errors.js";
import {
  ModelLoadError,
  NoModelsLoadedError,
  ProviderUnavailableError,
  UnknownModelError,
} from "./errors.js";
import {
  hasPerOutputJudging,
  parseManifest,
  scaleOf,
  boundOf,
  tolerancesOf,
  type ModelManifest,
} from "./manifest.js";
import {
  canonicalJson,
  cudaUnavailable,
  chooseProvider,
  execConfig,
  execConfigHash,
  parseEngineConfig,
  sessionOptions,
  type Backend,
  type EngineConfig,
  type EngineConfigInput,
  type ExecConfig,
  type ProviderName,
} from "./provider.js";
import {
  inputHash,
  outputHash,
  quantise,
  exactOutput,
  halfToFloat32,
  bindInputDims,
  checkOutputDims,
  validateInputs,
  type InputTensor,
  type QuantisedTensor,
  type TensorData,
  type TensorJson,
} from "./tensor.js";

export interface LoadedModel {
  modelId: string;
  manifest: ModelManifest;
  dir: string;
  session: ort.InferenceSession;
}

/** A model folder that could not be loaded: the folder, the error's name and its message. */
export interface ModelLoadFailure {
  /** The folder as found under the models root (a symlink keeps its own name). */
  dir: string;
  /** The error's class name, e.g. "ModelLoadError". */
  error: string;
  message: string;
  /** The error's details (problems with their JSON paths, hashes), when it has any. */
  details?: Record<string, unknown>;
}

/** What loading a models folder gave: the models that loaded and the folders that did not. */
export interface ModelsLoad {
  models: LoadedModel[];
  failures: ModelLoadFailure[];
}

export interface InferenceResult {
  modelId: string;
  inputs: InputTensor[];
  outputs: QuantisedTensor[];
  /** The float outputs as ONNX Runtime returned them, before quantisation. */
  raw: Record<string, Float32Array>;
  inputHash: string;
  outputHash: string;
  execConfigHash: string;
}

interface PendingRow {
  tensors: InputTensor[];
  resolve: (result: InferenceResult) => void;
  reject: (error: unknown) => void;
}

/** A counting semaphore: at most `limit` holders at once, the rest queue in order. */
class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly limit: number) {}

  async use<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.active--;
    }
  }

  get inFlight(): number {
    return this.active;
  }
}

export interface EngineOptions {
  config?: EngineConfigInput;
  logger?: Logger;
  /** What the runtime bundles; default `ort.listSupportedBackends()` (tests override it). */
  backends?: Backend[];
}

export class InferenceEngine {
  readonly config: EngineConfig;
  private providerName: ProviderName;
  private readonly models = new Map<string, LoadedModel>();
  private readonly loadFailures: ModelLoadFailure[] = [];
  private readonly limiter: Semaphore;
  private readonly log: Logger;
  private hashed: { provider: ProviderName; hash: string } | null = null;
  private readonly judgedHashes = new Map<string, string>();
  private readonly rows = new Map<string, { model: LoadedModel; rows: PendingRow[] }>();
  private rowsScheduled = false;

  constructor(options: EngineOptions = {}) {
    this.config = parseEngineConfig(options.config ?? {});
    this.log = options.logger ?? pino({ name: "inference" }, pino.destination(2));
    const decision = chooseProvider(this.config, options.backends);
    this.providerName = decision.provider;
    this.limiter = new Semaphore(this.config.maxConcurrentRuns);
    const entry = {
      at: "InferenceEngine#constructor",
      provider: decision.provider,
      reason: decision.reason,
    };
    if (decision.fellBack) this.log.warn(entry, "execution provider fell back to cpu");
    else this.log.info(entry, "execution provider chosen");
  }

  get provider(): ProviderName {
    return this.providerName;
  }

  get execConfig(): ExecConfig {
    return execConfig(this.config, this.providerName);
  }

  /** Hashed once per provider (it goes into every receipt; hashing costs ~20 µs in JavaScript). */
  get execConfigHash(): string {
    if (this.hashed?.provider !== this.providerName) {
      this.hashed = { provider: this.providerName, hash: execConfigHash(this.execConfig) };
    }
    return this.hashed.hash;
  }

  /**
   * The execConfigHash of `model`'s receipts: the engine's, and for a manifest with per-output
   * `scale` or `tolerance`, the exec config with `outputs: { <name>: { scale, tolerance } }` added
   * (every output, resolved), so a receipt commits to how its output is quantised and judged. A
   * manifest without those fields hashes exactly as before.
   */
  execConfigHashFor(model: Pick<LoadedModel, "manifest">): string {
    if (!hasPerOutputJudging(model.manifest)) return this.execConfigHash;
    const key = `${this.providerName}:${canonicalJson(model.manifest)}`;
    let hash = this.judgedHashes.get(key);
    if (hash === undefined) {
      const tolerances = tolerancesOf(model.manifest);
      const outputs: Record<string, unknown> = {};
      for (const spec of model.manifest.outputs) {
        outputs[spec.name] = {
          scale: scaleOf(model.manifest, spec),
          tolerance: tolerances[spec.name],
        };
      }
      hash = execConfigHash({ ...this.execConfig, outputs });
      this.judgedHashes.set(key, hash);
    }
    return hash;
  }

  /** Loads models/<name>/ (manifest.json + the ONNX file it names); returns the loaded model. */
  async loadModel(dir: string, expectedModelId?: string): Promise<LoadedModel> {
    const { manifest, bytes, modelPath } = await readModelFolder(dir);
    const modelId = manifest.modelId;
    if (expectedModelId !== undefined && modelId !== expectedModelId.toLowerCase()) {
      throw new ModelLoadError(`model file ${modelPath} does not hash to its modelId`, {
        details: { path: modelPath, keccak256: modelId, expectedModelId },
      });
    }
    const existing = this.models.get(modelId);
    if (existing !== undefined) {
      if (canonicalJson(existing.manifest) === canonicalJson(manifest)) return existing;
      // One modelId, one way of judging it: two manifests for the same file would let the
      // tolerance an enclave applies depend on which folder happened to load first.
      throw new ModelLoadError(
        `model ${manifest.name} (${modelId}) is already loaded from ${existing.dir} with a different manifest`,
        { details: { path: dir, modelId, loadedFrom: existing.dir } },
      );
    }
    const session = await this.createSession(bytes, manifest);
    const missing = [
      ...manifest.inputs.filter((i) => !session.inputNames.includes(i.name)).map((i) => i.name),
      ...manifest.outputs.filter((o) => !session.outputNames.includes(o.name)).map((o) => o.name),
    ];
    if (missing.length > 0) {
      await session.release();
      throw new ModelLoadError(`manifest names tensors the model does not have`, {
        details: {
          model: manifest.name,
          missing,
          modelInputs: session.inputNames,
          modelOutputs: session.outputNames,
        },
      });
    }
    const loaded: LoadedModel = { modelId, manifest, dir, session };
    this.models.set(modelId, loaded);
    this.log.info(
      {
        at: "InferenceEngine#loadModel",
        model: manifest.name,
        modelId,
        provider: this.providerName,
      },
      "model loaded",
    );
    return loaded;
  }

  /**
   * Loads every sub-folder of `root` that has a manifest.json, each on its own: a folder that
   * fails (bad manifest, wrong hash, unreadable) is logged by name and listed in `failures`, and
   * the rest still load. A symlinked folder is followed like any other (a dangling link is a
   * failure, by name). Throws NoModelsLoadedError only when no model loads at all, and
   * ModelLoadError when `root` itself cannot be read.
   */
  async loadModels(root: string): Promise<ModelsLoad> {
    let entries;
    try {
      entries = await readdir(root, { withFileTypes: true });
    } catch (cause) {
      throw new ModelLoadError(`cannot read models folder ${root}`, {
        details: { path: root },
        cause,
      });
    }
    const models: LoadedModel[] = [];
    const failures: ModelLoadFailure[] = [];
    for (const e of entries
      .filter((x) => x.isDirectory() || x.isSymbolicLink())
      .sort((a, b) => a.name.localeCompare(b.name))) {
      const dir = join(root, e.name);
      try {
        if (e.isSymbolicLink()) {
          // Followed, never skipped: a link to a folder loads like the folder; anything else is
          // reported under the link's name.
          const target = await stat(dir).catch((cause: unknown) => {
            throw new ModelLoadError(`symlinked model folder ${dir} cannot be followed`, {
              details: { path: dir },
              cause,
            });
          });
          if (!target.isDirectory()) continue;
        }
        const files = await readdir(dir);
        if (!files.includes("manifest.json")) continue;
        models.push(await this.loadModel(dir));
      } catch (error) {
        // Not the folder's fault: no model can load on this engine.
        if (error instanceof ProviderUnavailableError) throw error;
        const failure = failureOf(dir, error);
        failures.push(failure);
        this.loadFailures.push(failure);
        this.log.error(
          {
            at: "InferenceEngine#loadModels",
            dir,
            error: failure.error,
            reason: failure.message,
            ...(failure.details === undefined ? {} : { details: failure.details }),
          },
          `model folder ${e.name} not loaded`,
        );
      }
    }
    if (models.length === 0) {
      throw new NoModelsLoadedError(
        failures.length === 0
          ? `no models (folders with manifest.json) in ${root}`
          : `no models loaded from ${root}: ${failures.length} failed (${failures.map((f) => f.dir).join(", ")})`,
        { details: { path: root, failures } },
      );
    }
    return { models, failures };
  }

  /** `loadModels(root)`'s models; its failures are logged and kept in `failures`. */
  async loadModelsDir(root: string): Promise<LoadedModel[]> {
    return (await this.loadModels(root)).models;
  }

  /** Every model folder that failed to load, across all `loadModels` calls, in order. */
  get failures(): ModelLoadFailure[] {
    return [...this.loadFailures];
  }

  private async createSession(
    bytes: Buffer,
    manifest: ModelManifest,
  ): Promise<ort.InferenceSession> {
    try {
      return await ort.InferenceSession.create(
        bytes,
        sessionOptions(this.config, this.providerName),
      );
    } catch (cause) {
      if (this.providerName !== "cuda") {
        throw new ModelLoadError(`onnxruntime cannot load model ${manifest.name}`, {
          details: { model: manifest.name },
          cause,
        });
      }
      const decision = cudaUnavailable(
        this.config,
        cause instanceof Error ? cause.message : String(cause),
        cause,
      );
      this.log.warn(
        {
          at: "InferenceEngine#createSession",
          provider: decision.provider,
          reason: decision.reason,
        },
        "execution provider fell back to cpu",
      );
      this.providerName = decision.provider;
      return this.createSession(bytes, manifest);
    }
  }

  has(modelId: string): boolean {
    return this.models.has(modelId.toLowerCase());
  }

  get(modelId: string): LoadedModel {
    const m = this.models.get(modelId.toLowerCase());
    if (m === undefined) {
      throw new UnknownModelError(`model ${modelId} is not loaded`, {
        details: { modelId, loaded: [...this.models.keys()] },
      });
    }
    return m;
  }

  list(): LoadedModel[] {
    return [...this.models.values()];
  }

  /** Validates inputs, runs the model (bounded concurrency) and canonicalises the outputs. */
  async run(
    modelId: string,
    inputs: Record<string, TensorJson | undefined>,
  ): Promise<InferenceResult> {
    const model = this.get(modelId);
    const tensors = validateInputs(model.manifest, inputs);
    return this.runValidated(model, tensors);
  }

  /**
   * `run` for one row (batch dimension 1), run together with the other single rows asked of the
   * same model in the same event-loop turn: one ONNX Runtime call of N rows instead of N calls
   * (the relayer under load; up to the manifest's maxBatch). Each caller gets its own row's
   * result, hashed over its own inputs and outputs. A row computed in a batch can differ from the
   * same row run alone in the last bits of a float (another summation order); quantised at the
   * manifest's scale that is at most the manifest's tolerance, within which the enclave compares.
   * Inputs that are not one row of a model with a leading "batch" dimension run alone.
   */
  async runRow(
    modelId: string,
    inputs: Record<string, TensorJson | undefined>,
  ): Promise<InferenceResult> {
    const model = this.get(modelId);
    const tensors = validateInputs(model.manifest, inputs);
    const batchable =
      model.manifest.inputs.every((spec) => spec.shape[0] === "batch") &&
      model.manifest.outputs.every((spec) => spec.shape[0] === "batch") &&
      tensors.every((t) => t.dims[0] === 1);
    if (!batchable) return this.runValidated(model, tensors);
    const key = `${model.modelId}:${tensors.map((t) => `${t.name}=${t.dims.join("x")}`).join(",")}`;
    return new Promise((resolve, reject) => {
      const group = this.rows.get(key);
      if (group === undefined) this.rows.set(key, { model, rows: [{ tensors, resolve, reject }] });
      else group.rows.push({ tensors, resolve, reject });
      if (!this.rowsScheduled) {
        this.rowsScheduled = true;
        setImmediate(() => this.flushRows());
      }
    });
  }

  private flushRows(): void {
    this.rowsScheduled = false;
    const groups = [...this.rows.values()];
    this.rows.clear();
    for (const { model, rows } of groups) {
      const max = boundOf(model.manifest, "batch");
      for (let i = 0; i < rows.length; i += max) void this.runRows(model, rows.slice(i, i + max));
    }
  }

  private async runRows(model: LoadedModel, rows: PendingRow[]): Promise<void> {
    if (rows.length === 1) {
      const [row] = rows as [PendingRow];
      await this.runValidated(model, row.tensors).then(row.resolve, row.reject);
      return;
    }
    try {
      const feeds: Record<string, ort.Tensor> = {};
      rows[0]!.tensors.forEach((first, k) => {
        const data = new (first.data.constructor as new (n: number) => TensorData)(
          first.data.length * rows.length,
        );
        rows.forEach((row, i) => data.set(row.tensors[k]!.data as never, i * first.data.length));
        feeds[first.name] = new ort.Tensor(first.dtype, data, [
          rows.length,
          ...first.dims.slice(1),
        ]);
      });
      const results = await this.limiter.use(() => model.session.run(feeds));
      rows.forEach((row, i) =>
        row.resolve(this.resultOf(model, row.tensors, results, i, rows.length)),
      );
    } catch (error) {
      for (const row of rows) row.reject(error);
    }
  }

  async runValidated(model: LoadedModel, tensors: InputTensor[]): Promise<InferenceResult> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const t of tensors) feeds[t.name] = new ort.Tensor(t.dtype, t.data, t.dims);
    const results = await this.limiter.use(() => model.session.run(feeds));
    return this.resultOf(model, tensors, results);
  }

  /**
   * The result for `tensors` from a run's outputs: all of them, or row `row` of a run of `rows`
   * single rows (runRow), each output then cut to its [1, ...] slice.
   */
  private resultOf(
    model: LoadedModel,
    tensors: InputTensor[],
    results: ort.InferenceSession.ReturnType,
    row = 0,
    rows = 1,
  ): InferenceResult {
    const raw: Record<string, Float32Array> = {};
    const bound = bindInputDims(model.manifest, tensors);
    const outputs = model.manifest.outputs.map((spec) => {
      const t = results[spec.name];
      if (t === undefined || t.type !== spec.dtype) {
        throw new ModelLoadError(
          `model ${model.manifest.name} did not return ${spec.dtype} output "${spec.name}"` +
            (t === undefined ? "" : ` (it returned ${t.type})`),
          { details: { model: model.manifest.name, tensor: spec.name } },
        );
      }
      const all = t.data as ArrayLike<number | bigint | boolean> & {
        slice(a: number, b: number): unknown;
      };
      const per = all.length / rows;
      const sliced = (rows === 1 ? all : all.slice(row * per, (row + 1) * per)) as typeof all;
      const dims = rows === 1 ? [...t.dims] : [1, ...t.dims.slice(1)];
      checkOutputDims(model.manifest, spec, dims, bound);
      if (spec.dtype === "float32" || spec.dtype === "float16") {
        const data =
          spec.dtype === "float16"
            ? halfToFloat32(sliced as unknown as Uint16Array)
            : (sliced as unknown as Float32Array);
        raw[spec.name] = data;
        return quantise(spec.name, data, dims, scaleOf(model.manifest, spec));
      }
      return exactOutput(spec.name, spec.dtype, sliced, dims);
    });
    return {
      modelId: model.modelId,
      inputs: tensors,
      outputs,
      raw,
      inputHash: inputHash(tensors),
      outputHash: outputHash(outputs),
      execConfigHash: this.execConfigHashFor(model),
    };
  }

  get inFlight(): number {
    return this.limiter.inFlight;
  }

  async close(): Promise<void> {
    for (const m of this.models.values()) await m.session.release();
    this.models.clear();
  }
}

/**
 * Reads models/<name>/: manifest.json and the ONNX file it names (in the folder, or in the npm
 * package it pins), checked to hash to the manifest's modelId.
 */
export async function readModelFolder(dir: string): Promise<{
  manifest: ModelManifest;
  bytes: Buffer;
  modelPath: string;
  manifestPath: string;
  json: unknown;
}> {
  const manifestPath = join(dir, "manifest.json");
  let json: unknown;
  try {
    json = JSON.parse(await readFile(manifestPath, "utf8"));
  } catch (cause) {
    throw new ModelLoadError(`cannot read model manifest ${manifestPath}`, {
      details: { path: manifestPath, reason: (cause as Error).message },
      cause,
    });
  }
  const manifest = parseManifest(json, manifestPath);
  const modelPath = modelPathOf(dir, manifest);
  let bytes: Buffer;
  try {
    bytes = await readFile(modelPath);
  } catch (cause) {
    throw new ModelLoadError(`cannot read model file ${modelPath}`, {
      details: { path: modelPath },
      cause,
    });
  }
  const modelId = keccak256(bytes);
  if (modelId !== manifest.modelId)
    throw new ModelLoadError(`model file ${modelPath} does not hash to its modelId`, {
      details: { path: modelPath, keccak256: modelId, manifestModelId: manifest.modelId },
    });
  return { manifest, bytes, modelPath, manifestPath, json };
}

/**
 * Where a manifest's ONNX file is: in its folder, or inside the npm package it names (resolved
 * from that folder, and only at the exact version the manifest pins).
 */
function modelPathOf(dir: string, manifest: ModelManifest): string {
  const pkg = manifest.modelPackage;
  const local = join(dir, manifest.modelFile);
  // A copy in the folder (fetched from the package's tarball) comes first; its hash is checked.
  if (pkg === undefined || existsSync(local)) return local;
  let pkgJson: string;
  try {
    pkgJson = createRequire(join(resolve(dir), "manifest.json")).resolve(
      `${pkg.name}/package.json`,
    );
  } catch (cause) {
    throw new ModelLoadError(`model package ${pkg.name} is not installed`, {
      details: { package: pkg.name, version: pkg.version, from: dir },
      hint: `npm install -D --save-exact ${pkg.name}@${pkg.version}`,
      cause,
    });
  }
  const installed = (JSON.parse(readFileSync(pkgJson, "utf8")) as { version?: string }).version;
  if (installed !== pkg.version) {
    throw new ModelLoadError(
      `model package ${pkg.name} is ${String(installed)}, the manifest pins ${pkg.version}`,
      { details: { package: pkg.name, installed, pinned: pkg.version } },
    );
  }
  return join(dirname(pkgJson), pkg.path);
}

function failureOf(dir: string, error: unknown): ModelLoadFailure {
  if (error instanceof BaseError) {
    return {
      dir,
      error: error.name,
      message: error.message,
      ...(Object.keys(error.details).length > 0 ? { details: error.details } : {}),
    };
  }
  if (error instanceof Error) return { dir, error: error.name, message: error.message };
  return { dir, error: "Error", message: String(error) };
}
