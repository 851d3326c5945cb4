/**
 * The relayer's HTTP API (fastify).
 *
 *   POST /v1/inferences        { modelId, inputs, idempotencyKey? } -> signed receipt + the enclave's answer
 *                              (the request id is derived from the key: pipeline.ts httpRequestId);
 *                              or application/octet-stream: the inputs' canonical encoding, with
 *                              x-opg-model-id and x-opg-idempotency-key headers
 *   GET  /v1/receipts/:id      the stored receipt; once anchored, the receipt bundle (batch, proof, tx)
 *   GET  /v1/models            the models this node serves, and those registered in ModelRegistry
 *                              (each with this node's manifest, or "registered, not served here")
 *   GET  /healthz  /readyz  /metrics
 *
 * Bodies over `bodyLimit` answer 413 (PayloadTooLargeError, details.limit), and so do requests
 * the enclave refuses as too large (EnclavePayloadTooLargeError, details.limit: the enclave's);
 * schema violations 400, unknown ids 404; every error is { error, message, details }.
 */
import Fastify, { type FastifyInstance } from "fastify";

import { BaseError, InputError } from "../common/errors.js";
import { stringifyJson } from "../common/json.js";
import { buildReceiptBundle, type ReceiptBundle } from "../chain/bundle.js";
import type { RegisteredModel } from "../chain/models.js";
import type { InferenceEngine } from "../inference/engine.js";
import { specHash } from "../inference/hub.js";
import {
  binaryRequestBound,
  inputBounds,
  jsonRequestBound,
  type ModelManifest,
} from "../inference/manifest.js";
import { decodeInputs, inputsToJson, type TensorJson } from "../inference/tensor.js";
import type { RelayerMetrics } from "./metrics.js";
import { httpRequestId, newIdempotencyKey, type InferencePipeline } from "./pipeline.js";
import { JobStore, type StoredJob } from "./store.js";
import type { JobWriter } from "./writer.js";

export interface ApiOptions {
  pipeline: InferencePipeline;
  writer: JobWriter;
  store: JobStore;
  engine: InferenceEngine;
  metrics: RelayerMetrics;
  chainId: bigint;
  ledger: string;
  /** The GPU node this relayer serves (request ids are derived with it). */
  node: string;
  /** Largest JSON body (413 above). */
  bodyLimit: number;
  /** Largest binary body (default: binaryRequestBodyLimit of the models served). */
  binaryBodyLimit?: number;
  proofOf: (job: StoredJob) => string[];
  /** The models registered in ModelRegistry (GET /v1/models `registered`); absent: not listed. */
  registeredModels?: () => Promise<RegisteredModel[]>;
  /** Null when ready, else why not (for /readyz). */
  notReady: () => Promise<string | null>;
  onAccepted?: () => void;
}

const BYTES32 = "^0x[0-9a-fA-F]{64}$";

/** The smallest default body limit, whatever the models. */
export const MIN_BODY_LIMIT = 256 * 1024;
/** The fewest values a tensor may hold under the schema, whatever the models. */
const MIN_SCHEMA_VALUES = 1_000_000;

/**
 * The default api.bodyLimitBytes: what a JSON request for the largest of these models needs
 * (manifest.ts jsonRequestBound), and at least MIN_BODY_LIMIT.
 */
export function requestBodyLimit(manifests: readonly ModelManifest[]): number {
  return Math.max(MIN_BODY_LIMIT, ...manifests.map(jsonRequestBound));
}

/**
 * The default binary body limit: the largest model's inputs in the canonical encoding
 * (manifest.ts binaryRequestBound), and at least MIN_BODY_LIMIT.
 */
export function binaryRequestBodyLimit(manifests: readonly ModelManifest[]): number {
  return Math.max(MIN_BODY_LIMIT, ...manifests.map(binaryRequestBound));
}

/** A binary POST /v1/inferences: the body is the inputs' canonical encoding (tensor.ts). */
export const BINARY_CONTENT_TYPE = "application/octet-stream";
export const MODEL_ID_HEADER = "x-opg-model-id";
export const IDEMPOTENCY_KEY_HEADER = "x-opg-idempotency-key";

/** JSON bodies are checked against the schema; binary ones by decodeInputs. */
function submitSchema(maxValues: number) {
  return {
    body: { content: { "application/json": { schema: jsonSubmitSchema(maxValues) } } },
  } as const;
}

function jsonSubmitSchema(maxValues: number) {
  return {
    type: "object",
    additionalProperties: false,
    required: ["modelId", "inputs"],
    properties: {
      modelId: { type: "string", pattern: BYTES32 },
      /**
       * Optional client-chosen key: submitting it again returns the stored receipt (idempotent).
       * The request id is derived from it, so it can never be an on-chain request's id.
       */
      idempotencyKey: { type: "string", minLength: 1, maxLength: 128 },
      inputs: {
        type: "object",
        minProperties: 1,
        maxProperties: 64,
        additionalProperties: {
          type: "object",
          additionalProperties: false,
          required: ["dims", "data"],
          properties: {
            dims: { type: "array", maxItems: 8, items: { type: "integer", minimum: 1 } },
            data: {
              type: "array",
              maxItems: maxValues,
              items: {
                anyOf: [
                  { type: "number" },
                  { type: "string", pattern: "^-?[0-9]{1,19}$" },
                  { type: "boolean" },
                ],
              },
            },
          },
        },
      },
    },
  } as const;
}

function isBinary(contentType: string | undefined): boolean {
  return contentType?.split(";")[0]?.trim().toLowerCase() === BINARY_CONTENT_TYPE;
}

/** The answer to a submit and a lookup: the job and, when anchored, its receipt bundle. */
function view(job: StoredJob, chainId: bigint, ledger: string, proofOf: ApiOptions["proofOf"]) {
  const anchored = job.batch !== null && job.batch.state === "anchored";
  let bundle: ReceiptBundle | null = null;
  if (anchored && job.batch !== null && job.batch.batchId !== null && job.batch.anchorTx !== null) {
    bundle = buildReceiptBundle({
      chainId,
      ledger,
      receipt: job.receipt,
      nodeSignature: job.nodeSignature,
      ...(job.verdict !== null && job.enclaveSignature !== null
        ? { verdict: job.verdict, enclaveSignature: job.enclaveSignature }
        : {}),

      batchId: job.batch.batchId,
      proof: proofOf(job),
      anchorTx: job.batch.anchorTx,
    });
  }
  return {
    requestId: job.requestId,
    status: job.state === "rejected" ? "rejected" : anchored ? "anchored" : job.state,
    receipt: job.receipt,
    nodeSignature: job.nodeSignature,
    outputs: job.outputs,
    verification: job.selected
      ? {
          selected: true,
          enclave: job.enclave,
          verdict: job.verdict,
          enclaveSignature: job.enclaveSignature,
        }
      : { selected: false, enclave: job.enclave },
    batch:
      job.batch === null
        ? null
        : {
            enclave: job.batch.enclave,
            sequence: job.batch.sequence,
            leafIndex: job.batch.leafIndex,
            batchId: job.batch.batchId,
            anchorTx: job.batch.anchorTx,
            state: job.batch.state,
          },
    bundle,
  };
}

export function createApi(o: ApiOptions): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: o.bodyLimit,
    // Fastify's defaults strip unknown fields and coerce types (true -> 1, "2" -> 2) silently; a
    // request that does not match the schema is refused instead (400), as documented.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false } },
  });
  const binaryLimit =
    o.binaryBodyLimit ?? binaryRequestBodyLimit(o.engine.list().map((m) => m.manifest));
  app.addContentTypeParser(
    BINARY_CONTENT_TYPE,
    { parseAs: "buffer", bodyLimit: binaryLimit },
    (_req, body, done) => done(null, body),
  );
  const send = (reply: { type(t: string): unknown; send(b: string): unknown }, body: unknown) => {
    reply.type("application/json");
    return reply.send(stringifyJson(body, 0));
  };

  app.addHook("onResponse", async (req, reply) => {
    o.metrics.requests.inc({
      route: req.routeOptions.url ?? "unknown",
      status: String(reply.statusCode),
    });
  });

  app.setErrorHandler((error, req, reply) => {
    if (error instanceof BaseError) {
      return send(reply.status(error.httpStatus), {
        error: error.name,
        message: error.message,
        details: error.details,
      });
    }
    const e = error as {
      statusCode?: number;
      validation?: unknown;
      code?: string;
      message: string;
    };
    if (e.validation !== undefined) {
      return send(reply.status(400), {
        error: "InputError",
        message: `invalid request: ${e.message}`,
        details: {},
      });
    }
    if (e.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      const binary = isBinary(req.headers["content-type"]);
      const limit = binary ? binaryLimit : o.bodyLimit;
      return send(reply.status(413), {
        error: "PayloadTooLargeError",
        message: `request body over ${limit} bytes (${binary ? "api.binaryBodyLimitBytes" : "api.bodyLimitBytes"})`,
        details: { limit },
      });
    }
    if (typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) {
      return send(reply.status(e.statusCode), {
        error: e.code ?? "HttpError",
        message: e.message,
        details: {},
      });
    }
    o.metrics.failures.inc({ stage: "api" });
    return send(reply.status(500), {
      error: "InternalError",
      message: "internal error",
      details: {},
    });
  });
  app.setNotFoundHandler((req, reply) =>
    send(reply.status(404), {
      error: "NotFound",
      message: `no route ${req.method} ${req.url}`,
      details: {},
    }),
  );

  // A tensor may hold as many values as the largest model's inputs allow (the body limit bounds
  // them all the same).
  const maxValues = Math.max(
    MIN_SCHEMA_VALUES,
    ...o.engine.list().map((m) => inputBounds(m.manifest).values),
  );
  app.post("/v1/inferences", { schema: submitSchema(maxValues) }, async (req, reply) => {
    const started = process.hrtime.bigint();
    const body = Buffer.isBuffer(req.body)
      ? binarySubmit(req.body, req.headers)
      : (req.body as {
          modelId: string;
          inputs: Record<string, TensorJson>;
          idempotencyKey?: string;
        });
    const requestId = httpRequestId(o.node, body.idempotencyKey ?? newIdempotencyKey());
    const existing = body.idempotencyKey === undefined ? null : o.store.getJob(requestId);
    // A job recovered from the enclave's log has no outputs yet: the request runs again, and the
    // enclave's logged receipt for it is the answer (pipeline.ts), which completes the job.
    if (existing !== null && !JobStore.isRecovered(existing))
      return send(reply, view(existing, o.chainId, o.ledger, o.proofOf));
    const job = await o.pipeline.execute({
      requestId,
      modelId: body.modelId,
      inputs: body.inputs,
      source: "http",
    });
    const inserted = await o.writer.write(job);
    o.onAccepted?.();
    o.metrics.submitLatency.observe(Number(process.hrtime.bigint() - started) / 1e9);
    // Stored now: answered as computed. Not stored: the same request id arrived twice at once and
    // the other copy was stored first; that one is the answer (the same job for every caller).
    const stored = inserted ? null : o.store.getJob(requestId);
    return send(reply, view(stored ?? { ...job, batch: null }, o.chainId, o.ledger, o.proofOf));
  });

  /** A binary submit as the JSON one: the model and the key from headers, the inputs decoded. */
  function binarySubmit(
    bytes: Buffer,
    headers: Record<string, string | string[] | undefined>,
  ): { modelId: string; inputs: Record<string, TensorJson>; idempotencyKey?: string } {
    const modelId = headers[MODEL_ID_HEADER];
    const key = headers[IDEMPOTENCY_KEY_HEADER];
    if (typeof modelId !== "string" || !new RegExp(BYTES32).test(modelId)) {
      throw new InputError(`a binary request needs ${MODEL_ID_HEADER}: 0x + 64 hex digits`, {
        details: { [MODEL_ID_HEADER]: modelId ?? null },
      });
    }
    if (key !== undefined && (typeof key !== "string" || key.length < 1 || key.length > 128)) {
      throw new InputError(`${IDEMPOTENCY_KEY_HEADER} must be 1 to 128 characters`, {
        details: {},
      });
    }
    const tensors = decodeInputs(bytes);
    const model = o.engine.list().find((m) => m.modelId.toLowerCase() === modelId.toLowerCase());
    // An unknown model: nothing to check dtypes against; the pipeline answers 404 for it.
    const inputs = inputsToJson(tensors, model?.manifest);
    return { modelId, inputs, ...(key === undefined ? {} : { idempotencyKey: key }) };
  }

  app.get("/v1/receipts/:requestId", async (req, reply) => {
    const { requestId } = req.params as { requestId: string };
    if (!new RegExp(BYTES32).test(requestId)) {
      return send(reply.status(400), {
        error: "InputError",
        message: "requestId must be 0x + 64 hex digits",
        details: { requestId },
      });
    }
    const job = o.store.getJob(requestId);
    if (job === null) {
      return send(reply.status(404), {
        error: "NotFound",
        message: `no receipt for request ${requestId}`,
        details: { requestId },
      });
    }
    return send(reply, view(job, o.chainId, o.ledger, o.proofOf));
  });

  app.get("/v1/models", async (_req, reply) => {
    const served = o.engine.list();
    // The registry's models, each with this node's manifest when it serves that modelId.
    let registered: unknown[] | null = null;
    let registryError: string | undefined;
    if (o.registeredModels !== undefined) {
      try {
        registered = (await o.registeredModels()).map((r) => {
          const local = served.find((m) => m.modelId === r.modelId.toLowerCase());
          return {
            ...r,
            served: local !== undefined,
            status: local === undefined ? "registered, not served here" : "served",
            manifest: local?.manifest ?? null,
            // Whether the registered spec hash is this manifest's (hub.ts specHash).
            specMatches: local === undefined ? null : specHash(local.manifest) === r.specHash,
          };
        });
      } catch (error) {
        registryError = error instanceof Error ? error.message : String(error);
      }
    }
    const ids = new Set(
      (registered as Array<{ modelId: string }> | null)?.map((r) => r.modelId.toLowerCase()),
    );
    return send(reply, {
      models: served.map((m) => ({
        modelId: m.modelId,
        name: m.manifest.name,
        description: m.manifest.description ?? null,
        inputs: m.manifest.inputs,
        outputs: m.manifest.outputs,
        outputScale: m.manifest.outputScale,
        tolerance: m.manifest.tolerance,
        // In ModelRegistry (null: the registry was not read).
        registered: registered === null ? null : ids.has(m.modelId),
      })),
      registered,
      ...(registryError === undefined ? {} : { registryError }),
      // Folders that did not load, by name, so a model missing here is explained.
      failures: o.engine.failures.map(({ dir, error, message }) => ({ dir, error, message })),
    });
  });

  app.get("/healthz", async (_req, reply) => send(reply, { ok: true }));
  app.get("/readyz", async (_req, reply) => {
    const why = await o.notReady();
    return send(reply.status(why === null ? 200 : 503), {
      ready: why === null,
      ...(why === null ? {} : { reason: why }),
    });
  });
  app.get("/metrics", async (_req, reply) => {
    reply.type(o.metrics.registry.contentType);
    return reply.send(await o.metrics.registry.metrics());
  });
  return app;
}
