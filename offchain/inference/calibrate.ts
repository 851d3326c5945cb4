/**
 * Calibration (docs/inference-tee.md, "Calibration"): runs a model under every execution
 * configuration this machine offers, compares each with the enclave's configuration on the same
 * sample inputs, and measures, per output, how far an honest re-execution can differ. `check`
 * refuses a manifest whose tolerance is below what was measured; `propose` suggests one with a
 * safety margin.
 */
import { readFile } from "node:fs/promises";

import * as ort from "onnxruntime-node";

import { InputError, VerificationError } from "../common/errors.js";
import { ModelLoadError } from "./errors.js";
export { readModelFolder } from "./engine.js";
import { boundOf, isFloatDtype, scaleOf, tolerancesOf } from "./manifest.js";
import type { ModelManifest, OutputTolerance } from "./manifest.js";
import {
  parseEngineConfig,
  sessionOptions,
  supportedBackends,
  type Backend,
  type EngineConfig,
  type ProviderName,
} from "./provider.js";
import {
  compareOutputs,
  quantise,
  validateInputs,
  type InputTensor,
  type QuantisedTensor,
  type TensorJson,
} from "./tensor.js";
import { prng } from "../common/prng.js";

// ---------------------------------------------------------------- errors

/** A manifest's tolerance for an output is below the divergence measured here: exit code 1. */
export class ToleranceBelowDivergenceError extends VerificationError {
  override name = "ToleranceBelowDivergenceError";
}

/** Calibration samples that cannot be used (unreadable file, inputs the manifest refuses). */
export class CalibrationInputError extends InputError {
  override name = "CalibrationInputError";
}

// ---------------------------------------------------------------- configurations

export const OPTIMISATION_LEVELS = ["disabled", "basic", "extended", "all"] as const;
export const THREAD_COUNTS = [1, 2] as const;

export interface CalibrationConfig {
  /** e.g. "cpu/all/1t". */
  label: string;
  provider: ProviderName;
  graphOptimizationLevel: EngineConfig["graphOptimizationLevel"];
  intraOpNumThreads: number;
}

/**
 * The enclave's configuration (`opg enclave start`: provider cpu, `--threads` 1 by default, the
 * engine's defaults otherwise: graph optimisation `all`, one inter-op thread): every receipt is
 * judged against a re-execution under it, so it is what every other configuration is compared with.
 */
export const REFERENCE_CONFIG: CalibrationConfig = {
  label: "cpu/all/1t",
  provider: "cpu",
  graphOptimizationLevel: "all",
  intraOpNumThreads: 1,
};

/** Whether the CUDA provider can be used here, and if not why (reported, never thrown). */
export function cudaAvailability(backends: Backend[] = supportedBackends()): {
  available: boolean;
  reason: string;
} {
  const cuda = backends.find((b) => b.name === "cuda");
  return cuda?.bundled === true
    ? { available: true, reason: "cuda provider bundled" }
    : {
        available: false,
        reason: "cuda: not available here (the onnxruntime-node build lacks the CUDA provider)",
      };
}

/** Every configuration to run: optimisation level × intra-op threads on cpu, and on cuda if present. */
export function calibrationConfigs(cuda: boolean): CalibrationConfig[] {
  const providers: ProviderName[] = cuda ? ["cpu", "cuda"] : ["cpu"];
  const out: CalibrationConfig[] = [];
  for (const provider of providers)
    for (const level of OPTIMISATION_LEVELS)
      for (const threads of THREAD_COUNTS)
        out.push({
          label: `${provider}/${level}/${threads}t`,
          provider,
          graphOptimizationLevel: level,
          intraOpNumThreads: threads,
        });
  return out;
}

// ---------------------------------------------------------------- sample inputs

export interface SampleOptions {
  /** How many input sets (default 4). */
  samples?: number;
  /** Size every symbolic dimension takes (default min(8, maxBatch)). */
  batch?: number;
  /** PRNG seed (default 1). */
  seed?: number;
}

/**
 * Sample inputs drawn from the manifest's input specs: float32 uniform in [-2, 2), integers
 * uniform in [0, 16) (small, so they index any embedding table), every symbolic dimension at
 * `batch`. The same seed gives the same inputs on every machine.
 */
export function generateSamples(
  manifest: ModelManifest,
  options: SampleOptions = {},
): InputTensor[][] {
  const count = options.samples ?? 4;
  // The tightest bound among the symbolic dimensions (each its own, else maxBatch).
  const symbolic = manifest.inputs.flatMap((i) => i.shape.filter((d) => typeof d === "string"));
  const maxBatch = symbolic.reduce((m, d) => Math.min(m, boundOf(manifest, d)), Infinity);
  const limit = Number.isFinite(maxBatch) ? maxBatch : 1;
  const batch = options.batch ?? Math.min(8, limit);
  if (!Number.isInteger(count) || count < 1 || count > 1000)
    throw new CalibrationInputError("samples must be an integer from 1 to 1000", {
      details: { samples: count },
    });
  if (!Number.isInteger(batch) || batch < 1 || batch > limit)
    throw new CalibrationInputError(`batch must be an integer from 1 to ${limit}`, {
      details: { batch, bound: limit },
    });
  const next = prng(options.seed ?? 1);
  const sets: InputTensor[][] = [];
  for (let s = 0; s < count; s++) {
    const json: Record<string, TensorJson> = {};
    for (const spec of manifest.inputs) {
      const dims = spec.shape.map((d) => (typeof d === "number" ? d : batch));
      const n = dims.reduce((a, b) => a * b, 1);
      const data: number[] = new Array<number>(n);
      for (let i = 0; i < n; i++) {
        data[i] = isFloatDtype(spec.dtype)
          ? (next() / 2 ** 32) * 4 - 2
          : spec.dtype === "bool"
            ? next() % 2
            : next() % 16;
      }
      json[spec.name] = { dims, data };
    }
    sets.push(validateInputs(manifest, json));
  }
  return sets;
}

/**
 * Sample inputs from a JSON file: one input set `{ "<name>": { dims, data } }` or a list of them,
 * each checked against the manifest as a request would be.
 */
export async function readSamples(manifest: ModelManifest, file: string): Promise<InputTensor[][]> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, "utf8"));
  } catch (cause) {
    throw new CalibrationInputError(`cannot read calibration inputs ${file}`, {
      details: { file, reason: (cause as Error).message },
      cause,
    });
  }
  const list = Array.isArray(json) ? json : [json];
  if (list.length === 0)
    throw new CalibrationInputError(`calibration inputs ${file} hold no input set`, {
      details: { file },
    });
  return list.map((set, i) => {
    try {
      return validateInputs(manifest, set as Record<string, TensorJson | undefined>);
    } catch (cause) {
      throw new CalibrationInputError(`calibration input set ${i} in ${file} is not valid`, {
        details: { file, index: i, reason: (cause as Error).message },
        cause,
      });
    }
  });
}

// ---------------------------------------------------------------- measuring

/** What one output diverged by, over every configuration and sample. */
export interface OutputDivergence {
  name: string;
  scale: number;
  /** The tolerance the manifest judges this output under (resolved). */
  tolerance: OutputTolerance;
  /** Largest |reference − other| over the float outputs. */
  maxAbsDiff: number;
  /** Largest |reference − other| / |reference| over elements whose reference is not 0. */
  maxRelDiff: number;
  /** Largest difference in quantised units at this output's scale. */
  maxQuantDiff: number;
  /** Rows (all axes but the last) whose first largest class differs from the reference's. */
  argmaxDisagreements: number;
  /** topk only: rows whose top-k set differs from the reference's; null for other modes. */
  topkDisagreements: number | null;
  /** Largest share of this output's elements outside the manifest's band in one comparison. */
  fractionOutside: number;
  /**
   * The measured divergence as a tolerance: the smallest `abs` (at the manifest's `rel`, `k` and
   * `maxFraction`) under which every configuration agrees with the reference on every sample.
   */
  requiredAbs: number;
  /** The configuration that needed `requiredAbs` (the reference itself when it is 0). */
  worstConfig: string;
  /** Whether the manifest's tolerance covers every comparison. */
  withinTolerance: boolean;
}

export interface CalibrationReport {
  model: string;
  modelId: string;
  reference: CalibrationConfig;
  configs: string[];
  cuda: { available: boolean; reason: string };
  samples: number;
  outputs: OutputDivergence[];
}

interface RunOutputs {
  raw: Record<string, Float32Array>;
  quantised: QuantisedTensor[];
}

async function runConfig(
  bytes: Buffer,
  manifest: ModelManifest,
  config: CalibrationConfig,
  samples: InputTensor[][],
): Promise<RunOutputs[]> {
  const engineConfig = parseEngineConfig({
    provider: config.provider,
    graphOptimizationLevel: config.graphOptimizationLevel,
    intraOpNumThreads: config.intraOpNumThreads,
  });
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(
      bytes,
      sessionOptions(engineConfig, config.provider),
    );
  } catch (cause) {
    throw new ModelLoadError(`onnxruntime cannot load model ${manifest.name} as ${config.label}`, {
      details: { model: manifest.name, config: config.label, reason: (cause as Error).message },
      cause,
    });
  }
  try {
    const out: RunOutputs[] = [];
    for (const [index, tensors] of samples.entries()) {
      const feeds: Record<string, ort.Tensor> = {};
      for (const t of tensors) feeds[t.name] = new ort.Tensor(t.dtype, t.data, t.dims);
      let results: ort.InferenceSession.OnnxValueMapType;
      try {
        results = await session.run(feeds);
      } catch (cause) {
        // Generated inputs fit the manifest's shapes, not always what the model computes on (a
        // VAD wants whole audio frames): the model's own refusal, named, with what to do.
        throw new CalibrationInputError(
          `model ${manifest.name} refused sample input set ${index} under ${config.label}`,
          {
            details: {
              model: manifest.name,
              config: config.label,
              sample: index,
              dims: Object.fromEntries(tensors.map((t) => [t.name, t.dims])),
              reason: (cause as Error).message.split("\n")[0],
            },
            hint: "give inputs the model computes on with --inputs <file.json> (or other sizes with --batch)",
            cause,
          },
        );
      }
      const raw: Record<string, Float32Array> = {};
      const quantised = manifest.outputs.map((spec) => {
        const t = results[spec.name];
        if (t === undefined || !(t.data instanceof Float32Array)) {
          throw new ModelLoadError(
            `model ${manifest.name} did not return float32 output "${spec.name}"`,
            { details: { model: manifest.name, config: config.label } },
          );
        }
        raw[spec.name] = t.data;
        return quantise(spec.name, t.data, t.dims, scaleOf(manifest, spec));
      });
      out.push({ raw, quantised });
    }
    return out;
  } finally {
    await session.release();
  }
}

/** Top-k index sets of every row of `values` (last axis `n`), ties to the lower index. */
function rowTops(values: ArrayLike<number | bigint>, n: number, k: number): string[] {
  const rows: string[] = [];
  for (let start = 0; start < values.length; start += n) {
    const idx = Array.from({ length: n }, (_, j) => j);
    idx.sort((p, q) => {
      const vp = values[start + p]!;
      const vq = values[start + q]!;
      return vp === vq ? p - q : vp > vq ? -1 : 1;
    });
    rows.push(
      idx
        .slice(0, k)
        .sort((p, q) => p - q)
        .join(","),
    );
  }
  return rows;
}

function disagreeingRows(a: QuantisedTensor, b: QuantisedTensor, k: number): number {
  const n = a.dims[a.dims.length - 1] ?? 1;
  const kk = Math.min(k, n);
  const x = rowTops(a.values, n, kk);
  const y = rowTops(b.values, n, kk);
  return x.filter((row, i) => row !== y[i]).length;
}

/** Whether every (reference, other) pair of one output agrees when its band's abs is `abs`. */
function agreesAt(
  pairs: Array<[QuantisedTensor, QuantisedTensor]>,
  tolerance: OutputTolerance,
  abs: number,
): boolean {
  return pairs.every(
    ([x, y]) => compareOutputs([x], [y], { [x.name]: { ...tolerance, abs } }).agree,
  );
}

/** The smallest abs in [0, hi] under which every pair agrees (agreement only grows with abs). */
function smallestAbs(
  pairs: Array<[QuantisedTensor, QuantisedTensor]>,
  tolerance: OutputTolerance,
  hi: number,
): number {
  let lo = 0;
  let top = hi;
  while (!agreesAt(pairs, tolerance, top)) top = top * 2 + 1;
  while (lo < top) {
    const mid = Math.floor((lo + top) / 2);
    if (agreesAt(pairs, tolerance, mid)) top = mid;
    else lo = mid + 1;
  }
  return lo;
}

export interface CalibrateOptions extends SampleOptions {
  /** Input sets to use instead of generated ones. */
  inputs?: InputTensor[][];
  /** What the runtime bundles (default: ort.listSupportedBackends()). */
  backends?: Backend[];
  /** Only these configurations (default: calibrationConfigs). */
  configs?: CalibrationConfig[];
}

/** Runs every configuration on the samples and measures each output's divergence from the reference. */
export async function calibrate(
  manifest: ModelManifest,
  bytes: Buffer,
  options: CalibrateOptions = {},
): Promise<CalibrationReport> {
  const cuda = cudaAvailability(options.backends);
  const samples = options.inputs ?? generateSamples(manifest, options);
  const configs = (options.configs ?? calibrationConfigs(cuda.available)).filter(
    (c) => c.label !== REFERENCE_CONFIG.label,
  );
  const reference = await runConfig(bytes, manifest, REFERENCE_CONFIG, samples);
  const runs: Array<{ config: CalibrationConfig; outputs: RunOutputs[] }> = [];
  for (const config of configs)
    runs.push({ config, outputs: await runConfig(bytes, manifest, config, samples) });

  const tolerances = tolerancesOf(manifest);
  const outputs = manifest.outputs.map((spec, o): OutputDivergence => {
    const tolerance = tolerances[spec.name]!;
    let maxAbsDiff = 0;
    let maxRelDiff = 0;
    let maxQuantDiff = 0;
    let argmaxDisagreements = 0;
    let topkDisagreements = 0;
    let fractionOutside = 0;
    let requiredAbs = 0;
    let worstConfig = REFERENCE_CONFIG.label;
    let withinTolerance = true;
    for (const { config, outputs: theirs } of runs) {
      const pairs: Array<[QuantisedTensor, QuantisedTensor]> = [];
      theirs.forEach((run, s) => {
        const ref = reference[s]!;
        const a = ref.raw[spec.name]!;
        const b = run.raw[spec.name]!;
        for (let i = 0; i < a.length; i++) {
          const d = Math.abs(a[i]! - b[i]!);
          if (d > maxAbsDiff) maxAbsDiff = d;
          if (a[i] !== 0 && d / Math.abs(a[i]!) > maxRelDiff) maxRelDiff = d / Math.abs(a[i]!);
        }
        const x = ref.quantised[o]!;
        const y = run.quantised[o]!;
        for (let i = 0; i < x.values.length; i++) {
          const d = Number(x.values[i]! - y.values[i]!);
          if (Math.abs(d) > maxQuantDiff) maxQuantDiff = Math.abs(d);
        }
        argmaxDisagreements += disagreeingRows(x, y, 1);
        if (tolerance.mode === "topk") topkDisagreements += disagreeingRows(x, y, tolerance.k ?? 1);
        const judged = compareOutputs([x], [y], { [spec.name]: tolerance });
        const out = judged.outputs[0];
        if (out !== undefined) {
          fractionOutside = Math.max(fractionOutside, out.outside / x.values.length);
          if (!out.agree) withinTolerance = false;
        }
        pairs.push([x, y]);
      });
      const needed = smallestAbs(pairs, tolerance, maxQuantDiff * 2 + 1);
      if (needed > requiredAbs) {
        requiredAbs = needed;
        worstConfig = config.label;
      }
    }
    return {
      name: spec.name,
      scale: scaleOf(manifest, spec),
      tolerance,
      maxAbsDiff,
      maxRelDiff,
      maxQuantDiff,
      argmaxDisagreements,
      topkDisagreements: tolerance.mode === "topk" ? topkDisagreements : null,
      fractionOutside,
      requiredAbs,
      worstConfig,
      withinTolerance,
    };
  });
  return {
    model: manifest.name,
    modelId: manifest.modelId,
    reference: REFERENCE_CONFIG,
    configs: [REFERENCE_CONFIG.label, ...configs.map((c) => c.label)],
    cuda,
    samples: samples.length,
    outputs,
  };
}

// ---------------------------------------------------------------- proposing and checking

/** Default safety margin over the measured divergence. */
export const DEFAULT_MARGIN = 2;
/**
 * Default floor of a proposed `abs`, in quantised units: a value lying near a rounding boundary
 * (x × scale ≈ n + ½) rounds either way after a one-ulp difference, so 1 unit is possible on any
 * other machine even when nothing diverged here; 2 leaves room for that twice.
 */
export const DEFAULT_FLOOR = 2;

export interface ProposedTolerance {
  name: string;
  /** The tolerance now (resolved) and the proposed one (same mode, rel, k, maxFraction). */
  current: OutputTolerance;
  proposed: OutputTolerance;
  /** Whether the output takes its tolerance from the manifest's single `tolerance`. */
  fromDefault: boolean;
}

/** proposed abs = max(floor, ceil(requiredAbs × margin)), everything else as it is. */
export function proposeTolerances(
  manifest: ModelManifest,
  report: CalibrationReport,
  margin = DEFAULT_MARGIN,
  floor = DEFAULT_FLOOR,
): ProposedTolerance[] {
  if (!(Number.isFinite(margin) && margin >= 1))
    throw new InputError("the margin must be a number of at least 1", { details: { margin } });
  if (!(Number.isInteger(floor) && floor >= 0))
    throw new InputError("the floor must be a whole number of quantised units", {
      details: { floor },
    });
  return report.outputs.map((o) => {
    const spec = manifest.outputs.find((s) => s.name === o.name)!;
    return {
      name: o.name,
      current: o.tolerance,
      proposed: { ...o.tolerance, abs: Math.max(floor, Math.ceil(o.requiredAbs * margin)) },
      fromDefault: spec.tolerance === undefined,
    };
  });
}

/**
 * The manifest JSON with the proposed tolerances written in: outputs with their own tolerance get
 * the proposed one; outputs judged by the manifest's single `tolerance` keep it that way, raised or
 * lowered to the largest of their proposed `abs` (so the manifest keeps its shape, and with it its
 * execConfigHash rule, docs/inference-tee.md).
 */
export function withTolerances(json: unknown, proposals: ProposedTolerance[]): unknown {
  const copy = structuredClone(json) as {
    tolerance?: number;
    outputs: Array<{ name: string; tolerance?: OutputTolerance }>;
  };
  const defaults = proposals.filter((p) => p.fromDefault).map((p) => p.proposed.abs);
  if (defaults.length > 0) copy.tolerance = Math.max(...defaults);
  for (const p of proposals) {
    if (p.fromDefault) continue;
    const out = copy.outputs.find((o) => o.name === p.name);
    if (out !== undefined) out.tolerance = p.proposed;
  }
  return copy;
}

/** Throws ToleranceBelowDivergenceError for the first output whose tolerance is below the measured divergence. */
export function checkTolerances(report: CalibrationReport): void {
  const below = report.outputs.filter((o) => o.tolerance.abs < o.requiredAbs);
  if (below.length === 0) return;
  const first = below[0]!;
  throw new ToleranceBelowDivergenceError(
    `output "${first.name}" of model ${report.model}: tolerance abs ${first.tolerance.abs} is below the measured divergence ${first.requiredAbs} (quantised units, ${first.worstConfig} against ${report.reference.label})`,
    {
      details: {
        model: report.model,
        output: first.name,
        measured: first.requiredAbs,
        tolerance: first.tolerance,
        config: first.worstConfig,
        below: below.map((o) => ({
          output: o.name,
          measured: o.requiredAbs,
          toleranceAbs: o.tolerance.abs,
        })),
      },
      hint: "raise the tolerance (opg model calibrate <dir> --write proposes one with a margin)",
    },
  );
}

// ---------------------------------------------------------------- printing

function fmt(x: number): string {
  return x === 0
    ? "0"
    : x < 1e-3 || x >= 1e6
      ? x.toExponential(2)
      : String(Number(x.toPrecision(3)));
}

/** The report as a table, one row per output. */
export function formatReport(report: CalibrationReport, proposals?: ProposedTolerance[]): string {
  const head = [
    "output",
    "mode",
    "scale",
    "max abs",
    "max rel",
    "quant diff",
    "argmax rows",
    "topk rows",
    "outside",
    "measured",
    "tolerance",
    ...(proposals === undefined ? [] : ["proposed"]),
  ];
  const rows = report.outputs.map((o) => [
    o.name,
    o.tolerance.mode,
    String(o.scale),
    fmt(o.maxAbsDiff),
    fmt(o.maxRelDiff),
    String(o.maxQuantDiff),
    String(o.argmaxDisagreements),
    o.topkDisagreements === null ? "-" : String(o.topkDisagreements),
    fmt(o.fractionOutside),
    `${o.requiredAbs} (${o.worstConfig})`,
    `${o.tolerance.abs}${o.withinTolerance ? "" : " BELOW"}`,
    ...(proposals === undefined
      ? []
      : [String(proposals.find((p) => p.name === o.name)?.proposed.abs ?? "-")]),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [
    `model ${report.model} (${report.modelId})`,
    `  reference ${report.reference.label} (the enclave's); ${report.configs.length - 1} other configurations: ${report.configs.slice(1).join(", ")}`,
    `  ${report.cuda.available ? "cuda: available, included" : report.cuda.reason}`,
    `  ${report.samples} sample input sets; measured = smallest abs under which every configuration agrees (quantised units)`,
    "",
    line(head),
    ...rows.map(line),
  ].join("\n");
}
