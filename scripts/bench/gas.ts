/**
 * `npm run bench:gas`: deploys our contracts and their peers in one run on the in-process chain and
 * prints one row per operation. Gas is deterministic, so the numbers are comparable across runs.
 *
 * Each domain adds a module in scripts/bench/gas/ exporting `measure(ctx)`; this script loads all
 * of them in name order, prints the table and writes reports/gas.json as
 * `{"rows":[{"operation","ours","peer","peerGas"}], "checks":[...]}`.
 */
import { mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import { network } from "hardhat";

import type { BenchContext, GasCheck, GasRow } from "./gas/types.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const modulesDir = path.join(here, "gas");

const files = (await readdir(modulesDir))
  .filter((f) => f.endsWith(".ts") && f !== "types.ts")
  .sort();
const rows: GasRow[] = [];
const checks: GasCheck[] = [];
const ctx: BenchContext = { connect: () => network.create() };
for (const file of files) {
  const mod = (await import(pathToFileURL(path.join(modulesDir, file)).href)) as {
    measure: (c: BenchContext) => Promise<{ rows: GasRow[]; checks?: GasCheck[] }>;
  };
  const result = await mod.measure(ctx);
  rows.push(...result.rows);
  checks.push(...(result.checks ?? []));
}

// A peer comparison is a check too: ours must not cost more than the peer.
for (const row of rows) {
  if (row.peer !== null && row.peerGas !== null) {
    checks.push({
      name: `${row.operation}: ours <= ${row.peer}`,
      value: row.ours,
      limit: row.peerGas,
      ok: row.ours <= row.peerGas,
    });
  }
}

const fmt = (n: number | null) => (n === null ? "-" : n.toLocaleString("en-US"));
const table = rows.map((r) => ({
  operation: r.operation,
  ours: fmt(r.ours),
  peer: r.peer ?? "-",
  peerGas: fmt(r.peerGas),
  "ours/peer": r.peerGas === null ? "-" : (r.ours / r.peerGas).toFixed(2),
}));
console.table(table);
console.log("\nChecks:");
for (const c of checks) {
  console.log(`  ${c.ok ? "PASS" : "FAIL"}  ${c.name}  (${fmt(c.value)} vs ${fmt(c.limit)})`);
}

const outDir = path.join(here, "..", "..", "reports");
await mkdir(outDir, { recursive: true });
await writeFile(
  path.join(outDir, "gas.json"),
  JSON.stringify(
    {
      rows: rows.map(({ operation, ours, peer, peerGas }) => ({ operation, ours, peer, peerGas })),
      checks,
    },
    null,
    2,
  ) + "\n",
);
console.log(
  `\nwrote reports/gas.json (${rows.length} rows, ${checks.filter((c) => !c.ok).length} failed checks)`,
);
if (checks.some((c) => !c.ok)) process.exitCode = 1;
