/**
 * The transparency explorer's server: static files (explorer/dist), the deployment record and the
 * published plan of one network (GET /deployment.json), and a same-origin JSON-RPC passthrough
 * (POST /rpc) to a node or to an in-process EIP-1193 provider. It keeps no state of its own, and
 * it forwards only read methods: a page served to anyone must never reach a node's unlocked
 * accounts (eth_sendTransaction, hardhat_*, evm_*).
 */
import { readFile, stat } from "node:fs/promises";
import { createServer } from "node:http";
import type { ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

import {
  RPC_INTERNAL_ERROR,
  RPC_INVALID_REQUEST,
  RPC_METHOD_NOT_FOUND,
  RPC_PARSE_ERROR,
  answerCalls,
  readBody,
  rpcCalls,
  rpcError,
  type Eip1193Provider,
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

/** Forwards one JSON-RPC request (or a batch) if every method in it is a read. */
async function forward(
  body: unknown,
  options: ExplorerOptions,
  rawBody: string,
): Promise<{ status: number; payload: unknown }> {
  const calls = rpcCalls(body);
  if (calls === null) {
    return {
      status: 400,
      payload: rpcError(null, RPC_INVALID_REQUEST, "invalid JSON-RPC request"),
    };
  }
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
  if (options.rpcUrl !== undefined) {
    const response = await fetch(options.rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: rawBody,
      signal: AbortSignal.timeout(30_000),
    });
    return { status: response.status, payload: (await response.json()) as unknown };
  }
  const answers = await answerCalls(options.provider!, calls);
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

async function serveStatic(res: ServerResponse, distDir: string, urlPath: string): Promise<void> {
  const relative = decodeURIComponent(urlPath === "/" ? "/index.html" : urlPath);
  const file = path.join(distDir, path.normalize(relative));
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
  const deploymentDir = path.resolve(options.deploymentDir);
  const root = options.root ?? REPO_ROOT;
  // Fail at start, not on the first page load, when the record is missing.
  await loadDeploymentView(deploymentDir, root);

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://explorer");
    const handle = async (): Promise<void> => {
      if (url.pathname === "/rpc") {
        if (req.method !== "POST") {
          send(res, 405, "text/plain", "POST a JSON-RPC request");
          return;
        }
        const raw = await readBody(req);
        let body: unknown;
        try {
          body = JSON.parse(raw);
        } catch {
          sendJson(res, 400, rpcError(null, RPC_PARSE_ERROR, "parse error"));
          return;
        }
        const { status, payload } = await forward(body, options, raw);
        sendJson(res, status, payload);
        return;
      }
      if (req.method !== "GET" && req.method !== "HEAD") {
        send(res, 405, "text/plain", "method not allowed");
        return;
      }
      if (url.pathname === "/deployment.json") {
        const view = await loadDeploymentView(deploymentDir, root);
        sendJson(res, 200, { ...view, relayer: options.relayerUrl !== undefined });
        return;
      }
      const lookup = /^\/relayer\/v1\/receipts\/(0x[0-9a-fA-F]{64})$/.exec(url.pathname);
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
      await serveStatic(res, distDir, url.pathname);
    };
    handle().catch((error: unknown) => {
      if (!res.headersSent) {
        sendJson(
          res,
          502,
          rpcError(
            null,
            RPC_INTERNAL_ERROR,
            error instanceof Error ? error.message : String(error),
          ),
        );
      } else res.end();
    });
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
