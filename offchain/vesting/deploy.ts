/**
 * Deploys OPGToken and VestingVault, creates the published plan's schedules in batches and seals the
 * plan with the hash computed from the file. Idempotent and resumable: every step is recorded in
 * deployments/<network>/deployment.json, and schedule creation resumes from the vault's own count
 * after checking that what is already there is the plan's prefix.
 */
import type { Signer } from "ethers";

import type { OPGToken, VestingVault } from "../../types/ethers-contracts/index.js";
import { OPGToken__factory, VestingVault__factory } from "../../types/ethers-contracts/index.js";
import { VerificationError } from "../common/errors.js";
import type { Log } from "../chain/deploy.js";
import { checkRecord, ensureDeployed, newRecord } from "../chain/deploy.js";
import type { DeploymentRecord } from "../chain/deployment.js";
import { readRecord, writeRecord } from "../chain/deployment.js";

import { planHashOf } from "./encode.js";
import type { Plan } from "./plan.js";
import { formatOpg } from "./plan.js";

export interface VestingDeployOptions {
  /** deployments/<network> */
  dir: string;
  network: string;
  plan: Plan;
  /** Path of the plan file, as recorded. */
  planFile: string;
  /** Schedules per createSchedules transaction. */
  batchSize?: number;
  log?: Log;
}

export interface VestingDeployment {
  record: DeploymentRecord;
  token: OPGToken;
  vault: VestingVault;
  planHash: string;
}

export async function deployVesting(
  signer: Signer,
  options: VestingDeployOptions,
): Promise<VestingDeployment> {
  const { dir, plan } = options;
  const log = options.log ?? (() => {});
  const batchSize = options.batchSize ?? 10;
  const deployer = await signer.getAddress();

  const record = (await readRecord(dir)) ?? (await newRecord(signer, options.network));
  await checkRecord(signer, record, dir);

  // 1. Token: the whole supply to the deployer, once.
  const tokenAddress = await ensureDeployed(
    signer,
    record,
    dir,
    "OPGToken",
    [deployer, plan.totalSupply.toString()],
    () => new OPGToken__factory(signer).deploy(deployer, plan.totalSupply),
    log,
  );
  const token = OPGToken__factory.connect(tokenAddress, signer);

  // 2. Vault, owned by the deployer until the plan is sealed.
  const vaultAddress = await ensureDeployed(
    signer,
    record,
    dir,
    "VestingVault",
    [tokenAddress, deployer],
    () => new VestingVault__factory(signer).deploy(tokenAddress, deployer),
    log,
  );
  const vault = VestingVault__factory.connect(vaultAddress, signer);

  // 3. Schedules, resuming after the ones the vault already has (which must be the plan's prefix).
  const params = plan.schedules.map((s) => s.params);
  const planHash = planHashOf(params);
  const section = (record.vesting ??= {
    planFile: options.planFile,
    planHash,
    schedules: params.length,
    created: 0,
    batches: [],
    sealed: null,
  });
  if (section.planHash !== planHash) {
    throw new VerificationError("the plan file changed since this deployment started", {
      details: { recorded: section.planHash, file: planHash, planFile: options.planFile },
      hint: "a sealed plan cannot change; restore the published file or deploy afresh on a new record",
    });
  }
  let created = Number(await vault.scheduleCount());
  const onChainHash = await vault.planHash();
  if (created > params.length || onChainHash !== planHashOf(params, created)) {
    throw new VerificationError(
      `the vault holds ${created} schedule(s) that are not the plan's first ${created}`,
      {
        details: { vault: vaultAddress, chainPlanHash: onChainHash },
      },
    );
  }
  const sealed = await vault.isSealed();
  while (created < params.length && !sealed) {
    const batch = params.slice(created, created + batchSize);
    const sum = batch.reduce((acc, p) => acc + p.total, 0n);
    if ((await token.allowance(deployer, vaultAddress)) < sum) {
      await (await token.approve(vaultAddress, sum)).wait();
    }
    const tx = await vault.createSchedules(batch);
    const receipt = await tx.wait();
    section.batches.push({
      firstId: created,
      count: batch.length,
      txHash: tx.hash,
      block: receipt!.blockNumber,
    });
    created += batch.length;
    section.created = created;
    await writeRecord(dir, record);
    log(
      `schedules ${created - batch.length}..${created - 1} created (${formatOpg(sum)} OPG, tx ${tx.hash})`,
    );
  }
  section.created = created;

  // 4. Seal with the hash computed from the file: the vault refuses if its own hash differs.
  if (!sealed) {
    const tx = await vault.seal(planHash);
    const receipt = await tx.wait();
    section.sealed = { txHash: tx.hash, block: receipt!.blockNumber };
    await writeRecord(dir, record);
    log(`plan sealed with hash ${planHash} (block ${receipt!.blockNumber})`);
  } else {
    log(`plan already sealed with hash ${onChainHash}`);
  }
  await writeRecord(dir, record);
  return { record, token, vault, planHash };
}
