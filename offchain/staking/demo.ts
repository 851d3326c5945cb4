/**
 * The staking part of `npm run demo`: two operators stake a GPU node and a TEE node, the enclave
 * registers (development verifier), one operator unbonds part of its stake, time passes, it withdraws.
 */
import type { HardhatEthers } from "@nomicfoundation/hardhat-ethers/types";
import type { NetworkHelpers } from "@nomicfoundation/hardhat-network-helpers/types";
import type { BytesLike, Signer } from "ethers";
import { Wallet, id, toUtf8Bytes } from "ethers";

import type { NodeStaking, OPGToken, TeeRegistry } from "../../types/ethers-contracts/index.js";
import { InputError } from "../common/errors.js";
import * as actions from "./actions.js";
import {
  collectEnclaveStatuses,
  collectNodeStatuses,
  renderEnclaveTable,
  renderNodeTable,
} from "./status.js";
import { Role, formatOpg } from "./units.js";

export interface DemoContracts {
  token: OPGToken;
  staking: NodeStaking;
  tee: TeeRegistry;
  /** Holds OPG and funds the operators (default: the first account). */
  funder?: Signer;
  /** Approves the enclave image as governance (default: TeeRegistry.approveMeasurement from the funder). */
  approveMeasurement?: (measurement: string, label: string) => Promise<void>;
  /** The enclave's signing key (default: a fresh key). */
  enclaveKey?: string;
  /** The GPU node's id (default: a fresh address); an enclave bound to it is created first. */
  gpuNode?: string;
  /** The enclave's attestation document (default: a development placeholder). */
  attestation?: BytesLike;
  /** The enclave image (default: keccak256("opg-dev-enclave")). */
  measurement?: string;
}

export interface DemoResult {
  table: string;
  gpuNode: string;
  gpuSigner: Signer;
  teeNode: string;
  teeSigner: Signer;
  enclaveKey: string;
}

const OPG = 10n ** 18n;
/** Accounts the demo uses for operators and signers (far from the low indexes other steps use). */
const FIRST_ACCOUNT = 14;

/** Runs the demo and returns the status tables (nodes, then enclaves) to print. */
export async function runStakingDemo(
  ethers: HardhatEthers,
  networkHelpers: NetworkHelpers,
  contracts: DemoContracts,
  log: (line: string) => void,
): Promise<string> {
  return (await stakingDemo(ethers, networkHelpers, contracts, log)).table;
}

/** The same demo, also returning the node ids and keys for the steps that follow it. */
export async function stakingDemo(
  ethers: HardhatEthers,
  networkHelpers: NetworkHelpers,
  contracts: DemoContracts,
  log: (line: string) => void,
): Promise<DemoResult> {
  const signers = await ethers.getSigners();
  const [gpuOperator, gpuSigner, teeOperator, teeSigner] = signers.slice(
    FIRST_ACCOUNT,
    FIRST_ACCOUNT + 4,
  );
  const funder = contracts.funder ?? signers[0];
  if (!gpuOperator || !gpuSigner || !teeOperator || !teeSigner || !funder) {
    throw new InputError(`the demo needs ${FIRST_ACCOUNT + 4} accounts`, {
      details: { accounts: signers.length },
    });
  }
  const { token, staking, tee } = contracts;
  const h = { token, staking };
  const params = await staking.params();

  // 1. Fund the operators and register a GPU node and a TEE node.
  const gpuStake = params.minStakeInference * 2n;
  const teeStake = params.minStakeVerifier + 5_000n * OPG;
  await (await token.connect(funder).transfer(gpuOperator.address, gpuStake)).wait();
  await (await token.connect(funder).transfer(teeOperator.address, teeStake)).wait();
  const gpuNode = contracts.gpuNode ?? Wallet.createRandom().address;
  const teeNode = Wallet.createRandom().address;
  await actions.registerNode(h, gpuOperator, {
    node: gpuNode,
    role: Role.INFERENCE,
    signer: gpuSigner.address,
    amount: gpuStake,
    metadataURI: "https://gpu-1.opg.local",
  });
  log(
    `GPU node ${gpuNode} registered with ${formatOpg(gpuStake)} OPG (operator ${gpuOperator.address})`,
  );
  await actions.registerNode(h, teeOperator, {
    node: teeNode,
    role: Role.VERIFIER,
    signer: teeSigner.address,
    amount: teeStake,
    metadataURI: "https://tee-1.opg.local",
  });
  log(
    `TEE node ${teeNode} registered with ${formatOpg(teeStake)} OPG (operator ${teeOperator.address})`,
  );

  // 2. Governance approves the enclave image; the enclave registers through the dev verifier.
  const measurement = contracts.measurement ?? id("opg-dev-enclave");
  if (!(await tee.isMeasurementApproved(measurement))) {
    if (contracts.approveMeasurement)
      await contracts.approveMeasurement(measurement, "dev enclave");
    else await actions.approveMeasurement(tee, funder, measurement, "dev enclave");
    log(`enclave measurement ${measurement} approved`);
  }
  const enclaveKey = contracts.enclaveKey ?? Wallet.createRandom().address;
  const { expiresAt } = await actions.registerEnclave(tee, staking, teeSigner, {
    node: teeNode,
    enclaveKey,
    measurement,
    attestation: contracts.attestation ?? toUtf8Bytes("opg development attestation"),
  });
  log(
    `enclave ${enclaveKey} registered for ${teeNode}, fresh until ${new Date(Number(expiresAt) * 1000).toISOString()}`,
  );

  // 3. The GPU operator unbonds part of its stake, waits out the delay and withdraws.
  const part = gpuStake - params.minStakeInference;
  const { releaseTime } = await actions.unbond(h, gpuOperator, gpuNode, part);
  log(
    `GPU operator unbonds ${formatOpg(part)} OPG, releasable at ${new Date(Number(releaseTime) * 1000).toISOString()}`,
  );
  await networkHelpers.time.increaseTo(releaseTime);
  const { amount } = await actions.withdraw(h, gpuOperator, gpuNode);
  log(
    `after ${params.unbondingDelay / 3600n} hours the GPU operator withdraws ${formatOpg(amount)} OPG`,
  );

  // 4. Heartbeats, so both nodes and the enclave are live for the steps that follow.
  await (await staking.connect(gpuSigner).heartbeat(gpuNode)).wait();
  await (await staking.connect(teeSigner).heartbeat(teeNode)).wait();
  await (await tee.connect(teeSigner).heartbeat(enclaveKey)).wait();
  log("nodes and enclave sent heartbeats");

  const now = BigInt(await networkHelpers.time.latest());
  const table = [
    renderNodeTable(await collectNodeStatuses(staking), now),
    renderEnclaveTable(await collectEnclaveStatuses(tee), now),
  ].join("\n");
  return { table, gpuNode, gpuSigner, teeNode, teeSigner, enclaveKey };
}
