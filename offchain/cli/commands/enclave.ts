/**
 * `opg enclave start`: runs the development enclave as its own process (HTTP API in
 * offchain/tee/server.ts). Prints one JSON line when listening; stops on SIGINT/SIGTERM.
 */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";

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
import { attestedPcrs } from "../../tee/attestation.js";
import { DevAttestor, loadOrCreateDevRoot } from "../../tee/devAttestation.js";
import { measurementFromPcrs } from "../../staking/units.js";
import { Enclave } from "../../tee/enclave.js";
import {
  DEFAULT_MAX_BODY,
  createEnclaveServer,
  enclaveBodyLimit,
  listen,
} from "../../tee/server.js";

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
  relayerLease: string;
  maxBody?: string;
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
  const relayerLeaseSeconds = integer(flags.relayerLease, "--relayer-lease", 1, 3_600);
  const maxBodyFlag =
    flags.maxBody === undefined
      ? undefined
      : integer(flags.maxBody, "--max-body", 1024, 1024 * 1024 * 1024);
  const logger = pino({ name: "enclave" }, pino.destination(2));
  const engine = new InferenceEngine({
    config: { provider: "cpu", intraOpNumThreads: integer(flags.threads, "--threads", 1, 256) },
    logger,
  });
  await engine.loadModelsDir(flags.models);
  const maxBodyBytes = maxBodyFlag ?? enclaveBodyLimit(engine.list().map((m) => m.manifest));
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
    limits: { receiptWindowSeconds, relayerLeaseMs: relayerLeaseSeconds * 1000 },
    requireRegistration: true,
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
      modelFailures: enclave.modelFailures.map((f) => f.dir),
      // --max-body, or the default derived from the models: what the relayer's caller may send.
      maxBodyBytes,
    }),
  );

  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  signal?.addEventListener("abort", onSignal);
  await new Promise<void>((resolve) => stop.signal.addEventListener("abort", () => resolve()));
  // Requests in flight get 2 s to finish; a client that keeps its connection busy (a relayer
  // retrying) must not keep the enclave from stopping.
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const force = setTimeout(() => server.closeAllConnections(), 2_000);
  await closed;
  clearTimeout(force);
  enclave.stop();
  chainClock?.stop();
  chain.close();
  await engine.close();
  logger.info({ at: "enclave#start" }, "stopped");
}

/** GET `path` of the enclave's public API, as JSON; a typed error naming the enclave otherwise. */
async function getPublic(url: string, path: string): Promise<Record<string, unknown>> {
  const base = url.replace(/\/$/, "");
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(10_000) });
  } catch (cause) {
    throw new InputError(`the enclave at ${base} is unreachable`, {
      details: { url: base },
      cause,
    });
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok)
    throw new InputError(
      `the enclave at ${base} answered ${res.status} to GET ${path.split("?")[0]}`,
      {
        details: { url: base, status: res.status, error: body.error },
      },
    );
  return body;
}

/**
 * `opg enclave attestation`: a fresh attestation document from a running enclave, under a random nonce
 * (or the one given), written raw (CBOR) to `--out` for opg:tee:register / opg:tee:renew / opg tee
 * verify. Prints the enclave key and the measurement the document attests.
 */
export async function fetchAttestation(flags: {
  url: string;
  out: string;
  nonce?: string;
}): Promise<{ enclave: string; measurement: string; nonce: string; file: string }> {
  const nonce = flags.nonce ?? randomBytes(32).toString("hex");
  if (!/^(0x)?([0-9a-fA-F]{2}){1,64}$/.test(nonce))
    throw new InputError("--nonce must be 1 to 64 hex bytes", { details: { nonce } });
  const hex = nonce.replace(/^0x/, "");
  const body = await getPublic(flags.url, `/attestation?nonce=${hex}`);
  const document = Buffer.from(String(body.document), "base64");
  const measurement = measurementFromPcrs(attestedPcrs(document));
  await writeFile(flags.out, document);
  return { enclave: String(body.enclave), measurement, nonce: hex, file: flags.out };
}

/** `opg enclave dev-root`: a development enclave's root certificate (PEM), for the relayer to trust. */
export async function fetchDevRoot(flags: { url: string; out: string }): Promise<string> {
  const info = await getPublic(flags.url, "/info");
  if (typeof info.devRootPem !== "string")
    throw new InputError(`the enclave at ${flags.url} publishes no development root`, {
      details: { url: flags.url },
      hint: "a Nitro enclave's documents chain to AWS's root: enclave.attestation.root \"aws\"",
    });
  await writeFile(flags.out, info.devRootPem);
  return flags.out;
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
    .option(
      "--relayer-lease <seconds>",
      "another relayer is refused until the one holding the enclave has been silent this long",
      "60",
    )
    .option(
      "--max-body <bytes>",
      `largest request body (default: what the largest model's receipt needs, at least ${DEFAULT_MAX_BODY})`,
    )
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
  enclave
    .command("attestation")
    .description(
      "write a fresh attestation document of a running enclave (raw CBOR) for opg:tee:register / renew",
    )
    .requiredOption("--url <url>", "the enclave's HTTP API")
    .requiredOption("--out <file>", "where to write the document")
    .option("--nonce <hex>", "the nonce to answer (default: 32 random bytes)")
    .action(async (flags: { url: string; out: string; nonce?: string }) => {
      console.log(JSON.stringify(await fetchAttestation(flags)));
    });
  enclave
    .command("dev-root")
    .description("write a development enclave's root certificate (PEM) for the relayer to trust")
    .requiredOption("--url <url>", "the enclave's HTTP API")
    .requiredOption("--out <file>", "where to write the PEM")
    .action(async (flags: { url: string; out: string }) => {
      console.log(JSON.stringify({ file: await fetchDevRoot(flags) }));
    });
}
