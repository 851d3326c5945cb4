/**
 * The model hub (docs/inference-tee.md, "Model hub"): a model folder made from an ONNX file
 * (`opg model add`), checked against the graph, and the spec hash ModelRegistry records for it.
 */
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";

import { keccak256, toUtf8Bytes } from "ethers";
import * as ort from "onnxruntime-node";
import { pino } from "pino";

import { InputError } from "../common/errors.js";
import {
  calibrate,
  proposeTolerances,
  readSamples,
  withTolerances,
  type CalibrateOptions,
} from "./calibrate.js";
import type { CalibrationReport, ProposedTolerance } from "./calibrate.js";
import { InferenceEngine } from "./engine.js";
import { ModelLoadError } from "./errors.js";
import { INPUT_DTYPES, parseManifest, scaleOf, type ModelManifest } from "./manifest.js";
import { canonicalJson } from "./provider.js";

export const SPEC_SCHEMA_ID = "opg.model-spec/1";

/**
 * ModelRegistry's specHash: keccak-256 of the canonical JSON (keys sorted, no whitespace) of
 * `{ schema: "opg.model-spec/1", inputs: [{ name, dtype, shape }], outputs: [{ name, dtype, shape,
 * scale }] }`, in the manifest's order, each output's scale resolved. What a caller must know to
 * build a request and read its answer; tolerances are not in it (calibration may change them).
 */
export function specHash(manifest: ModelManifest): string {
  const spec = {
    schema: SPEC_SCHEMA_ID,
    inputs: manifest.inputs.map(({ name, dtype, shape }) => ({ name, dtype, shape })),
    outputs: manifest.outputs.map((o) => ({
      name: o.name,
      dtype: o.dtype,
      shape: o.shape,
      scale: scaleOf(manifest, o),
    })),
  };
  return keccak256(toUtf8Bytes(canonicalJson(spec)));
}

/** The manifest does not describe the ONNX graph (names, dtypes, ranks, fixed sizes). */
export class ManifestGraphMismatchError extends ModelLoadError {
  override name = "ManifestGraphMismatchError";
}

/** `opg model add` would overwrite an existing folder. */
export class ModelFolderExistsError extends InputError {
  override name = "ModelFolderExistsError";
}

interface GraphTensor {
  name: string;
  type: string;
  shape: Array<number | string>;
}

async function graphOf(
  bytes: Uint8Array,
  source: string,
): Promise<{
  inputs: GraphTensor[];
  outputs: GraphTensor[];
}> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, { executionProviders: ["cpu"] });
  } catch (cause) {
    throw new ModelLoadError(`onnxruntime cannot load ${source}`, {
      details: { file: source, reason: (cause as Error).message },
      cause,
    });
  }
  const tensors = (meta: readonly ort.InferenceSession.ValueMetadata[]): GraphTensor[] =>
    meta.map((m) =>
      m.isTensor
        ? { name: m.name, type: m.type, shape: m.shape.map((d) => (d === -1 ? "" : d)) }
        : { name: m.name, type: "non-tensor", shape: [] },
    );
  const graph = {
    inputs: tensors(session.inputMetadata),
    outputs: tensors(session.outputMetadata),
  };
  await session.release();
  return graph;
}

/**
 * Every way the manifest differs from the graph: a tensor the graph lacks or the manifest omits
 * (graph inputs; outputs the manifest leaves out are allowed, never computed into a receipt), a
 * dtype, a rank, a fixed size that differs, or a symbolic manifest dimension the graph fixes.
 */
export function graphProblems(
  manifest: ModelManifest,
  graph: { inputs: GraphTensor[]; outputs: GraphTensor[] },
): string[] {
  const problems: string[] = [];
  const compare = (
    kind: "input" | "output",
    spec: { name: string; dtype: string; shape: Array<number | string> },
    g: GraphTensor | undefined,
  ) => {
    if (g === undefined) {
      problems.push(`${kind} "${spec.name}": the graph has no such ${kind}`);
      return;
    }
    if (g.type !== spec.dtype)
      problems.push(`${kind} "${spec.name}": dtype ${spec.dtype}, the graph's is ${g.type}`);
    if (g.shape.length !== spec.shape.length) {
      problems.push(
        `${kind} "${spec.name}": rank ${spec.shape.length}, the graph's is ${g.shape.length} ([${g.shape.join(", ")}])`,
      );
      return;
    }
    spec.shape.forEach((d, i) => {
      const gd = g.shape[i]!;
      if (typeof gd === "number" && d !== gd)
        problems.push(
          `${kind} "${spec.name}": dimension ${i} is ${JSON.stringify(d)}, the graph fixes it at ${gd}`,
        );
    });
  };
  for (const spec of manifest.inputs)
    compare(
      "input",
      spec,
      graph.inputs.find((g) => g.name === spec.name),
    );
  for (const g of graph.inputs)
    if (!manifest.inputs.some((s) => s.name === g.name))
      problems.push(`input "${g.name}": the graph needs it and the manifest does not name it`);
  for (const spec of manifest.outputs)
    compare(
      "output",
      spec,
      graph.outputs.find((g) => g.name === spec.name),
    );
  return problems;
}

/** A manifest drawn from the graph itself, for `opg model add` without `--manifest`. */
export function manifestFromGraph(
  name: string,
  modelId: string,
  graph: { inputs: GraphTensor[]; outputs: GraphTensor[] },
): ModelManifest {
  const dims = (t: GraphTensor): Array<number | string> =>
    t.shape.map((d, i) => {
      if (typeof d === "number" && d > 0) return d;
      if (typeof d === "string" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(d)) return d;
      throw new ManifestGraphMismatchError(
        `tensor "${t.name}" has an unnamed dynamic dimension ${i}: write a manifest (--manifest)`,
        { details: { tensor: t.name, shape: t.shape } },
      );
    });
  const unsupported = [
    ...graph.inputs.filter((t) => !(INPUT_DTYPES as readonly string[]).includes(t.type)),
    ...graph.outputs.filter((t) => t.type !== "float32"),
  ];
  if (unsupported.length > 0)
    throw new ManifestGraphMismatchError(
      "the graph has tensors of a type the manifest cannot describe: write a manifest (--manifest)",
      { details: { tensors: unsupported.map((t) => `${t.name}: ${t.type}`) } },
    );
  const symbolic = [...graph.inputs, ...graph.outputs].some((t) =>
    t.shape.some((d) => typeof d === "string"),
  );
  return parseManifest(
    {
      schema: "opg.model-manifest/1",
      name,
      modelFile: "model.onnx",
      modelId,
      inputs: graph.inputs.map((t) => ({ name: t.name, dtype: t.type, shape: dims(t) })),
      outputs: graph.outputs.map((t) => ({ name: t.name, dtype: "float32", shape: dims(t) })),
      outputScale: 1_000_000,
      tolerance: 2,
      maxBatch: symbolic ? 256 : 1,
    },
    `the manifest drawn from the graph of ${name}`,
  );
}

export interface AddOptions {
  /** The manifest (JSON file); default: drawn from the graph. */
  manifest?: string;
  /** The folder to write; default models/<name>. */
  out?: string;
  /** The model's name when there is no manifest (default: the file's base name). */
  name?: string;
  force?: boolean;
  /** Calibrate before writing and write the proposed tolerances. */
  calibrate?: boolean;
  margin?: number;
  floor?: number;
  calibration?: CalibrateOptions;
  /** Sample inputs for the calibration (JSON, checked against the manifest once it is known). */
  inputsFile?: string;
}

export interface AddResult {
  dir: string;
  modelId: string;
  specHash: string;
  manifest: ModelManifest;
  calibration?: { report: CalibrationReport; proposals: ProposedTolerance[] };
}

/**
 * `opg model add`: modelId = keccak-256 of the file (as the engine computes it), the manifest
 * checked against the graph, optionally calibrated, then <out>/model.onnx and <out>/manifest.json
 * written and loaded back by an InferenceEngine (what the enclave and the relayer will do).
 */
export async function addModel(onnxFile: string, options: AddOptions = {}): Promise<AddResult> {
  let bytes: Buffer;
  try {
    bytes = await readFile(onnxFile);
  } catch (cause) {
    throw new InputError(`cannot read the ONNX file ${onnxFile}`, {
      details: { file: onnxFile, reason: (cause as Error).message },
      cause,
    });
  }
  const modelId = keccak256(bytes);
  const graph = await graphOf(bytes, onnxFile);
  let json: Record<string, unknown>;
  if (options.manifest === undefined) {
    const name = options.name ?? basename(onnxFile).replace(/\.onnx$/i, "");
    json = { ...manifestFromGraph(name, modelId, graph) };
  } else {
    try {
      json = JSON.parse(await readFile(options.manifest, "utf8")) as Record<string, unknown>;
    } catch (cause) {
      throw new InputError(`cannot read the manifest ${options.manifest}`, {
        details: { file: options.manifest, reason: (cause as Error).message },
        cause,
      });
    }
    if (json.modelId !== undefined && json.modelId !== modelId)
      throw new ModelLoadError(`the manifest's modelId is not the keccak-256 of ${onnxFile}`, {
        details: { manifestModelId: json.modelId, keccak256: modelId },
      });
    json = { ...json, modelId, modelFile: "model.onnx" };
  }
  let manifest = parseManifest(json, options.manifest ?? "the drawn manifest");
  const problems = graphProblems(manifest, graph);
  if (problems.length > 0)
    throw new ManifestGraphMismatchError(`the manifest does not describe ${onnxFile}`, {
      details: { problems, graphInputs: graph.inputs, graphOutputs: graph.outputs },
    });

  let calibration: AddResult["calibration"];
  if (options.calibrate === true) {
    const report = await calibrate(
      manifest,
      bytes,
      options.inputsFile === undefined
        ? options.calibration
        : { inputs: await readSamples(manifest, options.inputsFile) },
    );
    const proposals = proposeTolerances(manifest, report, options.margin, options.floor);
    json = withTolerances(json, proposals) as Record<string, unknown>;
    manifest = parseManifest(json, "the calibrated manifest");
    calibration = { report, proposals };
  }

  const dir = options.out ?? join("models", manifest.name);
  const exists = await stat(dir).then(
    () => true,
    () => false,
  );
  if (exists && options.force !== true)
    throw new ModelFolderExistsError(`${dir} exists already`, {
      details: { dir },
      hint: "pass --force to replace it, or --out another folder",
    });
  if (exists) await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "model.onnx"), bytes);
  await writeFile(join(dir, "manifest.json"), JSON.stringify(json, null, 2) + "\n");

  // Loaded back as the enclave and the relayer will load it.
  const engine = new InferenceEngine({
    config: { provider: "cpu" },
    logger: pino({ level: "silent" }),
  });
  try {
    await engine.loadModel(dir);
  } finally {
    await engine.close();
  }
  return {
    dir,
    modelId,
    specHash: specHash(manifest),
    manifest,
    ...(calibration === undefined ? {} : { calibration }),
  };
}
