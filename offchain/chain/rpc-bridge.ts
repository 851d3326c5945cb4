/**
 * JSON-RPC over HTTP in front of an EIP-1193 provider (Hardhat's in-process chain): what lets
 * separate services (the relayer, `opg receipt verify`) reach an embedded chain as they would reach
 * a node. Single and batch requests; a provider's failure is answered as that call's JSON-RPC error.
 *
 * `startRpcBridge` forwards every method, writes included (eth_sendRawTransaction, evm_mine ...): it
 * listens on loopback only and is meant for local runs (`npm run demo`). The explorer's read-only
 * passthrough (offchain/explorer/server.ts) filters the methods first, then answers with the same
 * functions. Both take a body only when it is unambiguous JSON-RPC (no key twice in one object, no
 * key a call does not have) and pass on each call rebuilt from its checked fields.
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";

import { InputError } from "../common/errors.js";

/** An EIP-1193 provider (Hardhat's in-process network connection, a browser wallet, ...). */
export interface Eip1193Provider {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
}

/**
 * One checked JSON-RPC call: what is forwarded is built from these fields alone (never the body
 * as it came), so what was checked is what the node receives.
 */
export interface RpcCall {
  jsonrpc: "2.0";
  /** Absent for a notification. */
  id?: string | number | null;
  method: string;
  params: unknown[];
}

/** JSON-RPC 2.0 error codes used here. */
export const RPC_PARSE_ERROR = -32700;
export const RPC_INVALID_REQUEST = -32600;
export const RPC_METHOD_NOT_FOUND = -32601;
export const RPC_INVALID_PARAMS = -32602;
export const RPC_INTERNAL_ERROR = -32603;
/** EIP-1474 "limit exceeded": the request asks for more than the server answers. */
export const RPC_LIMIT_EXCEEDED = -32005;

/** Largest request body read (bytes). */
export const MAX_RPC_BODY = 1 << 20;

export function rpcError(id: unknown, code: number, message: string, data?: unknown): unknown {
  return {
    jsonrpc: "2.0",
    id: id ?? null,
    error: { code, message, ...(data === undefined ? {} : { data }) },
  };
}

/**
 * A JSON-RPC request the caller got wrong, answered as JSON-RPC error `code` (with the offending
 * call's `id` where there is one) and HTTP `httpStatus` (400, or 413 for a body too large).
 */
export class RpcRequestError extends InputError {
  override name = "RpcRequestError";
  override readonly httpStatus: number;
  readonly code: number;
  readonly id: string | number | null;
  readonly data: unknown;

  constructor(
    code: number,
    message: string,
    options: { httpStatus?: number; id?: string | number | null; data?: unknown } = {},
  ) {
    super(message, options.data === undefined ? {} : { details: { data: options.data } });
    this.code = code;
    this.httpStatus = options.httpStatus ?? 400;
    this.id = options.id ?? null;
    this.data = options.data;
  }

  /** The JSON-RPC error object answering the request. */
  toJson(): unknown {
    return rpcError(this.id, this.code, this.message, this.data);
  }
}

/**
 * The first key that appears twice in one object of `text` (valid JSON), compared after
 * unescaping ("\u006dethod" is "method"), or null. JSON.parse keeps the last and a node may
 * keep the first: a body must not mean two things.
 */
function duplicateKey(text: string): string | null {
  const objects: Array<Set<string> | null> = []; // null: inside an array
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      const keys = objects[objects.length - 1];
      if (keys !== undefined && keys !== null) {
        let next = end + 1;
        while (/[ \t\n\r]/.test(text[next] ?? "")) next++;
        if (text[next] === ":") {
          const key = JSON.parse(text.slice(i, end + 1)) as string;
          if (keys.has(key)) return key;
          keys.add(key);
        }
      }
      i = end;
    } else if (c === "{") objects.push(new Set());
    else if (c === "[") objects.push(null);
    else if (c === "}" || c === "]") objects.pop();
  }
  return null;
}

/** Parses a JSON-RPC body; RpcRequestError for text that is not JSON or repeats a key. */
export function parseRpcBody(raw: string): unknown {
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    throw new RpcRequestError(RPC_PARSE_ERROR, "parse error");
  }
  const repeated = duplicateKey(raw);
  if (repeated !== null) {
    throw new RpcRequestError(
      RPC_INVALID_REQUEST,
      `invalid JSON-RPC request: the key ${JSON.stringify(repeated)} appears twice in one object`,
    );
  }
  return body;
}

const CALL_KEYS: ReadonlySet<string> = new Set(["jsonrpc", "id", "method", "params"]);

/** The id of a call, when it has a usable one (for the error answering it). */
function idOf(value: unknown): string | number | null {
  const id = typeof value === "object" && value !== null ? (value as { id?: unknown }).id : null;
  return typeof id === "string" || typeof id === "number" ? id : null;
}

/** One call checked field by field and rebuilt from those fields; `where` names it in errors. */
function checkCall(value: unknown, where: string): RpcCall {
  const invalid = (problem: string): RpcRequestError =>
    new RpcRequestError(RPC_INVALID_REQUEST, `invalid JSON-RPC request: ${where} ${problem}`, {
      id: idOf(value),
    });
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw invalid("is not an object");
  const fields = value as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!CALL_KEYS.has(key))
      throw invalid(
        `has the unexpected key ${JSON.stringify(key)} (a call has only jsonrpc, id, method, params)`,
      );
  }
  if (fields.jsonrpc !== "2.0") throw invalid('has no jsonrpc "2.0"');
  const { id, method, params } = fields;
  if (typeof method !== "string" || method === "")
    throw invalid("has no method (a non-empty string)");
  if (id !== undefined && id !== null && typeof id !== "string" && typeof id !== "number")
    throw invalid("has an id that is not a string, a number or null");
  if (params !== undefined && !Array.isArray(params))
    throw invalid("has params that are not an array");
  return {
    jsonrpc: "2.0",
    ...(id === undefined ? {} : { id }),
    method,
    params: (params ?? []) as unknown[],
  };
}

/**
 * The calls of a parsed JSON-RPC body (one call or a batch), each checked and rebuilt from its
 * fields; RpcRequestError naming the first bad call (a batch with one is refused whole).
 */
export function rpcCalls(body: unknown): RpcCall[] {
  if (!Array.isArray(body)) return [checkCall(body, "the call")];
  if (body.length === 0)
    throw new RpcRequestError(RPC_INVALID_REQUEST, "invalid JSON-RPC request: an empty batch");
  return body.map((c: unknown, i) => checkCall(c, `call ${i} of the batch`));
}

/** Asks the provider for each call; every answer carries its call's id, a result or an error. */
export async function answerCalls(provider: Eip1193Provider, calls: RpcCall[]): Promise<unknown[]> {
  return Promise.all(
    calls.map(async (c) => {
      try {
        const result = await provider.request({ method: c.method, params: c.params });
        return { jsonrpc: "2.0", id: c.id ?? null, result: result ?? null };
      } catch (error) {
        const e = error as { code?: unknown; message?: unknown; data?: unknown };
        return rpcError(
          c.id,
          typeof e.code === "number" ? e.code : RPC_INTERNAL_ERROR,
          typeof e.message === "string" ? e.message : String(error),
          e.data,
        );
      }
    }),
  );
}

/** Reads a request body as text; RpcRequestError with HTTP 413 over `limit` bytes. */
export async function readBody(req: IncomingMessage, limit = MAX_RPC_BODY): Promise<string> {
  const tooLarge = (): RpcRequestError =>
    new RpcRequestError(RPC_INVALID_REQUEST, `request body too large: more than ${limit} bytes`, {
      httpStatus: 413,
      data: { limit },
    });
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limit) throw tooLarge();
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * Answers one JSON-RPC body through the provider: HTTP 200 with the answer (an array for a batch),
 * or 400 with a parse / invalid-request error.
 */
export async function handleRpcBody(
  provider: Eip1193Provider,
  raw: string,
): Promise<{ status: number; payload: unknown }> {
  let body: unknown;
  let calls: RpcCall[];
  try {
    body = parseRpcBody(raw);
    calls = rpcCalls(body);
  } catch (error) {
    if (!(error instanceof RpcRequestError)) throw error;
    return { status: error.httpStatus, payload: error.toJson() };
  }
  const answers = await answerCalls(provider, calls);
  return { status: 200, payload: Array.isArray(body) ? answers : answers[0] };
}

export interface RpcBridgeOptions {
  provider: Eip1193Provider;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1: the bridge forwards writes and must not be reachable from elsewhere. */
  host?: string;
}

export interface RunningRpcBridge {
  /** The JSON-RPC URL (POST). */
  url: string;
  close(): Promise<void>;
}

/** Serves the provider as a JSON-RPC endpoint (POST any path); resolves once it listens. */
export async function startRpcBridge(options: RpcBridgeOptions): Promise<RunningRpcBridge> {
  const { provider } = options;
  const server = createServer((req, res) => {
    const reply = (status: number, payload: unknown): void => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(payload));
    };
    if (req.method !== "POST") {
      reply(405, rpcError(null, RPC_INVALID_REQUEST, "POST a JSON-RPC request"));
      return;
    }
    readBody(req)
      .then((raw) => handleRpcBody(provider, raw))
      .then(({ status, payload }) => reply(status, payload))
      .catch((error: unknown) => {
        if (res.headersSent) return void res.end();
        if (error instanceof RpcRequestError) {
          if (error.httpStatus === 413) res.setHeader("connection", "close");
          return reply(error.httpStatus, error.toJson());
        }
        const message = error instanceof Error ? error.message : String(error);
        reply(400, rpcError(null, RPC_INVALID_REQUEST, message));
      });
  });
  // Keep-alive clients (ethers polls) must not hold close() open.
  server.keepAliveTimeout = 1_000;
  const host = options.host ?? "127.0.0.1";
  const port = options.port ?? 0;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (cause) =>
      reject(
        new InputError("the JSON-RPC bridge cannot listen", {
          details: { host, port, reason: cause.message },
          cause,
        }),
      ),
    );
    server.listen(port, host, resolve);
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${host}:${address.port}/`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error === undefined ? resolve() : reject(error)));
      }),
  };
}
