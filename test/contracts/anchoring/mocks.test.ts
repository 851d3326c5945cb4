/** The test doubles must behave like the interfaces they stand in for, or the ledger tests prove nothing. */
import { expect } from "chai";
import { Wallet, ZeroAddress, ZeroHash } from "ethers";
import { network } from "hardhat";

import { ROLE } from "./helpers.js";

const { ethers, networkHelpers } = await network.create();

async function deployMocks() {
  const [slasher, reporter] = await ethers.getSigners();
  const staking = await ethers.deployContract("MockNodeStaking");
  const tee = await ethers.deployContract("MockTeeRegistry");
  return { staking, tee, slasher: slasher!, reporter: reporter! };
}

describe("MockNodeStaking", () => {
  it("maps signers to nodes and follows rotation", async () => {
    const { staking } = await networkHelpers.loadFixture(deployMocks);
    const node = Wallet.createRandom().address;
    const [a, b] = [Wallet.createRandom().address, Wallet.createRandom().address];
    await staking.setNode(node, ROLE.INFERENCE, a, true, 100n);
    expect(await staking.nodeOfSigner(a)).to.equal(node);
    await staking.setSigner(node, b);
    expect(await staking.nodeOfSigner(a)).to.equal(ZeroAddress);
    expect(await staking.nodeOfSigner(b)).to.equal(node);
    expect(await staking.signerOf(node)).to.equal(b);
  });

  it("answers signerStatus as NodeStaking does: the current key always, a former one before its rotation", async () => {
    const { staking } = await networkHelpers.loadFixture(deployMocks);
    const node = Wallet.createRandom().address;
    const [a, b] = [Wallet.createRandom().address, Wallet.createRandom().address];
    await staking.setNode(node, ROLE.INFERENCE, a, true, 100n);
    expect(await staking.signerStatus(node, a, 0n)).to.deep.equal([BigInt(ROLE.INFERENCE), true]);
    const tx = await staking.setSigner(node, b);
    const rotatedAt = BigInt((await ethers.provider.getBlock(tx.blockNumber!))!.timestamp);
    expect((await staking.signerStatus(node, a, rotatedAt - 1n))[1]).to.equal(true);
    expect((await staking.signerStatus(node, a, rotatedAt))[1]).to.equal(false);
    expect((await staking.signerStatus(node, a, rotatedAt + 1n))[1]).to.equal(false);
    expect((await staking.signerStatus(node, b, 0n))[1]).to.equal(true);
    expect((await staking.signerStatus(node, b, rotatedAt * 2n))[1]).to.equal(true);
    expect((await staking.signerStatus(node, ZeroAddress, 0n))[1]).to.equal(false);
    const stranger = Wallet.createRandom().address;
    expect(await staking.signerStatus(stranger, a, 0n)).to.deep.equal([BigInt(ROLE.NONE), false]);
  });

  it("answers the payee that was set, zero otherwise", async () => {
    const { staking, reporter } = await networkHelpers.loadFixture(deployMocks);
    const node = Wallet.createRandom().address;
    expect(await staking.payeeOf(node)).to.equal(ZeroAddress);
    await staking.setPayee(node, reporter.address);
    expect(await staking.payeeOf(node)).to.equal(reporter.address);
  });

  it("slashes only for slashers, takes bps of the stake, jails and records the call", async () => {
    const { staking, slasher, reporter } = await networkHelpers.loadFixture(deployMocks);
    const node = Wallet.createRandom().address;
    await staking.setNode(node, ROLE.INFERENCE, Wallet.createRandom().address, true, 1_000n);
    await expect(staking.slash(node, 100, reporter.address, true, ZeroHash))
      .to.be.revertedWithCustomError(staking, "MockNotSlasher")
      .withArgs(slasher.address);
    await staking.setSlasher(slasher.address, true);
    for (const bps of [0, 10_001]) {
      await expect(staking.slash(node, bps, reporter.address, true, ZeroHash))
        .to.be.revertedWithCustomError(staking, "MockInvalidBps")
        .withArgs(bps);
    }
    await staking.slash(node, 2_500, reporter.address, true, ZeroHash);
    expect(await staking.stakeOf(node)).to.equal(750n);
    expect(await staking.isActive(node)).to.equal(false);
    expect(await staking.slashCount()).to.equal(1n);
    const call = await staking.slashAt(0);
    expect([call.node, call.bps, call.reporter, call.jail, call.slashed]).to.deep.equal([
      node,
      2_500n,
      reporter.address,
      true,
      250n,
    ]);
  });
});

describe("MockTeeRegistry", () => {
  it("reports an enclave's node and activity as set", async () => {
    const { tee } = await networkHelpers.loadFixture(deployMocks);
    const [key, node] = [Wallet.createRandom().address, Wallet.createRandom().address];
    expect(await tee.isActiveEnclave(key)).to.equal(false);
    expect(await tee.nodeOfEnclave(key)).to.equal(ZeroAddress);
    await tee.setEnclave(key, node, true);
    expect(await tee.isActiveEnclave(key)).to.equal(true);
    expect(await tee.nodeOfEnclave(key)).to.equal(node);
  });

  it("answers accountableNodeOf for every signing time, or for [from, until) once limited", async () => {
    const { tee } = await networkHelpers.loadFixture(deployMocks);
    const [key, node] = [Wallet.createRandom().address, Wallet.createRandom().address];
    expect(await tee.accountableNodeOf(key, 5n)).to.equal(ZeroAddress);
    await tee.setEnclave(key, node, false);
    for (const t of [0n, 10n, 2n ** 64n])
      expect(await tee.accountableNodeOf(key, t)).to.equal(node);
    await tee.setAccountable(key, 10n, 20n);
    const expected: Array<[bigint, string]> = [
      [9n, ZeroAddress],
      [10n, node],
      [19n, node],
      [20n, ZeroAddress],
    ];
    for (const [t, answer] of expected)
      expect(await tee.accountableNodeOf(key, t)).to.equal(answer);
    await tee.setAccountable(key, 10n, 0n);
    expect(await tee.accountableNodeOf(key, 2n ** 64n)).to.equal(node);
  });
});
