/**
 * `opg node run`: load and validate the config, load the node's signer key (environment or Hardhat
 * keystore), start the NodeService; stop on SIGINT/SIGTERM (or `signal`). Prints one JSON line when
 * listening.
 */
import { pino } from "pino";

import { loadWallets } from "../relayer/config.js";
import { loadNodeConfig } from "./config.js";
import { NodeService } from "./service.js";

export async function runNode(
  configFile: string,
  env: NodeJS.ProcessEnv = process.env,
  signal?: AbortSignal,
): Promise<void> {
  const config = loadNodeConfig(configFile);
  const [signer] = await loadWallets(config.keys, [config.keys.signerKeyName], { env });
  const log = pino({ name: "node", level: config.log.level }, pino.destination(2));
  const service = await NodeService.create(config, signer!, log);
  const url = await service.start();
  console.log(
    JSON.stringify({
      event: "listening",
      url,
      node: config.node.address,
      signer: signer!.address,
      enclave: config.enclave?.url ?? null,
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

export { NodeService } from "./service.js";
export { loadNodeConfig, parseNodeConfig } from "./config.js";
