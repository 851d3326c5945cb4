/**
 * `opg explorer --rpc <url> [--port <n>] [--network <name> | --deployment <dir>]`: serves the
 * transparency explorer (explorer/dist, built by `npm run build:explorer`) for one chain. The page
 * reads the chain through the server's read-only JSON-RPC passthrough and the network's deployment
 * record; the server keeps no state.
 */
import path from "node:path";

import type { Command } from "commander";

import { InputError } from "../../common/errors.js";
import { deploymentDir } from "../../chain/deployment.js";
import { connectRpc } from "../../chain/verify.js";
import {
  DEFAULT_DIST_DIR,
  DEFAULT_MAX_LOG_BLOCK_RANGE,
  REPO_ROOT,
  startExplorer,
} from "../../explorer/server.js";

interface ExplorerCliOptions {
  rpc: string;
  port: string;
  host: string;
  network: string;
  deployment?: string;
  relayer?: string;
  dist: string;
  maxLogRange: string;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new InputError("--port must be an integer from 0 to 65535", { details: { port: value } });
  }
  return port;
}

function parseMaxLogRange(value: string): number {
  const blocks = Number(value);
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(blocks) || blocks < 1) {
    throw new InputError("--max-log-range must be a whole number of blocks, at least 1", {
      details: { maxLogRange: value },
    });
  }
  return blocks;
}

function parseRelayer(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch (cause) {
    throw new InputError("--relayer must be an http(s) URL", {
      details: { relayer: value },
      cause,
    });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new InputError("--relayer must be an http(s) URL", { details: { relayer: value } });
  }
  return url.toString();
}

async function explorerCommand(options: ExplorerCliOptions): Promise<void> {
  const port = parsePort(options.port);
  const maxLogBlockRange = parseMaxLogRange(options.maxLogRange);
  const probe = await connectRpc(options.rpc); // fails fast, naming the URL, when the node is down
  const { chainId } = await probe.getNetwork();
  probe.destroy();
  const dir =
    options.deployment === undefined
      ? deploymentDir(REPO_ROOT, options.network)
      : path.resolve(options.deployment);
  const explorer = await startExplorer({
    rpcUrl: options.rpc,
    deploymentDir: dir,
    distDir: options.dist,
    port,
    host: options.host,
    maxLogBlockRange,
    ...(options.relayer === undefined ? {} : { relayerUrl: parseRelayer(options.relayer) }),
  });
  console.log(
    `OPG explorer: ${explorer.url}\n` +
      `  chain ${chainId} via ${options.rpc} (read methods only); record ${dir}`,
  );
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  await new Promise<void>((resolve) => stop.signal.addEventListener("abort", () => resolve()));
  await explorer.close();
}

export function register(program: Command): void {
  program
    .command("explorer")
    .description("serve the transparency explorer (vesting, nodes, anchoring, rewards) for a chain")
    .requiredOption("--rpc <url>", "JSON-RPC URL of the chain")
    .option("--port <n>", "port to listen on (0: any free port)", "5173")
    .option("--host <address>", "address to listen on", "127.0.0.1")
    .option("--network <name>", "network whose record deployments/<name>/ is read", "localhost")
    .option("--deployment <dir>", "deployment record folder (overrides --network)")
    .option("--relayer <url>", "relayer API whose receipts the page may look up by id")
    .option("--dist <dir>", "built page (npm run build:explorer)", DEFAULT_DIST_DIR)
    .option(
      "--max-log-range <blocks>",
      "widest eth_getLogs block range the passthrough forwards",
      String(DEFAULT_MAX_LOG_BLOCK_RANGE),
    )
    .action((options: ExplorerCliOptions) => explorerCommand(options));
}
