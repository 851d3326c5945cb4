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
    outputs: z.array(tensorSpec(z.literal("float32"))).min(1),
    /** Outputs are stored as round(x * outputScale) in int64 before hashing. */
    outputScale: z
      .number()
      .int()
      .min(1)
      .max(2 ** 32 - 1),
    /** Largest per-element difference, in quantised units, still counted as agreement. */
    tolerance: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1),
    /** Largest value any symbolic dimension may take in one run. */
    maxBatch: z
      .number()
      .int()
      .min(1)
      .max(1 << 16),
  })
  .superRefine((m, ctx) => {
    const seen = new Set<string>();
    for (const t of [...m.inputs, ...m.outputs]) {
      if (seen.has(t.name))
        ctx.addIssue({ code: "custom", message: `tensor name "${t.name}" is used twice` });
      seen.add(t.name);
    }
  });

export type ModelManifest = z.infer<typeof manifestSchema>;
export type TensorSpec = ModelManifest["inputs"][number];

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
