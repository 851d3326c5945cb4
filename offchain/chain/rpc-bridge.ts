/**
 * JSON-RPC over HTTP in front of an EIP-1193 provider (Hardhat's in-process chain): what lets
 * separate services (the relayer, `opg receipt verify`) reach an embedded chain as they would reach
 * a node. Single and batch requests; a provider's failure is answered as that call's JSON-RPC error.
 *
 * `startRpcBridge` forwards every method, writes included (eth_sendRawTransaction, evm_mine ...): it
 * listens on loopback only and is meant for local runs (`npm run demo`). The explorer's read-only
 * passthrough (offchain/explorer/server.ts) filters the methods first, then answers with the same
 * functions.
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";

import { InputError } from "../common/errors.js";

/** An EIP-1193 provider (Hardhat's in-process network connection, a browser wallet, ...). */
export interface Eip1193Provider {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
}

/** One well-formed JSON-RPC call. */
export interface RpcCall {
  jsonrpc?: unknown;
  id?: unknown;
  method: string;
  params?: unknown;
}

/** JSON-RPC 2.0 error codes used here. */
export const RPC_PARSE_ERROR = -32700;
export const RPC_INVALID_REQUEST = -32600;
export const RPC_METHOD_NOT_FOUND = -32601;
export const RPC_INTERNAL_ERROR = -32603;

/** Largest request body read (bytes). */
export const MAX_RPC_BODY = 1 << 20;

export function rpcError(id: unknown, code: number, message: string, data?: unknown): unknown {
  return {
    jsonrpc: "2.0",
    id: id ?? null,
    error: { code, message, ...(data === undefined ? {} : { data }) },
  };
}

/** The calls of a parsed JSON-RPC body (one call or a batch), or null when it is not one. */
export function rpcCalls(body: unknown): RpcCall[] | null {
  const calls = (Array.isArray(body) ? body : [body]) as unknown[];
  if (calls.length === 0) return null;
  const ok = calls.every(
    (c) =>
      typeof c === "object" && c !== null && typeof (c as { method?: unknown }).method === "string",
  );
  return ok ? (calls as RpcCall[]) : null;
}

/** Asks the provider for each call; every answer carries its call's id, a result or an error. */
export async function answerCalls(provider: Eip1193Provider, calls: RpcCall[]): Promise<unknown[]> {
  return Promise.all(
    calls.map(async (c) => {
      try {
        const params = Array.isArray(c.params) ? (c.params as unknown[]) : [];
        const result = await provider.request({ method: c.method, params });
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

/** Reads a request body as text; InputError over `limit` bytes. */
export async function readBody(req: IncomingMessage, limit = MAX_RPC_BODY): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limit) {
      throw new InputError("request body too large", { details: { size, limit } });
    }
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
  try {
    body = JSON.parse(raw);
  } catch {
    return { status: 400, payload: rpcError(null, RPC_PARSE_ERROR, "parse error") };
  }
  const calls = rpcCalls(body);
  if (calls === null) {
    return {
      status: 400,
      payload: rpcError(null, RPC_INVALID_REQUEST, "invalid JSON-RPC request"),
    };
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
        const message = error instanceof Error ? error.message : String(error);
        if (!res.headersSent) reply(400, rpcError(null, RPC_INVALID_REQUEST, message));
        else res.end();
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
