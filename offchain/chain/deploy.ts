/**
 * Idempotent, resumable contract deployment against a deployment record.
 *
 * Before sending a deployment the record notes the address the contract will have (from the deployer's
 * nonce); after an interruption the next run adopts the contract if its code is there, and deploys it
 * otherwise. A contract already in the record is checked for code and reused.
 */
import type { ContractTransactionResponse, Signer } from "ethers";
import { getCreateAddress } from "ethers";

import { VerificationError } from "../common/errors.js";

import type { DeploymentRecord } from "./deployment.js";
import { writeRecord } from "./deployment.js";

export interface Deployable {
  getAddress(): Promise<string>;
  deploymentTransaction(): ContractTransactionResponse | null;
}

export type Log = (message: string) => void;

export async function newRecord(signer: Signer, network: string): Promise<DeploymentRecord> {
  const { chainId } = await signer.provider!.getNetwork();
  return {
    network,
    chainId: chainId.toString(),
    deployer: await signer.getAddress(),
    contracts: {},
    pending: {},
  };
}

/** Checks that a loaded record belongs to this chain and that its contracts still have code. */
export async function checkRecord(
  signer: Signer,
  record: DeploymentRecord,
  dir: string,
): Promise<void> {
  const provider = signer.provider!;
  const { chainId } = await provider.getNetwork();
  if (record.chainId !== chainId.toString()) {
    throw new VerificationError(
      `the deployment record in ${dir} is for chain ${record.chainId}, not ${chainId}`,
      {
        hint: "use the right --network, or move the old record away to deploy afresh",
      },
    );
  }
  for (const [name, c] of Object.entries(record.contracts)) {
    if ((await provider.getCode(c.address)) === "0x") {
      throw new VerificationError(`${name} in the deployment record has no code at ${c.address}`, {
        details: { dir },
        hint: "the chain was reset: delete the record (deployment.json, addresses.json) and deploy again",
      });
    }
  }
}

/**
 * Deploys `name` unless the record already has it. `deploy` sends the deployment transaction;
 * `args` are recorded for verification.
 */
export async function ensureDeployed(
  signer: Signer,
  record: DeploymentRecord,
  dir: string,
  name: string,
  args: unknown[],
  deploy: () => Promise<Deployable>,
  log: Log,
): Promise<string> {
  const existing = record.contracts[name];
  if (existing !== undefined) {
    log(`${name}: already deployed at ${existing.address} (block ${existing.block})`);
    return existing.address;
  }
  const provider = signer.provider!;
  const pending = record.pending[name];
  if (pending !== undefined && (await provider.getCode(pending.address)) !== "0x") {
    const receipt = await provider.getTransactionReceipt(pending.txHash);
    record.contracts[name] = {
      address: pending.address,
      txHash: pending.txHash,
      block: receipt?.blockNumber ?? 0,
      args,
    };
    delete record.pending[name];
    await writeRecord(dir, record);
    log(`${name}: adopted the interrupted deployment at ${pending.address}`);
    return pending.address;
  }

  const deployer = await signer.getAddress();
  const nonce = await provider.getTransactionCount(deployer, "pending");
  const contract = await deploy();
  const tx = contract.deploymentTransaction();
  if (tx === null) throw new Error(`${name}: no deployment transaction`);
  const address = getCreateAddress({ from: deployer, nonce: tx.nonce ?? nonce });
  record.pending[name] = { address, nonce: tx.nonce, txHash: tx.hash };
  await writeRecord(dir, record);

  const receipt = await tx.wait();
  if (receipt === null || receipt.status !== 1)
    throw new Error(`${name}: deployment ${tx.hash} failed`);
  record.contracts[name] = {
    address: await contract.getAddress(),
    txHash: tx.hash,
    block: receipt.blockNumber,
    args,
  };
  delete record.pending[name];
  await writeRecord(dir, record);
  log(
    `${name}: deployed at ${record.contracts[name].address} (block ${receipt.blockNumber}, tx ${tx.hash})`,
  );
  return record.contracts[name].address;
}
