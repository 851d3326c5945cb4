/**
 * Issue 13, item 2: the enclave signed a verdict contradicting a GPU receipt; the verifier's operator
 * (covering for the GPU node) tries to void it by deregistering the key, exiting, or letting the
 * registration lapse. Evidence counts if the key was registered, under an image not revoked for cause,
 * when it signed, so the verdict keeps slashing; only a revocation for cause (a broken image) voids it,
 * and a verdict dated before the key registered never counted.
 */
import { expect } from "chai";
import { network } from "hardhat";

import {
  GPU_STAKE,
  IMAGE,
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
const SLASHED = taken(GPU_STAKE, SLASH_BPS.CONTRADICTED); // 1,000 OPG of 10,000

/** The enclave contradicted a GPU receipt with a verdict signed now. */
async function contradicted(f: AttackedSystem) {
  const verdictAt = await f.now();
  return { verdictAt, ...(await f.contradiction(1, verdictAt)) };
}

async function expectSlashed(f: AttackedSystem, c: Awaited<ReturnType<typeof contradicted>>) {
  const tx = c.report();
  await expect(tx)
    .to.emit(f.ledger, "OffenceSlashed")
    .withArgs(
      OFFENCE.CONTRADICTED_RECEIPT,
      f.gpuNode,
      offenceKey.contradicted(c.lie),
      f.watcher.address,
      SLASHED,
    );
  await expect(tx).to.changeTokenBalances(ethers, f.token, [f.watcher], [bountyOf(SLASHED)]);
  expect(await f.stakeOf(f.gpuNode)).to.equal(GPU_STAKE - SLASHED);
}

describe("attack 13.2: voiding a verifier's verdicts", function () {
  this.timeout(120_000);

  it("honest path: the contradicted GPU node loses 10 % and is jailed", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    await expectSlashed(f, await contradicted(f));
    expect((await f.staking.getNode(f.gpuNode)).jailed).to.equal(true);
  });

  it("the verifier deregisters the enclave key: the verdict still slashes", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    const c = await contradicted(f);
    await (await f.tee.connect(f.teeOperator).deregisterEnclave(f.enclave.address)).wait();
    expect(await f.tee.isActiveEnclave(f.enclave.address)).to.equal(false);
    await expectSlashed(f, c);
  });

  it("the verifier exits NodeStaking: the verdict still slashes", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    const c = await contradicted(f);
    await (await f.staking.connect(f.teeOperator).exit(f.teeNode)).wait();
    expect(await f.tee.isActiveEnclave(f.enclave.address)).to.equal(false);
    await expectSlashed(f, c);
  });

  it("the verifier skips heartbeats (registration lapsed, node jailed): the verdict still slashes", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    const c = await contradicted(f);
    const { expiresAt } = await f.tee.getEnclave(f.enclave.address);
    await networkHelpers.time.increaseTo(expiresAt + 1n);
    await (await f.staking.connect(f.watcher).jailInactive(f.teeNode)).wait();
    expect(await f.tee.isActiveEnclave(f.enclave.address)).to.equal(false);
    await expectSlashed(f, c);
  });

  it("governance retires the image later (no cause): the verdict still slashes", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    const c = await contradicted(f);
    await f.governance(
      await f.tee.getAddress(),
      f.tee.interface.encodeFunctionData("revokeMeasurement", [IMAGE, false]),
    );
    await expectSlashed(f, c);
  });

  it("the GPU node exits to dodge it: the verdict reaches its stake for the whole unbonding delay", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    const c = await contradicted(f);
    await (await f.staking.connect(f.gpuOperator).exit(f.gpuNode)).wait();
    const [entry] = await f.staking.unbondingEntries(f.gpuNode);
    await networkHelpers.time.setNextBlockTimestamp(entry!.releaseTime - 1n);
    await expectSlashed(f, c);
  });

  it("a verdict signed under an image later revoked for cause does not count (LedgerUnaccountableEnclave)", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    const c = await contradicted(f);
    await f.governance(
      await f.tee.getAddress(),
      f.tee.interface.encodeFunctionData("revokeMeasurement", [IMAGE, true]),
    );
    await expect(c.report())
      .to.be.revertedWithCustomError(f.ledger, "LedgerUnaccountableEnclave")
      .withArgs(f.enclave.address, c.verdictAt);
    expect(await f.stakeOf(f.gpuNode)).to.equal(GPU_STAKE);
  });

  it("a verdict dated before the key registered does not count; one dated at registration does", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    const early = await f.contradiction("early", f.enclaveRegisteredAt - 1n);
    await expect(early.report())
      .to.be.revertedWithCustomError(f.ledger, "LedgerUnaccountableEnclave")
      .withArgs(f.enclave.address, f.enclaveRegisteredAt - 1n);
    expect(await f.stakeOf(f.gpuNode)).to.equal(GPU_STAKE);
    const onTime = await f.contradiction("on time", f.enclaveRegisteredAt);
    await expect(onTime.report()).to.emit(f.ledger, "OffenceSlashed");
    expect(await f.stakeOf(f.gpuNode)).to.equal(GPU_STAKE - SLASHED);
  });
});
