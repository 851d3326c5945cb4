/**
 * The enclave's HTTP API, meant to run as its own process (`opg enclave start`). Narrow on
 * purpose: nothing here can read or export the signing key or the sampling secret.
 *
 * Public (anyone may read; nothing here changes state):
 *   GET  /info                     -> { enclave, chainId, ledger, clientNode, pcrs, measurement,
 *                                       sampleRatePpm, models, modelFailures, stats, devRootPem? }
 *   GET  /attestation?nonce=<hex>  -> { document (base64), enclave, publicKey, userData }
 *   GET  /evidence?after=<index>   -> { evidence: [...] }: contradicted receipts and double receipts,
 *                                     with the signatures anyone needs to report them on chain
 *
 * Only for the client node (x-opg-auth, see auth.ts; 401 without it, 403 for anyone else):
 *   POST /v1/receipts    { items: [{ receipt, nodeSignature, inputs, outputs, force? }] } (1..1024)
 *                        -> { results: [{ ok: true, result } | { ok: false, status, error, message, details }] }
 *                        in order; each item is judged on its own; a repeat answers what was logged
 *   POST /v1/batches     { maxSize } -> { batch: SignedBatch | null }: the enclave cuts its next batch
 *   GET  /v1/batches?from=<sequence> -> { batches: [SignedBatch] }: signed, not yet seen anchored
 *   POST /v1/relayer     {} -> { relayer }: a relayer claims the enclave before it starts
 *   DELETE /v1/relayer   -> { released }: a relayer stopping cleanly frees it
 *
 * A request carrying `x-opg-relayer: <id>` is served only while no other relayer holds the enclave
 * (409 RelayerConflictError; Enclave.admitRelayer): one relayer, one store, per enclave.
 *   GET  /v1/receipts/<requestId>    -> the logged receipt and its answer, or 404
 *
 * Every authenticated call is idempotent or harmless when replayed inside the credential's window:
 * a receipt is logged once, and cutting a batch only cuts it sooner.
 *
 * Errors answer { error, message, details } with the error's HTTP status (400 bad input,
 * 401/403 not the client, 404 unknown, 409 another receipt for the request or another relayer, 413 body too large,
 * 422 verification failure, 503 the bounded state is full).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

import type { Logger } from "pino";

import { BaseError, InputError } from "../common/errors.js";
import { stringifyJson } from "../common/json.js";
import { measurementFromPcrs } from "../staking/units.js";
import { AUTH_HEADER, RELAYER_HEADER, RELAYER_ID_PATTERN, authenticate } from "./auth.js";
import type { Clock } from "../chain/clock.js";
import { enclaveItemBound, type ModelManifest } from "../inference/manifest.js";
import type { Enclave } from "./enclave.js";

/** Default largest request body. */
export const DEFAULT_MAX_BODY = 4 * 1024 * 1024;
/**
 * The default --max-body: one receipt for the largest of these models (manifest.ts
 * enclaveItemBound: its inputs and outputs as JSON), and at least DEFAULT_MAX_BODY.
 */
export function enclaveBodyLimit(manifests: readonly ModelManifest[]): number {
  return Math.max(DEFAULT_MAX_BODY, ...manifests.map(enclaveItemBound));
}

/** Most receipts in one POST /v1/receipts. */
export const MAX_SUBMIT_ITEMS = 1024;

export interface EnclaveServerOptions {
  enclave: Enclave;
  clock: Clock;
  /** PCR0..2 of the image (hex), published on /info. */
  pcrs?: Record<number, string>;
  /** Published for development enclaves so clients can verify their documents. */
  devRootPem?: string;
  maxBodyBytes?: number;
  logger: Logger;
}

class HttpError extends InputError {
  override name = "HttpError";
  override readonly httpStatus: number;
  constructor(message: string, status: number, details: Record<string, unknown> = {}) {
    super(message, { details });
    this.httpStatus = status;
  }
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limit) {
    req.resume();
    throw new HttpError(`request body over ${limit} bytes`, 413, { limit, length: declared });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(`request body over ${limit} bytes`, 413, { limit });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (cause) {
    throw new InputError("request body is not valid JSON", { cause });
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = stringifyJson(body, 0);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

function integerParam(url: URL, name: string, fallback: bigint): bigint {
  const value = url.searchParams.get(name);
  if (value === null) return fallback;
  if (!/^[0-9]{1,20}$/.test(value)) {
    throw new InputError(`${name} must be a non-negative integer`, { details: { [name]: value } });
  }
  return BigInt(value);
}

export function createEnclaveServer(options: EnclaveServerOptions): Server {
  const { enclave, logger, clock } = options;
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const measurement =
    options.pcrs === undefined
      ? null
      : measurementFromPcrs([0, 1, 2].map((i) => options.pcrs![i] ?? ""));

  /** The body, once the request is shown to come from the client node. */
  async function authenticated(req: IncomingMessage, url: URL): Promise<Buffer> {
    const body = await readBody(req, maxBody);
    const header = req.headers[AUTH_HEADER];
    const signer = authenticate(
      Array.isArray(header) ? header[0] : header,
      enclave.address,
      req.method ?? "GET",
      url.pathname + url.search,
      body,
      clock.now(),
    );
    await enclave.checkClient(signer, "x-opg-auth");
    const relayer = relayerOf(req);
    if (relayer !== null) enclave.admitRelayer(relayer);
    return body;
  }

  /** The request's x-opg-relayer id, null without one; a malformed one is a 400. */
  function relayerOf(req: IncomingMessage): string | null {
    const raw = req.headers[RELAYER_HEADER];
    const id = Array.isArray(raw) ? raw[0] : raw;
    if (id === undefined) return null;
    if (!RELAYER_ID_PATTERN.test(id)) {
      throw new InputError(`malformed ${RELAYER_HEADER} header`, {
        details: { expected: RELAYER_ID_PATTERN.source },
      });
    }
    return id;
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://enclave");
    } catch {
      throw new HttpError("malformed request URI", 400);
    }
    const key = `${req.method ?? "GET"} ${url.pathname}`;
    switch (key) {
      case "GET /attestation": {
        const nonce = url.searchParams.get("nonce");
        if (nonce === null || !/^(0x)?([0-9a-fA-F]{2}){1,64}$/.test(nonce))
          throw new InputError("nonce query parameter must be hex bytes", { details: { nonce } });
        const document = enclave.attestation(Buffer.from(nonce.replace(/^0x/, ""), "hex"));
        return send(res, 200, {
          document: document.toString("base64"),
          enclave: enclave.address,
          publicKey: Buffer.from(enclave.publicKey).toString("hex"),
          userData: Buffer.from(enclave.userData).toString("hex"),
        });
      }
      case "GET /info":
        return send(res, 200, {
          enclave: enclave.address,
          chainId: enclave.domain.chainId,
          ledger: enclave.domain.verifyingContract,
          clientNode: enclave.clientNode,
          ...(options.pcrs !== undefined ? { pcrs: options.pcrs, measurement } : {}),
          sampleRatePpm: enclave.sampleRatePpm,
          receiptWindowSeconds: enclave.limits.receiptWindowSeconds,
          models: enclave.models,
          modelFailures: enclave.modelFailures,
          stats: enclave.stats(),
          relayer: relayerView(enclave.relayer()),
          ...(options.devRootPem !== undefined ? { devRootPem: options.devRootPem } : {}),
        });
      case "GET /evidence": {
        const after = integerParam(url, "after", 0n);
        return send(res, 200, { evidence: enclave.evidence(Number(after)) });
      }
      case "POST /v1/receipts": {
        const body = parseJson(await authenticated(req, url)) as { items?: unknown } | null;
        const items = body?.items;
        if (
          !Array.isArray(items) ||
          items.length === 0 ||
          items.length > MAX_SUBMIT_ITEMS ||
          Object.keys(body ?? {}).length !== 1
        ) {
          throw new InputError(
            `body must be { items: [...] } with 1..${MAX_SUBMIT_ITEMS} receipts`,
            {
              details: {
                items: Array.isArray(items) ? items.length : typeof items,
                keys: Object.keys(body ?? {}),
              },
            },
          );
        }
        const results = await enclave.submit(items);
        const failed = results.filter((r) => !r.ok).length;
        if (failed > 0) {
          logger.warn(
            { at: "EnclaveServer#receipts", items: results.length, failed },
            "receipts refused",
          );
        }
        return send(res, 200, { results });
      }
      case "POST /v1/batches": {
        const body = parseJson(await authenticated(req, url)) as { maxSize?: unknown } | null;
        const maxSize = body?.maxSize;
        if (typeof maxSize !== "number" || Object.keys(body ?? {}).length !== 1) {
          throw new InputError("body must be { maxSize: <integer> }", {
            details: { keys: Object.keys(body ?? {}) },
          });
        }
        const batch = await enclave.cutBatch(maxSize);
        if (batch !== null) {
          logger.info(
            {
              at: "EnclaveServer#batches",
              sequence: batch.batch.sequence.toString(),
              count: batch.batch.count,
              reexecuted: batch.batch.reexecuted,
              root: batch.batch.root,
            },
            "batch cut and signed",
          );
        }
        return send(res, 200, { batch });
      }
      case "POST /v1/relayer": {
        // A relayer claims (or renews) the enclave before it starts: 409 while another holds it.
        if (relayerOf(req) === null) {
          throw new InputError(`POST /v1/relayer needs the ${RELAYER_HEADER} header`, {
            details: { header: RELAYER_HEADER },
          });
        }
        await authenticated(req, url);
        return send(res, 200, { relayer: relayerView(enclave.relayer()) });
      }
      case "DELETE /v1/relayer": {
        // A relayer stopping cleanly frees the enclave for the next one at once.
        const id = relayerOf(req);
        await authenticated(req, url);
        return send(res, 200, { released: id !== null && enclave.releaseRelayer(id) });
      }
      case "GET /v1/batches": {
        await authenticated(req, url);
        return send(res, 200, { batches: enclave.openBatches(integerParam(url, "from", 0n)) });
      }
      default: {
        const m = /^\/v1\/receipts\/(0x[0-9a-fA-F]{64})$/.exec(url.pathname);
        if (req.method === "GET" && m !== null) {
          await authenticated(req, url);
          const logged = enclave.logged(m[1]!);
          if (logged === null) {
            throw new HttpError(`no logged receipt for request ${m[1]}`, 404, {
              requestId: m[1],
            });
          }
          return send(res, 200, logged);
        }
        throw new HttpError(`no route ${key}`, 404);
      }
    }
  }

  return createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (error instanceof BaseError) {
        send(res, error.httpStatus, {
          error: error.name,
          message: error.message,
          details: error.details,
        });
      } else {
        logger.error({ at: "EnclaveServer#route", err: error }, "internal error");
        send(res, 500, { error: "InternalError", message: "internal error" });
      }
    });
  });
}

/** Listens on host:port (port 0 = any free port); resolves with the bound URL. */
/** The holder of the enclave as /info and POST /v1/relayer show it. */
function relayerView(
  held: { id: string; idleMs: number; leaseMs: number } | null,
): { id: string; idleSeconds: number; leaseSeconds: number } | null {
  if (held === null) return null;
  return {
    id: held.id,
    idleSeconds: Math.round(held.idleMs / 1000),
    leaseSeconds: Math.round(held.leaseMs / 1000),
  };
}

export async function listen(server: Server, port: number, host = "127.0.0.1"): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return `http://${host}:${address.port}`;
}
