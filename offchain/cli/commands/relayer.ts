/**
 * `opg relayer start --config <file>`: run the node operator's relayer service.
 * `opg relayer status --config <file>`: what the store holds (jobs by state, batches, gas, the
 * listener's cursor), read from the SQLite file, so it works while the service is down too.
 */
import { existsSync } from "node:fs";

import Table from "cli-table3";
import type { Command } from "commander";

import { InputError } from "../../common/errors.js";
import { loadRelayerConfig } from "../../relayer/config.js";
import { openDatabase } from "../../relayer/db.js";
import { runRelayer } from "../../relayer/index.js";
import { JobStore } from "../../relayer/store.js";

export interface RelayerStatus {
  jobs: ReturnType<JobStore["stats"]>["jobs"];
  batches: ReturnType<JobStore["stats"]>["batches"];
  gasUsed: string;
  lastBatch: {
    sequence: string;
    batchId: string | null;
    anchorTx: string | null;
    count: number;
  } | null;
  listenerBlock: number | null;
  chainRequests: Record<string, number>;
}

export function relayerStatus(dbPath: string): RelayerStatus {
  if (!existsSync(dbPath)) {
    throw new InputError(`no relayer store at ${dbPath}`, {
      hint: "start the relayer once, or check store.path",
    });
  }
  const db = openDatabase(dbPath);
  try {
    const store = new JobStore(db);
    const stats = store.stats();
    const last = db
      .prepare(
        "SELECT sequence, batch_id, anchor_tx, count FROM batches WHERE state = 'anchored' ORDER BY anchored_at DESC LIMIT 1",
      )
      .get() as
      | { sequence: number; batch_id: string | null; anchor_tx: string | null; count: number }
      | undefined;
    const hasListener =
      db.prepare("SELECT name FROM sqlite_master WHERE name = 'listener_cursor'").get() !==
      undefined;
    const cursor = hasListener
      ? (db.prepare("SELECT block FROM listener_cursor WHERE id = 1").get() as
          { block: number } | undefined)
      : undefined;
    const chainRequests: Record<string, number> = {};
    if (hasListener) {
      for (const r of db
        .prepare("SELECT state, COUNT(*) AS n FROM chain_requests GROUP BY state")
        .all() as Array<{ state: string; n: number }>)
        chainRequests[r.state] = Number(r.n);
    }
    return {
      jobs: stats.jobs,
      batches: stats.batches,
      gasUsed: stats.gasUsed.toString(),
      lastBatch:
        last === undefined
          ? null
          : {
              sequence: String(last.sequence),
              batchId: last.batch_id,
              anchorTx: last.anchor_tx,
              count: Number(last.count),
            },
      listenerBlock: cursor === undefined ? null : Number(cursor.block),
      chainRequests,
    };
  } finally {
    db.close();
  }
}

export function register(program: Command): void {
  const relayer = program.command("relayer").description("the node operator's relayer service");
  relayer
    .command("start")
    .description(
      "check the enclave (attestation, TeeRegistry), then start the relayer: HTTP API, listener, batcher, anchoring (keys from OPG_NODE_SIGNER_KEY, OPG_RELAYER_TX_KEY or the Hardhat keystore: keys.source)",
    )
    .requiredOption("--config <file>", "relayer config (JSON; see docs/relayer.md)")
    .action(async (flags: { config: string }) => {
      await runRelayer(flags.config);
    });
  relayer
    .command("status")
    .description("jobs, batches, gas and the listener's cursor, read from the relayer's store")
    .requiredOption("--config <file>", "relayer config (JSON), for store.path")
    .option("--json", "print JSON")
    .action((flags: { config: string; json?: boolean }) => {
      const config = loadRelayerConfig(flags.config);
      const status = relayerStatus(config.store.path);
      if (flags.json === true) {
        console.log(JSON.stringify(status, null, 2));
        return;
      }
      const table = new Table({ head: ["what", "value"] });
      for (const [k, v] of Object.entries(status.jobs)) table.push([`receipts ${k}`, String(v)]);
      for (const [k, v] of Object.entries(status.batches)) table.push([`batches ${k}`, String(v)]);
      table.push(["gas used (anchoring)", status.gasUsed]);
      table.push([
        "last anchored batch",
        status.lastBatch === null
          ? "-"
          : `#${status.lastBatch.batchId} (seq ${status.lastBatch.sequence}, ${status.lastBatch.count} receipts) tx ${status.lastBatch.anchorTx}`,
      ]);
      table.push([
        "listener block",
        status.listenerBlock === null ? "-" : String(status.listenerBlock),
      ]);
      for (const [k, v] of Object.entries(status.chainRequests))
        table.push([`chain requests ${k}`, String(v)]);
      console.log(table.toString());
    });
}
