/**
 * Issue 12, item 1, at contract level: a batch is a root over receipts of one INFERENCE node, signed
 * by a key that was that node's signer when the enclave signed the batch, sampled at no less than
 * governance's rate, signed by an active enclave at a time the chain has reached. A fabricated receipt
 * attributed to a real GPU node, a VERIFIER node's "receipts", an under-sampled or future-dated batch and
 * an outsider's "batch" are all refused; the honest batch anchors and verifyReceipt proves its receipts.
 */
import { expect } from "chai";
import { Wallet } from "ethers";
import { network } from "hardhat";

import { FULL_SAMPLE_RATE_PPM, usageHash } from "../../offchain/chain/eip712.js";
import { buildReceiptBatch } from "../../offchain/chain/merkle.js";
import { signBatch } from "../../offchain/chain/receipts.js";
import { VERIFIER, deployAttackedSystem } from "./system.js";

const { ethers, networkHelpers } = await network.create();
const deployed = () => deployAttackedSystem(ethers, networkHelpers);
const MAX_CLOCK_SKEW = 300n;

describe("attack 12.1: anchoring what the enclave did not check", function () {
  this.timeout(120_000);

  it("honest path: the enclave's batch of the node's signed receipts anchors, and every receipt verifies", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    const receipts = [0, 1, 2, 3].map((i) => f.receipt(i));
    const b = await f.batchOf(0n, receipts, { asOf: await f.now() });
    const batchId = (BigInt(f.enclave.address) << 64n) | 0n;
    await expect(b.anchor())
      .to.emit(f.ledger, "BatchAnchored")
      .withArgs(
        batchId,
        f.enclave.address,
        f.gpuNode,
        0n,
        b.batch.root,
        4n,
        4n,
        b.usage.modelIds,
        b.usage.counts,
      );
    for (const [i, r] of receipts.entries())
      expect(await f.ledger.verifyReceipt(batchId, r, b.tree.proof(i))).to.equal(true);
    expect(await f.ledger.nextSequenceOf(f.enclave.address)).to.equal(1n);
  });

  it("a fabricated receipt attributed to a real GPU node (signed by another key) is refused (LedgerInvalidBatchNodeSigner)", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    const forger = Wallet.createRandom();
    const b = await f.batchOf(0n, [f.receipt("forged")], {
      asOf: await f.now(),
      signer: forger.address,
    });
    await expect(b.anchor())
      .to.be.revertedWithCustomError(f.ledger, "LedgerInvalidBatchNodeSigner")
      .withArgs(f.gpuNode, forger.address);
    expect(await f.ledger.nextSequenceOf(f.enclave.address)).to.equal(0n);
  });

  it("receipts signed with the node's former key after its rotation are refused (LedgerInvalidBatchNodeSigner)", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    const rotatedAt = await f.mined(
      f.staking.connect(f.gpuOperator).rotateSigner(f.gpuNode, f.key("gpu signer 2").address),
    );
    const late = await f.batchOf(0n, [f.receipt("late")], { asOf: rotatedAt });
    await expect(late.anchor())
      .to.be.revertedWithCustomError(f.ledger, "LedgerInvalidBatchNodeSigner")
      .withArgs(f.gpuNode, f.gpuSigner.address);
    const early = await f.batchOf(0n, [f.receipt("early")], { asOf: rotatedAt - 1n });
    await expect(early.anchor()).to.emit(f.ledger, "BatchAnchored");
  });

  it("a VERIFIER node's batch is refused (LedgerNotInferenceNode)", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    const receipts = [f.receipt("tee", { node: f.teeNode })];
    const b = await f.batchOf(0n, receipts, {
      asOf: await f.now(),
      node: f.teeNode,
      signer: f.teeSigner.address,
    });
    await expect(b.anchor())
      .to.be.revertedWithCustomError(f.ledger, "LedgerNotInferenceNode")
      .withArgs(f.teeNode, VERIFIER);
  });

  it("a batch sampled below governance's rate is refused (LedgerSampleRateTooLow); at the rate it anchors", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    await f.governance(
      await f.ledger.getAddress(),
      f.ledger.interface.encodeFunctionData("setSampleRate", [100_000]),
    );
    // The timelock's delay outlasted the enclave's registration: its heartbeat renews it.
    await (await f.tee.connect(f.teeSigner).heartbeat(f.enclave.address)).wait();
    await (await f.staking.connect(f.teeSigner).heartbeat(f.teeNode)).wait();
    const asOf = await f.now();
    const low = await f.batchOf(0n, [f.receipt("low")], { asOf, sampleRatePpm: 99_999 });
    await expect(low.anchor())
      .to.be.revertedWithCustomError(f.ledger, "LedgerSampleRateTooLow")
      .withArgs(99_999n, 100_000n);
    const ok = await f.batchOf(0n, [f.receipt("ok")], { asOf, sampleRatePpm: 100_000 });
    await expect(ok.anchor()).to.emit(f.ledger, "BatchAnchored");
  });

  it("a batch signed more than MAX_CLOCK_SKEW ahead of the chain is refused (LedgerSignedInFuture)", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    const now = (await f.now()) + 10n;
    const future = await f.batchOf(0n, [f.receipt("future")], {
      asOf: now + MAX_CLOCK_SKEW + 1n,
    });
    await networkHelpers.time.setNextBlockTimestamp(now);
    await expect(future.anchor())
      .to.be.revertedWithCustomError(f.ledger, "LedgerSignedInFuture")
      .withArgs(now + MAX_CLOCK_SKEW + 1n, now);
    const skewed = await f.batchOf(0n, [f.receipt("skewed")], { asOf: now + MAX_CLOCK_SKEW });
    await expect(skewed.anchor()).to.emit(f.ledger, "BatchAnchored");
  });

  it("an outsider's batch with a huge usage summary is refused (LedgerInactiveEnclave)", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    const outsider = Wallet.createRandom();
    const receipts = Array.from({ length: 3 }, (_, i) => f.receipt(`fake ${i}`));
    const built = buildReceiptBatch(outsider.address, 0n, receipts, 3, {
      node: f.gpuNode,
      signer: f.gpuSigner.address,
      asOf: await f.now(),
      sampleRatePpm: FULL_SAMPLE_RATE_PPM,
    });
    // The usage the issue saw anchored: 4,000,000,000 receipts of one model.
    const modelIds = [f.modelId];
    const counts = [4_000_000_000];
    const batch = { ...built.batch, count: 4_000_000_000, usageHash: usageHash(modelIds, counts) };
    const signature = await signBatch(outsider, f.domain, batch);
    await expect(f.ledger.connect(f.thief).anchorBatch(batch, signature, modelIds, counts))
      .to.be.revertedWithCustomError(f.ledger, "LedgerInactiveEnclave")
      .withArgs(outsider.address);
  });
});
