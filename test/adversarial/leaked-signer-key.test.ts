/**
 * Issue 13, item 3: a thief holds a GPU node's signer key and, choosing the requestIds, makes as many
 * double-receipt offences as it likes, collecting a bounty on each. A former key only counts for
 * receipts dated before its rotation, and the repeat rule (a slash covers every earlier offence of its
 * type; one slash per type per cooldown) bounds what any key can do: a former key gets the node slashed
 * at most once, a current key at most once per cooldown until the operator rotates it.
 */
import { expect } from "chai";
import type { Wallet } from "ethers";
import { network } from "hardhat";

import {
  COOLDOWN,
  DAY,
  GPU_STAKE,
  OFFENCE,
  SLASH_BPS,
  bountyOf,
  deployAttackedSystem,
  offenceKey,
  taken,
} from "./system.js";
import type { AttackedSystem } from "./system.js";

const { ethers, networkHelpers } = await network.create();
const deployed = () => deployAttackedSystem(ethers, networkHelpers);
const time = networkHelpers.time;

/** The thief reports a double receipt signed with `key` and dated `at`. */
async function thiefReports(f: AttackedSystem, i: number | string, at: bigint, key: Wallet) {
  const { a, b, sigA, sigB } = await f.doubleReceipt(`thief ${i}`, at, key);
  return { a, tx: f.ledger.connect(f.thief).reportDoubleReceipt(a, sigA, b, sigB) };
}

/** The operator rotates the node's key to a fresh one (at `at` when given); returns it and the time. */
async function rotate(f: AttackedSystem, at?: bigint) {
  const newKey = f.key("gpu signer 2");
  if (at !== undefined) await time.setNextBlockTimestamp(at);
  const rotatedAt = await f.mined(
    f.staking.connect(f.gpuOperator).rotateSigner(f.gpuNode, newKey.address),
  );
  return { newKey, rotatedAt };
}

/** The operator rotated the node's key at `rotatedAt`; the former key leaked to the thief. */
async function rotated() {
  const f = await deployed();
  await time.increase(DAY);
  return { ...f, leaked: f.gpuSigner, ...(await rotate(f)) };
}

describe("attack 13.3: a leaked signer key drains its node", function () {
  this.timeout(180_000);

  describe("with a former key", () => {
    it("honest path: a double receipt the former key signed before the rotation slashes once", async () => {
      const f = await networkHelpers.loadFixture(rotated);
      const { a, b, sigA, sigB } = await f.doubleReceipt("before", f.rotatedAt - 1n);
      const slashed = taken(GPU_STAKE, SLASH_BPS.DOUBLE);
      await expect(f.ledger.connect(f.watcher).reportDoubleReceipt(a, sigA, b, sigB))
        .to.emit(f.ledger, "OffenceSlashed")
        .withArgs(
          OFFENCE.DOUBLE_RECEIPT,
          f.gpuNode,
          offenceKey.double(f.gpuNode, a.requestId),
          f.watcher.address,
          slashed,
        );
      expect(await f.stakeOf(f.gpuNode)).to.equal(GPU_STAKE - slashed);
    });

    for (const offset of [0n, 1n, 30n * DAY]) {
      it(`the thief's receipts dated ${offset} s after the rotation are refused (LedgerInvalidReceiptSigner)`, async () => {
        const f = await networkHelpers.loadFixture(rotated);
        if (offset > 0n) await time.increaseTo(f.rotatedAt + offset);
        const { tx } = await thiefReports(f, "after", f.rotatedAt + offset, f.leaked);
        await expect(tx)
          .to.be.revertedWithCustomError(f.ledger, "LedgerInvalidReceiptSigner")
          .withArgs(f.gpuNode, f.newKey.address, f.leaked.address);
        expect(await f.stakeOf(f.gpuNode)).to.equal(GPU_STAKE);
      });
    }

    it("a burst of 10 reports by the thief, dated before the rotation, over a month: exactly one slash", async () => {
      const f = await networkHelpers.loadFixture(rotated);
      const thiefBefore = await f.token.balanceOf(f.thief.address);
      const first = await thiefReports(f, 0, f.rotatedAt - 1n, f.leaked);
      const slashedAt = await f.mined(first.tx);
      for (let i = 1; i < 10; i++) {
        await time.increase(3n * DAY); // well past every cooldown
        const datedAt = f.rotatedAt - 1n - BigInt(i);
        const { tx } = await thiefReports(f, i, datedAt, f.leaked);
        await expect(tx)
          .to.be.revertedWithCustomError(f.ledger, "LedgerOffenceCovered")
          .withArgs(OFFENCE.DOUBLE_RECEIPT, f.gpuNode, datedAt, slashedAt);
      }
      const slashed = taken(GPU_STAKE, SLASH_BPS.DOUBLE);
      expect(await f.stakeOf(f.gpuNode)).to.equal(GPU_STAKE - slashed); // 9,000 OPG
      expect((await f.token.balanceOf(f.thief.address)) - thiefBefore).to.equal(bountyOf(slashed));
    });
  });

  describe("with the current key", () => {
    it("the operator rotates right after the first slash: the thief gets nothing more", async () => {
      const f = await networkHelpers.loadFixture(deployed);
      const first = await thiefReports(f, 0, await f.now(), f.gpuSigner);
      const slashedAt = await f.mined(first.tx);
      // Rotated in the next second: no date is both after the slash and before the rotation.
      const { newKey, rotatedAt } = await rotate(f, slashedAt + 1n);
      await time.increaseTo(slashedAt + 5n * COOLDOWN);
      // Dated up to the slash: covered. Dated at or after the rotation: not the node's key then.
      const covered = await thiefReports(f, 2, slashedAt, f.gpuSigner);
      await expect(covered.tx)
        .to.be.revertedWithCustomError(f.ledger, "LedgerOffenceCovered")
        .withArgs(OFFENCE.DOUBLE_RECEIPT, f.gpuNode, slashedAt, slashedAt);
      const late = await thiefReports(f, 3, rotatedAt, f.gpuSigner);
      await expect(late.tx)
        .to.be.revertedWithCustomError(f.ledger, "LedgerInvalidReceiptSigner")
        .withArgs(f.gpuNode, newKey.address, f.gpuSigner.address);
      expect(await f.stakeOf(f.gpuNode)).to.equal(GPU_STAKE - taken(GPU_STAKE, SLASH_BPS.DOUBLE));
    });

    it("a slow operator: one slash per cooldown until it rotates, one more for the seconds before the rotation, then none", async () => {
      const f = await networkHelpers.loadFixture(deployed);
      const slashes: bigint[] = [];
      let i = 0;
      // Day 0, 1 and 2: one slash each; the operator rotates at day 2.5.
      for (let day = 0n; day < 3n; day++) {
        await time.setNextBlockTimestamp((slashes[0] ?? (await f.now()) + 1n) + day * COOLDOWN);
        const at = await f.now();
        slashes.push(await f.mined((await thiefReports(f, i++, at + 1n, f.gpuSigner)).tx));
      }
      const { newKey, rotatedAt } = await rotate(f, slashes[2]! + COOLDOWN / 2n);
      // What the key signed between the last slash and the rotation is the one more slash it can make.
      await time.setNextBlockTimestamp(slashes[2]! + COOLDOWN);
      const window = await thiefReports(f, i++, rotatedAt - 1n, f.gpuSigner);
      const fourth = await f.mined(window.tx);
      await time.increaseTo(fourth + 10n * COOLDOWN);
      const covered = await thiefReports(f, i++, rotatedAt - 2n, f.gpuSigner);
      await expect(covered.tx)
        .to.be.revertedWithCustomError(f.ledger, "LedgerOffenceCovered")
        .withArgs(OFFENCE.DOUBLE_RECEIPT, f.gpuNode, rotatedAt - 2n, fourth);
      const refused = await thiefReports(f, i++, rotatedAt, f.gpuSigner);
      await expect(refused.tx)
        .to.be.revertedWithCustomError(f.ledger, "LedgerInvalidReceiptSigner")
        .withArgs(f.gpuNode, newKey.address, f.gpuSigner.address);
      // 10,000 × 0.9^4, each step floored as NodeStaking floors it.
      let expected = GPU_STAKE;
      for (let k = 0; k < 4; k++) expected -= taken(expected, SLASH_BPS.DOUBLE);
      expect(expected).to.equal(6_561n * 10n ** 18n);
      expect(await f.stakeOf(f.gpuNode)).to.equal(expected);
    });

    it("an exited node's operator can rotate the leaked key while the stake unbonds", async () => {
      const f = await networkHelpers.loadFixture(deployed);
      await (await f.staking.connect(f.gpuOperator).exit(f.gpuNode)).wait();
      const first = await thiefReports(f, 0, await f.now(), f.gpuSigner);
      const slashedAt = await f.mined(first.tx);
      const { newKey, rotatedAt } = await rotate(f, slashedAt + 1n);
      await time.increaseTo(slashedAt + 3n * COOLDOWN);
      const later = await thiefReports(f, 1, rotatedAt, f.gpuSigner);
      await expect(later.tx)
        .to.be.revertedWithCustomError(f.ledger, "LedgerInvalidReceiptSigner")
        .withArgs(f.gpuNode, newKey.address, f.gpuSigner.address);
      expect(await f.staking.stakeOf(f.gpuNode)).to.deep.equal([
        0n,
        GPU_STAKE - taken(GPU_STAKE, SLASH_BPS.DOUBLE),
      ]);
    });
  });
});
