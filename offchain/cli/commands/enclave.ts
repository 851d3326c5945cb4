/**
 * `opg enclave start`: runs the development enclave as its own process (HTTP API in
 * offchain/tee/server.ts). Prints one JSON line when listening; stops on SIGINT/SIGTERM.
 */
import type { Command } from "commander";
import { isAddress } from "ethers";
import { pino } from "pino";

import { InputError } from "../../common/errors.js";
import { InferenceEngine } from "../../inference/engine.js";
import { DevAttestor } from "../../tee/devAttestation.js";
import { Enclave } from "../../tee/enclave.js";
import { createEnclaveServer, listen } from "../../tee/server.js";

interface StartFlags {
  port: string;
  host: string;
  models: string;
  chainId: string;
  ledger: string;
  threads: string;
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
  const logger = pino({ name: "enclave" }, pino.destination(2));
  const engine = new InferenceEngine({
    config: { provider: "cpu", intraOpNumThreads: integer(flags.threads, "--threads", 1, 256) },
    logger,
  });
  await engine.loadModelsDir(flags.models);
  const attestor = new DevAttestor();
  const enclave = new Enclave({
    engine,
    attestor,
    chainId: BigInt(flags.chainId),
    ledger: flags.ledger,
  });
  const server = createEnclaveServer({ enclave, devRootPem: attestor.rootPem, logger });
  const url = await listen(server, port, flags.host);
  console.log(
    JSON.stringify({
      event: "listening",
      url,
      enclave: enclave.address,
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
  await engine.close();
  logger.info({ at: "enclave#start" }, "stopped");
}

export function register(program: Command): void {
  const enclave = program
    .command("enclave")
    .description("the development TEE enclave (re-execution, verdicts, batch signing)");
  enclave
    .command("start")
    .description("start the enclave's HTTP API: GET /attestation, POST /verify, POST /sign-batch")
    .requiredOption("--port <port>", "port to listen on (0: any free port)")
    .option("--host <host>", "address to bind", "127.0.0.1")
    .requiredOption("--models <dir>", "folder of models (<name>/model.onnx + manifest.json)")
    .requiredOption("--chain-id <id>", "chain id of the EIP-712 domain")
    .requiredOption("--ledger <address>", "InferenceLedger address (EIP-712 verifying contract)")
    .option("--threads <n>", "onnxruntime intra-op threads", "1")
    .action(async (flags: StartFlags) => {
      await startEnclave(flags);
    });
}
