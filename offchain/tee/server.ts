/**
 * The enclave's HTTP API, meant to run as its own process (`opg enclave start`). Narrow on
 * purpose: nothing here can read or export the signing key or the sampling secret.
 *
 *   GET  /attestation?nonce=<hex>  -> { document (base64), enclave, publicKey, userData }
 *   GET  /info                     -> { enclave, chainId, ledger, models, devRootPem? }
 *   POST /verify      { receipt, inputs, outputs?, sampleRate? } -> signed verdict | { selected: false }
 *   POST /verify-batch { requests: [verify request, ...] } (1..MAX_VERIFY_BATCH)
 *                      -> { results: [{ ok: true, result } | { ok: false, status, error, message, details }] }
 *                      in the same order; a bad request answers its own error, the others still count
 *   POST /sign-batch  { sequence, root, count, reexecuted, usageHash } -> { batch, digest, signature }
 *
 * Errors answer { error, message, details } with the error's HTTP status (400 bad input,
 * 404 unknown model, 409 conflicting batch, 422 verification failure).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

import type { Logger } from "pino";

import { BaseError, InputError } from "../common/errors.js";
import { stringifyJson } from "../common/json.js";
import type { Enclave } from "./enclave.js";
import { batchRequestSchema, parseWith, verifyRequestSchema } from "./schemas.js";

const MAX_BODY = 4 * 1024 * 1024;
/** Most requests in one POST /verify-batch. */
export const MAX_VERIFY_BATCH = 1024;

export interface EnclaveServerOptions {
  enclave: Enclave;
  /** Published for development enclaves so clients can verify their documents. */
  devRootPem?: string;
  logger: Logger;
}

class HttpError extends InputError {
  override name = "HttpError";
  override readonly httpStatus: number;
  constructor(message: string, status: number) {
    super(message);
    this.httpStatus = status;
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(`request body over ${MAX_BODY} bytes`, 413);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
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

export function createEnclaveServer(options: EnclaveServerOptions): Server {
  const { enclave, logger } = options;

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://enclave");
    const key = `${req.method ?? "GET"} ${url.pathname}`;
    switch (key) {
      case "GET /attestation": {
        const nonce = url.searchParams.get("nonce");
        if (nonce === null || !/^(0x)?([0-9a-fA-F]{2})+$/.test(nonce))
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
          models: enclave.models,
          ...(options.devRootPem !== undefined ? { devRootPem: options.devRootPem } : {}),
        });
      case "POST /verify": {
        const body = parseWith(verifyRequestSchema, await readJson(req), "verify request");
        const result = await enclave.verify(body);
        logger.info(
          {
            at: "EnclaveServer#verify",
            requestId: body.receipt.requestId,
            selected: result.selected,
            agree: result.selected ? result.verdict.agree : null,
          },
          "verify",
        );
        return send(res, 200, result);
      }
      case "POST /verify-batch": {
        const body = (await readJson(req)) as { requests?: unknown } | null;
        const requests = body?.requests;
        if (
          !Array.isArray(requests) ||
          requests.length === 0 ||
          requests.length > MAX_VERIFY_BATCH ||
          Object.keys(body ?? {}).length !== 1
        ) {
          throw new InputError(
            `verify-batch body must be { requests: [...] } with 1..${MAX_VERIFY_BATCH} requests`,
            {
              details: {
                requests: Array.isArray(requests) ? requests.length : typeof requests,
                keys: Object.keys(body ?? {}),
              },
            },
          );
        }
        const results = await enclave.verifyMany(requests);
        const failed = results.filter((r) => !r.ok).length;
        const disagreed = results.filter(
          (r) => r.ok && r.result.selected && !r.result.verdict.agree,
        ).length;
        if (failed > 0 || disagreed > 0) {
          logger.warn(
            { at: "EnclaveServer#verifyBatch", requests: results.length, failed, disagreed },
            "verify batch with failures or disagreements",
          );
        } else {
          logger.debug(
            { at: "EnclaveServer#verifyBatch", requests: results.length },
            "verify batch",
          );
        }
        return send(res, 200, { results });
      }
      case "POST /sign-batch": {
        const body = parseWith(batchRequestSchema, await readJson(req), "batch");
        const signed = enclave.signBatch(body);
        logger.info(
          {
            at: "EnclaveServer#signBatch",
            sequence: signed.batch.sequence.toString(),
            root: signed.batch.root,
          },
          "batch signed",
        );
        return send(res, 200, signed);
      }
      default:
        throw new HttpError(`no route ${key}`, 404);
    }
  }

  return createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
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
