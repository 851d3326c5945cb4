/**
 * A rewards system on a real JSON-RPC chain (a `hardhat node`): token, vault with a bound
 * rewards-pool schedule, ContributorRewards, ModelRegistry with two models, InferenceLedger with
 * staking/TEE test doubles, and an enclave wallet that signs the batches it anchors.
 */
import { JsonRpcProvider, Wallet, encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import type { Signer } from "ethers";

import { FULL_SAMPLE_RATE_PPM, ledgerDomain } from "../../../offchain/chain/eip712.js";
import type { Receipt } from "../../../offchain/chain/eip712.js";
import { buildReceiptBatch } from "../../../offchain/chain/merkle.js";
import { signBatch } from "../../../offchain/chain/receipts.js";
import {
  ContributorRewards__factory,
  InferenceLedger__factory,
  MockNodeStaking__factory,
  MockTeeRegistry__factory,
  ModelRegistry__factory,
  OPGToken__factory,
  VestingVault__factory,
} from "../../../types/ethers-contracts/index.js";
import { makeReceipt } from "../../contracts/anchoring/helpers.js";
import { rpc } from "../../helpers/processes.js";

export const DAY = 86_400n;
export const DELAY = 2n * DAY;
export const POOL = 1_000_000n * 10n ** 18n;
export const POOL_EPOCHS = 10n;
export const MODEL_A = keccak256(toUtf8Bytes("rewards-test model A"));
export const MODEL_B = keccak256(toUtf8Bytes("rewards-test model B"));
/** Shares that do not divide evenly, so every epoch has rounding dust. */
export const SHARES_A = [3333, 3333, 3334];
export const SHARES_B = [10_000];

export async function deploySystem(url: string) {
  const provider = new JsonRpcProvider(url, undefined, { cacheTimeout: -1 });
  provider.pollingInterval = 50;
  const signers = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((i) => provider.getSigner(i)));
  const at = (i: number): Signer => signers[i]!;
  const [admin, updater, guardian, alice, bob, carol, dave, relayer] = [0, 1, 2, 3, 4, 5, 6, 7].map(
    at,
  ) as [Signer, Signer, Signer, Signer, Signer, Signer, Signer, Signer];
  const a = (s: Signer) => s.getAddress();
  const adminAddress = await a(admin);

  const token = await new OPGToken__factory(admin).deploy(adminAddress, 10n ** 27n);
  const vault = await new VestingVault__factory(admin).deploy(
    await token.getAddress(),
    adminAddress,
  );
  const staking = await new MockNodeStaking__factory(admin).deploy();
  const tee = await new MockTeeRegistry__factory(admin).deploy();
  const registry = await new ModelRegistry__factory(admin).deploy();
  const ledger = await new InferenceLedger__factory(admin).deploy(
    adminAddress,
    await staking.getAddress(),
    await tee.getAddress(),
    await registry.getAddress(),
    await token.getAddress(),
  );
  const rewards = await new ContributorRewards__factory(admin).deploy(
    await token.getAddress(),
    adminAddress,
    await a(updater),
    await a(guardian),
    DELAY,
  );
  const fromBlock = (await provider.getBlockNumber()) - 10;

  const spec = keccak256(toUtf8Bytes("spec"));
  await (
    await registry.registerModel(
      MODEL_A,
      "ipfs://a",
      spec,
      [await a(alice), await a(bob), await a(carol)],
      SHARES_A,
    )
  ).wait();
  await (await registry.registerModel(MODEL_B, "ipfs://b", spec, [await a(dave)], SHARES_B)).wait();

  const enclave = Wallet.createRandom();
  const verifierNode = Wallet.createRandom().address;
  const gpuNode = Wallet.createRandom().address;
  const gpuSigner = Wallet.createRandom().address;
  await (await staking.setNode(gpuNode, 1, gpuSigner, true, 1n)).wait();
  await (await staking.setNode(verifierNode, 2, Wallet.createRandom().address, true, 1n)).wait();
  await (await tee.setEnclave(enclave.address, verifierNode, true)).wait();

  // The rewards pool: linear over POOL_EPOCHS days from genesis, rotated to and bound by the distributor.
  const latest = await provider.getBlock("latest");
  const genesisTime = BigInt(latest!.timestamp) + 3_600n;
  await (await token.approve(await vault.getAddress(), POOL)).wait();
  await (
    await vault.createSchedule({
      beneficiary: adminAddress,
      category: encodeBytes32String("rewards-pool"),
      total: POOL,
      start: genesisTime,
      cliff: 0n,
      cliffAmount: 0n,
      end: genesisTime + POOL_EPOCHS * DAY,
      revocable: false,
      tranches: [],
    })
  ).wait();
  await (await vault.transferBeneficiary(0n, await rewards.getAddress())).wait();
  await (await rewards.bindSchedule(await vault.getAddress(), 0n)).wait();

  const { chainId } = await provider.getNetwork();
  const domain = ledgerDomain(chainId, await ledger.getAddress());
  let sequence = 0n;
  /** Anchors one enclave-signed batch of receipts for `models` (one receipt per entry). */
  const anchor = async (models: string[]) => {
    const receipts: Receipt[] = models.map((modelId) => makeReceipt(gpuNode, { modelId }));
    const built = buildReceiptBatch(enclave.address, sequence, receipts, 1, {
      node: gpuNode,
      signer: gpuSigner,
      asOf: BigInt((await provider.getBlock("latest"))!.timestamp),
      sampleRatePpm: FULL_SAMPLE_RATE_PPM,
    });
    const signature = await signBatch(enclave, domain, built.batch);
    const tx = await ledger
      .connect(relayer)
      .anchorBatch(built.batch, signature, built.usage.modelIds, built.usage.counts);
    await tx.wait();
    sequence += 1n;
  };
  const chain = {
    now: async () => BigInt((await provider.getBlock("latest"))!.timestamp),
    mineAt: async (t: bigint) => {
      await rpc(url, "evm_setNextBlockTimestamp", [Number(t)]);
      await rpc(url, "evm_mine");
    },
    nextBlockAt: async (t: bigint) => {
      await rpc(url, "evm_setNextBlockTimestamp", [Number(t)]);
    },
  };
  return {
    provider,
    admin,
    updater,
    guardian,
    alice,
    bob,
    carol,
    dave,
    relayer,
    token,
    vault,
    registry,
    ledger,
    rewards,
    enclave,
    anchor,
    chain,
    config: { genesisTime, epochLength: DAY, fromBlock: Math.max(fromBlock, 0) },
  };
}
