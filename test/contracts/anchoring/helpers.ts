/**
 * Shared setup for the ledger tests: token, mocks of NodeStaking and TeeRegistry, ModelRegistry and
 * InferenceLedger, one GPU node with its signer key and one enclave with its VERIFIER node.
 */
import { Wallet, hexlify, keccak256, randomBytes, toUtf8Bytes } from "ethers";
import type { HardhatEthers } from "@nomicfoundation/hardhat-ethers/types";

import { FULL_SAMPLE_RATE_PPM, ledgerDomain } from "../../../offchain/chain/eip712.js";
import type { Receipt } from "../../../offchain/chain/eip712.js";
import { buildReceiptBatch } from "../../../offchain/chain/merkle.js";
import type { BatchSigning } from "../../../offchain/chain/merkle.js";
import { signBatch } from "../../../offchain/chain/receipts.js";
import type { TypedSigner } from "../../../offchain/chain/receipts.js";

export const SUPPLY = 10n ** 27n;
export const STAKE = 10n ** 22n;
export const FEE = 5n * 10n ** 18n;
export const ROLE = { NONE: 0, INFERENCE: 1, VERIFIER: 2 } as const;
export const OFFENCE = {
  DOUBLE_RECEIPT: 0,
  CONTRADICTED_RECEIPT: 1,
  BATCH_EQUIVOCATION: 2,
} as const;
export const MODEL_ID = keccak256(toUtf8Bytes("risk-model.onnx bytes"));
export const OTHER_MODEL_ID = keccak256(toUtf8Bytes("other-model.onnx bytes"));
export const SPEC_HASH = keccak256(toUtf8Bytes("spec"));
/** The receipts' default date (makeReceipt) and the batches' default signing time (signedBatch). */
export const SIGNED_AT = 1_700_000_000n;
/** InferenceLedger.MAX_CLOCK_SKEW: how far ahead of the chain a signed time may be. */
export const MAX_CLOCK_SKEW = 300n;

export const random32 = (): string => hexlify(randomBytes(32));

export async function deployLedgerSystem(ethers: HardhatEthers) {
  const [admin, reporter, requester, other, gpuPayee] = await ethers.getSigners();
  const token = await ethers.deployContract("OPGToken", [admin!.address, SUPPLY]);
  const staking = await ethers.deployContract("MockNodeStaking");
  const tee = await ethers.deployContract("MockTeeRegistry");
  const registry = await ethers.deployContract("ModelRegistry");
  const ledger = await ethers.deployContract("InferenceLedger", [
    admin!.address,
    await staking.getAddress(),
    await tee.getAddress(),
    await registry.getAddress(),
    await token.getAddress(),
  ]);
  await staking.setSlasher(await ledger.getAddress(), true);

  const gpuSigner = Wallet.createRandom();
  const gpuNode = Wallet.createRandom().address;
  await staking.setNode(gpuNode, ROLE.INFERENCE, gpuSigner.address, true, STAKE);
  // Fees go to the node's payee (NodeStaking answers its operator when none is set; the mock needs one).
  await staking.setPayee(gpuNode, gpuPayee!.address);
  const enclave = Wallet.createRandom();
  const verifierNode = Wallet.createRandom().address;
  await staking.setNode(verifierNode, ROLE.VERIFIER, Wallet.createRandom().address, true, STAKE);
  await tee.setEnclave(enclave.address, verifierNode, true);

  await registry.registerModel(MODEL_ID, "ipfs://risk", SPEC_HASH, [admin!.address], [10_000]);
  await registry.registerModel(
    OTHER_MODEL_ID,
    "ipfs://other",
    SPEC_HASH,
    [admin!.address],
    [10_000],
  );
  await token.transfer(requester!.address, 1000n * FEE);
  await token.connect(requester).approve(await ledger.getAddress(), 1000n * FEE);

  const { chainId } = await ethers.provider.getNetwork();
  const domain = ledgerDomain(chainId, await ledger.getAddress());
  return {
    admin: admin!,
    reporter: reporter!,
    requester: requester!,
    other: other!,
    gpuPayee: gpuPayee!,
    token,
    staking,
    tee,
    registry,
    ledger,
    gpuSigner,
    gpuNode,
    enclave,
    verifierNode,
    domain,
    chainId,
  };
}

export function makeReceipt(node: string, overrides: Partial<Receipt> = {}): Receipt {
  return {
    requestId: random32(),
    modelId: MODEL_ID,
    inputHash: random32(),
    outputHash: random32(),
    node,
    execConfigHash: keccak256(toUtf8Bytes("cpu")),
    timestamp: SIGNED_AT,
    ...overrides,
  };
}

/**
 * Builds and signs the enclave's batch `sequence` over `receipts` (all of `signing.node`, signed by
 * `signing.signer`), signed at SIGNED_AT and sampled at the full rate unless `signing` says otherwise.
 */
export async function signedBatch(
  enclave: TypedSigner & { address: string },
  domain: ReturnType<typeof ledgerDomain>,
  sequence: bigint,
  receipts: Receipt[],
  signing: Pick<BatchSigning, "node" | "signer"> & Partial<BatchSigning>,
  reexecuted = 1,
) {
  const built = buildReceiptBatch(enclave.address, sequence, receipts, reexecuted, {
    asOf: SIGNED_AT,
    sampleRatePpm: FULL_SAMPLE_RATE_PPM,
    ...signing,
  });
  const signature = await signBatch(enclave, domain, built.batch);
  return { ...built, signature };
}
