/**
 * The model manifest (models/<name>/manifest.json): what a model takes and returns, how its
 * outputs are quantised before hashing, and how far a re-execution may differ. Validated on load.
 */
import { z } from "zod";

import { ModelLoadError } from "./errors.js";

export const MANIFEST_SCHEMA_ID = "opg.model-manifest/1";

/** Element types accepted by the canonical encoding, for inputs and outputs alike. */
export const INPUT_DTYPES = [
  "float32",
  "float16",
  "int64",
  "int32",
  "int8",
  "uint8",
  "bool",
] as const;
export type InputDtype = (typeof INPUT_DTYPES)[number];
export const OUTPUT_DTYPES = INPUT_DTYPES;
export type OutputDtype = InputDtype;

/** Float outputs are quantised at a scale and judged under a tolerance; the rest are exact. */
export function isFloatDtype(dtype: InputDtype): dtype is "float32" | "float16" {
  return dtype === "float32" || dtype === "float16";
}

/**
 * A tensor name as the exporter wrote it into the graph (`39`, `onnx::Flatten_0`): any UTF-8
 * text without control characters. Names are never rewritten, since renaming a graph's tensors
 * changes its bytes and so its modelId.
 */
const name = z
  .string()
  .min(1)
  .max(128)
  .refine(
    (s) => ![...s].some((ch) => (ch.codePointAt(0) as number) < 0x20 || ch === "\u007f"),
    "tensor names have no control characters",
  );

/** A symbolic dimension's name: an identifier, so it never reads as a size. */
const dimName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z_][A-Za-z0-9_.:/-]*$/, "symbolic dimensions are identifiers");

/** A dimension: a fixed size, or a symbolic name bound at run time (the same name, the same size). */
const dim = z.union([
  z
    .number()
    .int()
    .min(1)
    .max(1 << 20),
  dimName,
]);

/** Rank 0 (a scalar, shape []) up to rank 8. */
const shape = z.array(dim).min(0).max(8);

const tensorSpec = <D extends z.ZodType>(dtype: D) => z.strictObject({ name, dtype, shape });

/** How a re-execution of one output is judged (docs/inference-tee.md, "Tolerance"). */
export const TOLERANCE_MODES = ["elementwise", "argmax", "topk", "fraction"] as const;
export type ToleranceMode = (typeof TOLERANCE_MODES)[number];

const quantisedUnits = z
  .number()
  .int()
  .min(0)
  .max(2 ** 32 - 1);

const scale = z
  .number()
  .int()
  .min(1)
  .max(2 ** 32 - 1);

export const toleranceSchema = z.strictObject({
  mode: z.enum(TOLERANCE_MODES),
  /** Absolute part of the band, in quantised units of the output. */
  abs: quantisedUnits,
  /** Relative part of the band: a fraction of |the enclave's value|, 0..1. */
  rel: z.number().min(0).max(1),
  /** topk: how many of the largest classes (last axis) must agree as a set. */
  k: z
    .number()
    .int()
    .min(1)
    .max(1 << 20)
    .optional(),
  /** fraction: the largest share of elements allowed outside the band, 0..1. */
  maxFraction: z.number().min(0).max(1).optional(),
});
export type OutputTolerance = z.infer<typeof toleranceSchema>;

const outputSpec = z.strictObject({
  name,
  dtype: z.enum(OUTPUT_DTYPES),
  shape,
  /**
   * A recurrent state (a VAD's hidden state, say): besides its quantised, hashed values, the
   * response carries its float32 values as the model returned them, so the client can feed them
   * back exactly. Float outputs only.
   */
  state: z.boolean().optional(),
  /** This output's fixed-point scale (default: the manifest's outputScale). Float outputs only. */
  scale: scale.optional(),
  /** How this output is judged (default: elementwise within the manifest's tolerance). */
  tolerance: toleranceSchema.optional(),
});

export const manifestSchema = z
  .strictObject({
    schema: z.literal(MANIFEST_SCHEMA_ID),
    name: z.string().min(1).max(64),
    description: z.string().max(500).optional(),
    modelFile: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+\.onnx$/, "a file name in the model folder ending in .onnx"),
    /**
     * A model shipped in an npm package (a devDependency, kept out of git): the file is read from
     * the package as Node resolves it from the manifest's folder, and the installed package must
     * be exactly this version. modelFile then is the file's base name, for the record.
     */
    modelPackage: z
      .strictObject({
        name: z.string().regex(/^(@[a-z0-9._-]+\/)?[a-z0-9._-]+$/, "an npm package name"),
        version: z.string().regex(/^[0-9]+\.[0-9]+\.[0-9]+$/, "an exact version"),
        path: z
          .string()
          .regex(/^(?!.*\.\.)[A-Za-z0-9_./-]+\.onnx$/, "a path inside the package ending in .onnx"),
      })
      .optional(),
    modelId: z
      .string()
      .regex(/^0x[0-9a-f]{64}$/, "0x + 64 lowercase hex digits (keccak-256 of the model file)"),
    inputs: z.array(tensorSpec(z.enum(INPUT_DTYPES))).min(1),
    outputs: z.array(outputSpec).min(1),
    /** Outputs are stored as round(x * scale) in int64 before hashing; the default scale. */
    outputScale: scale,
    /**
     * Largest per-element difference, in quantised units, still counted as agreement, for every
     * output without its own `tolerance` (required unless every output has one).
     */
    tolerance: quantisedUnits.optional(),
    /** Largest value a symbolic dimension without its own entry in `dims` may take in one run. */
    maxBatch: z
      .number()
      .int()
      .min(1)
      .max(1 << 16)
      .optional(),
    /** Largest value of each symbolic dimension, by name (over maxBatch for that name). */
    dims: z
      .record(
        dimName,
        z
          .number()
          .int()
          .min(1)
          .max(1 << 20),
      )
      .optional(),
    /**
     * Largest input one request may carry, in canonical data bytes summed over its inputs (values
     * × 4 for float32 and int32, × 8 for int64). Optional: the shapes at maxBatch bound it anyway
     * (inputBounds); this is for a model whose symbolic dims would otherwise allow far more.
     */
    maxInputBytes: z
      .number()
      .int()
      .min(1)
      .max(2 ** 32 - 1)
      .optional(),
  })
  .superRefine((m, ctx) => {
    m.inputs.forEach((spec, i) => {
      for (const d of spec.shape) {
        if (typeof d === "string" && m.dims?.[d] === undefined && m.maxBatch === undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["inputs", i, "shape"],
            message: `symbolic dimension "${d}" has no bound: give it one in dims, or set maxBatch`,
          });
        }
      }
    });
    const seen = new Set<string>();
    for (const t of [...m.inputs, ...m.outputs]) {
      if (seen.has(t.name))
        ctx.addIssue({ code: "custom", message: `tensor name "${t.name}" is used twice` });
      seen.add(t.name);
    }
    m.outputs.forEach((o, i) => {
      const at = (field: string): Array<string | number> => ["outputs", i, "tolerance", field];
      const t = o.tolerance;
      for (const d of o.shape) {
        if (typeof d === "string" && m.dims?.[d] === undefined && m.maxBatch === undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["outputs", i, "shape"],
            message: `symbolic dimension "${d}" has no bound: give it one in dims, or set maxBatch`,
          });
        }
      }
      if (!isFloatDtype(o.dtype)) {
        if (o.scale !== undefined || o.tolerance !== undefined || o.state === true) {
          ctx.addIssue({
            code: "custom",
            path: ["outputs", i],
            message: `output "${o.name}" is ${o.dtype}: compared exactly, so no scale, tolerance or state`,
          });
        }
        return;
      }
      if (t === undefined) {
        if (m.tolerance === undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["outputs", i, "tolerance"],
            message: `output "${o.name}" has no tolerance and the manifest has no default tolerance`,
          });
        }
        return;
      }
      const classes = o.shape[o.shape.length - 1];
      if ((t.mode === "argmax" || t.mode === "topk") && typeof classes !== "number") {
        ctx.addIssue({
          code: "custom",
          path: ["outputs", i, "shape"],
          message: `output "${o.name}": mode ${t.mode} needs a fixed last (class) dimension`,
        });
      }
      if (t.mode === "topk") {
        if (t.k === undefined) {
          ctx.addIssue({
            code: "custom",
            path: at("k"),
            message: `output "${o.name}": mode topk needs k`,
          });
        } else if (typeof classes === "number" && t.k > classes) {
          ctx.addIssue({
            code: "custom",
            path: at("k"),
            message: `output "${o.name}": k ${t.k} is more than its ${classes} classes`,
          });
        }
      } else if (t.k !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: at("k"),
          message: `output "${o.name}": k is only for mode topk, not ${t.mode}`,
        });
      }
      if (t.mode === "fraction") {
        if (t.maxFraction === undefined) {
          ctx.addIssue({
            code: "custom",
            path: at("maxFraction"),
            message: `output "${o.name}": mode fraction needs maxFraction`,
          });
        }
      } else if (t.maxFraction !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: at("maxFraction"),
          message: `output "${o.name}": maxFraction is only for mode fraction, not ${t.mode}`,
        });
      }
    });
  });

export type ModelManifest = z.infer<typeof manifestSchema>;
export type TensorSpec = ModelManifest["inputs"][number];
export type OutputSpec = ModelManifest["outputs"][number];

/**
 * The scale output `spec` is quantised at: its own, else the manifest's outputScale; 0 for an
 * integer or bool output, which is hashed and compared exactly as it is.
 */
export function scaleOf(manifest: ModelManifest, spec: OutputSpec): number {
  if (!isFloatDtype(spec.dtype)) return 0;
  return spec.scale ?? manifest.outputScale;
}

/** The largest size symbolic dimension `dim` may take: its own bound, else maxBatch. */
export function boundOf(manifest: ModelManifest, dim: string): number {
  return manifest.dims?.[dim] ?? manifest.maxBatch ?? 1;
}

/**
 * How each output is judged, by name: its own tolerance, else elementwise within the manifest's
 * single `tolerance` (abs, rel 0), which is what a manifest without per-output fields always meant.
 */
export function tolerancesOf(manifest: ModelManifest): Record<string, OutputTolerance> {
  const out: Record<string, OutputTolerance> = {};
  for (const o of manifest.outputs) {
    out[o.name] = !isFloatDtype(o.dtype)
      ? { mode: "elementwise", abs: 0, rel: 0 }
      : (o.tolerance ?? { mode: "elementwise", abs: manifest.tolerance ?? 0, rel: 0 });
  }
  return out;
}

/** Whether the manifest uses per-output scale or tolerance (then they enter execConfigHash). */
export function hasPerOutputJudging(manifest: ModelManifest): boolean {
  return manifest.outputs.some(
    (o) => o.scale !== undefined || o.tolerance !== undefined || !isFloatDtype(o.dtype),
  );
}

/** Parses a manifest, or throws ModelLoadError listing every problem with its JSON path. */
export function parseManifest(json: unknown, source = "manifest"): ModelManifest {
  const result = manifestSchema.safeParse(json);
  if (result.success) return result.data;
  const problems = result.error.issues.map(
    (i) => `${i.path.length > 0 ? i.path.join(".") : "(root)"}: ${i.message}`,
  );
  throw new ModelLoadError(`invalid model manifest ${source}`, {
    details: { source, problems },
    hint: "see docs/inference-tee.md, section 'Model manifest'",
  });
}

// ---------------------------------------------------------------- size bounds

/** Bytes per value of each input dtype in the canonical encoding. */
export const DTYPE_BYTES = {
  float32: 4,
  float16: 2,
  int64: 8,
  int32: 4,
  int8: 1,
  uint8: 1,
  bool: 1,
} as const;

/**
 * Room for everything in a request besides the values: names, dims, the model id, the receipt
 * and signatures around them.
 */
const ENVELOPE_BYTES = 64 * 1024;

/**
 * The most one value takes as JSON: the longest float32 (`-1.17549435e-38`) or quoted int64
 * (`"-9223372036854775808"`) with its comma.
 */
export const JSON_BYTES_PER_VALUE = 24;

export interface InputBounds {
  /** Values over all inputs, at most. */
  values: number;
  /** Canonical data bytes over all inputs, at most (maxInputBytes when it is smaller). */
  bytes: number;
}

function valuesAtMax(manifest: ModelManifest, shape: ReadonlyArray<number | string>): number {
  return shape.reduce<number>((n, d) => n * (typeof d === "number" ? d : boundOf(manifest, d)), 1);
}

/** The largest input a request for this model can carry: its shapes at maxBatch, or maxInputBytes. */
export function inputBounds(manifest: ModelManifest): InputBounds {
  let values = 0;
  let bytes = 0;
  for (const spec of manifest.inputs) {
    const n = valuesAtMax(manifest, spec.shape);
    values += n;
    bytes += n * DTYPE_BYTES[spec.dtype];
  }
  const cap = manifest.maxInputBytes;
  if (cap !== undefined && cap < bytes)
    return { values: Math.min(values, Math.floor(cap / 4)), bytes: cap };
  return { values, bytes };
}

/** The largest POST /v1/inferences body (JSON) a request for this model needs. */
export function jsonRequestBound(manifest: ModelManifest): number {
  return ENVELOPE_BYTES + JSON_BYTES_PER_VALUE * inputBounds(manifest).values;
}

/** The largest POST /v1/inferences body in the binary encoding a request for this model needs. */
export function binaryRequestBound(manifest: ModelManifest): number {
  return ENVELOPE_BYTES + inputBounds(manifest).bytes;
}

/**
 * The largest receipt the enclave receives for this model (POST /v1/receipts, one item): the
 * inputs and the quantised outputs, both as JSON.
 */
export function enclaveItemBound(manifest: ModelManifest): number {
  const outputs = manifest.outputs.reduce((n, o) => n + valuesAtMax(manifest, o.shape), 0);
  return ENVELOPE_BYTES + JSON_BYTES_PER_VALUE * (inputBounds(manifest).values + outputs);
}
