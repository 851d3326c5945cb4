/**
 * Issue 13, item 1: an enclave signs two batches with one sequence number, then its operator (or its hot
 * signer) deregisters the key, exits, or hands the key to another verifier node, hoping the evidence
 * misses it or lands on an innocent node. A key is bound to its node for good, so none of it works.
 */
import { expect } from "chai";
import type { ContractTransactionResponse } from "ethers";
import { network } from "hardhat";

import {
  IMAGE,
  OFFENCE,
  SLASH_BPS,
  TEE_STAKE,
  VERIFIER,
  bountyOf,
  deployAttackedSystem,
  offenceKey,
  taken,
} from "./system.js";
import type { AttackedSystem } from "./system.js";

const { ethers, networkHelpers } = await network.create();
const deployed = () => deployAttackedSystem(ethers, networkHelpers);

/** Two different batches the enclave signed for sequence 0, in the last two seconds. */
async function equivocated(f: AttackedSystem) {
  const t = await f.now();
  const x = await f.batchOf(0n, [f.receipt("x")], { asOf: t - 1n });
  const y = await f.batchOf(0n, [f.receipt("y")], { asOf: t });
  const report = () =>
    f.ledger.connect(f.watcher).reportBatchEquivocation(x.batch, x.signature, y.batch, y.signature);
  return { x, y, report, asOf: t };
}

const SLASHED = taken(TEE_STAKE, SLASH_BPS.EQUIVOCATION); // 5,000 OPG of 25,000

/** The report slashes the offender's TEE node 20 % (the watcher reporting), whatever else it did. */
async function expectOffenderSlashed(
  f: AttackedSystem,
  report: () => Promise<ContractTransactionResponse>,
) {
  const tx = report();
  await expect(tx)
    .to.emit(f.ledger, "OffenceSlashed")
    .withArgs(
      OFFENCE.BATCH_EQUIVOCATION,
      f.teeNode,
      offenceKey.equivocation(f.enclave.address, 0n),
      f.watcher.address,
      SLASHED,
    );
  await expect(tx).to.changeTokenBalances(ethers, f.token, [f.watcher], [bountyOf(SLASHED)]);
}

describe("attack 13.1: escaping batch-equivocation evidence", function () {
  this.timeout(120_000);

  it("honest path: the equivocating enclave's VERIFIER node loses 20 %, the watcher gets its bounty", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    const { report } = await equivocated(f);
    await expectOffenderSlashed(f, report);
    expect(await f.stakeOf(f.teeNode)).to.equal(TEE_STAKE - SLASHED);
    expect((await f.staking.getNode(f.teeNode)).jailed).to.equal(true);
  });

  for (const who of ["teeOperator", "teeSigner"] as const) {
    it(`the ${who === "teeOperator" ? "operator" : "hot signer"} deregisters the key: the evidence still slashes its node`, async () => {
      const f = await networkHelpers.loadFixture(deployed);
      const { report } = await equivocated(f);
      await (await f.tee.connect(f[who]).deregisterEnclave(f.enclave.address)).wait();
      expect(await f.tee.nodeOfEnclave(f.enclave.address)).to.equal(f.teeNode);
      await expectOffenderSlashed(f, report);
      expect(await f.stakeOf(f.teeNode)).to.equal(TEE_STAKE - SLASHED);
    });
  }

  it("the offender deregisters and exits: the evidence reaches the stake while it unbonds", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    const { report } = await equivocated(f);
    await (await f.tee.connect(f.teeOperator).deregisterEnclave(f.enclave.address)).wait();
    await (await f.staking.connect(f.teeOperator).exit(f.teeNode)).wait();
    await networkHelpers.time.increase(6n * 86_400n); // inside the 7-day unbonding delay
    await expectOffenderSlashed(f, report);
    expect(await f.staking.stakeOf(f.teeNode)).to.deep.equal([0n, TEE_STAKE - SLASHED]);
  });

  it("another verifier node cannot take the freed key (TeeEnclaveTaken), and the innocent keeps its stake", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    const { report } = await equivocated(f);
    await (await f.tee.connect(f.teeOperator).deregisterEnclave(f.enclave.address)).wait();
    await (
      await f.staking
        .connect(f.teeOperator2)
        .register(f.teeNode2, VERIFIER, f.teeSigner2.address, TEE_STAKE, "https://tee-2.opg.test")
    ).wait();
    // Neither the innocent node nor the offender's own can register the key again.
    for (const [operator, node] of [
      [f.teeOperator2, f.teeNode2],
      [f.teeOperator, f.teeNode],
    ] as const) {
      await expect(f.tee.connect(operator).registerEnclave(node, f.enclave.address, IMAGE, "0x01"))
        .to.be.revertedWithCustomError(f.tee, "TeeEnclaveTaken")
        .withArgs(f.enclave.address, f.teeNode);
    }
    await expectOffenderSlashed(f, report);
    expect(await f.stakeOf(f.teeNode)).to.equal(TEE_STAKE - SLASHED);
    expect(await f.stakeOf(f.teeNode2)).to.equal(TEE_STAKE);
  });

  it("what the retired key signs after its deregistration answers to no node (LedgerUnaccountableEnclave)", async () => {
    // A retired key that leaks later cannot be used to slash the node it belonged to.
    const f = await networkHelpers.loadFixture(deployed);
    const deregisteredAt = await f.mined(
      f.tee.connect(f.teeOperator).deregisterEnclave(f.enclave.address),
    );
    const before = await f.batchOf(1n, [f.receipt("b1")], { asOf: deregisteredAt - 1n });
    const at = await f.batchOf(1n, [f.receipt("b2")], { asOf: deregisteredAt });
    const after = await f.batchOf(1n, [f.receipt("b3")], { asOf: deregisteredAt + 1n });
    await expect(
      f.ledger.reportBatchEquivocation(at.batch, at.signature, after.batch, after.signature),
    )
      .to.be.revertedWithCustomError(f.ledger, "LedgerUnaccountableEnclave")
      .withArgs(f.enclave.address, deregisteredAt);
    await expect(
      f.ledger.reportBatchEquivocation(before.batch, before.signature, at.batch, at.signature),
    )
      .to.be.revertedWithCustomError(f.ledger, "LedgerUnaccountableEnclave")
      .withArgs(f.enclave.address, deregisteredAt);
    expect(await f.stakeOf(f.teeNode)).to.equal(TEE_STAKE);
  });
});
