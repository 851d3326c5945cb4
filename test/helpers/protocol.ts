/**
 * The whole protocol deployed as production deploys it (offchain/deploy/system.ts: NodeStaking,
 * TeeRegistry with the development attestation verifier, ModelRegistry, InferenceLedger,
 * governance in a governor and its timelock) on a Hardhat network connection, in process (`network.create()`) or
 * over JSON-RPC (test/e2e/relayer-system.ts): a GPU node and a TEE node staked at their role's
 * minimum with fresh signer keys (funded: they send heartbeats), the development enclave image's
 * measurement approved by a governor proposal, and both demo models registered.
 */
import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import type { HardhatEthers, HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { NetworkHelpers } from "@nomicfoundation/hardhat-network-helpers/types";
import { Wallet } from "ethers";

import { readRecord } from "../../offchain/chain/deployment.js";
import { deploySystem, type System } from "../../offchain/deploy/system.js";
import { buildProposal } from "../../offchain/governance/actions.js";
import { governanceOf, localClock, passProposal } from "../../offchain/governance/proposals.js";
import * as actions from "../../offchain/staking/actions.js";
import { measurementFromPcrs } from "../../offchain/staking/units.js";
import { devPcrs } from "../../offchain/tee/devAttestation.js";
import { loadPlan } from "../../offchain/vesting/plan.js";
import { ROOT } from "./processes.js";
import { roleAccounts, type RoleAccount } from "./accounts.js";

const INFERENCE = 1;
const VERIFIER = 2;
/** The image `opg enclave start` attests to by default (offchain/tee/devAttestation.ts). */
export const ENCLAVE_IMAGE = "opg-enclave-dev";

const manifest = (name: string): { modelId: string } =>
  JSON.parse(readFileSync(path.join(ROOT, "models", name, "manifest.json"), "utf8")) as {
    modelId: string;
  };
export const RISK_MLP = manifest("risk-mlp");
export const SEQ_CNN = manifest("seq-cnn");

/** The image measurement of the development enclave, as TeeRegistry.measurementOf computes it. */
export function devMeasurement(image = ENCLAVE_IMAGE): string {
  const pcrs = devPcrs(image);
  return measurementFromPcrs(
    [0, 1, 2].map((i) => Buffer.from(pcrs.get(i) as Uint8Array).toString("hex")),
  );
}

export interface Protocol extends System {
  ethers: HardhatEthers;
  networkHelpers: NetworkHelpers;
  /** The GPU node's id in NodeStaking (role INFERENCE), staked at the minimum. */
  gpuNode: string;
  gpuOperator: RoleAccount;
  /** The GPU node's signer key (NodeStaking.signerOf(gpuNode)): signs receipts; holds ETH. */
  nodeSigner: Wallet;
  /** The TEE node's signer key (NodeStaking.signerOf(teeNode)); holds ETH for heartbeats. */
  teeSigner: Wallet;
  /** The TEE node's id in NodeStaking (role VERIFIER) that enclaves are registered under. */
  teeNode: string;
  teeOperator: RoleAccount;
  /** The approved development image's measurement. */
  measurement: string;
  /**
   * Executes `data` on `target` through governance: a governor proposal by the holder of the
   * undistributed supply (account 0), voted, queued, executed, moving time past every wait.
   */
  governance: (target: string, data: string) => Promise<void>;
  /** The governor's handles and who proposes (account 0), for tests that drive proposals. */
  governanceHandles: ReturnType<typeof governanceOf>;
  proposer: HardhatEthersSigner;
  /** Registers an enclave key for the TEE node with an attestation document. */
  registerEnclave: (enclaveKey: string, attestation: Uint8Array) => Promise<void>;
  /** Renews an enclave key's registration (TeeRegistry.heartbeat by the TEE node's operator). */
  renewEnclave: (enclaveKey: string) => Promise<void>;
  /**
   * Sets InferenceLedger's sample rate (parts per million) through governance and its delay, then
   * renews the given enclaves' registrations (the delay outlasts their one-day lifetime).
   */
  setSampleRate: (ratePpm: number, enclaves: string[]) => Promise<void>;
  deployBlock: number;
  /** deployments/<network>-like folder of this deployment: addresses.json, rewards.json. */
  deploymentDir: string;
}

/** Deploys the protocol on `connection` and stakes both nodes (see the file's comment). */
/** Deployment options for runs that need other parameters (the soak's shorter governance). */
export type DeployOverrides = Pick<
  Parameters<typeof deploySystem>[1],
  "stakingParams" | "votingDelay" | "votingPeriod" | "timelockDelay" | "assignmentWindow"
>;

export async function deployProtocol(
  connection: { ethers: HardhatEthers; networkHelpers: NetworkHelpers },
  networkName = "test",
  overrides: DeployOverrides = {},
): Promise<Protocol> {
  const { ethers, networkHelpers } = connection;
  const signers = await ethers.getSigners();
  const deployer = signers[0]!;
  const { gpuOperator, teeOperator } = await roleAccounts(deployer, ethers.provider, [
    "gpuOperator",
    "teeOperator",
  ]);
  const dir = await mkdtemp(path.join(tmpdir(), "opg-deploy-"));
  const plan = await loadPlan(path.join(ROOT, "deployments/localhost/vesting-plan.json"));
  const deployed = await deploySystem(ethers, {
    dir,
    network: networkName,
    plan,
    planFile: "plan",
    beneficiarySigners: signers,
    ...overrides,
  });
  const { token, staking, tee, registry } = deployed;
  const deployBlock = (await readRecord(dir))?.contracts.InferenceLedger?.block ?? 0;
  // Move past the rewards pool's start (rewards epoch 1 begins there), so the anchored usage of the
  // runs below falls in a rewards epoch that the rewards test can close and recompute.
  const pool = plan.schedules.find((s) => s.categoryName === "rewards-pool")!;
  if (BigInt(await networkHelpers.time.latest()) < pool.params.start) {
    await networkHelpers.time.increaseTo(pool.params.start + 3_600n);
  }

  // Both nodes staked at their role's minimum, with fresh signer keys.
  const params = await staking.params();
  const nodeSigner = Wallet.createRandom() as unknown as Wallet;
  const teeSigner = Wallet.createRandom() as unknown as Wallet;
  // Hot keys pay for their own heartbeats and registrations (opg node run).
  for (const key of [nodeSigner, teeSigner]) {
    await (await deployer.sendTransaction({ to: key.address, value: 10n ** 19n })).wait();
  }
  const gpuNode = Wallet.createRandom().address;
  const teeNode = Wallet.createRandom().address;
  await (await token.transfer(gpuOperator.address, params.minStakeInference)).wait();
  await (await token.transfer(teeOperator.address, params.minStakeVerifier)).wait();
  const h = { token, staking };
  await actions.registerNode(h, gpuOperator, {
    node: gpuNode,
    role: INFERENCE,
    signer: nodeSigner.address,
    amount: params.minStakeInference,
    metadataURI: "https://gpu.opg.test",
  });
  await actions.registerNode(h, teeOperator, {
    node: teeNode,
    role: VERIFIER,
    signer: teeSigner.address,
    amount: params.minStakeVerifier,
    metadataURI: "https://tee.opg.test",
  });

  // The enclave image's measurement, approved by governance: a governor proposal by the holder of
  // the undistributed supply, through the voting period and the timelock's delay.
  const governanceHandles = governanceOf(deployed);
  const governance = async (target: string, data: string): Promise<void> => {
    await passProposal(
      governanceHandles,
      { proposer: deployer, voters: [deployer] },
      { calls: [{ target, value: 0n, data }], description: `test ${target} ${data.slice(0, 74)}` },
      localClock(ethers.provider),
    );
  };
  const measurement = devMeasurement();
  await governance(
    await tee.getAddress(),
    tee.interface.encodeFunctionData("approveMeasurement", [measurement, "dev"]),
  );

  for (const m of [RISK_MLP, SEQ_CNN]) {
    await (
      await registry.registerModel(m.modelId, "ipfs://m", m.modelId, [deployer.address], [10_000])
    ).wait();
  }

  const renewEnclave = async (enclaveKey: string): Promise<void> => {
    await (await tee.connect(teeOperator).heartbeat(enclaveKey)).wait();
  };
  return {
    ...deployed,
    ethers,
    networkHelpers,
    gpuNode,
    gpuOperator,
    nodeSigner,
    teeSigner,
    teeNode,
    teeOperator,
    measurement,
    governance,
    governanceHandles,
    proposer: deployer,
    registerEnclave: async (enclaveKey, attestation) => {
      await actions.registerEnclave(tee, staking, teeOperator, {
        node: teeNode,
        enclaveKey,
        measurement,
        attestation,
      });
    },
    renewEnclave,
    setSampleRate: async (ratePpm, enclaves) => {
      const proposal = await buildProposal(
        { action: "set-sample-rate", ppm: String(ratePpm) },
        { addresses: deployed.addresses },
      );
      await passProposal(
        governanceHandles,
        { proposer: deployer, voters: [deployer] },
        proposal,
        localClock(ethers.provider),
      );
      for (const key of enclaves) await renewEnclave(key);
    },
    deployBlock,
    deploymentDir: dir,
  };
}
