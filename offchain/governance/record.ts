/**
 * deployments/<network>/governance.json: who is meant to hold every role of every contract, the vault's
 * owner and the governor's settings, written by the deploy. `opg:governance:audit` compares the chain with
 * it. Addresses are checksummed; role holders are lists (a role may have several members, or none).
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";

import { getAddress, isAddress } from "ethers";

import { InputError } from "../common/errors.js";
import { stringifyJson } from "../common/json.js";

export const GOVERNANCE_FILE = "governance.json";

export interface ExpectedContract {
  address: string;
  /** Block the contract was deployed in: role events are read from there. */
  fromBlock: number;
  /** Role name -> expected members. Absent: the contract has no roles. */
  roles?: Record<string, string[]>;
  /** Ownable contracts: the expected owner (and no pending owner). */
  owner?: string;
  /** Settings read through view functions (name -> decimal or address string). */
  settings?: Record<string, string>;
}

export interface GovernanceRecord {
  version: 1;
  network: string;
  chainId: string;
  /** Names for addresses that are not contracts of the record (guardian, rewards updater). */
  labels: Record<string, string>;
  contracts: Record<string, ExpectedContract>;
}

export function governancePath(dir: string): string {
  return path.join(dir, GOVERNANCE_FILE);
}

export async function writeGovernanceRecord(dir: string, record: GovernanceRecord): Promise<void> {
  await writeFile(governancePath(dir), stringifyJson(record) + "\n");
}

/** Reads and checks governance.json; anything malformed is an InputError (exit code 2). */
export async function readGovernanceRecord(file: string): Promise<GovernanceRecord> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (cause) {
    throw new InputError(`no governance record at ${file}`, {
      cause,
      hint: "the deploy writes it (npx hardhat opg:deploy --network <network>), or pass --record FILE",
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new InputError(`${file} is not valid JSON`, { cause });
  }
  const bad = (what: string, value?: unknown): never => {
    throw new InputError(`${file}: ${what}`, value === undefined ? {} : { details: { value } });
  };
  if (!isObject(parsed)) return bad("must be a JSON object");
  if (parsed.version !== 1) bad("version must be 1", parsed.version);
  if (typeof parsed.network !== "string") bad("network must be a string");
  if (typeof parsed.chainId !== "string") bad("chainId must be a decimal string");
  const labels: Record<string, string> = {};
  if (parsed.labels !== undefined) {
    if (!isObject(parsed.labels)) bad("labels must be an object address -> name");
    for (const [address, name] of Object.entries(parsed.labels as Record<string, unknown>)) {
      if (typeof name !== "string") bad(`labels.${address} must be a string`);
      labels[checkAddress(address, `labels key ${address}`, bad)] = name as string;
    }
  }
  if (!isObject(parsed.contracts)) return bad("contracts must be an object name -> contract");
  const contracts: Record<string, ExpectedContract> = {};
  for (const [name, raw] of Object.entries(parsed.contracts)) {
    if (!isObject(raw)) return bad(`contracts.${name} must be an object`);
    const c: ExpectedContract = {
      address: checkAddress(raw.address, `contracts.${name}.address`, bad),
      fromBlock: Number.isSafeInteger(raw.fromBlock)
        ? (raw.fromBlock as number)
        : bad(`contracts.${name}.fromBlock must be a block number`, raw.fromBlock),
    };
    if (raw.roles !== undefined) {
      if (!isObject(raw.roles)) bad(`contracts.${name}.roles must be an object role -> [address]`);
      c.roles = {};
      for (const [role, members] of Object.entries(raw.roles as Record<string, unknown>)) {
        if (!Array.isArray(members)) bad(`contracts.${name}.roles.${role} must be a list`, members);
        c.roles[role] = (members as unknown[]).map((m) =>
          checkAddress(m, `contracts.${name}.roles.${role}`, bad),
        );
      }
    }
    if (raw.owner !== undefined) c.owner = checkAddress(raw.owner, `contracts.${name}.owner`, bad);
    if (raw.settings !== undefined) {
      if (!isObject(raw.settings)) bad(`contracts.${name}.settings must be an object`);
      c.settings = {};
      for (const [k, v] of Object.entries(raw.settings as Record<string, unknown>)) {
        if (typeof v !== "string") bad(`contracts.${name}.settings.${k} must be a string`, v);
        c.settings[k] = v as string;
      }
    }
    contracts[name] = c;
  }
  return {
    version: 1,
    network: parsed.network as string,
    chainId: parsed.chainId as string,
    labels,
    contracts,
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkAddress(v: unknown, what: string, bad: (w: string, v?: unknown) => never): string {
  if (typeof v !== "string" || !isAddress(v)) return bad(`${what} is not an address`, v);
  return getAddress(v);
}
