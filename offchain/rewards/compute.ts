/**
 * `opg rewards compute`: an epoch's reward table, tree, root and dataHash from chain data, and the
 * files published with it: reports/rewards/epoch-N/{table.json, table.csv, tree.json, proofs/<address>.json}.
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";

import { ZeroHash, getAddress } from "ethers";

import { stringifyJson } from "../common/json.js";
import { buildTree } from "../../native/index.js";
import type { MerkleTree } from "../../native/index.js";

import { readEpochInputs } from "./chain.js";
import type { RewardsSource } from "./chain.js";
import { computeTables, tableDataHash, TABLE_VERSION } from "./distribute.js";
import type { EpochTable, TableContext } from "./distribute.js";
import { silentProgress } from "./progress.js";
import type { Progress } from "./progress.js";

export const LEAF_ENCODING = ["address", "uint256"] as const;

export interface RewardsResult {
  context: TableContext;
  /** The requested epoch's table. */
  table: EpochTable;
  /** Epochs before it (recomputed on the way: cumulative amounts and dust depend on them). */
  history: EpochTable[];
  /** Zero hash when no account has earned anything yet. */
  root: string;
  dataHash: string;
  /** null when there are no accounts. */
  tree: MerkleTree | null;
}

/** The tree over `(account, cumulative)` of every account with a non-zero cumulative amount. */
export function buildRewardsTree(table: EpochTable, progress: Progress = silentProgress) {
  if (table.accounts.length === 0) return null;
  const task = progress.start("building tree", table.accounts.length);
  try {
    const tree = buildTree(
      table.accounts.map((a) => [a.account, a.cumulative]),
      [...LEAF_ENCODING],
    );
    task.update(table.accounts.length);
    return tree;
  } finally {
    task.stop();
  }
}

/** Computes `epoch` (and all epochs before it) from the chain behind `source`. */
export async function computeRewards(source: RewardsSource, epoch: bigint): Promise<RewardsResult> {
  const { inputs, chainId } = await readEpochInputs(source, epoch);
  const tables = computeTables(inputs);
  const table = tables[tables.length - 1]!;
  const context: TableContext = {
    chainId,
    rewards: getAddress(source.rewards),
    ledger: getAddress(source.ledger),
    registry: getAddress(source.registry),
    genesisTime: source.config.genesisTime,
    epochLength: source.config.epochLength,
  };
  const tree = buildRewardsTree(table, source.progress);
  return {
    context,
    table,
    history: tables.slice(0, -1),
    root: tree?.root ?? ZeroHash,
    dataHash: tableDataHash(context, table),
    tree,
  };
}

/** A claim's inputs for one account: what `opg rewards claim` and any wallet need. */
export interface ProofFile {
  format: "opg-rewards-proof-v1";
  chainId: string;
  rewards: string;
  epoch: string;
  root: string;
  account: string;
  cumulativeAmount: string;
  proof: string[];
}

/** The JSON form of the table (bigints as decimal strings), with root and dataHash. */
export function tableJson(result: RewardsResult) {
  const { table: t, context: c } = result;
  return {
    format: TABLE_VERSION,
    chainId: c.chainId,
    rewards: c.rewards,
    ledger: c.ledger,
    registry: c.registry,
    genesisTime: c.genesisTime,
    epochLength: c.epochLength,
    epoch: t.epoch,
    startTime: t.startTime,
    endTime: t.endTime,
    firstBlock: t.firstBlock,
    lastBlock: t.lastBlock,
    poolCumulative: t.poolCumulative,
    emission: t.emission,
    carriedIn: t.carriedIn,
    pool: t.pool,
    totalUsage: t.totalUsage,
    paid: t.paid,
    dust: t.dust,
    totalCumulative: t.totalCumulative,
    root: result.root,
    dataHash: result.dataHash,
    models: t.models,
    accounts: t.accounts,
  };
}

export function proofFiles(result: RewardsResult): ProofFile[] {
  const { tree, table, context } = result;
  if (tree === null) return [];
  return table.accounts.map((a, i) => ({
    format: "opg-rewards-proof-v1",
    chainId: context.chainId.toString(),
    rewards: context.rewards,
    epoch: table.epoch.toString(),
    root: result.root,
    account: a.account,
    cumulativeAmount: a.cumulative.toString(),
    proof: tree.proof(i),
  }));
}

/** reports/rewards/epoch-N under `outRoot`. */
export function epochDir(outRoot: string, epoch: bigint): string {
  return path.join(outRoot, `epoch-${epoch}`);
}

/** Writes table.json, table.csv, tree.json and proofs/<address>.json; returns the folder. */
export async function writeRewardsOutputs(
  outRoot: string,
  result: RewardsResult,
  progress: Progress = silentProgress,
): Promise<string> {
  const dir = epochDir(outRoot, result.table.epoch);
  await rm(dir, { recursive: true, force: true });
  await mkdir(path.join(dir, "proofs"), { recursive: true });
  await writeFile(path.join(dir, "table.json"), stringifyJson(tableJson(result)) + "\n");
  const csv = ["account,epoch_amount,cumulative_amount"];
  for (const a of result.table.accounts) csv.push(`${a.account},${a.amount},${a.cumulative}`);
  await writeFile(path.join(dir, "table.csv"), csv.join("\n") + "\n");
  if (result.tree !== null) {
    await writeFile(path.join(dir, "tree.json"), stringifyJson(result.tree.dump()) + "\n");
  }
  const proofs = proofFiles(result);
  const task = progress.start("writing proofs", proofs.length);
  try {
    for (const [i, p] of proofs.entries()) {
      await writeFile(path.join(dir, "proofs", `${p.account}.json`), stringifyJson(p) + "\n");
      task.update(i + 1);
    }
  } finally {
    task.stop();
  }
  return dir;
}
