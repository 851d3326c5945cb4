/**
 * Deployment records: deployments/<network>/deployment.json (what was deployed where, in which block,
 * by which transaction, plus domain sections such as the vesting plan's progress) and
 * deployments/<network>/addresses.json (a flat name -> address map that tasks and tools read).
 * Records are written after every step, so an interrupted deployment resumes where it stopped.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";

import { InputError } from "../common/errors.js";
import { stringifyJson } from "../common/json.js";

export interface DeployedContract {
  address: string;
  txHash: string;
  block: number;
  /** Constructor arguments as JSON-safe values, for verification on explorers. */
  args: unknown[];
}

export interface PendingDeployment {
  /** Address the contract will have: getCreateAddress(deployer, nonce). */
  address: string;
  nonce: number;
  txHash: string;
}

export interface VestingSection {
  planFile: string;
  planHash: string;
  schedules: number;
  created: number;
  batches: Array<{ firstId: number; count: number; txHash: string; block: number }>;
  sealed: { txHash: string; block: number } | null;
}

export interface DeploymentRecord {
  network: string;
  chainId: string;
  deployer: string;
  contracts: Record<string, DeployedContract>;
  pending: Record<string, PendingDeployment>;
  vesting?: VestingSection;
  [section: string]: unknown;
}

/**
 * The folder of a network's record: deployments/<network>, except Hardhat's implicit in-process network
 * ("default"), whose record is deployments/hardhat/ (git-ignored: that chain lives for one process).
 */
export function deploymentDir(root: string, network: string): string {
  return path.join(root, "deployments", recordName(network));
}

export function recordName(networkName: string): string {
  return networkName === "default" ? "hardhat" : networkName;
}

export async function readRecord(dir: string): Promise<DeploymentRecord | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dir, "deployment.json"), "utf8");
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as DeploymentRecord;
  } catch (cause) {
    throw new InputError(`${path.join(dir, "deployment.json")} is not valid JSON`, { cause });
  }
}

/** Writes deployment.json and addresses.json atomically (write to a temp file, then rename). */
export async function writeRecord(dir: string, record: DeploymentRecord): Promise<void> {
  await mkdir(dir, { recursive: true });
  await atomicWrite(path.join(dir, "deployment.json"), stringifyJson(record) + "\n");
  const addresses = Object.fromEntries(
    Object.entries(record.contracts).map(([name, c]) => [name, c.address]),
  );
  await atomicWrite(path.join(dir, "addresses.json"), stringifyJson(addresses) + "\n");
}

/** Reads addresses.json and returns the address of `name`, or a clear error saying how to get one. */
export async function addressOf(dir: string, name: string): Promise<string> {
  let addresses: Record<string, string>;
  try {
    addresses = JSON.parse(await readFile(path.join(dir, "addresses.json"), "utf8")) as Record<
      string,
      string
    >;
  } catch (cause) {
    throw new InputError(`no deployment record in ${dir}`, {
      cause,
      hint: "deploy first: npx hardhat opg:deploy --network <network>",
    });
  }
  const address = addresses[name];
  if (address === undefined) {
    throw new InputError(`${name} is not in ${path.join(dir, "addresses.json")}`, {
      details: { known: Object.keys(addresses).join(", ") },
      hint: "deploy it first: npx hardhat opg:deploy --network <network>",
    });
  }
  return address;
}

async function atomicWrite(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}
