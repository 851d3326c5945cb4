import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import path from "node:path";

import { stringifyJson } from "../../offchain/common/json.js";
import {
  auditGovernance,
  formatGovernanceAudit,
  loadAuditInputs,
} from "../../offchain/governance/audit.js";
import { connect, runTask } from "../lib.js";

export default async function audit(
  args: { record: string; json: boolean },
  hre: HardhatRuntimeEnvironment,
): Promise<void> {
  await runTask(async () => {
    const { ethers, dir } = await connect(hre);
    const file = args.record === "" ? undefined : path.resolve(hre.config.paths.root, args.record);
    const { record, addresses } = await loadAuditInputs(dir, file);
    const report = await auditGovernance(ethers.provider, record, addresses);
    console.log(args.json ? stringifyJson(report) : formatGovernanceAudit(report));
    if (!report.ok) process.exitCode = 1;
  });
}
