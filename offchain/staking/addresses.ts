/**
 * The deployment record the tasks read: deployments/<network>/addresses.json, a flat JSON object
 * name -> address (e.g. {"OPGToken": "0x..", "NodeStaking": "0x..", "TeeRegistry": "0x.."}),
 * written by the deploy script.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";

import { isAddress } from "ethers";

import { InputError } from "../common/errors.js";

export type Addresses = Record<string, string>;

export function addressesPath(network: string, root: string = process.cwd()): string {
  return path.join(root, "deployments", network, "addresses.json");
}

/** Reads and checks deployments/<network>/addresses.json. */
export async function readAddresses(
  network: string,
  root: string = process.cwd(),
): Promise<Addresses> {
  const file = addressesPath(network, root);
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
