/**
 * Issue 13, item 6: the offender reports itself to collect the bounty on its own slash, and an offender
 * that has withdrawn everything self-reports to spend the offence key on a slash of zero. Now no bounty
 * goes to the offender's operator, payee or any of its signer keys (the whole slash is burned), and a slash
 * of nothing reverts, so the evidence stays reportable for when there is stake again.
 */
import { expect } from "chai";
import { network } from "hardhat";

import {
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
const SLASHED = taken(GPU_STAKE, SLASH_BPS.DOUBLE); // 1,000 OPG of 10,000

type Reporter = "watcher" | "gpuOperator" | "payee" | "gpuSigner" | "formerSigner";

/** The GPU node double-signed; `reporter` reports it. Returns the balance and supply changes. */
async function reportedBy(f: AttackedSystem, who: Reporter) {
  await (await f.staking.connect(f.gpuOperator).setPayee(f.gpuNode, f.payee.address)).wait();
  const { a, b, sigA, sigB } = await f.doubleReceipt("self", (await f.now()) - 1n);
  if (who === "formerSigner") {
    // The key that signed the lie is rotated away; it reports as a former signer of the node.
    const newKey = f.key("gpu signer 2");
    await (await f.staking.connect(f.gpuOperator).rotateSigner(f.gpuNode, newKey.address)).wait();
  }
  const reporter = who === "formerSigner" ? f.gpuSigner : f[who];
  const supply = await f.token.totalSupply();
  const tx = f.ledger.connect(reporter).reportDoubleReceipt(a, sigA, b, sigB);
  await expect(tx)
    .to.emit(f.ledger, "OffenceSlashed")
    .withArgs(
      OFFENCE.DOUBLE_RECEIPT,
      f.gpuNode,
      offenceKey.double(f.gpuNode, a.requestId),
      reporter.address,
      SLASHED,
    );
  return { reporter, tx, burned: supply - (await f.token.totalSupply()) };
}

describe("attack 13.6: self-reporting and zero slashes", function () {
  this.timeout(120_000);

  it("honest path: an outside watcher gets 10 % of the slash, the rest is burned", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    const { reporter, tx, burned } = await reportedBy(f, "watcher");
    await expect(tx).to.changeTokenBalances(ethers, f.token, [reporter], [bountyOf(SLASHED)]);
    expect(bountyOf(SLASHED)).to.equal(100n * 10n ** 18n);
    expect(burned).to.equal(SLASHED - bountyOf(SLASHED));
    expect(await f.stakeOf(f.gpuNode)).to.equal(GPU_STAKE - SLASHED);
  });

  for (const [who, name] of [
    ["gpuOperator", "its operator"],
    ["payee", "its payee"],
    ["gpuSigner", "its signer key"],
    ["formerSigner", "a signer key it rotated away from"],
  ] as const) {
    it(`the offender reports itself as ${name}: bounty 0, the whole slash burned`, async () => {
      const f = await networkHelpers.loadFixture(deployed);
      const { reporter, tx, burned } = await reportedBy(f, who);
      await expect(tx)
        .to.emit(f.staking, "Slashed")
        .withArgs(
          f.gpuNode,
          await f.ledger.getAddress(),
          offenceKey.double(f.gpuNode, f.receipt("self").requestId),
          SLASHED,
          0n,
          reporter.address,
          0n,
          ethers.ZeroAddress,
          true,
        );
      await expect(tx).to.changeTokenBalances(ethers, f.token, [reporter], [0n]);
      expect(burned).to.equal(SLASHED);
      expect(await f.stakeOf(f.gpuNode)).to.equal(GPU_STAKE - SLASHED);
    });
  }

  it("an offender that withdrew everything: LedgerNothingToSlash, and the offence stays unspent", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    const { a, b, sigA, sigB } = await f.doubleReceipt("gone", await f.now());
    const key = offenceKey.double(f.gpuNode, a.requestId);
    await (await f.staking.connect(f.gpuOperator).exit(f.gpuNode)).wait();
    await networkHelpers.time.increase(7n * DAY);
    await (await f.staking.connect(f.gpuOperator).withdraw(f.gpuNode)).wait();
    expect(await f.stakeOf(f.gpuNode)).to.equal(0n);
    for (const reporter of [f.gpuOperator, f.watcher]) {
      await expect(f.ledger.connect(reporter).reportDoubleReceipt(a, sigA, b, sigB))
        .to.be.revertedWithCustomError(f.ledger, "LedgerNothingToSlash")
        .withArgs(f.gpuNode, key);
    }
    expect(await f.ledger.isOffenceSlashed(key)).to.equal(false);
    expect(await f.ledger.lastSlashOf(f.gpuNode, OFFENCE.DOUBLE_RECEIPT)).to.equal(0n);
  });

  it("and once it stakes again, the unspent evidence takes its share of the new stake", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    const { a, b, sigA, sigB } = await f.doubleReceipt("back", await f.now());
    const key = offenceKey.double(f.gpuNode, a.requestId);
    await (await f.staking.connect(f.gpuOperator).unbond(f.gpuNode, GPU_STAKE)).wait();
    await networkHelpers.time.increase(7n * DAY);
    await (await f.staking.connect(f.gpuOperator).withdraw(f.gpuNode)).wait();
    await expect(f.ledger.connect(f.gpuOperator).reportDoubleReceipt(a, sigA, b, sigB))
      .to.be.revertedWithCustomError(f.ledger, "LedgerNothingToSlash")
      .withArgs(f.gpuNode, key);
    await (await f.staking.connect(f.gpuOperator).increaseStake(f.gpuNode, GPU_STAKE)).wait();
    await expect(f.ledger.connect(f.watcher).reportDoubleReceipt(a, sigA, b, sigB))
      .to.emit(f.ledger, "OffenceSlashed")
      .withArgs(OFFENCE.DOUBLE_RECEIPT, f.gpuNode, key, f.watcher.address, SLASHED);
    expect(await f.ledger.isOffenceSlashed(key)).to.equal(true);
    expect(await f.stakeOf(f.gpuNode)).to.equal(GPU_STAKE - SLASHED);
  });
});
