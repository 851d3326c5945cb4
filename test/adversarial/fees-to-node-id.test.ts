/**
 * Issue 13, item 5: fulfil paid the fee to `receipt.node`, a node id nobody holds a key for. Fees now go
 * to the node's payee in NodeStaking: its operator, or the payee the operator set; nobody else can
 * redirect them, not even the node's hot signer.
 */
import { expect } from "chai";
import { AbiCoder, keccak256 } from "ethers";
import { network } from "hardhat";

import { buildVerdict, signReceipt, signVerdict } from "../../offchain/chain/receipts.js";
import { OPG, deployAttackedSystem } from "./system.js";
import type { AttackedSystem } from "./system.js";

const { ethers, networkHelpers } = await network.create();
const deployed = () => deployAttackedSystem(ethers, networkHelpers);
const FEE = 100n * OPG;
const INPUT = AbiCoder.defaultAbiCoder().encode(["uint256[4]"], [[1n, 2n, 3n, 4n]]);
const OUTPUT = AbiCoder.defaultAbiCoder().encode(["uint256"], [42n]);

/** An on-chain request with a 100 OPG fee, and its fulfilment by the GPU node with the enclave's agreement. */
async function requested(f: AttackedSystem) {
  const tx = await f.ledger.connect(f.requester).requestInference(f.modelId, INPUT, FEE, 3_600n, 0);
  const mined = await tx.wait();
  const event = mined!.logs
    .map((l) => f.ledger.interface.parseLog(l))
    .find((l) => l?.name === "InferenceRequested")!;
  const request = {
    requester: f.requester.address,
    fee: FEE,
    modelId: f.modelId,
    inputHash: keccak256(INPUT),
    deadline: event.args.getValue("deadline") as bigint,
    callbackGasLimit: 0n,
    requestedAt: event.args.getValue("requestedAt") as bigint,
    seed: event.args.getValue("seed") as string,
  };
  const receipt = f.receipt("fee", {
    requestId: event.args.getValue("requestId") as string,
    inputHash: request.inputHash,
    outputHash: keccak256(OUTPUT),
    timestamp: await f.now(),
  });
  const verdict = buildVerdict(receipt, receipt.outputHash, await f.now());
  const nodeSig = await signReceipt(f.gpuSigner, f.domain, receipt);
  const enclaveSig = await signVerdict(f.enclave, f.domain, verdict);
  const fulfil = () =>
    f.ledger
      .connect(f.watcher)
      .fulfil(request, receipt, nodeSig, verdict.timestamp, enclaveSig, OUTPUT);
  return { fulfil };
}

describe("attack 13.5: fees paid to an address nobody holds", function () {
  this.timeout(120_000);

  it("honest path: the fee goes to the node's operator, never to the node id", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    const { fulfil } = await requested(f);
    await expect(fulfil()).to.changeTokenBalances(
      ethers,
      f.token,
      [f.ledger, f.gpuOperator, f.gpuNode],
      [-FEE, FEE, 0n],
    );
    expect(await f.token.balanceOf(f.gpuNode)).to.equal(0n);
  });

  it("honest path: once the operator sets a payee, the fee goes there", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    await (await f.staking.connect(f.gpuOperator).setPayee(f.gpuNode, f.payee.address)).wait();
    const { fulfil } = await requested(f);
    await expect(fulfil()).to.changeTokenBalances(
      ethers,
      f.token,
      [f.payee, f.gpuOperator, f.gpuNode],
      [FEE, 0n, 0n],
    );
  });

  it("neither the hot signer nor an outsider can redirect the fees (StakingNotOperator)", async () => {
    const f = await networkHelpers.loadFixture(deployed);
    for (const who of [f.gpuSigner, f.thief]) {
      await expect(f.staking.connect(who).setPayee(f.gpuNode, who.address))
        .to.be.revertedWithCustomError(f.staking, "StakingNotOperator")
        .withArgs(f.gpuNode, who.address, f.gpuOperator.address);
    }
    expect(await f.staking.payeeOf(f.gpuNode)).to.equal(f.gpuOperator.address);
    const { fulfil } = await requested(f);
    await expect(fulfil()).to.changeTokenBalances(
      ethers,
      f.token,
      [f.gpuOperator, f.gpuSigner, f.thief],
      [FEE, 0n, 0n],
    );
  });
});
