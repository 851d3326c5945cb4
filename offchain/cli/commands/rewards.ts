/**
 * `opg rewards compute|propose|accept|verify|claim`: contributor rewards computed from chain data
 * (docs/rewards.md). Exit codes: 0 success, 1 verification failed (the chain's root differs from the
 * recomputation, or a transaction failed), 2 bad input (flags, files, RPC, an epoch not closed yet).
 */
import path from "node:path";

import type { Command } from "commander";
import { isAddress } from "ethers";

import { InputError, VerificationError } from "../../common/errors.js";
import { stringifyJson } from "../../common/json.js";
import { connectRpc } from "../../chain/verify.js";
import { computeRewards, tableJson, writeRewardsOutputs } from "../../rewards/compute.js";
import { parseEpoch } from "../../rewards/epochs.js";
import {
  acceptRewards,
  claimRewards,
  proposeRewards,
  readProofFile,
  verifyRewards,
} from "../../rewards/onchain.js";
import { terminalProgress } from "../../rewards/progress-bar.js";
import { formatChecks, opg, summarise } from "../../rewards/report.js";
import { resolveSource } from "../../rewards/source.js";
import { signerFor, withSigner, type SignerOptions } from "../signer.js";

interface CommonOptions {
  rpc: string;
  network: string;
  deployments: string;
  rewards?: string;
  ledger?: string;
  registry?: string;
  config?: string;
  genesis?: string;
  epochLength?: string;
  fromBlock?: string;
  chunkSize: string;
  progress?: boolean;
}

function withCommon(cmd: Command): Command {
  return cmd
    .requiredOption("--rpc <url>", "JSON-RPC URL of the chain")
    .option("--network <name>", "deployment record to read: deployments/<name>/", "localhost")
    .option("--deployments <dir>", "deployments folder", "deployments")
    .option("--rewards <address>", "ContributorRewards (default: from addresses.json)")
    .option("--ledger <address>", "InferenceLedger (default: from addresses.json)")
    .option("--registry <address>", "ModelRegistry (default: from addresses.json)")
    .option("--config <file>", "epoch parameters (default: deployments/<network>/rewards.json)")
    .option("--genesis <time>", "epoch 1 start: unix seconds or ISO-8601 (overrides the config)")
    .option("--epoch-length <seconds>", "seconds per epoch (overrides the config)")
    .option("--from-block <n>", "first block to scan (overrides the config)")
    .option("--chunk-size <blocks>", "blocks per eth_getLogs request", "5000")
    .option("--progress", "show progress bars on stderr even when it is not a terminal");
}

async function open(options: CommonOptions) {
  const chunkSize = Number(options.chunkSize);
  if (!Number.isInteger(chunkSize) || chunkSize <= 0) {
    throw new InputError("--chunk-size must be a positive integer", {
      details: { chunkSize: options.chunkSize },
    });
  }
  const progress = terminalProgress(options.progress === true);
  // Addresses and config first: bad flags fail before any network round trip.
  const deploymentDir = path.join(options.deployments, options.network);
  const provider = await connectRpc(options.rpc);
  try {
    const source = await resolveSource(provider, {
      deploymentDir,
      rewards: options.rewards,
      ledger: options.ledger,
      registry: options.registry,
      config: options.config,
      genesis: options.genesis,
      epochLength: options.epochLength,
      fromBlock: options.fromBlock,
      chunkSize,
      progress,
    });
    return { provider, source, progress };
  } catch (error) {
    provider.destroy();
    throw error;
  }
}

type ComputeOptions = CommonOptions & { epoch: string; out: string; json?: boolean };

async function computeCommand(options: ComputeOptions): Promise<void> {
  const epoch = parseEpoch(options.epoch);
  const { provider, source, progress } = await open(options);
  try {
    const result = await computeRewards(source, epoch);
    const dir = await writeRewardsOutputs(options.out, result, progress);
    if (options.json === true) {
      console.log(stringifyJson(tableJson(result)));
      return;
    }
    for (const line of summarise(result)) console.log(line);
    console.log(`  wrote ${dir}/table.json, table.csv, tree.json, proofs/<address>.json`);
  } finally {
    provider.destroy();
  }
}

type ProposeOptions = CommonOptions & SignerOptions & { epoch: string; uri?: string; out: string };

async function proposeCommand(options: ProposeOptions): Promise<void> {
  const epoch = parseEpoch(options.epoch);
  const { provider, source, progress } = await open(options);
  try {
    const signer = await signerFor(provider, options);
    const result = await computeRewards(source, epoch);
    const dir = await writeRewardsOutputs(options.out, result, progress);
    for (const line of summarise(result)) console.log(line);
    const uri = options.uri ?? `${dir}/table.json`;
    const p = await proposeRewards(signer, result, uri);
    console.log(
      `proposed epoch ${epoch} in tx ${p.txHash} (block ${p.block}); acceptable from ` +
        `${new Date(Number(p.validAt) * 1000).toISOString()} (opg rewards accept)`,
    );
  } finally {
    provider.destroy();
  }
}

async function acceptCommand(options: CommonOptions & SignerOptions): Promise<void> {
  const { provider, source } = await open(options);
  try {
    const signer = await signerFor(provider, options);
    const a = await acceptRewards(signer, source.rewards);
    console.log(`accepted the root of epoch ${a.epoch} (${a.root}) in tx ${a.txHash}`);
  } finally {
    provider.destroy();
  }
}

type VerifyOptions = CommonOptions & { epoch: string; json?: boolean };

async function verifyCommand(options: VerifyOptions): Promise<void> {
  const epoch = parseEpoch(options.epoch);
  const { provider, source } = await open(options);
  try {
    const report = await verifyRewards(source, epoch);
    if (options.json === true) {
      console.log(
        stringifyJson({
          ok: report.ok,
          checks: report.checks,
          recomputed: tableJson(report.result),
        }),
      );
    } else {
      for (const line of summarise(report.result)) console.log(line);
      for (const line of formatChecks(report.checks)) console.log(line);
    }
    if (!report.ok) {
      throw new VerificationError(`the chain's root for epoch ${epoch} does not match`, {
        details: {
          failed: report.checks
            .filter((c) => !c.ok)
            .map((c) => c.name)
            .join(", "),
        },
      });
    }
    if (options.json !== true) console.log(`epoch ${epoch} verified: the on-chain root matches`);
  } finally {
    provider.destroy();
  }
}

type ClaimOptions = CommonOptions &
  SignerOptions & { epoch: string; account: string; proof?: string; out: string };

async function claimCommand(options: ClaimOptions): Promise<void> {
  const epoch = parseEpoch(options.epoch);
  if (!isAddress(options.account)) {
    throw new InputError("--account is not an address", { details: { account: options.account } });
  }
  const { provider, source, progress } = await open(options);
  try {
    const signer = await signerFor(provider, options);
    let file = options.proof;
    if (file === undefined) {
      // Recompute (chain data only) and write the epoch's files, so the claim never trusts old files.
      const result = await computeRewards(source, epoch);
      const dir = await writeRewardsOutputs(options.out, result, progress);
      const wanted = options.account.toLowerCase();
      const row = result.table.accounts.find((a) => a.account.toLowerCase() === wanted);
      if (row === undefined) {
        throw new InputError(`the account has earned nothing up to epoch ${epoch}`, {
          details: { account: options.account, table: path.join(dir, "table.json") },
        });
      }
      file = path.join(dir, "proofs", `${row.account}.json`);
    }
    const proof = await readProofFile(file);
    if (proof.account.toLowerCase() !== options.account.toLowerCase()) {
      throw new InputError("the proof file is for another account", {
        details: { account: options.account, proofAccount: proof.account, file },
      });
    }
    const c = await claimRewards(signer, proof);
    if (c.txHash === null) {
      console.log(`${c.account} has already received its ${opg(c.cumulativeAmount)} OPG`);
      return;
    }
    console.log(
      `claimed ${opg(c.amount)} OPG for ${c.account} (cumulative ${opg(c.cumulativeAmount)}) in tx ${c.txHash}`,
    );
  } finally {
    provider.destroy();
  }
}

export function register(program: Command): void {
  const rewards = program
    .command("rewards")
    .description("contributor rewards computed from anchored usage (docs/rewards.md)");
  withCommon(rewards.command("compute"))
    .description("compute an epoch's reward table, tree and proofs from chain data")
    .requiredOption("--epoch <n>", "the epoch")
    .option("--out <dir>", "output folder (epoch-N/ is created in it)", "reports/rewards")
    .option("--json", "print the table as JSON")
    .action((options: ComputeOptions) => computeCommand(options));
  withSigner(withCommon(rewards.command("propose")))
    .description("compute an epoch and propose its root (UPDATER_ROLE)")
    .requiredOption("--epoch <n>", "the epoch")
    .option("--uri <uri>", "where the table is published (default: the table.json path)")
    .option("--out <dir>", "output folder (epoch-N/ is created in it)", "reports/rewards")
    .action((options: ProposeOptions) => proposeCommand(options));
  withSigner(withCommon(rewards.command("accept")))
    .description("accept the pending root once its timelock has elapsed (anyone)")
    .action((options: CommonOptions & SignerOptions) => acceptCommand(options));
  withCommon(rewards.command("verify"))
    .description("recompute an epoch from chain data alone and compare it with the chain's root")
    .requiredOption("--epoch <n>", "the epoch")
    .option("--json", "print the checks and the recomputed table as JSON")
    .action((options: VerifyOptions) => verifyCommand(options));
  withSigner(withCommon(rewards.command("claim")))
    .description("claim an account's rewards against the accepted root (anyone may send it)")
    .requiredOption("--epoch <n>", "the epoch of the accepted root")
    .requiredOption("--account <address>", "the account to claim for")
    .option("--proof <file>", "proof file from compute (default: recompute the epoch)")
    .option("--out <dir>", "output folder when recomputing", "reports/rewards")
    .action((options: ClaimOptions) => claimCommand(options));
}
