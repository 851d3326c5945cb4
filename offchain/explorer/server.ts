/**
 * The transparency explorer's server: static files (explorer/dist), the deployment record and the
 * published plan of one network (GET /deployment.json), and a same-origin JSON-RPC passthrough
 * (POST /rpc) to a node or to an in-process EIP-1193 provider. It keeps no state of its own, and
 * it forwards only read methods: a page served to anyone must never reach a node's unlocked
 * accounts (eth_sendTransaction, hardhat_*, evm_*). What it forwards is rebuilt from the checked
 * calls (rpc-bridge.ts `rpcCalls`), never the body as it came; eth_getLogs block ranges are capped
 * (`maxLogBlockRange`), since one wide range can stall a node for everyone.
 */
import { readFile, stat } from "node:fs/promises";
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { toQuantity } from "ethers";

import {
  RPC_INTERNAL_ERROR,
  RPC_INVALID_PARAMS,
  RPC_INVALID_REQUEST,
  RPC_LIMIT_EXCEEDED,
  RPC_METHOD_NOT_FOUND,
  RpcRequestError,
  answerCalls,
  parseRpcBody,
  readBody,
  rpcCalls,
  rpcError,
  type Eip1193Provider,
  type RpcCall,
} from "../chain/rpc-bridge.js";
import { InputError } from "../common/errors.js";

export type { Eip1193Provider } from "../chain/rpc-bridge.js";

/** The repository root (this file lives in offchain/explorer/). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const DEFAULT_DIST_DIR = path.join(REPO_ROOT, "explorer", "dist");

/** JSON-RPC methods the passthrough forwards: reads of chain state, nothing that signs or changes it. */
export const READ_METHODS: ReadonlySet<string> = new Set([
  "eth_chainId",
  "net_version",
  "eth_blockNumber",
  "eth_call",
  "eth_estimateGas",
  "eth_getBalance",
  "eth_getCode",
  "eth_getStorageAt",
  "eth_getLogs",
  "eth_getBlockByNumber",
  "eth_getBlockByHash",
  "eth_getTransactionByHash",
  "eth_getTransactionReceipt",
  "eth_getTransactionCount",
  "eth_gasPrice",
  "eth_maxPriorityFeePerGas",
  "eth_feeHistory",
]);

/** Widest eth_getLogs block range forwarded by default (blocks, both ends included). */
export const DEFAULT_MAX_LOG_BLOCK_RANGE = 10_000;

export interface ExplorerOptions {
  /** JSON-RPC URL of the chain (exactly one of rpcUrl and provider). */
  rpcUrl?: string;
  /** In-process chain (the demo): /rpc calls go to its `request`. */
  provider?: Eip1193Provider;
  /** deployments/<network>: deployment.json, rewards.json; the plan file it names is read from `root`. */
  deploymentDir: string;
  /** Where relative paths in the record (vesting.planFile) start; default the repository root. */
  root?: string;
  /** Built page (npm run build:explorer); default explorer/dist. */
  distDir?: string;
  /**
   * The relayer's HTTP API (optional): GET /relayer/v1/receipts/<id> is passed through to it, so the
   * page can look a receipt up by id without the relayer allowing other origins.
   */
  relayerUrl?: string;
  /**
   * Widest eth_getLogs block range forwarded (blocks, both ends included; tags resolved against the
   * chain); a wider one is answered 400. Default DEFAULT_MAX_LOG_BLOCK_RANGE.
   */
  maxLogBlockRange?: number;
  /** 0 picks a free port. */
  port?: number;
  host?: string;
}

export interface RunningExplorer {
  url: string;
  close(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".map": "application/json",
};

async function readJsonFile(file: string): Promise<unknown> {
  return JSON.parse(await readFile(file, "utf8")) as unknown;
}

/** The record, the published plan and the rewards epochs of a network, as the page reads them. */
export async function loadDeploymentView(
  deploymentDir: string,
  root: string = REPO_ROOT,
): Promise<Record<string, unknown>> {
  const file = path.join(deploymentDir, "deployment.json");
  let record: Record<string, unknown>;
  try {
    record = (await readJsonFile(file)) as Record<string, unknown>;
  } catch (cause) {
    throw new InputError("cannot read the deployment record", {
      details: { file },
      hint: "deploy first (npx hardhat opg:deploy --network <network>) or pass --deployment <dir>",
      cause,
    });
  }
  const vesting = record.vesting as { planFile?: unknown } | undefined;
  let plan: unknown = null;
  if (typeof vesting?.planFile === "string") {
    const planFile = path.resolve(root, vesting.planFile);
    try {
      plan = await readJsonFile(planFile);
    } catch (cause) {
      throw new InputError("cannot read the published vesting plan the record names", {
        details: { planFile },
        cause,
      });
    }
  }
  let rewards: unknown = null;
  try {
    rewards = await readJsonFile(path.join(deploymentDir, "rewards.json"));
  } catch {
    rewards = null; // no rewards epochs configured on this network
  }
  return { record, plan, rewards };
}

/** One JSON-RPC call to the chain the explorer reads (to resolve block tags). */
type ChainCall = (method: string, params: unknown[]) => Promise<unknown>;

function chainCaller(options: ExplorerOptions): ChainCall {
  const { provider, rpcUrl } = options;
  if (provider !== undefined) return (method, params) => provider.request({ method, params });
  return async (method, params) => {
    const response = await fetch(rpcUrl!, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
      signal: AbortSignal.timeout(30_000),
    });
    const answer = (await response.json()) as { result?: unknown; error?: { message?: unknown } };
    if (answer.error !== undefined) throw new Error(`${method}: ${String(answer.error.message)}`);
    return answer.result;
  };
}

const LOG_FILTER_KEYS: ReadonlySet<string> = new Set([
  "fromBlock",
  "toBlock",
  "address",
  "topics",
  "blockHash",
]);
const QUANTITY = /^0x[0-9a-fA-F]{1,64}$/;

/**
 * An eth_getLogs call with its block range resolved to numbers ("earliest" = 0; "latest",
 * "pending" and a missing end = the current block; "safe" and "finalized" as the chain reports
 * them) and no wider than `cap`; RpcRequestError naming the range and the cap otherwise. A
 * blockHash filter names one block and goes as it is.
 */
async function boundLogRange(
  call: RpcCall,
  cap: number,
  chain: ChainCall,
  latest: () => Promise<bigint>,
): Promise<RpcCall> {
  const id = call.id ?? null;
  const invalid = (problem: string): RpcRequestError =>
    new RpcRequestError(RPC_INVALID_PARAMS, `eth_getLogs ${problem}`, { id });
  const [filter, ...rest] = call.params;
  if (rest.length > 0 || typeof filter !== "object" || filter === null || Array.isArray(filter))
    throw invalid("takes one filter object");
  const fields = filter as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!LOG_FILTER_KEYS.has(key))
      throw invalid(
        `filter has the unexpected key ${JSON.stringify(key)} (it has fromBlock, toBlock, address, topics or blockHash)`,
      );
  }
  if (fields.blockHash !== undefined) {
    if (fields.fromBlock !== undefined || fields.toBlock !== undefined)
      throw invalid("filter has blockHash and a block range: one or the other");
    return call;
  }
  const resolve = async (value: unknown, field: string): Promise<bigint> => {
    if (value === undefined || value === "latest" || value === "pending") return latest();
    if (value === "earliest") return 0n;
    if (value === "safe" || value === "finalized") {
      const block = (await chain("eth_getBlockByNumber", [value, false])) as {
        number?: unknown;
      } | null;
      if (typeof block?.number !== "string")
        throw invalid(`${field} "${value}": the chain has no such block`);
      return BigInt(block.number);
    }
    if (typeof value === "string" && QUANTITY.test(value)) return BigInt(value);
    throw invalid(
      `${field} is not a block number (0x hex) or a tag (earliest, latest, pending, safe, finalized)`,
    );
  };
  const from = await resolve(fields.fromBlock, "fromBlock");
  const to = await resolve(fields.toBlock, "toBlock");
  const blocks = to >= from ? to - from + 1n : 0n;
  if (blocks > BigInt(cap)) {
    throw new RpcRequestError(
      RPC_LIMIT_EXCEEDED,
      `eth_getLogs block range ${from} to ${to} is ${blocks} blocks, more than this explorer's cap of ${cap} (maxLogBlockRange, opg explorer --max-log-range): ask for smaller ranges`,
      {
        id,
        data: {
          fromBlock: toQuantity(from),
          toBlock: toQuantity(to),
          blocks: blocks.toString(),
          maxLogBlockRange: cap,
        },
      },
    );
  }
  return { ...call, params: [{ ...fields, fromBlock: toQuantity(from), toBlock: toQuantity(to) }] };
}

/**
 * Forwards one JSON-RPC request (or a batch) if every method in it is a read, as the calls
 * checked and rebuilt from their fields; RpcRequestError for a body that is not one.
 */
async function forward(
  body: unknown,
  options: ExplorerOptions,
  maxLogBlockRange: number,
): Promise<{ status: number; payload: unknown }> {
  const calls = rpcCalls(body);
  if (calls.some((c) => !READ_METHODS.has(c.method))) {
    const answers = calls.map((c) =>
      READ_METHODS.has(c.method)
        ? rpcError(
            c.id,
            RPC_METHOD_NOT_FOUND,
            "batch refused: it contains a method the explorer does not forward",
          )
        : rpcError(
            c.id,
            RPC_METHOD_NOT_FOUND,
            `the explorer forwards read methods only, not ${c.method}`,
          ),
    );
    return { status: 200, payload: Array.isArray(body) ? answers : answers[0] };
  }
  const chain = chainCaller(options);
  let latestBlock: Promise<bigint> | undefined;
  const latest = (): Promise<bigint> =>
    (latestBlock ??= chain("eth_blockNumber", []).then((n) => BigInt(n as string)));
  const checked: RpcCall[] = [];
  for (const call of calls) {
    checked.push(
      call.method === "eth_getLogs"
        ? await boundLogRange(call, maxLogBlockRange, chain, latest)
        : call,
    );
  }
  if (options.rpcUrl !== undefined) {
    const response = await fetch(options.rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(Array.isArray(body) ? checked : checked[0]),
      signal: AbortSignal.timeout(30_000),
    });
    return { status: response.status, payload: (await response.json()) as unknown };
  }
  const answers = await answerCalls(options.provider!, checked);
  return { status: 200, payload: Array.isArray(body) ? answers : answers[0] };
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, {
    "content-type": type,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, "application/json", JSON.stringify(value));
}

/** A request path the server will not look up (HTTP 400). */
class BadPathError extends InputError {
  override name = "BadPathError";
}

/**
 * The file under `distDir` that a request path names, each segment percent-decoded on its own;
 * BadPathError (400) for a segment that does not decode, or that is "." or ".." or holds a slash, a
 * backslash or a NUL once decoded: nothing outside `distDir` is ever named.
 */
function staticFile(distDir: string, urlPath: string): string {
  const segments: string[] = [];
  for (const raw of (urlPath === "/" ? "/index.html" : urlPath).split("/")) {
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      throw new BadPathError(`malformed URI: ${JSON.stringify(raw)} is not valid percent-encoding`);
    }
    if (segment === "." || segment === ".." || /[/\\\0]/.test(segment))
      throw new BadPathError(`path not allowed: ${JSON.stringify(raw)}`);
    if (segment !== "") segments.push(segment);
  }
  return path.join(distDir, ...segments);
}

async function serveStatic(res: ServerResponse, distDir: string, urlPath: string): Promise<void> {
  const file = staticFile(distDir, urlPath);
  if (!file.startsWith(distDir + path.sep)) {
    send(res, 403, "text/plain", "forbidden");
    return;
  }
  try {
    const body = await readFile(file);
    send(res, 200, CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream", body);
  } catch {
    send(res, 404, "text/plain", `not found: ${urlPath}`);
  }
}

/** Starts the explorer's server; resolves once it listens. */
export async function startExplorer(options: ExplorerOptions): Promise<RunningExplorer> {
  if ((options.rpcUrl === undefined) === (options.provider === undefined)) {
    throw new InputError("the explorer needs exactly one chain: an RPC URL or a provider");
  }
  const distDir = path.resolve(options.distDir ?? DEFAULT_DIST_DIR);
  try {
    await stat(path.join(distDir, "index.html"));
  } catch (cause) {
    throw new InputError("the explorer page is not built", {
      details: { distDir },
      hint: "run `npm run build:explorer` first",
      cause,
    });
  }
  const maxLogBlockRange = options.maxLogBlockRange ?? DEFAULT_MAX_LOG_BLOCK_RANGE;
  if (!Number.isSafeInteger(maxLogBlockRange) || maxLogBlockRange < 1) {
    throw new InputError("maxLogBlockRange must be a whole number of blocks, at least 1", {
      details: { maxLogBlockRange },
    });
  }
  const deploymentDir = path.resolve(options.deploymentDir);
  const root = options.root ?? REPO_ROOT;
  // Fail at start, not on the first page load, when the record is missing.
  await loadDeploymentView(deploymentDir, root);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // The path as sent (no URL parser resolving dot segments or hosts), without the query.
    const target = req.url ?? "/";
    const pathname = target.split(/[?#]/, 1)[0]!;
    if (!pathname.startsWith("/")) throw new BadPathError("malformed request target");
    if (pathname === "/rpc") {
      if (req.method !== "POST") {
        send(res, 405, "text/plain", "POST a JSON-RPC request");
        return;
      }
      const body = parseRpcBody(await readBody(req));
      const { status, payload } = await forward(body, options, maxLogBlockRange);
      sendJson(res, status, payload);
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      send(res, 405, "text/plain", "method not allowed");
      return;
    }
    if (pathname === "/deployment.json") {
      const view = await loadDeploymentView(deploymentDir, root);
      sendJson(res, 200, { ...view, relayer: options.relayerUrl !== undefined, maxLogBlockRange });
      return;
    }
    const lookup = /^\/relayer\/v1\/receipts\/(0x[0-9a-fA-F]{64})$/.exec(pathname);
    if (lookup !== null) {
      if (options.relayerUrl === undefined) {
        sendJson(res, 404, { message: "this explorer was started without --relayer" });
        return;
      }
      const upstream = await fetch(new URL(`/v1/receipts/${lookup[1]!}`, options.relayerUrl), {
        signal: AbortSignal.timeout(10_000),
      });
      send(res, upstream.status, "application/json", await upstream.text());
      return;
    }
    await serveStatic(res, distDir, pathname);
  };

  /** A request's failure: 400/413 for a bad request (JSON-RPC error on /rpc), else 502. */
  const fail = (req: IncomingMessage, res: ServerResponse, error: unknown): void => {
    if (res.headersSent) {
      res.end();
      return;
    }
    const status =
      error instanceof RpcRequestError || error instanceof BadPathError ? error.httpStatus : 502;
    const message = error instanceof Error ? error.message : String(error);
    // An oversized body is not read to its end: close the connection after answering.
    if (status === 413) res.setHeader("connection", "close");
    if ((req.url ?? "").split(/[?#]/, 1)[0] !== "/rpc") {
      send(res, status, "text/plain", message);
      return;
    }
    sendJson(
      res,
      status,
      error instanceof RpcRequestError
        ? error.toJson()
        : rpcError(null, status < 500 ? RPC_INVALID_REQUEST : RPC_INTERNAL_ERROR, message),
    );
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => fail(req, res, error));
  });
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", (cause) =>
      reject(
        new InputError("the explorer cannot listen", {
          details: { host, port: options.port ?? 0, reason: cause.message },
          cause,
        }),
      ),
    );
    server.listen(options.port ?? 0, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}/`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error === undefined ? resolve() : reject(error)));
      }),
  };
}
