/**
 * Resolves where rewards data lives on a network, for the CLI and the Hardhat tasks alike: contract
 * addresses from flags or deployments/<network>/addresses.json (ContributorRewards, InferenceLedger,
 * ModelRegistry), epoch parameters from flags or deployments/<network>/rewards.json.
 */
import path from "node:path";

import { getAddress, isAddress } from "ethers";
import type { Provider } from "ethers";

import { InputError } from "../common/errors.js";
import { addressOf } from "../chain/deployment.js";

import type { RewardsSource } from "./chain.js";
import { loadEpochConfig, parseEpochConfig } from "./epochs.js";
import type { Progress } from "./progress.js";

export const CONTRACT_NAMES = {
  rewards: "ContributorRewards",
  ledger: "InferenceLedger",
  registry: "ModelRegistry",
} as const;

export interface SourceOptions {
  /** deployments/<network> folder. */
  deploymentDir: string;
  rewards?: string | undefined;
  ledger?: string | undefined;
  registry?: string | undefined;
  /** Rewards config file; default <deploymentDir>/rewards.json. */
  config?: string | undefined;
  /** Overrides of the config's fields (all three given: no file is read). */
  genesis?: string | undefined;
  epochLength?: string | undefined;
  fromBlock?: string | undefined;
  chunkSize?: number | undefined;
  progress?: Progress | undefined;
}

async function resolveAddress(
  given: string | undefined,
  dir: string,
  name: string,
  flag: string,
): Promise<string> {
  if (given !== undefined && given !== "") {
    if (!isAddress(given)) {
      throw new InputError(`--${flag} is not an address`, { details: { [flag]: given } });
    }
    return getAddress(given);
  }
  return getAddress(await addressOf(dir, name));
}

export async function resolveSource(
  provider: Provider,
  options: SourceOptions,
): Promise<RewardsSource> {
  const dir = options.deploymentDir;
  const given = (v: string | undefined) => v !== undefined && v !== "";
  let base: Record<string, unknown> = {};
  if (!(given(options.genesis) && given(options.epochLength))) {
    const file = given(options.config) ? options.config! : path.join(dir, "rewards.json");
    const config = await loadEpochConfig(file);
    base = {
      genesisTime: config.genesisTime.toString(),
      epochLength: config.epochLength.toString(),
      fromBlock: config.fromBlock,
    };
  }
  if (given(options.genesis)) base.genesisTime = options.genesis;
  if (given(options.epochLength)) base.epochLength = options.epochLength;
  if (given(options.fromBlock)) {
    if (!/^\d+$/.test(options.fromBlock!)) {
      throw new InputError("--from-block must be a block number", {
        details: { fromBlock: options.fromBlock },
      });
    }
    base.fromBlock = Number(options.fromBlock);
  }
  const config = parseEpochConfig(base, "the rewards epoch parameters");
  const source: RewardsSource = {
    provider,
    rewards: await resolveAddress(options.rewards, dir, CONTRACT_NAMES.rewards, "rewards"),
    ledger: await resolveAddress(options.ledger, dir, CONTRACT_NAMES.ledger, "ledger"),
    registry: await resolveAddress(options.registry, dir, CONTRACT_NAMES.registry, "registry"),
    config,
  };
  if (options.chunkSize !== undefined) source.chunkSize = options.chunkSize;
  if (options.progress !== undefined) source.progress = options.progress;
  return source;
}
