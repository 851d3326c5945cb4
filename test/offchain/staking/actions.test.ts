import { expect } from "chai";
import { network } from "hardhat";

import type { BaseError } from "../../../offchain/common/errors.js";
import { InputError, VerificationError } from "../../../offchain/common/errors.js";
import * as actions from "../../../offchain/staking/actions.js";
import { sendOrExplain } from "../../../offchain/staking/revert.js";
import { Role } from "../../../offchain/staking/units.js";
import {
  DELAY,
  EVIDENCE,
  MIN_INFERENCE,
  OPG,
  stakingFixtures,
} from "../../contracts/staking/fixtures.js";

const { ethers, networkHelpers } = await network.create();
const { deployed, registered, unbonding } = stakingFixtures(ethers);
const loadFixture = networkHelpers.loadFixture.bind(networkHelpers);
const time = networkHelpers.time;
const IMAGE = ethers.id("image");

async function rejects(
  promise: Promise<unknown>,
  kind: typeof BaseError,
  message: RegExp,
): Promise<BaseError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error, "expected a rejection").to.be.instanceOf(kind);
  expect((error as BaseError).message).to.match(message);
  return error as BaseError;
}

describe("offchain/staking actions", () => {
  describe("registerNode", () => {
    const input = (node: string, signer: string, amount = 20_000n * OPG) => ({
      node,
      role: Role.INFERENCE,
      signer,
      amount,
      metadataURI: "https://gpu.example",
    });

    it("approves the stake when needed, then registers", async () => {
      const { token, staking, stranger, signer, node, deployer } = await loadFixture(deployed);
      await token.connect(deployer).transfer(stranger.address, 20_000n * OPG);
      const out = await actions.registerNode(
        { token, staking },
        stranger,
        input(node, signer.address),
      );
      expect(out.approvalHash).to.match(/^0x[0-9a-f]{64}$/);
      expect(out.gasUsed > 0n).to.be.true;
      expect(await staking.operatorOf(node)).to.equal(stranger.address);
    });

    it("sends no approval when the allowance suffices", async () => {
      const { token, staking, operator, signer, node } = await loadFixture(deployed);
      const out = await actions.registerNode(
        { token, staking },
        operator,
        input(node, signer.address),
      );
      expect(out.approvalHash).to.equal(undefined);
    });

    it("explains a stake below the minimum, with the minimum to stake", async () => {
      const { token, staking, operator, signer, node } = await loadFixture(deployed);
      const error = await rejects(
        actions.registerNode(
          { token, staking },
          operator,
          input(node, signer.address, MIN_INFERENCE - 1n),
        ),
        InputError,
        /below the INFERENCE minimum/,
      );
      expect(error.hint).to.equal("stake at least 10000 OPG");
    });

    it("explains a taken node id, a taken signer, a bad URI and a low balance", async () => {
      const { token, staking, operator2, signer, signer2, stranger, node, node2 } =
        await loadFixture(registered);
      const h = { token, staking };
      await rejects(
        actions.registerNode(h, operator2, input(node, signer2.address)),
        InputError,
        /already registered/,
      );
      await rejects(
        actions.registerNode(h, operator2, input(node2, signer.address)),
        InputError,
        /signer key already belongs/,
      );
      await rejects(
        actions.registerNode(h, operator2, {
          ...input(node2, signer2.address),
          metadataURI: "not a url",
        }),
        InputError,
        /metadata URI is not a URL/,
      );
      await rejects(
        actions.registerNode(h, stranger, input(node2, signer2.address)),
        InputError,
        /balance is too low/,
      );
    });
  });

  describe("increaseStake", () => {
    it("adds stake and reports the new active stake", async () => {
      const { token, staking, operator, node } = await loadFixture(registered);
      const out = await actions.increaseStake({ token, staking }, operator, node, 5n * OPG);
      expect(out.active).to.equal(20_005n * OPG);
    });

    it("explains an unknown node, a wrong sender and an exited node", async () => {
      const { token, staking, operator, operator2, node, node2 } = await loadFixture(registered);
      const h = { token, staking };
      const unknown = await rejects(
        actions.increaseStake(h, operator, node2, OPG),
        InputError,
        /unknown node/,
      );
      expect(unknown.hint).to.contain("opg:stake:register");
      const notOperator = await rejects(
        actions.increaseStake(h, operator2, node, OPG),
        InputError,
        /not the node's operator/,
      );
      expect(notOperator.details).to.deep.equal({
        node,
        sender: operator2.address,
        operator: operator.address,
      });
      await staking.connect(operator).exit(node);
      await rejects(actions.increaseStake(h, operator, node, OPG), InputError, /has exited/);
    });
  });

  describe("unbond", () => {
    it("returns the release time and warns when the rest is below the minimum", async () => {
      const { token, staking, operator, node } = await loadFixture(registered);
      const first = await actions.unbond({ token, staking }, operator, node, 1_000n * OPG);
      expect(first.releaseTime).to.equal(BigInt(await time.latest()) + DELAY);
      expect(first.belowMinimum).to.be.false;
      const second = await actions.unbond({ token, staking }, operator, node, 10_000n * OPG);
      expect(second.belowMinimum).to.be.true;
    });

    it("explains an amount above the active stake and a full queue", async () => {
      const { token, staking, operator, node } = await loadFixture(registered);
      const h = { token, staking };
      const error = await rejects(
        actions.unbond(h, operator, node, 30_000n * OPG),
        InputError,
        /exceeds the node's active stake/,
      );
      expect(error.hint).to.equal("unbond at most 20000 OPG");
      for (let i = 0; i < actions.MAX_UNBONDING_ENTRIES; i++)
        await staking.connect(operator).unbond(node, OPG);
      expect(await staking.MAX_UNBONDING_ENTRIES()).to.equal(BigInt(actions.MAX_UNBONDING_ENTRIES));
      await rejects(actions.unbond(h, operator, node, OPG), InputError, /queue is full/);
    });
  });

  describe("withdraw", () => {
    it("withdraws the matured entries", async () => {
      const { token, staking, operator, node } = await loadFixture(unbonding);
      const [first] = await staking.unbondingEntries(node);
      await time.increaseTo(first!.releaseTime);
      const out = await actions.withdraw({ token, staking }, operator, node);
      expect(out.amount).to.equal(1_000n * OPG);
    });

    it("explains an empty queue, nothing matured and a pending slash", async () => {
      const { token, staking, operator, governanceSlasher, node } = await loadFixture(registered);
      const h = { token, staking };
      await rejects(actions.withdraw(h, operator, node), InputError, /nothing unbonding/);
      await staking.connect(operator).unbond(node, OPG);
      const early = await rejects(
        actions.withdraw(h, operator, node),
        InputError,
        /nothing has matured yet/,
      );
      expect(early.details.nextRelease).to.match(/^\d{4}-\d\d-\d\dT/);
      await staking
        .connect(governanceSlasher)
        .requestSlash(node, false, 1n, ethers.ZeroAddress, false, EVIDENCE);
      await rejects(
        actions.withdraw(h, operator, node),
        InputError,
        /governance slash against the node is pending/,
      );
    });
  });

  describe("approveMeasurement", () => {
    it("approves as governance and explains a missing role or a repeat", async () => {
      const { tee, governance, operator } = await loadFixture(deployed);
      const missing = await rejects(
        actions.approveMeasurement(tee, operator, IMAGE, "v1"),
        InputError,
        /GOVERNANCE_ROLE/,
      );
      expect(missing.hint).to.contain("TimelockController");
      await actions.approveMeasurement(tee, governance, IMAGE, "v1");
      expect(await tee.isMeasurementApproved(IMAGE)).to.be.true;
      await rejects(
        actions.approveMeasurement(tee, governance, IMAGE, "v1"),
        InputError,
        /already approved/,
      );
    });
  });

  describe("registerEnclave", () => {
    async function teeNode() {
      const f = await deployed();
      await f.staking
        .connect(f.operator)
        .register(f.node, Role.VERIFIER, f.signer.address, 30_000n * OPG, "");
      await f.tee.connect(f.governance).approveMeasurement(IMAGE, "v1");
      return f;
    }
    const enclaveKey = ethers.getAddress("0x" + "e1".repeat(20));

    it("registers the key and returns its expiry", async () => {
      const { tee, staking, signer, node } = await loadFixture(teeNode);
      const out = await actions.registerEnclave(tee, staking, signer, {
        node,
        enclaveKey,
        measurement: IMAGE,
        attestation: "0x01",
      });
      expect(out.expiresAt).to.equal(BigInt(await time.latest()) + 86_400n);
      expect(await tee.isActiveEnclave(enclaveKey)).to.be.true;
    });

    it("explains each reason a registration would fail", async () => {
      const { tee, staking, operator, operator2, signer2, stranger, node, node2, governance } =
        await loadFixture(teeNode);
      const input = { node, enclaveKey, measurement: IMAGE, attestation: "0x01" };
      await rejects(
        actions.registerEnclave(tee, staking, operator, { ...input, node: node2 }),
        InputError,
        /unknown node/,
      );
      await staking
        .connect(operator2)
        .register(node2, Role.INFERENCE, signer2.address, 20_000n * OPG, "");
      await rejects(
        actions.registerEnclave(tee, staking, operator2, { ...input, node: node2 }),
        InputError,
        /not a VERIFIER node/,
      );
      await rejects(
        actions.registerEnclave(tee, staking, stranger, input),
        InputError,
        /neither the node's operator nor its signer/,
      );
      await rejects(
        actions.registerEnclave(tee, staking, operator, { ...input, measurement: ethers.id("x") }),
        InputError,
        /not approved/,
      );
      await rejects(
        actions.registerEnclave(tee, staking, operator, { ...input, attestation: "0x" }),
        InputError,
        /attestation is empty/,
      );
      await staking.connect(operator).unbond(node, 10_000n * OPG);
      await rejects(
        actions.registerEnclave(tee, staking, operator, input),
        InputError,
        /not active/,
      );
      await staking.connect(operator).increaseStake(node, 10_000n * OPG);
      const other = ethers.getAddress("0x" + "33".repeat(20));
      await staking
        .connect(operator2)
        .register(other, Role.VERIFIER, governance.address, 30_000n * OPG, "");
      await actions.registerEnclave(tee, staking, operator2, { ...input, node: other });
      await rejects(
        actions.registerEnclave(tee, staking, operator, input),
        InputError,
        /has registered before/,
      );
    });
  });

  describe("sendOrExplain", () => {
    it("turns an unforeseen revert into a VerificationError naming the custom error and its values", async () => {
      const { staking, stranger, node } = await loadFixture(registered);
      const error = await rejects(
        sendOrExplain(staking.interface, "slash", () =>
          staking.connect(stranger).slash(node, 1n, ethers.ZeroAddress, false, EVIDENCE),
        ),
        VerificationError,
        /^slash reverted with AccessControlUnauthorizedAccount$/,
      );
      expect(error.details).to.deep.equal({
        account: stranger.address,
        neededRole: await staking.SLASHER_ROLE(),
      });
    });

    it("passes BaseErrors through and wraps anything else", async () => {
      const { staking } = await loadFixture(deployed);
      const input = new InputError("mine");
      await rejects(
        sendOrExplain(staking.interface, "x", () => Promise.reject(input)),
        InputError,
        /^mine$/,
      );
      const other = await rejects(
        sendOrExplain(staking.interface, "x", () => Promise.reject(new Error("boom"))),
        VerificationError,
        /^x failed$/,
      );
      expect(other.details).to.deep.equal({ reason: "boom" });
    });
  });
});
