/**
 * Who serves an on-chain request: InferenceLedger.eligibleAt against the TypeScript reference model
 * (offchain/chain/assignment.ts), the fulfil boundary at eligibleAt - 1, eligibleAt and eligibleAt + 1,
 * the stake weighting of the first turn, and governance's window.
 */
import { expect } from "chai";
import { AbiCoder, Wallet, keccak256, toUtf8Bytes } from "ethers";
import { network } from "hardhat";

import { assignmentDraw, eligibleAt } from "../../../offchain/chain/assignment.js";
import { buildVerdict, signReceipt, signVerdict } from "../../../offchain/chain/receipts.js";
import { MODEL_ID, ROLE, SIGNED_AT, STAKE, deployLedgerSystem, makeReceipt } from "./helpers.js";

const { ethers, networkHelpers } = await network.create();
const abi = AbiCoder.defaultAbiCoder();
const GOVERNOR_ROLE = keccak256(toUtf8Bytes("GOVERNOR_ROLE"));
const INPUT = abi.encode(["uint256[4]"], [[1n, 2n, 3n, 4n]]);
const OUTPUT = abi.encode(["uint256"], [42n]);
const WINDOW = 600n;
const MIN_STAKE = STAKE / 4n;

async function deploy() {
  const f = await deployLedgerSystem(ethers);
  await f.staking.setMinimumStake(MIN_STAKE);
  await f.ledger.setAssignmentWindow(WINDOW);
  return f;
}

type System = Awaited<ReturnType<typeof deploy>>;

/** An on-chain request (no fee, no callback) and the struct its event gives back. */
async function requested(f: System) {
  const tx = await f.ledger.connect(f.requester).requestInference(MODEL_ID, INPUT, 0, 3_600n, 0);
  const mined = (await tx.wait())!;
  const event = mined.logs
    .map((l) => f.ledger.interface.parseLog(l))
    .find((l) => l?.name === "InferenceRequested")!;
  // prevrandao is the block's mixHash since the merge (ethers' Block leaves prevRandao empty here).
  const block = (await ethers.provider.send("eth_getBlockByNumber", [
    `0x${mined.blockNumber.toString(16)}`,
    false,
  ])) as { timestamp: string; mixHash: string };
  const requestId = event.args.getValue("requestId") as string;
  const request = {
    requester: f.requester.address,
    fee: 0n,
    modelId: MODEL_ID,
    inputHash: keccak256(INPUT),
    deadline: event.args.getValue("deadline") as bigint,
    callbackGasLimit: 0n,
    requestedAt: event.args.getValue("requestedAt") as bigint,
    seed: event.args.getValue("seed") as string,
  };
  return { requestId, request, block };
}

/** The fulfilment of `requestId` by `node` (signed by `signer`, agreed by the enclave). */
async function fulfilment(
  f: System,
  requestId: string,
  node: string,
  signer: Parameters<typeof signReceipt>[0],
) {
  const receipt = makeReceipt(node, {
    requestId,
    inputHash: keccak256(INPUT),
    outputHash: keccak256(OUTPUT),
  });
  const nodeSig = await signReceipt(signer, f.domain, receipt);
  const verdictAt = SIGNED_AT + 60n;
  const enclaveSig = await signVerdict(
    f.enclave,
    f.domain,
    buildVerdict(receipt, receipt.outputHash, verdictAt),
  );
  return { receipt, nodeSig, verdictAt, enclaveSig };
}

describe("InferenceLedger: who serves an on-chain request", () => {
  it("draws the seed from the request's block and hashes it with the request", async () => {
    const f = await networkHelpers.loadFixture(deploy);
    const { requestId, request, block } = await requested(f);
    expect(request.requestedAt).to.equal(BigInt(block.timestamp));
    expect(request.seed).to.equal(
      keccak256(abi.encode(["uint256", "bytes32"], [block.mixHash, requestId])),
    );
    expect(await f.ledger.requestHashOf(requestId)).to.equal(await f.ledger.hashRequest(request));
    // Another seed is another request: refused.
    const other = { ...request, seed: keccak256(request.seed) };
    const { receipt, nodeSig, verdictAt, enclaveSig } = await fulfilment(
      f,
      requestId,
      f.gpuNode,
      f.gpuSigner,
    );
    await expect(f.ledger.fulfil(other, receipt, nodeSig, verdictAt, enclaveSig, OUTPUT))
      .to.be.revertedWithCustomError(f.ledger, "LedgerRequestMismatch")
      .withArgs(
        requestId,
        await f.ledger.requestHashOf(requestId),
        await f.ledger.hashRequest(other),
      );
  });

  it("answers eligibleAt exactly as the reference model, for stakes from the minimum to 1,000 times it", async () => {
    const f = await networkHelpers.loadFixture(deploy);
    const { request } = await requested(f);
    for (const multiple of [1n, 2n, 3n, 7n, 1_000n]) {
      const node = Wallet.createRandom().address;
      const stake = MIN_STAKE * multiple + (multiple === 3n ? 1n : 0n);
      await f.staking.setNode(node, ROLE.INFERENCE, Wallet.createRandom().address, true, stake);
      const expected = eligibleAt(request, node, { window: WINDOW, stake, minStake: MIN_STAKE });
      expect(await f.ledger.eligibleAt(request, node)).to.equal(expected);
      expect(expected - request.requestedAt).to.be.lessThan(WINDOW / multiple + 1n);
    }
    // A stake below the minimum (an inactive node) counts as the minimum; a window of 0 is a race.
    const low = Wallet.createRandom().address;
    await f.staking.setNode(low, ROLE.INFERENCE, Wallet.createRandom().address, false, 1n);
    expect(await f.ledger.eligibleAt(request, low)).to.equal(
      eligibleAt(request, low, { window: WINDOW, stake: MIN_STAKE, minStake: MIN_STAKE }),
    );
    await f.ledger.setAssignmentWindow(0);
    expect(await f.ledger.eligibleAt(request, low)).to.equal(request.requestedAt);
  });

  for (const [name, offset, succeeds] of [
    ["eligibleAt - 1", -1n, false],
    ["eligibleAt", 0n, true],
    ["eligibleAt + 1", 1n, true],
  ] as const) {
    it(`fulfil at ${name}: ${succeeds ? "accepted" : "reverts LedgerNotYetEligible"}`, async () => {
      const f = await networkHelpers.loadFixture(deploy);
      // A node whose turn comes after the request's own block (the draw of the fixture's node may be 0).
      let node = f.gpuNode;
      let signer: Parameters<typeof signReceipt>[0] = f.gpuSigner;
      let { requestId, request } = await requested(f);
      while (
        eligibleAt(request, node, { window: WINDOW, stake: STAKE, minStake: MIN_STAKE }) <
        request.requestedAt + 2n
      ) {
        const fresh = new Wallet(Wallet.createRandom().privateKey);
        signer = fresh;
        node = Wallet.createRandom().address;
        await f.staking.setNode(node, ROLE.INFERENCE, fresh.address, true, STAKE);
        ({ requestId, request } = await requested(f));
      }
      const at = await f.ledger.eligibleAt(request, node);
      const { receipt, nodeSig, verdictAt, enclaveSig } = await fulfilment(
        f,
        requestId,
        node,
        signer,
      );
      await networkHelpers.time.setNextBlockTimestamp(at + offset);
      const tx = f.ledger.fulfil(request, receipt, nodeSig, verdictAt, enclaveSig, OUTPUT);
      if (succeeds) {
        await expect(tx).to.emit(f.ledger, "InferenceFulfilled");
        expect(await f.ledger.requestHashOf(requestId)).to.equal(`0x${"00".repeat(32)}`);
      } else {
        await expect(tx)
          .to.be.revertedWithCustomError(f.ledger, "LedgerNotYetEligible")
          .withArgs(requestId, node, at);
        expect(await f.ledger.requestHashOf(requestId)).to.not.equal(`0x${"00".repeat(32)}`);
      }
    });
  }

  it("gives the first turn by stake: a node with 4 times the stake comes first in about 7 of 8 requests", async () => {
    const f = await networkHelpers.loadFixture(deploy);
    const big = Wallet.createRandom().address;
    const small = Wallet.createRandom().address;
    await f.staking.setNode(
      big,
      ROLE.INFERENCE,
      Wallet.createRandom().address,
      true,
      4n * MIN_STAKE,
    );
    await f.staking.setNode(small, ROLE.INFERENCE, Wallet.createRandom().address, true, MIN_STAKE);
    const { request } = await requested(f);
    let bigFirst = 0;
    const n = 400;
    for (let i = 0; i < n; i++) {
      const r = { ...request, seed: keccak256(abi.encode(["uint256"], [i])) };
      const [b, s] = [await f.ledger.eligibleAt(r, big), await f.ledger.eligibleAt(r, small)];
      expect(b).to.equal(
        eligibleAt(r, big, { window: WINDOW, stake: 4n * MIN_STAKE, minStake: MIN_STAKE }),
      );
      if (b < s || (b === s && assignmentDraw(r.seed, big) < assignmentDraw(r.seed, small)))
        bigFirst++;
    }
    // P(U/4 < V) = 7/8 for independent uniform U, V; 400 draws put it within 0.82..0.93 (3.4 sigma).
    expect(bigFirst / n).to.be.within(0.82, 0.93);
  });

  it("lets only governance set the window, at most an hour", async () => {
    const f = await networkHelpers.loadFixture(deploy);
    await expect(f.ledger.connect(f.other).setAssignmentWindow(30))
      .to.be.revertedWithCustomError(f.ledger, "AccessControlUnauthorizedAccount")
      .withArgs(f.other.address, GOVERNOR_ROLE);
    await expect(f.ledger.setAssignmentWindow(3_601))
      .to.be.revertedWithCustomError(f.ledger, "LedgerInvalidAssignmentWindow")
      .withArgs(3_601, 3_600);
    await expect(f.ledger.setAssignmentWindow(3_600))
      .to.emit(f.ledger, "AssignmentWindowSet")
      .withArgs(3_600);
    expect(await f.ledger.assignmentWindow()).to.equal(3_600n);
  });
});
