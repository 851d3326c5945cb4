/**
 * Contract ABIs for off-chain tools, read from Hardhat's build output
 * (artifacts/contracts/<source>/<Name>.json after `npx hardhat build`).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import type { InterfaceAbi } from "ethers";

import { InputError } from "../common/errors.js";

/** The repository's artifacts/ folder (this file lives in offchain/chain/). */
export const DEFAULT_ARTIFACTS_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "artifacts",
);

/** The ABI of contract `name` compiled from `source` (e.g. "contracts/anchoring/InferenceLedger.sol"). */
export function loadAbi(
  source: string,
  name: string,
  artifactsDir: string = DEFAULT_ARTIFACTS_DIR,
): InterfaceAbi {
  const file = path.join(artifactsDir, source, `${name}.json`);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (cause) {
    throw new InputError(`contract artifact for ${name} is missing`, {
      details: { file },
      hint: "run `npx hardhat build` in the repository first",
      cause,
    });
  }
  let artifact: unknown;
  try {
    artifact = JSON.parse(text);
  } catch (cause) {
    throw new InputError(`contract artifact for ${name} is not valid JSON`, {
      details: { file },
      cause,
    });
  }
  const abi = (artifact as { abi?: unknown }).abi;
  if (!Array.isArray(abi)) {
    throw new InputError(`contract artifact for ${name} has no ABI`, {
      details: { file },
      hint: "run `npx hardhat build` in the repository first",
    });
  }
  return abi as InterfaceAbi;
}

/** The ABIs that receipt verification needs. */
export interface LedgerAbis {
  ledger: InterfaceAbi;
  staking: InterfaceAbi;
  tee: InterfaceAbi;
}

export function loadLedgerAbis(artifactsDir: string = DEFAULT_ARTIFACTS_DIR): LedgerAbis {
  return {
    ledger: loadAbi("contracts/anchoring/InferenceLedger.sol", "InferenceLedger", artifactsDir),
    staking: loadAbi("contracts/staking/NodeStaking.sol", "NodeStaking", artifactsDir),
    tee: loadAbi("contracts/tee/TeeRegistry.sol", "TeeRegistry", artifactsDir),
  };
}
