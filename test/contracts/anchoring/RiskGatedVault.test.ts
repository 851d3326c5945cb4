import { expect } from "chai";
import { AbiCoder, keccak256, parseEther } from "ethers";
import { network } from "hardhat";

import { buildVerdict, signReceipt, signVerdict } from "../../../offchain/chain/receipts.js";
import {
  FEE,
  MODEL_ID,
  OTHER_MODEL_ID,
  SIGNED_AT,
  deployLedgerSystem,
  makeReceipt,
} from "./helpers.js";

const { ethers, networkHelpers } = await network.create();
const abi = AbiCoder.defaultAbiCoder();
const MAX_RISK = 50n;
const DEPOSIT = parseEther("2");

async function deployVault() {
  const f = await deployLedgerSystem(ethers);
  const vault = await ethers.deployContract("RiskGatedVault", [
    await f.ledger.getAddress(),
    await f.token.getAddress(),
    MODEL_ID,
    MAX_RISK,
  ]);
  const user = f.requester;
  await f.token.connect(user).approve(await vault.getAddress(), FEE * 10n);
  await vault.connect(user).deposit({ value: DEPOSIT });
  return { ...f, vault, user };
}

async function withdrawalRequested() {
  const f = await networkHelpers.loadFixture(deployVault);
  const amount = parseEther("1");
  const tx = await f.vault.connect(f.user).requestWithdrawal(amount, FEE);
  const mined = await tx.wait();
  const event = mined!.logs
    .map((l) => f.ledger.interface.parseLog(l))
    .find((l) => l?.name === "InferenceRequested")!;
  const requestId = event.args.getValue("requestId") as string;
  const features = abi.encode(["address", "uint128", "uint256"], [f.user.address, amount, DEPOSIT]);
  const request = {
    requester: await f.vault.getAddress(),
    fee: FEE,
    modelId: MODEL_ID,
    inputHash: keccak256(features),
    deadline: event.args.getValue("deadline") as bigint,
    callbackGasLimit: await f.vault.CALLBACK_GAS(),
    requestedAt: event.args.getValue("requestedAt") as bigint,
    seed: event.args.getValue("seed") as string,
  };
  /** A fulfilment with the given output, signed by the GPU node and agreed by the enclave. */
  const fulfil = async (output: string) => {
    const receipt = makeReceipt(f.gpuNode, {
      requestId,
      inputHash: request.inputHash,
      outputHash: keccak256(output),
    });
    const nodeSig = await signReceipt(f.gpuSigner, f.domain, receipt);
    const verdict = buildVerdict(receipt, receipt.outputHash, SIGNED_AT);
    const enclaveSig = await signVerdict(f.enclave, f.domain, verdict);
    return f.ledger.fulfil(request, receipt, nodeSig, verdict.timestamp, enclaveSig, output);
  };
  return { ...f, tx, amount, requestId, features, request, fulfil };
}

const score = (n: bigint) => abi.encode(["uint256"], [n]);

describe("RiskGatedVault", () => {
  describe("deposit", () => {
    it("credits the sender", async () => {
      const { vault, user } = await networkHelpers.loadFixture(deployVault);
      expect(await vault.balanceOf(user.address)).to.equal(DEPOSIT);
    });

    it("reverts with VaultZeroAmount for nothing", async () => {
      const { vault, user } = await networkHelpers.loadFixture(deployVault);
      await expect(vault.connect(user).deposit()).to.be.revertedWithCustomError(
        vault,
        "VaultZeroAmount",
      );
    });
  });

  describe("requestWithdrawal", () => {
    it("locks the amount and asks the ledger for the risk score of vault-built features", async () => {
      const { vault, ledger, user, tx, amount, requestId, features, request } =
        await withdrawalRequested();
      await expect(tx)
        .to.emit(vault, "WithdrawalRequested")
        .withArgs(user.address, requestId, amount, features);
      await expect(tx)
        .to.emit(ledger, "InferenceRequested")
        .withArgs(
          requestId,
          await vault.getAddress(),
          MODEL_ID,
          request.inputHash,
          FEE,
          request.deadline,
          100_000n,
          features,
          "",
          request.requestedAt,
          request.seed,
        );
      expect(await vault.balanceOf(user.address)).to.equal(DEPOSIT - amount);
      expect((await vault.pendingOf(requestId)).account).to.equal(user.address);
    });

    it("reverts with VaultInsufficientBalance beyond the balance", async () => {
      const { vault, user } = await networkHelpers.loadFixture(deployVault);
      await expect(vault.connect(user).requestWithdrawal(DEPOSIT + 1n, FEE))
        .to.be.revertedWithCustomError(vault, "VaultInsufficientBalance")
        .withArgs(user.address, DEPOSIT, DEPOSIT + 1n);
    });

    it("reverts with VaultZeroAmount for nothing", async () => {
      const { vault, user } = await networkHelpers.loadFixture(deployVault);
      await expect(vault.connect(user).requestWithdrawal(0, FEE)).to.be.revertedWithCustomError(
        vault,
        "VaultZeroAmount",
      );
    });
  });

  describe("onInferenceResult", () => {
    it("approves a low-risk withdrawal, which the user then withdraws", async () => {
      const { vault, user, fulfil, amount, requestId } = await withdrawalRequested();
      await expect(fulfil(score(MAX_RISK)))
        .to.emit(vault, "WithdrawalApproved")
        .withArgs(user.address, requestId, amount, MAX_RISK);
      expect(await vault.withdrawableOf(user.address)).to.equal(amount);
      await expect(vault.connect(user).withdraw()).to.changeEtherBalances(
        ethers,
        [vault, user],
        [-amount, amount],
      );
      await expect(vault.connect(user).withdraw())
        .to.be.revertedWithCustomError(vault, "VaultNothingToWithdraw")
        .withArgs(user.address);
    });

    it("rejects a high-risk withdrawal and returns the amount to the balance", async () => {
      const { vault, user, fulfil, amount, requestId } = await withdrawalRequested();
      await expect(fulfil(score(MAX_RISK + 1n)))
        .to.emit(vault, "WithdrawalRejected")
        .withArgs(user.address, requestId, amount, score(MAX_RISK + 1n));
      expect(await vault.balanceOf(user.address)).to.equal(DEPOSIT);
      expect(await vault.withdrawableOf(user.address)).to.equal(0n);
    });

    it("rejects a malformed output", async () => {
      const { vault, fulfil } = await withdrawalRequested();
      await expect(fulfil("0x01")).to.emit(vault, "WithdrawalRejected");
    });

    it("reverts with VaultNotLedger for any other caller", async () => {
      const { vault, other, requestId } = await withdrawalRequested();
      await expect(
        vault.connect(other).onInferenceResult(requestId, MODEL_ID, keccak256("0x"), score(0n)),
      )
        .to.be.revertedWithCustomError(vault, "VaultNotLedger")
        .withArgs(other.address);
    });

    it("reverts with VaultWrongModel and VaultUnknownRequest (seen from the ledger)", async () => {
      const { vault, ledger, requestId } = await withdrawalRequested();
      const ledgerAddress = await ledger.getAddress();
      await networkHelpers.impersonateAccount(ledgerAddress);
      await networkHelpers.setBalance(ledgerAddress, parseEther("1"));
      const asLedger = await ethers.getSigner(ledgerAddress);
      await expect(
        vault.connect(asLedger).onInferenceResult(requestId, OTHER_MODEL_ID, keccak256("0x"), "0x"),
      )
        .to.be.revertedWithCustomError(vault, "VaultWrongModel")
        .withArgs(OTHER_MODEL_ID, MODEL_ID);
      await expect(
        vault.connect(asLedger).onInferenceResult(MODEL_ID, MODEL_ID, keccak256("0x"), "0x"),
      )
        .to.be.revertedWithCustomError(vault, "VaultUnknownRequest")
        .withArgs(MODEL_ID);
    });
  });

  describe("cancelExpired", () => {
    it("returns the amount and the fee once the request expired", async () => {
      const { vault, token, user, request, requestId, amount } = await withdrawalRequested();
      await networkHelpers.time.increaseTo(request.deadline + 1n);
      const tx = vault.cancelExpired(requestId);
      await expect(tx)
        .to.emit(vault, "WithdrawalCancelled")
        .withArgs(user.address, requestId, amount);
      await expect(tx).to.changeTokenBalances(ethers, token, [user], [FEE]);
      expect(await vault.balanceOf(user.address)).to.equal(DEPOSIT);
    });

    it("reverts with the ledger's LedgerRequestNotExpired before the deadline", async () => {
      const { vault, ledger, request, requestId } = await withdrawalRequested();
      await expect(vault.cancelExpired(requestId))
        .to.be.revertedWithCustomError(ledger, "LedgerRequestNotExpired")
        .withArgs(requestId, request.deadline);
    });

    it("reverts with VaultUnknownRequest once settled", async () => {
      const { vault, fulfil, requestId } = await withdrawalRequested();
      await fulfil(score(1n));
      await expect(vault.cancelExpired(requestId))
        .to.be.revertedWithCustomError(vault, "VaultUnknownRequest")
        .withArgs(requestId);
    });
  });
});
