/**
 * The rewards step of `npm run demo`: close an epoch, compute its rewards from the anchored usage,
 * propose the root, wait out the timelock, accept it, let one contributor claim (sent by someone
 * else), and verify the on-chain root by recomputing from chain data alone.
 */
import path from "node:path";

import type { Signer } from "ethers";

import { VerificationError } from "../common/errors.js";
import { ContributorRewards__factory } from "../../types/ethers-contracts/index.js";

import type { RewardsSource } from "./chain.js";
import { computeRewards, writeRewardsOutputs } from "./compute.js";
import { epochWindow } from "./epochs.js";
import {
  acceptRewards,
  claimRewards,
  proposeRewards,
  readProofFile,
  verifyRewards,
} from "./onchain.js";
import { formatChecks, opg, summarise } from "./report.js";

export interface RewardsDemoContext {
  /** Provider, contract addresses and epoch parameters. */
  source: RewardsSource;
  /** Holds UPDATER_ROLE on ContributorRewards. */
  updater: Signer;
  /** Sends acceptRoot and the claim (anyone may). */
  sender: Signer;
  /** The contributor whose rewards are claimed; must have earned something by `epoch`. */
  contributor: string;
  chain: {
    /** Seconds of the latest block. */
    now(): Promise<bigint>;
    /** Mines the next block at exactly `t`. */
    mineAt(t: bigint): Promise<void>;
  };
  log: (line: string) => void;
  /** Where epoch-N/ is written (e.g. reports/rewards). */
  outDir: string;
  /** The epoch to close (default 1). */
  epoch?: bigint;
}

export interface RewardsDemoSummary {
  epoch: bigint;
  root: string;
  dataHash: string;
  totalCumulative: bigint;
  dust: bigint;
  contributor: string;
  claimed: bigint;
  claimTx: string;
  verified: boolean;
}

export async function runRewardsDemo(ctx: RewardsDemoContext): Promise<RewardsDemoSummary> {
  const { source, log, chain } = ctx;
  const epoch = ctx.epoch ?? 1n;

  // 1. Close the epoch: a block at or after its end must exist.
  const { end } = epochWindow(source.config, epoch);
  if ((await chain.now()) < end) {
    log(`closing epoch ${epoch}: mining a block at its end`);
    await chain.mineAt(end);
  }

  // 2. Compute from the chain and publish the files.
  const result = await computeRewards(source, epoch);
  const dir = await writeRewardsOutputs(ctx.outDir, result);
  for (const line of summarise(result)) log(line);
  log(`reward table and proofs: ${dir}`);

  // 3. Propose, wait out the timelock, accept.
  const proposal = await proposeRewards(
    ctx.updater,
    result,
    path.join(dir, "table.json").split(path.sep).join("/"),
  );
  log(`proposed the root in tx ${proposal.txHash}; timelock until ${proposal.validAt}`);
  await chain.mineAt(
    proposal.validAt > (await chain.now()) ? proposal.validAt : (await chain.now()) + 1n,
  );
  const accepted = await acceptRewards(ctx.sender, source.rewards);
  log(`accepted epoch ${accepted.epoch}'s root in tx ${accepted.txHash}`);

  // 4. One contributor's claim, sent by someone else; the tokens go to the contributor.
  const proofFile = path.join(dir, "proofs", `${ctx.contributor}.json`);
  const proof = await readProofFile(proofFile);
  const claim = await claimRewards(ctx.sender, proof);
  if (claim.txHash === null) {
    throw new VerificationError("the demo contributor had nothing to claim", {
      details: { contributor: ctx.contributor },
    });
  }
  const rewards = ContributorRewards__factory.connect(source.rewards, source.provider);
  log(
    `claimed ${opg(claim.amount)} OPG for ${claim.account} in tx ${claim.txHash}; ` +
      `claimed(${claim.account}) = ${opg(await rewards.claimed(claim.account))} OPG`,
  );

  // 5. Anyone recomputes the epoch from chain data alone and compares it with the accepted root.
  const report = await verifyRewards(source, epoch);
  for (const line of formatChecks(report.checks)) log(line);
  if (!report.ok) {
    throw new VerificationError(
      `epoch ${epoch}: the on-chain root does not match the recomputation`,
    );
  }
  log(`opg rewards verify --epoch ${epoch}: the on-chain root matches`);
  return {
    epoch,
    root: result.root,
    dataHash: result.dataHash,
    totalCumulative: result.table.totalCumulative,
    dust: result.table.dust,
    contributor: claim.account,
    claimed: claim.amount,
    claimTx: claim.txHash,
    verified: report.ok,
  };
}
