/**
 * Issue 13, item 4: "double receipt" evidence made of two correct answers to two different questions
 * (another input, model or execution config under one requestId). Only one question answered twice
 * with two outputs is a double receipt.
 */
import { expect } from "chai";
import { id } from "ethers";
import { network } from "hardhat";

import type { Receipt } from "../../offchain/chain/eip712.js";
import { receiptStructHash } from "../../offchain/chain/eip712.js";
import { signReceipt } from "../../offchain/chain/receipts.js";
import {
  GPU_STAKE,
  OFFENCE,
  SLASH_BPS,
  deployAttackedSystem,
  offenceKey,
  taken,
} from "./system.js";

const { ethers, networkHelpers } = await network.create();
const deployed = () => deployAttackedSystem(ethers, networkHelpers);

describe("attack 13.4: a double receipt for two different questions", function () {
  this.timeout(120_000);

  it("honest path: one question (request, model, input, config) answered with two outputs slashes 10 %", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    const { a, b, sigA, sigB } = await f.doubleReceipt(1, await f.now());
    await expect(f.ledger.connect(f.watcher).reportDoubleReceipt(a, sigA, b, sigB))
      .to.emit(f.ledger, "OffenceSlashed")
      .withArgs(
        OFFENCE.DOUBLE_RECEIPT,
        f.gpuNode,
        offenceKey.double(f.gpuNode, a.requestId),
        f.watcher.address,
        taken(GPU_STAKE, SLASH_BPS.DOUBLE),
      );
    expect(await f.stakeOf(f.gpuNode)).to.equal(GPU_STAKE - taken(GPU_STAKE, SLASH_BPS.DOUBLE));
  });

  const otherQuestion: Array<[string, (r: Receipt) => Receipt]> = [
    ["another input", (r) => ({ ...r, inputHash: id("a different input") })],
    ["another model", (r) => ({ ...r, modelId: id("a different model") })],
    ["another execution config", (r) => ({ ...r, execConfigHash: id("cuda") })],
  ];
  for (const [name, alter] of otherQuestion) {
    it(`two honest answers to ${name} under one requestId are refused (LedgerReceiptsNotConflicting)`, async () => {
      const f = await networkHelpers.loadFixture(deployed);
      const a = f.receipt(2, { timestamp: await f.now() });
      const b = { ...alter(a), outputHash: id("the correct answer to the other question") };
      await expect(
        f.ledger
          .connect(f.watcher)
          .reportDoubleReceipt(
            a,
            await signReceipt(f.gpuSigner, f.domain, a),
            b,
            await signReceipt(f.gpuSigner, f.domain, b),
          ),
      )
        .to.be.revertedWithCustomError(f.ledger, "LedgerReceiptsNotConflicting")
        .withArgs(receiptStructHash(a), receiptStructHash(b));
      expect(await f.stakeOf(f.gpuNode)).to.equal(GPU_STAKE);
      expect(await f.ledger.isOffenceSlashed(offenceKey.double(f.gpuNode, a.requestId))).to.equal(
        false,
      );
    });
  }
});
