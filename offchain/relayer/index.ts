/**
 * `opg relayer start`: load and validate the config, load the keys (environment or Hardhat
 * keystore), start the service (which first checks the enclave: offchain/relayer/enclave-check.ts);
 * stop on SIGINT/SIGTERM (or `signal`). Prints one JSON line when listening.
 */
import { pino } from "pino";

import { loadRelayerConfig, loadSecrets } from "./config.js";
import { RelayerService } from "./service.js";

export async function runRelayer(
  configFile: string,
  env: NodeJS.ProcessEnv = process.env,
  signal?: AbortSignal,
): Promise<void> {
  const config = loadRelayerConfig(configFile, env);
  const secrets = await loadSecrets(config.keys, { env });
  const log = pino({ name: "relayer", level: config.log.level }, pino.destination(2));
  const service = await RelayerService.create(config, secrets, log);
  const url = await service.start();
  console.log(
    JSON.stringify({
      event: "listening",
      url,
      node: config.node.address,
      signer: secrets.nodeSigner.address,
      sender: secrets.txSigner.address,
      enclave: service.enclave.enclave,
    }),
  );
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  signal?.addEventListener("abort", onSignal);
  await new Promise<void>((resolve) => stop.signal.addEventListener("abort", () => resolve()));
  await service.stop();
}

export { RelayerService } from "./service.js";
export { loadRelayerConfig, loadSecrets, parseRelayerConfig } from "./config.js";
