/**
 * The rewards maths, pure and integer-only (docs/rewards.md, "Distribution"). No chain access here:
 * offchain/rewards/chain.ts gathers the inputs, this module turns them into the epoch's table.
 *
 * Order of operations for one epoch (each division rounds down):
 *   pool            = emission(epoch) + dust carried from the previous epoch
 *   modelPool[m]    = floor(pool * usage[m] / totalUsage)           models in ascending modelId order
 *   amount[m][c]    = floor(modelPool[m] * bps[c] / 10_000)          contributors in registry order
 *   paid            = sum of amount[m][c];  dust = pool - paid  (carried to the next epoch)
 *   cumulative[a]   = cumulative of the previous epoch + sum of a's amounts this epoch
 * Every floor only lowers a figure, so paid <= pool and nothing is ever created.
 */
import { AbiCoder, getAddress, keccak256 } from "ethers";

import { InputError, VerificationError } from "../common/errors.js";

export const BPS = 10_000n;

/** A model's reward recipients as ModelRegistry held them at the epoch's end. */
export interface ModelShares {
  contributors: readonly string[];
  sharesBps: readonly number[];
}

/** What one epoch is computed from, all read from the chain. */
export interface EpochInput {
  epoch: bigint;
  /** Unix seconds, inclusive. */
  startTime: bigint;
  /** Unix seconds, exclusive. */
  endTime: bigint;
  /** First and last block of the epoch (lastBlock < firstBlock for an epoch without blocks). */
  firstBlock: number;
  lastBlock: number;
  /** modelId (lower-case 0x hex) -> receipts anchored in the epoch. */
  usage: ReadonlyMap<string, bigint>;
  /** modelId (lower-case) -> contributors at the epoch's last block; models without any pay nothing. */
  shares: ReadonlyMap<string, ModelShares>;
  /** Everything the rewards pool has made available by the epoch's end (see docs/rewards.md, "Pool"). */
  poolCumulative: bigint;
}

export interface ContributorAmount {
  account: string;
  bps: number;
  amount: bigint;
}

export interface ModelRow {
  modelId: string;
  usage: bigint;
  /** floor(pool * usage / totalUsage). */
  modelPool: bigint;
  /** What its contributors received (modelPool minus this model's rounding dust). */
  paid: bigint;
  contributors: ContributorAmount[];
}

export interface AccountRow {
  account: string;
  /** Earned this epoch. */
  amount: bigint;
  /** Earned since epoch 1: the tree's leaf value. */
  cumulative: bigint;
}

export interface EpochTable {
  epoch: bigint;
  startTime: bigint;
  endTime: bigint;
  firstBlock: number;
  lastBlock: number;
  poolCumulative: bigint;
  /** poolCumulative of this epoch minus that of the previous one. */
  emission: bigint;
  /** The previous epoch's dust. */
  carriedIn: bigint;
  /** emission + carriedIn: what this epoch distributes. */
  pool: bigint;
  totalUsage: bigint;
  paid: bigint;
  /** pool - paid: carried to the next epoch. */
  dust: bigint;
  models: ModelRow[];
  /** Every account with a non-zero cumulative amount, ascending by address. */
  accounts: AccountRow[];
  /** Sum of the accounts' cumulative amounts (the root's totalCumulative). */
  totalCumulative: bigint;
}

const byHexValue = (a: string, b: string): number => {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
};

/** Checks a model's shares as ModelRegistry enforces them (so corrupt input cannot mint dust away). */
function checkShares(modelId: string, s: ModelShares): void {
  if (s.contributors.length !== s.sharesBps.length || s.contributors.length === 0) {
    throw new InputError("model shares are malformed", {
      details: { modelId, contributors: s.contributors.length, shares: s.sharesBps.length },
    });
  }
  let sum = 0n;
  for (const bps of s.sharesBps) {
    if (!Number.isInteger(bps) || bps <= 0) {
      throw new InputError("a contributor share is not a positive integer", {
        details: { modelId, bps },
      });
    }
    sum += BigInt(bps);
  }
  if (sum !== BPS) {
    throw new InputError("model shares do not sum to 10,000 bps", { details: { modelId, sum } });
  }
}

/**
 * One epoch's amounts for `pool` given usage and shares: the distribution step only (no carry, no
 * cumulative). Returns the model rows, each account's amount, and what was paid.
 */
export function distribute(
  pool: bigint,
  usage: ReadonlyMap<string, bigint>,
  shares: ReadonlyMap<string, ModelShares>,
): { models: ModelRow[]; amounts: Map<string, bigint>; paid: bigint; totalUsage: bigint } {
  if (pool < 0n) throw new InputError("the pool is negative", { details: { pool } });
  let totalUsage = 0n;
  for (const [modelId, count] of usage) {
    if (count < 0n) throw new InputError("negative usage", { details: { modelId, count } });
    totalUsage += count;
  }
  const models: ModelRow[] = [];
  const amounts = new Map<string, bigint>();
  let paid = 0n;
  if (totalUsage === 0n) return { models, amounts, paid, totalUsage };

  for (const modelId of [...usage.keys()].sort(byHexValue)) {
    const count = usage.get(modelId)!;
    // Step 1: the model's part of the pool, rounded down.
    const modelPool = (pool * count) / totalUsage;
    const row: ModelRow = { modelId, usage: count, modelPool, paid: 0n, contributors: [] };
    const s = shares.get(modelId);
    if (s !== undefined) {
      checkShares(modelId, s);
      // Step 2: each contributor's part of the model's part, rounded down, in registry order.
      s.contributors.forEach((contributor, i) => {
        const bps = s.sharesBps[i]!;
        const amount = (modelPool * BigInt(bps)) / BPS;
        const account = getAddress(contributor);
        row.contributors.push({ account, bps, amount });
        row.paid += amount;
        if (amount > 0n) amounts.set(account, (amounts.get(account) ?? 0n) + amount);
      });
    }
    paid += row.paid;
    models.push(row);
  }
  return { models, amounts, paid, totalUsage };
}

/**
 * All epochs 1..N in order, each from its input and the previous table: the only way to get
 * epoch N's cumulative amounts and carried dust, so verification always recomputes from epoch 1.
 */
export function computeTables(inputs: readonly EpochInput[]): EpochTable[] {
  const tables: EpochTable[] = [];
  let previous: EpochTable | undefined;
  for (const [index, input] of inputs.entries()) {
    if (input.epoch !== BigInt(index) + 1n) {
      throw new InputError("epoch inputs must be 1, 2, 3, ... in order", {
        details: { index, epoch: input.epoch },
      });
    }
    const previousPool = previous?.poolCumulative ?? 0n;
    if (input.poolCumulative < previousPool) {
      // Only a revoked rewards-pool schedule can do this; the table would have to claw back.
      throw new VerificationError("the rewards pool shrank between epochs", {
        details: { epoch: input.epoch, poolCumulative: input.poolCumulative, previousPool },
        hint: "the rewards-pool schedule must not be revocable (docs/rewards.md)",
      });
    }
    const emission = input.poolCumulative - previousPool;
    const carriedIn = previous?.dust ?? 0n;
    const pool = emission + carriedIn;
    const { models, amounts, paid, totalUsage } = distribute(pool, input.usage, input.shares);

    const cumulative = new Map<string, bigint>();
    for (const row of previous?.accounts ?? []) cumulative.set(row.account, row.cumulative);
    for (const [account, amount] of amounts) {
      cumulative.set(account, (cumulative.get(account) ?? 0n) + amount);
    }
    const accounts = [...cumulative.entries()]
      .filter(([, c]) => c > 0n)
      .sort(([a], [b]) => byHexValue(a, b))
      .map(([account, c]) => ({ account, amount: amounts.get(account) ?? 0n, cumulative: c }));
    const totalCumulative = accounts.reduce((sum, a) => sum + a.cumulative, 0n);

    const table: EpochTable = {
      epoch: input.epoch,
      startTime: input.startTime,
      endTime: input.endTime,
      firstBlock: input.firstBlock,
      lastBlock: input.lastBlock,
      poolCumulative: input.poolCumulative,
      emission,
      carriedIn,
      pool,
      totalUsage,
      paid,
      dust: pool - paid,
      models,
      accounts,
      totalCumulative,
    };
    tables.push(table);
    previous = table;
  }
  return tables;
}

/** What the table is bound to on chain, part of its canonical encoding. */
export interface TableContext {
  chainId: bigint;
  rewards: string;
  ledger: string;
  registry: string;
  genesisTime: bigint;
  epochLength: bigint;
}

export const TABLE_VERSION = "opg-rewards-table-v1";

const TABLE_ABI = [
  "string",
  "uint256",
  "address",
  "address",
  "address",
  "uint64",
  "uint64",
  "uint64",
  "uint256[6]",
  "tuple(bytes32 modelId, uint256 usage, uint256 modelPool, tuple(address account, uint16 bps, uint256 amount)[] contributors)[]",
  "tuple(address account, uint256 amount, uint256 cumulative)[]",
];

/**
 * The canonical encoding of a table (docs/rewards.md, "dataHash"):
 * abi.encode(version, chainId, rewards, ledger, registry, epoch, genesisTime, epochLength,
 *            [pool, carriedIn, totalUsage, paid, dust, totalCumulative], models, accounts).
 */
export function encodeTable(ctx: TableContext, t: EpochTable): string {
  return AbiCoder.defaultAbiCoder().encode(TABLE_ABI, [
    TABLE_VERSION,
    ctx.chainId,
    ctx.rewards,
    ctx.ledger,
    ctx.registry,
    t.epoch,
    ctx.genesisTime,
    ctx.epochLength,
    [t.pool, t.carriedIn, t.totalUsage, t.paid, t.dust, t.totalCumulative],
    t.models.map((m) => [
      m.modelId,
      m.usage,
      m.modelPool,
      m.contributors.map((c) => [c.account, c.bps, c.amount]),
    ]),
    t.accounts.map((a) => [a.account, a.amount, a.cumulative]),
  ]);
}

/** keccak256 of the canonical encoding: the `dataHash` proposed with the root. */
export function tableDataHash(ctx: TableContext, t: EpochTable): string {
  return keccak256(encodeTable(ctx, t));
}
