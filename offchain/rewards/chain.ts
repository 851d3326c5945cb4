/**
 * Reads everything an epoch is computed from, from the chain alone (docs/rewards.md):
 * - the epochs' block ranges (binary search on block timestamps),
 * - usage: InferenceLedger `BatchAnchored` events (modelIds + counts) in each epoch's blocks,
 * - shares: ModelRegistry `ContributorsSet` events replayed up to each epoch's last block,
 * - the pool: the bound rewards-pool schedule's `vestedAt(epoch end)` minus its `releasedAtBinding`,
 *   plus ContributorRewards `Funded` deposits up to the epoch's last block.
 */
import { ZeroAddress, getAddress } from "ethers";
import type { Log, Provider } from "ethers";

import { InputError } from "../common/errors.js";
import {
  ContributorRewards__factory,
  InferenceLedger__factory,
  ModelRegistry__factory,
  VestingVault__factory,
} from "../../types/ethers-contracts/index.js";

import type { EpochInput, ModelShares } from "./distribute.js";
import type { EpochConfig } from "./epochs.js";
import { epochWindow } from "./epochs.js";
import type { Progress } from "./progress.js";
import { silentProgress } from "./progress.js";

/** Where to read from. */
export interface RewardsSource {
  provider: Provider;
  rewards: string;
  ledger: string;
  registry: string;
  config: EpochConfig;
  /** Blocks per eth_getLogs request (default 5,000). */
  chunkSize?: number;
  progress?: Progress;
}

const ledgerIface = InferenceLedger__factory.createInterface();
const registryIface = ModelRegistry__factory.createInterface();
const rewardsIface = ContributorRewards__factory.createInterface();
const BATCH_TOPIC = ledgerIface.getEvent("BatchAnchored").topicHash;
const CONTRIBUTORS_TOPIC = registryIface.getEvent("ContributorsSet").topicHash;
const FUNDED_TOPIC = rewardsIface.getEvent("Funded").topicHash;

/** Block timestamps, fetched once each. */
class BlockClock {
  private readonly cache = new Map<number, bigint>();
  constructor(private readonly provider: Provider) {}

  async timestamp(block: number): Promise<bigint> {
    const cached = this.cache.get(block);
    if (cached !== undefined) return cached;
    const b = await this.provider.getBlock(block);
    if (b === null) throw new InputError("the node does not have block", { details: { block } });
    const t = BigInt(b.timestamp);
    this.cache.set(block, t);
    return t;
  }

  /** The first block in [lo, hi] with timestamp >= t, or hi + 1 when none. */
  async firstAtOrAfter(t: bigint, lo: number, hi: number): Promise<number> {
    let a = lo;
    let b = hi + 1;
    while (a < b) {
      const mid = a + Math.floor((b - a) / 2);
      if ((await this.timestamp(mid)) >= t) b = mid;
      else a = mid + 1;
    }
    return a;
  }
}

export interface EpochBlocks {
  epoch: bigint;
  start: bigint;
  end: bigint;
  firstBlock: number;
  lastBlock: number;
}

/**
 * Block ranges of epochs 1..upTo. Throws InputError when epoch `upTo` has not closed (no block at or
 * after its end yet), since more usage could still land in it.
 */
export async function epochBlocks(
  provider: Provider,
  config: EpochConfig,
  upTo: bigint,
): Promise<EpochBlocks[]> {
  const latest = await provider.getBlock("latest");
  if (latest === null) throw new InputError("the node returned no latest block");
  const { end } = epochWindow(config, upTo);
  if (BigInt(latest.timestamp) < end) {
    throw new InputError(`epoch ${upTo} has not closed yet`, {
      details: {
        epoch: upTo,
        endsAt: new Date(Number(end) * 1000).toISOString(),
        chainTime: new Date(latest.timestamp * 1000).toISOString(),
      },
      hint: "an epoch is computed once a block at or after its end exists",
    });
  }
  if (config.fromBlock > latest.number) {
    throw new InputError("fromBlock is past the chain's head", {
      details: { fromBlock: config.fromBlock, head: latest.number },
    });
  }
  const clock = new BlockClock(provider);
  const out: EpochBlocks[] = [];
  let first = await clock.firstAtOrAfter(config.genesisTime, config.fromBlock, latest.number);
  for (let epoch = 1n; epoch <= upTo; epoch++) {
    const w = epochWindow(config, epoch);
    const next = await clock.firstAtOrAfter(w.end, first, latest.number);
    out.push({ epoch, start: w.start, end: w.end, firstBlock: first, lastBlock: next - 1 });
    first = next;
  }
  return out;
}

interface ScannedLogs {
  batches: Log[];
  contributors: Log[];
  funded: Log[];
}

async function scanLogs(
  source: RewardsSource,
  fromBlock: number,
  toBlock: number,
): Promise<ScannedLogs> {
  const chunk = source.chunkSize ?? 5_000;
  const addresses = {
    ledger: getAddress(source.ledger),
    registry: getAddress(source.registry),
    rewards: getAddress(source.rewards),
  };
  const out: ScannedLogs = { batches: [], contributors: [], funded: [] };
  if (toBlock < fromBlock) return out;
  const chunks = Math.ceil((toBlock - fromBlock + 1) / chunk);
  const task = (source.progress ?? silentProgress).start(
    "scanning blocks",
    toBlock - fromBlock + 1,
  );
  try {
    for (let i = 0; i < chunks; i++) {
      const from = fromBlock + i * chunk;
      const to = Math.min(toBlock, from + chunk - 1);
      const logs = await source.provider.getLogs({
        address: [addresses.ledger, addresses.registry, addresses.rewards],
        topics: [[BATCH_TOPIC, CONTRIBUTORS_TOPIC, FUNDED_TOPIC]],
        fromBlock: from,
        toBlock: to,
      });
      for (const log of logs) {
        const address = getAddress(log.address);
        const topic = log.topics[0];
        if (address === addresses.ledger && topic === BATCH_TOPIC) out.batches.push(log);
        else if (address === addresses.registry && topic === CONTRIBUTORS_TOPIC)
          out.contributors.push(log);
        else if (address === addresses.rewards && topic === FUNDED_TOPIC) out.funded.push(log);
      }
      task.update(to - fromBlock + 1);
    }
  } finally {
    task.stop();
  }
  const order = (a: Log, b: Log) => a.blockNumber - b.blockNumber || a.index - b.index;
  out.batches.sort(order);
  out.contributors.sort(order);
  out.funded.sort(order);
  return out;
}

/** What the bound rewards-pool schedule contributes by time `t`: vestedAt(t) - releasedAtBinding. */
async function schedulePool(source: RewardsSource): Promise<(t: bigint) => Promise<bigint>> {
  const rewards = ContributorRewards__factory.connect(source.rewards, source.provider);
  let pool: [string, bigint, bigint];
  try {
    const r = await rewards.rewardsPool();
    pool = [r[0], r[1], r[2]];
  } catch (cause) {
    throw new InputError("the rewards address does not answer as a ContributorRewards", {
      details: { rewards: source.rewards },
      cause,
    });
  }
  const [vaultAddress, scheduleId, releasedAtBinding] = pool;
  if (vaultAddress === ZeroAddress) return () => Promise.resolve(0n);
  const vault = VestingVault__factory.connect(vaultAddress, source.provider);
  return async (t) => {
    const vested = await vault.vestedAt(scheduleId, t);
    return vested > releasedAtBinding ? vested - releasedAtBinding : 0n;
  };
}

/** The inputs of epochs 1..upTo, read from the chain. */
export async function readEpochInputs(
  source: RewardsSource,
  upTo: bigint,
): Promise<{ inputs: EpochInput[]; chainId: bigint }> {
  const { chainId } = await source.provider.getNetwork();
  for (const [name, address] of [
    ["rewards", source.rewards],
    ["ledger", source.ledger],
    ["registry", source.registry],
  ] as const) {
    if ((await source.provider.getCode(address)) === "0x") {
      throw new InputError(`no contract at the ${name} address`, {
        details: { [name]: address, chainId },
      });
    }
  }
  const blocks = await epochBlocks(source.provider, source.config, upTo);
  const lastBlock = blocks[blocks.length - 1]!.lastBlock;
  const logs = await scanLogs(source, source.config.fromBlock, lastBlock);
  const vestedPool = await schedulePool(source);

  const shares = new Map<string, ModelShares>();
  let contributorCursor = 0;
  let deposits = 0n;
  let fundedCursor = 0;
  let batchCursor = 0;
  const inputs: EpochInput[] = [];
  for (const b of blocks) {
    // Registry state and deposits as of the epoch's last block.
    while (
      contributorCursor < logs.contributors.length &&
      logs.contributors[contributorCursor]!.blockNumber <= b.lastBlock
    ) {
      const log = logs.contributors[contributorCursor++]!;
      const ev = registryIface.decodeEventLog("ContributorsSet", log.data, log.topics);
      shares.set((ev[0] as string).toLowerCase(), {
        contributors: (ev[1] as string[]).map((a) => getAddress(a)),
        sharesBps: (ev[2] as bigint[]).map(Number),
      });
    }
    while (
      fundedCursor < logs.funded.length &&
      logs.funded[fundedCursor]!.blockNumber <= b.lastBlock
    ) {
      const log = logs.funded[fundedCursor++]!;
      deposits += rewardsIface.decodeEventLog("Funded", log.data, log.topics)[1] as bigint;
    }
    // Usage anchored in the epoch's blocks (batches before genesis belong to no epoch).
    const usage = new Map<string, bigint>();
    while (
      batchCursor < logs.batches.length &&
      logs.batches[batchCursor]!.blockNumber <= b.lastBlock
    ) {
      const log = logs.batches[batchCursor++]!;
      if (log.blockNumber < b.firstBlock) continue;
      const ev = ledgerIface.decodeEventLog("BatchAnchored", log.data, log.topics);
      // By name: BatchAnchored gained an indexed `node`, and positions shift with the event's fields.
      const modelIds = ev.getValue("modelIds") as string[];
      const counts = ev.getValue("counts") as bigint[];
      modelIds.forEach((id, i) => {
        const key = id.toLowerCase();
        usage.set(key, (usage.get(key) ?? 0n) + counts[i]!);
      });
    }
    inputs.push({
      epoch: b.epoch,
      startTime: b.start,
      endTime: b.end,
      firstBlock: b.firstBlock,
      lastBlock: b.lastBlock,
      usage,
      shares: new Map(shares),
      poolCumulative: (await vestedPool(b.end)) + deposits,
    });
  }
  return { inputs, chainId };
}
