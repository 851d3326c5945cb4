/**
 * What every OPG task shares: connecting to the selected network, finding the deployment record and
 * printing a BaseError as a readable message with a non-zero exit code instead of a stack trace.
 */
import { existsSync } from "node:fs";
import path from "node:path";

import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { BaseError } from "../offchain/common/errors.js";
import { deploymentDir, readRecord } from "../offchain/chain/deployment.js";

/**
 * The task bodies import the contract bindings that `hardhat build` generates (types/, artifacts/).
 * On a fresh clone neither exists yet: build once, saying so, instead of failing to import the action.
 */
export async function ensureBuilt(hre: HardhatRuntimeEnvironment): Promise<void> {
  const root = hre.config.paths.root;
  const bindings = path.join(root, "types", "ethers-contracts", "index.ts");
  if (existsSync(bindings) && existsSync(hre.config.paths.artifacts)) return;
  console.error("opg: contracts not built yet; running `npx hardhat build` first");
  await hre.tasks.getTask("build").run({ quiet: true });
  if (!existsSync(bindings))
    throw new Error(
      `opg: \`npx hardhat build\` did not generate ${bindings}; run it and read its output`,
    );
}

type Action<A> = (args: A, hre: HardhatRuntimeEnvironment) => Promise<void>;

/** A lazily imported task action that builds the contracts first when they are missing. */
export function afterBuild<A>(load: () => Promise<{ default: Action<A> }>) {
  const action: Action<A> = async (args, hre) => {
    await ensureBuilt(hre);
    const loaded = await load();
    await loaded.default(args, hre);
  };
  return (): Promise<{ default: Action<A> }> => Promise.resolve({ default: action });
}

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

/**
 * The plan a deployed network was sealed with: the one given, else the file its deployment record names
 * (vesting.planFile, relative to the repository), else deployments/<network>/vesting-plan.json.
 */
export async function recordedPlanPath(
  hre: HardhatRuntimeEnvironment,
  dir: string,
  given: string,
): Promise<string> {
  if (given !== "") return planPath(hre, dir, given);
  const planFile = (await readRecord(dir))?.vesting?.planFile;
  return planFile === undefined
    ? planPath(hre, dir, "")
    : path.resolve(hre.config.paths.root, planFile);
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
