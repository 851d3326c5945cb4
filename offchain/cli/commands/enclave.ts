/**
 * `opg enclave start`: runs the development enclave as its own process (HTTP API in
 * offchain/tee/server.ts). Prints one JSON line when listening; stops on SIGINT/SIGTERM.
 */
import type { Command } from "commander";
import { isAddress } from "ethers";
import { pino } from "pino";

import { InputError } from "../../common/errors.js";
import {
  ChainClock,
  checkClockMode,
  defaultClockMode,
  systemClock,
  type Clock,
  type ClockMode,
} from "../../chain/clock.js";
import { InferenceEngine } from "../../inference/engine.js";
import { connectEnclaveChain, type EnclaveChain } from "../../tee/chain-view.js";
import { DevAttestor, loadOrCreateDevRoot } from "../../tee/devAttestation.js";
import { Enclave } from "../../tee/enclave.js";
import { DEFAULT_MAX_BODY, createEnclaveServer, listen } from "../../tee/server.js";

interface StartFlags {
  port: string;
  host: string;
  models: string;
  chainId: string;
  ledger: string;
  node: string;
  rpc: string;
  clock?: string;
  receiptWindow: string;
  maxBody: string;
  threads: string;
  image: string;
  devRoot?: string;
}

function integer(value: string, flag: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new InputError(`${flag} must be an integer in ${min}..${max}`, {
      details: { [flag]: value },
    });
  return n;
}

export async function startEnclave(flags: StartFlags, signal?: AbortSignal): Promise<void> {
  const port = integer(flags.port, "--port", 0, 65535);
  if (!/^[0-9]+$/.test(flags.chainId))
    throw new InputError("--chain-id must be a decimal integer", {
      details: { chainId: flags.chainId },
    });
  if (!isAddress(flags.ledger))
    throw new InputError("--ledger must be an address", { details: { ledger: flags.ledger } });
  if (!isAddress(flags.node))
    throw new InputError("--node must be an address (the GPU node this enclave serves)", {
      details: { node: flags.node },
    });
  if (!/^https?:\/\//.test(flags.rpc))
    throw new InputError("--rpc must be an http(s) JSON-RPC URL", { details: { rpc: flags.rpc } });
  const chainId = BigInt(flags.chainId);
  const mode = (flags.clock ?? defaultClockMode(chainId)) as ClockMode;
  if (mode !== "system" && mode !== "chain")
    throw new InputError("--clock must be system or chain", { details: { clock: flags.clock } });
  checkClockMode(mode, chainId);
  const receiptWindowSeconds = integer(flags.receiptWindow, "--receipt-window", 10, 3_600);
  const maxBodyBytes = integer(flags.maxBody, "--max-body", 1024, 256 * 1024 * 1024);
  const logger = pino({ name: "enclave" }, pino.destination(2));
  const engine = new InferenceEngine({
    config: { provider: "cpu", intraOpNumThreads: integer(flags.threads, "--threads", 1, 256) },
    logger,
  });
  await engine.loadModelsDir(flags.models);
  const attestor = new DevAttestor({
    image: flags.image,
    ...(flags.devRoot === undefined ? {} : { root: await loadOrCreateDevRoot(flags.devRoot) }),
  });
  let chain: EnclaveChain;
  try {
    chain = await connectEnclaveChain(flags.rpc, chainId, flags.ledger);
  } catch (cause) {
    throw new InputError(
      `cannot read InferenceLedger ${flags.ledger} through the chain RPC at ${flags.rpc}`,
      {
        details: { rpc: flags.rpc, ledger: flags.ledger, reason: (cause as Error).message },
        hint: "--rpc must reach the chain the ledger is deployed on",
        cause,
      },
    );
  }
  let clock: Clock = systemClock;
  let chainClock: ChainClock | undefined;
  if (mode === "chain") {
    chainClock = new ChainClock(() => chain.latestBlockTimestamp());
    await chainClock.start();
    clock = chainClock;
  }
  const enclave = new Enclave({
    engine,
    attestor,
    chainId,
    ledger: flags.ledger,
    clientNode: flags.node,
    chain,
    clock,
    limits: { receiptWindowSeconds },
    log: logger,
  });
  await enclave.start();
  const server = createEnclaveServer({
    enclave,
    clock,
    pcrs: attestor.measurement(),
    devRootPem: attestor.rootPem,
    maxBodyBytes,
    logger,
  });
  const url = await listen(server, port, flags.host);
  console.log(
    JSON.stringify({
      event: "listening",
      url,
      enclave: enclave.address,
      clientNode: enclave.clientNode,
      models: enclave.models.map((m) => m.modelId),
    }),
  );

  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  signal?.addEventListener("abort", onSignal);
  await new Promise<void>((resolve) => stop.signal.addEventListener("abort", () => resolve()));
  await new Promise<void>((resolve) => server.close(() => resolve()));
  enclave.stop();
  chainClock?.stop();
  chain.close();
  await engine.close();
  logger.info({ at: "enclave#start" }, "stopped");
}

export function register(program: Command): void {
  const enclave = program
    .command("enclave")
    .description("the development TEE enclave (receipt log, re-execution, verdicts, batches)");
  enclave
    .command("start")
    .description(
      "start the enclave's HTTP API for one GPU node: GET /info /attestation /evidence, POST /v1/receipts /v1/batches",
    )
    .requiredOption("--port <port>", "port to listen on (0: any free port)")
    .option("--host <host>", "address to bind", "127.0.0.1")
    .requiredOption("--models <dir>", "folder of models (<name>/model.onnx + manifest.json)")
    .requiredOption("--chain-id <id>", "chain id of the EIP-712 domain")
    .requiredOption("--ledger <address>", "InferenceLedger address (EIP-712 verifying contract)")
    .requiredOption("--node <address>", "the GPU node (NodeStaking id) this enclave serves")
    .requiredOption(
      "--rpc <url>",
      "JSON-RPC URL: the node's signer, the sample rate, anchored batches",
    )
    .option("--clock <mode>", "system, or chain (local chains only; default there)")
    .option("--receipt-window <seconds>", "receipts older or newer than this are refused", "120")
    .option("--max-body <bytes>", "largest request body", String(DEFAULT_MAX_BODY))
    .option(
      "--image <label>",
      "development image label (its PCRs are derived from it)",
      "opg-enclave-dev",
    )
    .option("--threads <n>", "onnxruntime intra-op threads", "1")
    .option(
      "--dev-root <file>",
      "keep the development root CA in this file (created on first use), so restarts stay under the root relayers trust",
    )
    .action(async (flags: StartFlags) => {
      await startEnclave(flags);
    });
}
