/**
 * Epochs (docs/rewards.md, "Epochs"): epoch N (N >= 1; ContributorRewards takes epochs above the
 * accepted one, which starts at 0) covers the unix-time window
 * [genesisTime + (N - 1) * epochLength, genesisTime + N * epochLength); a block belongs to the
 * epoch its timestamp falls in. genesisTime, epochLength and the first block to scan come from the
 * network's committed config, deployments/<network>/rewards.json.
 */
import { z } from "zod";

import { InputError } from "../common/errors.js";

export interface EpochConfig {
  /** Unix seconds where epoch 1 starts. */
  genesisTime: bigint;
  /** Seconds per epoch. */
  epochLength: bigint;
  /** No contract event of interest is older than this block (the contracts' deployment block). */
  fromBlock: number;
}

const unixOrIso = z.union([
  z.number().int().nonnegative(),
  z.string().regex(/^\d+$/, "unix seconds as a decimal string"),
  z.iso.datetime({ offset: true }),
]);

const configSchema = z.object({
  genesisTime: unixOrIso,
  epochLength: z.union([z.number().int().positive(), z.string().regex(/^[1-9]\d*$/)]),
  fromBlock: z.number().int().nonnegative().default(0),
});

function toSeconds(value: string | number): bigint {
  if (typeof value === "number") return BigInt(value);
  if (/^\d+$/.test(value)) return BigInt(value);
  return BigInt(Math.floor(Date.parse(value) / 1000));
}

/** Parses and checks a rewards config object; throws InputError naming the bad field. */
export function parseEpochConfig(value: unknown, source = "rewards config"): EpochConfig {
  const parsed = configSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InputError(`${source} is invalid`, {
      details: { field: issue?.path.join(".") ?? "", problem: issue?.message ?? "" },
      hint: 'expected {"genesisTime": <unix seconds or ISO-8601>, "epochLength": <seconds>, "fromBlock": <block>}',
    });
  }
  return {
    genesisTime: toSeconds(parsed.data.genesisTime),
    epochLength: BigInt(parsed.data.epochLength),
    fromBlock: parsed.data.fromBlock,
  };
}

export async function loadEpochConfig(file: string): Promise<EpochConfig> {
  let text: string;
  try {
    // Imported here, not at the top: the rest of this module runs in the browser (explorer/).
    const { readFile } = await import("node:fs/promises");
    text = await readFile(file, "utf8");
  } catch (cause) {
    throw new InputError("cannot read the rewards config", {
      details: { file },
      hint: "write deployments/<network>/rewards.json (docs/rewards.md) or pass --genesis and --epoch-length",
      cause,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new InputError("the rewards config is not valid JSON", { details: { file }, cause });
  }
  return parseEpochConfig(json, file);
}

/** Parses a user-given epoch number (CLI/task argument). */
export function parseEpoch(value: string | number | bigint): bigint {
  const text = String(value).trim();
  if (!/^\d+$/.test(text) || BigInt(text) === 0n || BigInt(text) >= 2n ** 64n) {
    throw new InputError("the epoch must be an integer from 1 to 2^64 - 1", {
      details: { epoch: text },
    });
  }
  return BigInt(text);
}

/** Start (inclusive) and end (exclusive) of `epoch` (>= 1), unix seconds. */
export function epochWindow(config: EpochConfig, epoch: bigint): { start: bigint; end: bigint } {
  const start = config.genesisTime + (epoch - 1n) * config.epochLength;
  return { start, end: start + config.epochLength };
}

/** The epoch a unix time falls in, or 0 before genesis. */
export function epochAt(config: EpochConfig, time: bigint): bigint {
  if (time < config.genesisTime) return 0n;
  return (time - config.genesisTime) / config.epochLength + 1n;
}
