/**
 * The protocol as offchain/deploy/system.ts deploys it (real NodeStaking, TeeRegistry with the
 * development attestation verifier, InferenceLedger, governance in the OPGTimelock), with the actors
 * every attack test needs: a GPU node and a TEE node staked at their minimums, an enclave key
 * registered on an image governance approved through the timelock, an honest watcher, a thief, and
 * builders for receipts, verdicts and batches signed the way the enclave and the node sign them.
 *
 * Amounts are checked against the TypeScript reference below (NodeStaking takes floor(total × bps /
 * 10,000) and pays floor(taken × bountyBps / 10,000) to an outside reporter; the rest is burned).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import type { HardhatEthers } from "@nomicfoundation/hardhat-ethers/types";
import type { NetworkHelpers } from "@nomicfoundation/hardhat-network-helpers/types";
import type { ContractTransactionResponse } from "ethers";
import { AbiCoder, Wallet, ZeroAddress, id, keccak256 } from "ethers";

import {
  FULL_SAMPLE_RATE_PPM,
  ledgerDomain,
  receiptStructHash,
} from "../../offchain/chain/eip712.js";
import type { Receipt } from "../../offchain/chain/eip712.js";
import { buildReceiptBatch } from "../../offchain/chain/merkle.js";
import type { BatchSigning } from "../../offchain/chain/merkle.js";
import {
  buildVerdict,
  signBatch,
  signReceipt,
  signVerdict,
} from "../../offchain/chain/receipts.js";
import type { TypedSigner } from "../../offchain/chain/receipts.js";
import { governanceOf, passProposal } from "../../offchain/governance/proposals.js";
import { deploySystem } from "../../offchain/deploy/system.js";
import { loadPlan } from "../../offchain/vesting/plan.js";

export const OPG = 10n ** 18n;
export const DAY = 86_400n;
export const INFERENCE = 1;
export const VERIFIER = 2;
export const OFFENCE = { DOUBLE_RECEIPT: 0, CONTRADICTED_RECEIPT: 1, BATCH_EQUIVOCATION: 2 };
/** The ledger's default slash parameters (basis points; every offence type: jail, one-day cooldown). */
export const SLASH_BPS = { DOUBLE: 1_000n, CONTRADICTED: 1_000n, EQUIVOCATION: 2_000n };
export const COOLDOWN = DAY;
export const GPU_STAKE = 10_000n * OPG;
export const TEE_STAKE = 25_000n * OPG;
export const IMAGE = id("opg-enclave-image v1");

/** What NodeStaking takes for `bps` of a node holding `total` (active + unbonding). */
export const taken = (total: bigint, bps: bigint) => (total * bps) / 10_000n;
/** What it pays an outside reporter out of `amount` slashed, at the deployment's 10 % bounty. */
export const bountyOf = (amount: bigint) => (amount * 1_000n) / 10_000n;

const abi = AbiCoder.defaultAbiCoder();
/** InferenceLedger's offence keys: one slash per offence, ever. */
export const offenceKey = {
  double: (node: string, requestId: string) =>
    keccak256(
      abi.encode(["uint8", "address", "bytes32"], [OFFENCE.DOUBLE_RECEIPT, node, requestId]),
    ),
  contradicted: (r: Receipt) =>
    keccak256(
      abi.encode(["uint8", "bytes32"], [OFFENCE.CONTRADICTED_RECEIPT, receiptStructHash(r)]),
    ),
  equivocation: (enclave: string, sequence: bigint) =>
    keccak256(
      abi.encode(["uint8", "address", "uint64"], [OFFENCE.BATCH_EQUIVOCATION, enclave, sequence]),
    ),
};

/** Deterministic keys (a key is used once, for one node, so each test's actors get fresh ones). */
const key = (label: string) => new Wallet(id(`opg adversarial: ${label}`));

export async function deployAttackedSystem(ethers: HardhatEthers, helpers: NetworkHelpers) {
  const signers = await ethers.getSigners();
  // Accounts 1..6 are the vesting plan's beneficiaries; the actors use 7 and up.
  const [deployer, gpuOperator, gpuOperator2, teeOperator, teeOperator2, watcher, thief, payee] = [
    signers[0]!,
    signers[7]!,
    signers[8]!,
    signers[9]!,
    signers[10]!,
    signers[11]!,
    signers[12]!,
    signers[13]!,
  ];
  const [teeSigner, teeSigner2, requester] = [signers[14]!, signers[15]!, signers[16]!];

  const dir = await mkdtemp(path.join(tmpdir(), "opg-adversarial-"));
  const system = await deploySystem(ethers, {
    dir,
    network: "adversarial",
    plan: await loadPlan("deployments/localhost/vesting-plan.json"),
    planFile: "deployments/localhost/vesting-plan.json",
    beneficiarySigners: signers,
  });
  await rm(dir, { recursive: true, force: true });
  const { token, staking, tee, ledger, registry, timelock } = system;
  const enclave = key("enclave key");

  /**
   * A governance action: a governor proposal by the holder of the undistributed supply, voted, queued
   * in the timelock and executed after its delay. The days it takes pass in half-day steps with the
   * enclave's registration renewed (as its node's keeper would), so only the action itself changes it.
   */
  const governance = async (target: string, data: string) => {
    const step = async (t: bigint): Promise<void> => {
      for (let now = BigInt(await helpers.time.latest()); now < t;) {
        now = now + 43_200n < t ? now + 43_200n : t;
        await helpers.time.increaseTo(now);
        const e = await tee.getEnclave(enclave.address);
        if (
          e.node !== ZeroAddress &&
          e.deregisteredAt === 0n &&
          (await tee.isMeasurementApproved(e.measurement))
        )
          await (await tee.connect(teeSigner).heartbeat(enclave.address)).wait();
        now = BigInt(await helpers.time.latest());
      }
    };
    await passProposal(
      governanceOf(system),
      { proposer: deployer, voters: [deployer] },
      { calls: [{ target, value: 0n, data }], description: `adversarial ${id(data).slice(0, 18)}` },
      step,
    );
  };
  const mined = async (tx: Promise<ContractTransactionResponse>) => {
    const receipt = await (await tx).wait();
    return BigInt((await ethers.provider.getBlock(receipt!.blockNumber))!.timestamp);
  };
  const now = async () => BigInt(await helpers.time.latest());

  // The GPU node (its id is an address nobody holds) and the TEE node, staked at their minimums.
  const gpuSigner = key("gpu signer").connect(ethers.provider);
  const gpuNode = key("gpu node id").address;
  const teeNode = key("tee node id").address;
  const teeNode2 = key("tee node 2 id").address;
  for (const [operator, amount] of [
    [gpuOperator, GPU_STAKE],
    [gpuOperator2, GPU_STAKE],
    [teeOperator, TEE_STAKE],
    [teeOperator2, TEE_STAKE],
  ] as const) {
    await (await token.transfer(operator.address, 10n * amount)).wait();
    await (await token.connect(operator).approve(await staking.getAddress(), 2n ** 255n)).wait();
  }
  await (
    await staking
      .connect(gpuOperator)
      .register(gpuNode, INFERENCE, gpuSigner.address, GPU_STAKE, "https://gpu.opg.test")
  ).wait();
  await (
    await staking
      .connect(teeOperator)
      .register(teeNode, VERIFIER, teeSigner.address, TEE_STAKE, "https://tee.opg.test")
  ).wait();
  // The GPU signer key can send transactions (self-reporting tests).
  await (await deployer.sendTransaction({ to: gpuSigner.address, value: 10n ** 18n })).wait();

  // The enclave image approved by governance, and the enclave key registered by the TEE node.
  const teeAddress = await tee.getAddress();
  await governance(
    teeAddress,
    tee.interface.encodeFunctionData("approveMeasurement", [IMAGE, "v1"]),
  );
  const enclaveRegisteredAt = await mined(
    tee.connect(teeSigner).registerEnclave(teeNode, enclave.address, IMAGE, "0x01"),
  );

  // A model consumers can request, and a requester with OPG.
  const modelId = id("adversarial model");
  await (
    await registry.registerModel(modelId, "ipfs://model", id("spec"), [deployer.address], [10_000])
  ).wait();
  await (await token.transfer(requester.address, 1_000n * OPG)).wait();
  await (await token.connect(requester).approve(await ledger.getAddress(), 2n ** 255n)).wait();

  const { chainId } = await ethers.provider.getNetwork();
  const domain = ledgerDomain(chainId, await ledger.getAddress());

  /** A receipt of the GPU node for question `i`, dated `timestamp`. */
  const receipt = (i: number | string, overrides: Partial<Receipt> = {}): Receipt => ({
    requestId: id(`request ${i}`),
    modelId,
    inputHash: id(`input ${i}`),
    outputHash: id(`output ${i}`),
    node: gpuNode,
    execConfigHash: id("cpu"),
    timestamp: 1_700_000_000n,
    ...overrides,
  });
  /** Two receipts answering one question with two outputs, signed by `signer` (default: the node's). */
  const doubleReceipt = async (
    i: number | string,
    timestamp: bigint,
    signer: TypedSigner = gpuSigner,
  ) => {
    const a = receipt(i, { timestamp });
    const b = { ...a, outputHash: id(`another output ${i}`) };
    return {
      a,
      b,
      sigA: await signReceipt(signer, domain, a),
      sigB: await signReceipt(signer, domain, b),
    };
  };
  /** A receipt of the GPU node contradicted by the enclave's verdict signed at `verdictAt`. */
  const contradiction = async (i: number | string, verdictAt: bigint, receiptAt = verdictAt) => {
    const lie = receipt(i, { timestamp: receiptAt, outputHash: id(`a wrong answer ${i}`) });
    const nodeSignature = await signReceipt(gpuSigner, domain, lie);
    const verdict = buildVerdict(lie, id(`the right answer ${i}`), verdictAt);
    const enclaveSignature = await signVerdict(enclave, domain, verdict);
    const report = (from = watcher) =>
      ledger
        .connect(from)
        .reportContradictedReceipt(
          lie,
          nodeSignature,
          verdict.outputHash,
          verdict.timestamp,
          enclaveSignature,
        );
    return { lie, nodeSignature, verdict, enclaveSignature, report };
  };
  /** The enclave's batch `sequence` over the GPU node's `receipts`, signed at `signing.asOf`. */
  const batchOf = async (
    sequence: bigint,
    receipts: Receipt[],
    signing: Partial<BatchSigning> & { asOf: bigint },
    by: TypedSigner & { address: string } = enclave,
  ) => {
    const built = buildReceiptBatch(by.address, sequence, receipts, receipts.length, {
      node: gpuNode,
      signer: gpuSigner.address,
      sampleRatePpm: FULL_SAMPLE_RATE_PPM,
      ...signing,
    });
    const signature = await signBatch(by, domain, built.batch);
    const anchor = () =>
      ledger
        .connect(watcher)
        .anchorBatch(built.batch, signature, built.usage.modelIds, built.usage.counts);
    return { ...built, signature, anchor };
  };
  const stakeOf = async (node: string) => {
    const [active, unbonding] = await staking.stakeOf(node);
    return active + unbonding;
  };

  return {
    ethers,
    helpers,
    system,
    token,
    staking,
    tee,
    ledger,
    registry,
    timelock,
    governance,
    mined,
    now,
    deployer,
    gpuOperator,
    gpuOperator2,
    teeOperator,
    teeOperator2,
    teeSigner,
    teeSigner2,
    watcher,
    thief,
    payee,
    requester,
    gpuSigner,
    gpuNode,
    teeNode,
    teeNode2,
    enclave,
    enclaveRegisteredAt,
    modelId,
    domain,
    key,
    receipt,
    doubleReceipt,
    contradiction,
    batchOf,
    stakeOf,
  };
}

export type AttackedSystem = Awaited<ReturnType<typeof deployAttackedSystem>>;
