/**
 * Deployment records: deployments/<network>/deployment.json (what was deployed where, in which block,
 * by which transaction, plus domain sections such as the vesting plan's progress) and
 * deployments/<network>/addresses.json (a flat name -> address map that tasks and tools read).
 * Records are written after every step, so an interrupted deployment resumes where it stopped.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";

import { isAddress } from "ethers";

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

/** Reads `dir`/addresses.json and returns the address of `name`, or a clear error saying how to get one. */
export async function addressOf(dir: string, name: string): Promise<string> {
  const network = path.basename(dir);
  const root = path.dirname(path.dirname(dir));
  const addresses = await readAddressesFile(path.join(dir, "addresses.json"), network, root);
  return requireAddress(addresses, name, network);
}

export type Addresses = Record<string, string>;

export function addressesPath(network: string, root: string = process.cwd()): string {
  return path.join(root, "deployments", network, "addresses.json");
}

/** Reads and checks deployments/<network>/addresses.json. */
export async function readAddresses(
  network: string,
  root: string = process.cwd(),
): Promise<Addresses> {
  return readAddressesFile(addressesPath(network, root), network, root);
}

/** Reads and checks an addresses.json: a JSON object name -> address. */
async function readAddressesFile(file: string, network: string, root: string): Promise<Addresses> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (cause) {
    throw new InputError(`no deployment record for network "${network}"`, {
      details: { file },
      cause,
      hint: `deploy to ${network} first (the deploy script writes ${path.relative(root, file)})`,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new InputError("the deployment record is not valid JSON", { details: { file }, cause });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new InputError("the deployment record must be a JSON object name -> address", {
      details: { file },
    });
  }
  const addresses: Addresses = {};
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (typeof value !== "string" || !isAddress(value)) {
      throw new InputError(`the deployment record has a bad address for ${name}`, {
        details: { file, [name]: value },
      });
    }
    addresses[name] = value;
  }
  return addresses;
}

/** The address of contract `name`, or an InputError saying the record lacks it. */
export function requireAddress(addresses: Addresses, name: string, network: string): string {
  const address = addresses[name];
  if (address === undefined) {
    throw new InputError(`the deployment record of "${network}" has no ${name}`, {
      details: { known: Object.keys(addresses).join(", ") || "(none)" },
      hint: `redeploy, or add "${name}" to deployments/${network}/addresses.json`,
    });
  }
  return address;
}

async function atomicWrite(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}
