/**
 * `npm run demo`: the end-to-end flow of DESIGN.md on an embedded (in-process) chain, in readable steps,
 * every figure read back from the chain (offchain/demo/flow.ts), the relayer and the enclave run as
 * services against it over JSON-RPC (offchain/demo/relayer.ts), then the vesting and governance audits
 * and the transparency explorer on the same chain.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";

import { network } from "hardhat";

import { formatReceiptBundle } from "../offchain/chain/bundle.js";
import { deploymentDir } from "../offchain/chain/deployment.js";
import { runDemoFlow } from "../offchain/demo/flow.js";
import {
  auditGovernance,
  formatGovernanceAudit,
  loadAuditInputs,
} from "../offchain/governance/audit.js";
import { Narrator } from "../offchain/demo/narrator.js";
import { runVestingAudit } from "../offchain/demo/vesting.js";
import { startExplorer } from "../offchain/explorer/server.js";

const root = process.cwd();
const connection = await network.create();
const n = new Narrator();
console.log(
  "OPG protocol demo: everything below happens on an embedded chain, and every figure is read back from it.",
);

const dir = deploymentDir(root, "default");
const { plan, system, anchored } = await runDemoFlow(connection, {
  root,
  deploymentDir: dir,
  rewardsOutDir: path.join("reports", "rewards"),
  n,
  gpuProvider: "auto",
  services: true,
});

// The auditor's view of the vesting plan, after all of the above.
await runVestingAudit({ vault: system.vault, token: system.token, plan }, n);

// Who holds every role, read from the chain's events, against governance.json (opg:governance:audit).
n.section("Audit: every role of every contract and who holds it, against governance.json");
const { record, addresses } = await loadAuditInputs(dir);
const governance = await auditGovernance(connection.ethers.provider, record, addresses);
n.block(formatGovernanceAudit(governance));

// The transparency explorer on the same chain: see it and check it in a browser.
n.section("The transparency explorer");
const bundleFile = path.join("reports", "demo-receipt.json");
await mkdir(path.dirname(bundleFile), { recursive: true });
await writeFile(bundleFile, formatReceiptBundle(anchored.bundle));
const explorer = await startExplorer({
  provider: connection.provider,
  deploymentDir: dir,
  port: Number(process.env.OPG_EXPLORER_PORT ?? 0),
});
const page = await fetch(explorer.url);
n.say(
  `explorer: ${explorer.url} (HTTP ${page.status}); it reads only this chain and the deployment record`,
);
n.say(`paste ${bundleFile} into its "verify a receipt" box to check the receipt in the browser`);

n.section("Done");
n.say(
  "Every step above can be checked against a JSON-RPC chain: see the README (npx hardhat node, opg:deploy,",
);
n.say(
  "opg:vesting:calendar / audit, opg:governance:audit, opg:gov:*, opg:stake:status, opg receipt verify,",
);
n.say("opg rewards verify, opg explorer).");
if (process.stdout.isTTY && process.env.CI === undefined) {
  n.say(`The explorer stays up at ${explorer.url}; press Ctrl-C to stop.`);
  await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
}
await explorer.close();
