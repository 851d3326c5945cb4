/**
 * `opg node run --config <file>`: keeps a node alive on chain (heartbeats; for a VERIFIER node,
 * its enclave registered and renewed with fresh attestations). docs/operations.md.
 */
import type { Command } from "commander";

import { runNode } from "../../node/index.js";

export function register(program: Command): void {
  const node = program
    .command("node")
    .description("the node keeper: heartbeats and enclave registrations, on schedule");
  node
    .command("run")
    .description(
      "heartbeat the node from its signer key; keep its enclave registered (GET /healthz /readyz /status /metrics)",
    )
    .requiredOption("--config <file>", "node config (JSON, docs/operations.md)")
    .action(async (options: { config: string }) => {
      await runNode(options.config);
    });
}
