/**
 * InferenceLedger against the real NodeStaking and TeeRegistry, deployed as production deploys them
 * (deploySystem, governance by OPG holders through the governor and the timelock): anchoring needs a live enclave on an approved image and a
 * staked, unjailed VERIFIER node; evidence slashes real stake once.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { Wallet, id } from "ethers";
import { network } from "hardhat";

import type { Receipt } from "../../../offchain/chain/eip712.js";
import { FULL_SAMPLE_RATE_PPM, ledgerDomain } from "../../../offchain/chain/eip712.js";
import { buildReceiptBatch } from "../../../offchain/chain/merkle.js";
import {
  buildVerdict,
  signBatch,
  signReceipt,
  signVerdict,
} from "../../../offchain/chain/receipts.js";
import { deploySystem } from "../../../offchain/deploy/system.js";
import { governanceOf, localClock, passProposal } from "../../../offchain/governance/proposals.js";
import * as actions from "../../../offchain/staking/actions.js";
import { loadPlan } from "../../../offchain/vesting/plan.js";

const INFERENCE = 1;
const VERIFIER = 2;

describe("integration: InferenceLedger with NodeStaking and TeeRegistry", function () {
  this.timeout(120_000);
  let dir: string;
  before(async () => (dir = await mkdtemp(path.join(tmpdir(), "opg-integration-"))));
  after(async () => rm(dir, { recursive: true, force: true }));

  async function deployed() {
    const { ethers, networkHelpers } = await network.create();
    const signers = await ethers.getSigners();
    const [deployer, gpuOperator, teeOperator, relayer, watcher] = [
      signers[0]!,
      signers[14]!,
      signers[15]!,
      signers[16]!,
      signers[17]!,
    ];
    const plan = await loadPlan("deployments/localhost/vesting-plan.json");
    const system = await deploySystem(ethers, {
      dir: path.join(dir, String(Date.now()) + Math.random()),
      network: "test",
      plan,
      planFile: "plan",
      beneficiarySigners: signers,
    });
    const { token, staking, tee, ledger } = system;
    // Every change is a governor proposal: the holder of the undistributed supply proposes and votes, then
    // the voting period and the timelock's delay pass.
    let proposals = 0;
    const governance = (target: string, data: string, waitUntil = localClock(ethers.provider)) =>
      passProposal(
        governanceOf(system),
        { proposer: deployer, voters: [deployer] },
        {
          calls: [{ target, value: 0n, data }],
          description: `integration proposal ${++proposals}`,
        },
        waitUntil,
      );

    const params = await staking.params();
    const gpuSigner = Wallet.createRandom().connect(ethers.provider);
    const teeSigner = signers[18]!;
    const enclaveKey = Wallet.createRandom();
    const gpuNode = Wallet.createRandom().address;
    const teeNode = Wallet.createRandom().address;
    await token.transfer(gpuOperator.address, params.minStakeInference);
    await token.transfer(teeOperator.address, params.minStakeVerifier);
    const h = { token, staking };
    await actions.registerNode(h, gpuOperator, {
      node: gpuNode,
      role: INFERENCE,
      signer: gpuSigner.address,
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
    const measurement = id("opg-enclave-image-v1");
    const teeAddress = await tee.getAddress();
    await governance(
      teeAddress,
      tee.interface.encodeFunctionData("approveMeasurement", [measurement, "v1"]),
    );
    await actions.registerEnclave(tee, staking, teeSigner, {
      node: teeNode,
      enclaveKey: enclaveKey.address,
      measurement,
      attestation: "0x01",
    });

    const { chainId } = await ethers.provider.getNetwork();
    const domain = ledgerDomain(chainId, await ledger.getAddress());
    const modelId = id("model");
    const receipt = async (i: number, outputHash = id(`out-${i}`)): Promise<Receipt> => ({
      requestId: id(`req-${i}`),
      modelId,
      inputHash: id(`in-${i}`),
      outputHash,
      node: gpuNode,
      execConfigHash: id("cpu"),
      timestamp: BigInt(await networkHelpers.time.latest()),
    });
    const now = async () => BigInt(await networkHelpers.time.latest());
    const batchOf = async (sequence: bigint, receipts: Receipt[]) =>
      buildReceiptBatch(enclaveKey.address, sequence, receipts, receipts.length, {
        node: gpuNode,
        signer: gpuSigner.address,
        asOf: await now(),
        sampleRatePpm: FULL_SAMPLE_RATE_PPM,
      });
    const anchor = async (sequence: bigint, receipts: Receipt[]) => {
      const built = await batchOf(sequence, receipts);
      const signature = await signBatch(enclaveKey, domain, built.batch);
      return {
        built,
        tx: ledger
          .connect(relayer)
          .anchorBatch(built.batch, signature, built.usage.modelIds, built.usage.counts),
      };
    };
    return {
      ethers,
      networkHelpers,
      system,
      governance,
      measurement,
      teeAddress,
      staking,
      tee,
      ledger,
      token,
      gpuNode,
      gpuSigner,
      teeNode,
      teeSigner,
      enclaveKey,
      domain,
      receipt,
      now,
      batchOf,
      anchor,
      watcher,
      deployer,
    };
  }

  it("anchors a batch signed by a registered enclave and verifies every receipt from storage", async () => {
    const f = await deployed();
    const receipts = await Promise.all([0, 1, 2].map((i) => f.receipt(i)));
    const { built, tx } = await f.anchor(0n, receipts);
    await expect(tx).to.emit(f.ledger, "BatchAnchored");
    const batchId = await f.ledger.batchIdOf(f.enclaveKey.address, 0n);
    expect(batchId).to.equal((BigInt(f.enclaveKey.address) << 64n) | 0n);
    for (const [i, r] of receipts.entries())
      expect(await f.ledger.verifyReceipt(batchId, r, built.tree.proof(i))).to.equal(true);
    expect(await f.ledger.nextSequenceOf(f.enclaveKey.address)).to.equal(1n);
  });

  it("refuses a batch once governance revokes the enclave's image", async () => {
    const f = await deployed();
    // The proposal takes days; the enclave keeps heartbeating, so only the revocation can disable it.
    const heartbeating = async (t: bigint) => {
      for (let now = BigInt(await f.networkHelpers.time.latest()); now < t;) {
        now = now + 43_200n < t ? now + 43_200n : t;
        await f.networkHelpers.time.increaseTo(now);
        await (await f.tee.connect(f.teeSigner).heartbeat(f.enclaveKey.address)).wait();
        now = BigInt(await f.networkHelpers.time.latest());
      }
    };
    await f.governance(
      f.teeAddress,
      f.tee.interface.encodeFunctionData("revokeMeasurement", [f.measurement, false]),
      heartbeating,
    );
    const latest = BigInt(await f.networkHelpers.time.latest());
    expect((await f.tee.getEnclave(f.enclaveKey.address)).expiresAt).to.be.greaterThan(latest);
    expect(await f.tee.isActiveEnclave(f.enclaveKey.address)).to.equal(false);
    const { tx } = await f.anchor(0n, [await f.receipt(0)]);
    await expect(tx)
      .to.be.revertedWithCustomError(f.ledger, "LedgerInactiveEnclave")
      .withArgs(f.enclaveKey.address);
  });

  it("refuses a batch once the enclave's registration expires, and again after its node is jailed", async () => {
    const f = await deployed();
    const expiry = (await f.tee.getEnclave(f.enclaveKey.address)).expiresAt;
    await f.networkHelpers.time.increaseTo(expiry + 1n);
    await expect((await f.anchor(0n, [await f.receipt(0)])).tx).to.be.revertedWithCustomError(
      f.ledger,
      "LedgerInactiveEnclave",
    );
    // A heartbeat renews it; jailing the VERIFIER node for missed node heartbeats disables it again.
    await (await f.staking.connect(f.teeSigner).heartbeat(f.teeNode)).wait();
    await (await f.tee.connect(f.teeSigner).heartbeat(f.enclaveKey.address)).wait();
    expect(await f.tee.isActiveEnclave(f.enclaveKey.address)).to.equal(true);
    await f.networkHelpers.time.increaseTo((await f.staking.heartbeatDeadline(f.teeNode)) + 1n);
    await (await f.staking.jailInactive(f.teeNode)).wait();
    expect(await f.tee.isActiveEnclave(f.enclaveKey.address)).to.equal(false);
    await expect((await f.anchor(0n, [await f.receipt(0)])).tx).to.be.revertedWithCustomError(
      f.ledger,
      "LedgerInactiveEnclave",
    );
  });

  it("slashes the GPU node's real stake on an enclave's contradicting verdict, once", async () => {
    const f = await deployed();
    const lie = await f.receipt(7, id("a wrong answer"));
    const nodeSignature = await signReceipt(f.gpuSigner, f.domain, lie);
    const correct = id("the right answer");
    const verdict = buildVerdict(lie, correct, await f.now());
    const enclaveSignature = await signVerdict(f.enclaveKey, f.domain, verdict);
    const before = await f.staking.getNode(f.gpuNode);
    const watcherBefore = await f.token.balanceOf(f.watcher.address);
    await expect(
      f.ledger
        .connect(f.watcher)
        .reportContradictedReceipt(
          lie,
          nodeSignature,
          correct,
          verdict.timestamp,
          enclaveSignature,
        ),
    ).to.emit(f.staking, "Slashed");
    const after = await f.staking.getNode(f.gpuNode);
    expect(after.active).to.equal(before.active - before.active / 10n);
    expect(after.jailed).to.equal(true);
    expect(await f.staking.isActive(f.gpuNode)).to.equal(false);
    expect(await f.token.balanceOf(f.watcher.address)).to.be.greaterThan(watcherBefore);
    await expect(
      f.ledger
        .connect(f.watcher)
        .reportContradictedReceipt(
          lie,
          nodeSignature,
          correct,
          verdict.timestamp,
          enclaveSignature,
        ),
    ).to.be.revertedWithCustomError(f.ledger, "LedgerOffenceAlreadySlashed");
  });

  it("still slashes a GPU node that rotated its key after signing the lie", async () => {
    const f = await deployed();
    const lie = await f.receipt(8, id("a wrong answer"));
    const nodeSignature = await signReceipt(f.gpuSigner, f.domain, lie);
    const gpuOperator = await f.ethers.getSigner((await f.staking.getNode(f.gpuNode)).operator);
    await (
      await f.staking.connect(gpuOperator).rotateSigner(f.gpuNode, Wallet.createRandom().address)
    ).wait();
    const correct = id("the right answer");
    const verdict = buildVerdict(lie, correct, await f.now());
    const enclaveSignature = await signVerdict(f.enclaveKey, f.domain, verdict);
    await expect(
      f.ledger
        .connect(f.watcher)
        .reportContradictedReceipt(
          lie,
          nodeSignature,
          correct,
          verdict.timestamp,
          enclaveSignature,
        ),
    ).to.emit(f.staking, "Slashed");
    // A key the node never had is still refused.
    const stranger = Wallet.createRandom();
    const forged = await signReceipt(stranger, f.domain, await f.receipt(9, id("x")));
    await expect(
      f.ledger
        .connect(f.watcher)
        .reportContradictedReceipt(
          await f.receipt(9, id("x")),
          forged,
          correct,
          verdict.timestamp,
          enclaveSignature,
        ),
    ).to.be.revertedWithCustomError(f.ledger, "LedgerInvalidReceiptSigner");
  });

  it("slashes the enclave's VERIFIER node for two batches with one sequence number", async () => {
    const f = await deployed();
    const a = (await f.batchOf(0n, [await f.receipt(1)])).batch;
    const b = (await f.batchOf(0n, [await f.receipt(2)])).batch;
    const before = (await f.staking.getNode(f.teeNode)).active;
    await f.ledger
      .connect(f.watcher)
      .reportBatchEquivocation(
        a,
        await signBatch(f.enclaveKey, f.domain, a),
        b,
        await signBatch(f.enclaveKey, f.domain, b),
      );
    expect((await f.staking.getNode(f.teeNode)).active).to.equal(
      before - (before * 2_000n) / 10_000n,
    );
    expect(await f.tee.isActiveEnclave(f.enclaveKey.address)).to.equal(false);
  });
});
