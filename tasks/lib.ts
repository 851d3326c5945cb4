/**
 * What every OPG task shares: connecting to the selected network, finding the deployment record and
 * printing a BaseError as a readable message with a non-zero exit code instead of a stack trace.
 */
import path from "node:path";

import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { BaseError } from "../offchain/common/errors.js";
import { deploymentDir } from "../offchain/chain/deployment.js";

export async function connect(hre: HardhatRuntimeEnvironment) {
  const connection = await hre.network.getOrCreate();
  const networkName = connection.networkName;
  const dir = deploymentDir(hre.config.paths.root, networkName);
  return { ...connection, networkName, dir };
}

/** The published plan of a network: deployments/<network>/vesting-plan.json unless given. */
export function planPath(hre: HardhatRuntimeEnvironment, dir: string, given: string): string {
  return given === ""
    ? path.join(dir, "vesting-plan.json")
    : path.resolve(hre.config.paths.root, given);
}

/** Runs a task body; a BaseError is printed with its details and hint, and sets the exit code. */
export async function runTask(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    if (error instanceof BaseError) {
      console.error(error.format());
      process.exitCode = error.exitCode;
      return;
    }
    throw error;
  }
}
