/**
 * `npm run soak`: a simulated month of a GPU node and a TEE node on a local chain (test/e2e/soak-run.ts):
 * load, heartbeats, renewals, an enclave key rotation, a new image approved and the old one retired
 * through governance, RPC outages and relayer kill -9s. Writes reports/soak.json and prints it.
 * OPG_SOAK_DAYS (default 30), OPG_SOAK_STEP_HOURS (2), OPG_SOAK_REQUESTS (8 per step).
 */
import { mkdir, writeFile } from "node:fs/promises";

import { runSoak } from "../test/e2e/soak-run.js";

const report = await runSoak({
  days: Number(process.env.OPG_SOAK_DAYS ?? 30),
  stepHours: Number(process.env.OPG_SOAK_STEP_HOURS ?? 2),
  requestsPerStep: Number(process.env.OPG_SOAK_REQUESTS ?? 8),
  outageSeconds: 4,
  log: (line) => console.log(line),
});
await mkdir("reports", { recursive: true });
await writeFile("reports/soak.json", JSON.stringify(report, null, 2) + "\n");
console.log(JSON.stringify(report, null, 2));
console.log("wrote reports/soak.json");
const ok =
  report.anchored.lost === 0 &&
  report.anchored.duplicates === 0 &&
  report.anchored.receipts === report.anchored.onChainCount &&
  report.anchoringStall.maxSeconds <= report.anchoringStall.boundSeconds &&
  report.readiness.readyDuringOutage === 0 &&
  report.readiness.outagesUnreported === 0 &&
  report.readiness.keeperReadyWhileOverdue === 0 &&
  report.readiness.nodesOverdue === 0;
if (!ok) {
  console.error("SOAK FAILED: see the figures above");
  process.exitCode = 1;
}
