/**
 * The model manifest (models/<name>/manifest.json): what a model takes and returns, how its
 * outputs are quantised before hashing, and how far a re-execution may differ. Validated on load.
 */
import { z } from "zod";

import { ModelLoadError } from "./errors.js";

export const MANIFEST_SCHEMA_ID = "opg.model-manifest/1";

/** Input element types accepted by the canonical encoding. */
export const INPUT_DTYPES = ["float32", "int32", "int64"] as const;
export type InputDtype = (typeof INPUT_DTYPES)[number];

const name = z
  .string()
  .min(1)
  .max(128)
  .regex(
    /^[A-Za-z_][A-Za-z0-9_.:/-]*$/,
    "tensor names are identifiers ([A-Za-z_][A-Za-z0-9_.:/-]*)",
  );

/** A dimension: a fixed size, or a symbolic name bound at run time (the same name, the same size). */
const dim = z.union([
  z
    .number()
    .int()
    .min(1)
    .max(1 << 20),
  name,
]);

const tensorSpec = <D extends z.ZodType>(dtype: D) =>
  z.strictObject({ name, dtype, shape: z.array(dim).min(1).max(8) });

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
  dtype: z.literal("float32"),
  shape: z.array(dim).min(1).max(8),
  /** This output's fixed-point scale (default: the manifest's outputScale). */
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
    /** Largest value any symbolic dimension may take in one run. */
    maxBatch: z
      .number()
      .int()
      .min(1)
      .max(1 << 16),
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
    const seen = new Set<string>();
    for (const t of [...m.inputs, ...m.outputs]) {
      if (seen.has(t.name))
        ctx.addIssue({ code: "custom", message: `tensor name "${t.name}" is used twice` });
      seen.add(t.name);
    }
    m.outputs.forEach((o, i) => {
      const at = (field: string): Array<string | number> => ["outputs", i, "tolerance", field];
      const t = o.tolerance;
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

/** The scale output `spec` is quantised at: its own, else the manifest's outputScale. */
export function scaleOf(manifest: ModelManifest, spec: OutputSpec): number {
  return spec.scale ?? manifest.outputScale;
}

/**
 * How each output is judged, by name: its own tolerance, else elementwise within the manifest's
 * single `tolerance` (abs, rel 0), which is what a manifest without per-output fields always meant.
 */
export function tolerancesOf(manifest: ModelManifest): Record<string, OutputTolerance> {
  const out: Record<string, OutputTolerance> = {};
  for (const o of manifest.outputs) {
    out[o.name] = o.tolerance ?? { mode: "elementwise", abs: manifest.tolerance ?? 0, rel: 0 };
  }
  return out;
}

/** Whether the manifest uses per-output scale or tolerance (then they enter execConfigHash). */
export function hasPerOutputJudging(manifest: ModelManifest): boolean {
  return manifest.outputs.some((o) => o.scale !== undefined || o.tolerance !== undefined);
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
export const DTYPE_BYTES = { float32: 4, int32: 4, int64: 8 } as const;

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
  return shape.reduce<number>((n, d) => n * (typeof d === "number" ? d : manifest.maxBatch), 1);
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
