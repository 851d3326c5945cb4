/**
 * The transactions and the audit: propose an epoch's root, verify the chain's root for an epoch by
 * recomputing it from chain data alone, and claim for an account from its proof file.
 */
import { readFile } from "node:fs/promises";

import { ZeroHash, getAddress } from "ethers";
import type { ContractRunner, Provider } from "ethers";

import { InputError, VerificationError } from "../common/errors.js";
import type { Check } from "../chain/verify.js";
import { ContributorRewards__factory } from "../../types/ethers-contracts/index.js";

import type { RewardsSource } from "./chain.js";
import { computeRewards } from "./compute.js";
import type { ProofFile, RewardsResult } from "./compute.js";

export interface Proposal {
  txHash: string;
  block: number;
  validAt: bigint;
}

/** Sends proposeRoot(root, epoch, totalCumulative, dataHash, uri) with `signer` (UPDATER_ROLE). */
export async function proposeRewards(
  signer: ContractRunner,
  result: RewardsResult,
  uri: string,
): Promise<Proposal> {
  if (result.root === ZeroHash) {
    throw new InputError(`epoch ${result.table.epoch} has nothing to propose`, {
      details: {
        epoch: result.table.epoch,
        pool: result.table.pool,
        usage: result.table.totalUsage,
      },
      hint: "no account has earned anything up to this epoch (no usage, or no pool yet)",
    });
  }
  const rewards = ContributorRewards__factory.connect(result.context.rewards, signer);
  const current = await rewards.currentRoot();
  if (current.root !== ZeroHash && current.epoch >= result.table.epoch) {
    throw new InputError("a later or equal epoch is already accepted", {
      details: { epoch: result.table.epoch, acceptedEpoch: current.epoch },
    });
  }
  const tx = await rewards.proposeRoot(
    result.root,
    result.table.epoch,
    result.table.totalCumulative,
    result.dataHash,
    uri,
  );
  const receipt = await tx.wait();
  if (receipt === null || receipt.status !== 1) {
    throw new VerificationError("proposeRoot failed", { details: { txHash: tx.hash } });
  }
  const pending = await rewards.pendingRoot({ blockTag: receipt.blockNumber });
  return { txHash: tx.hash, block: receipt.blockNumber, validAt: pending.validAt };
}

/** Sends acceptRoot() (anyone, once the timelock has elapsed). */
export async function acceptRewards(
  signer: ContractRunner,
  rewardsAddress: string,
): Promise<{ txHash: string; epoch: bigint; root: string }> {
  const rewards = ContributorRewards__factory.connect(rewardsAddress, signer);
  const tx = await rewards.acceptRoot();
  await tx.wait();
  const current = await rewards.currentRoot();
  return { txHash: tx.hash, epoch: current.epoch, root: current.root };
}

export interface OnChainRoot {
  status: "pending" | "accepted" | "accepted, since superseded";
  root: string;
  totalCumulative: bigint;
  dataHash: string;
  uri: string;
}

/** The chain's root for `epoch`: pending, accepted, or accepted earlier (from events); null if none. */
export async function onChainRoot(
  provider: Provider,
  rewardsAddress: string,
  epoch: bigint,
  fromBlock: number,
): Promise<OnChainRoot | null> {
  const rewards = ContributorRewards__factory.connect(rewardsAddress, provider);
  const pending = await rewards.pendingRoot();
  if (pending.root !== ZeroHash && pending.epoch === epoch) {
    return { status: "pending", ...pick(pending) };
  }
  const current = await rewards.currentRoot();
  if (current.root !== ZeroHash && current.epoch === epoch) {
    return { status: "accepted", ...pick(current) };
  }
  const accepted = await rewards.queryFilter(rewards.filters.RootAccepted(epoch), fromBlock);
  const last = accepted[accepted.length - 1];
  if (last === undefined) return null;
  const proposals = await rewards.queryFilter(
    rewards.filters.RootProposed(epoch, last.args.root),
    fromBlock,
    last.blockNumber,
  );
  const proposal = proposals[proposals.length - 1];
  if (proposal === undefined) return null;
  return {
    status: "accepted, since superseded",
    root: proposal.args.root,
    totalCumulative: proposal.args.totalCumulative,
    dataHash: proposal.args.dataHash,
    uri: proposal.args.uri,
  };
}

function pick(r: { root: string; totalCumulative: bigint; dataHash: string; uri: string }) {
  return { root: r.root, totalCumulative: r.totalCumulative, dataHash: r.dataHash, uri: r.uri };
}

export interface VerifyReport {
  result: RewardsResult;
  onChain: OnChainRoot | null;
  checks: Check[];
  ok: boolean;
}

/** Recomputes `epoch` from chain data alone and compares it with the chain's root for that epoch. */
export async function verifyRewards(source: RewardsSource, epoch: bigint): Promise<VerifyReport> {
  const result = await computeRewards(source, epoch);
  const onChain = await onChainRoot(
    source.provider,
    source.rewards,
    epoch,
    source.config.fromBlock,
  );
  const checks: Check[] = [];
  const t = result.table;
  checks.push({
    name: "rounding",
    ok: t.paid <= t.pool && t.dust === t.pool - t.paid,
    detail: `paid ${t.paid} of pool ${t.pool} (emission ${t.emission} + carried ${t.carriedIn}); dust ${t.dust} carried on`,
  });
  if (onChain === null) {
    checks.push({
      name: "on-chain root",
      ok: false,
      detail: `no root was proposed (pending) or accepted for epoch ${epoch}`,
    });
    return { result, onChain, checks, ok: false };
  }
  checks.push({
    name: "on-chain root",
    ok: true,
    detail: `${onChain.status} root for epoch ${epoch}${onChain.uri === "" ? "" : ` (uri ${onChain.uri})`}`,
  });
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  checks.push({
    name: "root",
    ok: same(onChain.root, result.root),
    detail: same(onChain.root, result.root)
      ? `${result.root} (${t.accounts.length} accounts)`
      : `chain has ${onChain.root}, recomputed ${result.root}`,
  });
  checks.push({
    name: "totalCumulative",
    ok: onChain.totalCumulative === t.totalCumulative,
    detail:
      onChain.totalCumulative === t.totalCumulative
        ? `${t.totalCumulative}`
        : `chain has ${onChain.totalCumulative}, recomputed ${t.totalCumulative}`,
  });
  checks.push({
    name: "dataHash",
    ok: same(onChain.dataHash, result.dataHash),
    detail: same(onChain.dataHash, result.dataHash)
      ? `${result.dataHash} (canonical table encoding)`
      : `chain has ${onChain.dataHash}, recomputed ${result.dataHash}`,
  });
  return { result, onChain, checks, ok: checks.every((c) => c.ok) };
}

/** Reads and checks a proof file written by compute. */
export async function readProofFile(file: string): Promise<ProofFile> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, "utf8"));
  } catch (cause) {
    throw new InputError("cannot read the proof file", { details: { file }, cause });
  }
  const p = json as Partial<ProofFile>;
  const hex32 = /^0x[0-9a-fA-F]{64}$/;
  if (
    p.format !== "opg-rewards-proof-v1" ||
    typeof p.account !== "string" ||
    typeof p.cumulativeAmount !== "string" ||
    !/^\d+$/.test(p.cumulativeAmount) ||
    typeof p.root !== "string" ||
    !hex32.test(p.root) ||
    typeof p.rewards !== "string" ||
    typeof p.chainId !== "string" ||
    !Array.isArray(p.proof) ||
    !p.proof.every((n) => typeof n === "string" && hex32.test(n))
  ) {
    throw new InputError("not an opg-rewards-proof-v1 file", {
      details: { file },
      hint: "use a proofs/<address>.json written by `opg rewards compute`",
    });
  }
  try {
    getAddress(p.account);
    getAddress(p.rewards);
  } catch (cause) {
    throw new InputError("the proof file has a malformed address", { details: { file }, cause });
  }
  return p as ProofFile;
}

export interface ClaimResult {
  account: string;
  cumulativeAmount: bigint;
  /** What this call paid (0 when there was nothing new to claim; txHash is then null). */
  amount: bigint;
  txHash: string | null;
}

/**
 * Claims for `proof.account` against the accepted root; anyone may send it, tokens go to the account.
 * Checks first that the proof is for this chain, contract and the accepted root.
 */
export async function claimRewards(signer: ContractRunner, proof: ProofFile): Promise<ClaimResult> {
  const provider = signer.provider;
  if (provider === null) throw new InputError("the signer has no provider");
  const { chainId } = await provider.getNetwork();
  if (chainId.toString() !== proof.chainId) {
    throw new InputError("the proof is for another chain", {
      details: { proofChainId: proof.chainId, chainId },
    });
  }
  const rewards = ContributorRewards__factory.connect(proof.rewards, signer);
  const current = await rewards.currentRoot();
  if (current.root.toLowerCase() !== proof.root.toLowerCase()) {
    throw new VerificationError("the proof is not for the accepted root", {
      details: {
        proofRoot: proof.root,
        proofEpoch: proof.epoch,
        acceptedRoot: current.root,
        acceptedEpoch: current.epoch,
      },
      hint: "wait until the epoch's root is accepted (opg rewards verify shows its status), or use the latest proof",
    });
  }
  const account = getAddress(proof.account);
  const cumulativeAmount = BigInt(proof.cumulativeAmount);
  const already = await rewards.claimed(account);
  if (already >= cumulativeAmount) return { account, cumulativeAmount, amount: 0n, txHash: null };
  const tx = await rewards.claim(account, cumulativeAmount, proof.proof);
  const receipt = await tx.wait();
  let amount = 0n;
  for (const log of receipt?.logs ?? []) {
    const parsed = rewards.interface.parseLog(log);
    if (parsed?.name === "Claimed") amount = parsed.args[1] as bigint;
  }
  return { account, cumulativeAmount, amount, txHash: tx.hash };
}
