import { expect } from "chai";
import { AbiCoder, Wallet, ZeroAddress, ZeroHash, keccak256, toUtf8Bytes } from "ethers";
import { network } from "hardhat";
import { anyValue } from "@nomicfoundation/hardhat-ethers-chai-matchers/withArgs";

import {
  batchDigest,
  ledgerDomain,
  receiptDigest,
  receiptStructHash,
  usageHash,
  verdictDigest,
} from "../../../offchain/chain/eip712.js";
import type { Batch, Receipt } from "../../../offchain/chain/eip712.js";
import {
  batchStructHash,
  buildVerdict,
  receiptLeafHash,
  recoverBatchSigner,
  recoverReceiptSigner,
  recoverVerdictSigner,
  signBatch,
  signReceipt,
  signVerdict,
} from "../../../offchain/chain/receipts.js";
import {
  FEE,
  MODEL_ID,
  OFFENCE,
  OTHER_MODEL_ID,
  ROLE,
  STAKE,
  deployLedgerSystem,
  makeReceipt,
  random32,
  signedBatch,
} from "./helpers.js";

const { ethers, networkHelpers } = await network.create();
const abi = AbiCoder.defaultAbiCoder();

const deploy = () => deployLedgerSystem(ethers);

const offenceKey = (types: string[], values: unknown[]) => keccak256(abi.encode(types, values));
const GOVERNOR_ROLE = keccak256(toUtf8Bytes("GOVERNOR_ROLE"));
const MAX_UINT32 = 0xffff_ffffn;

describe("InferenceLedger", () => {
  describe("constructor", () => {
    it("grants the admin both roles and sets the default parameters", async () => {
      const { ledger, admin, staking, tee, registry, token } =
        await networkHelpers.loadFixture(deploy);
      expect(await ledger.hasRole(GOVERNOR_ROLE, admin.address)).to.equal(true);
      expect(await ledger.hasRole(ZeroHash, admin.address)).to.equal(true);
      expect(await ledger.STAKING()).to.equal(await staking.getAddress());
      expect(await ledger.TEE_REGISTRY()).to.equal(await tee.getAddress());
      expect(await ledger.MODEL_REGISTRY()).to.equal(await registry.getAddress());
      expect(await ledger.FEE_TOKEN()).to.equal(await token.getAddress());
      expect(await ledger.maxCallbackGas()).to.equal(500_000n);
      const p = await ledger.slashParamsOf(OFFENCE.BATCH_EQUIVOCATION);
      expect([p.bps, p.jail]).to.deep.equal([2000n, true]);
      const d = await ledger.slashParamsOf(OFFENCE.DOUBLE_RECEIPT);
      expect([d.bps, d.jail]).to.deep.equal([1000n, true]);
    });

    it("uses the EIP-712 domain of offchain/chain/eip712.ts", async () => {
      const { ledger, chainId } = await networkHelpers.loadFixture(deploy);
      const d = await ledger.eip712Domain();
      expect(d.name).to.equal("OPG InferenceLedger");
      expect(d.version).to.equal("1");
      expect(d.chainId).to.equal(chainId);
      expect(d.verifyingContract).to.equal(await ledger.getAddress());
    });

    for (const index of [0, 1, 2, 3, 4]) {
      it(`reverts with LedgerZeroAddress when dependency ${index} is zero`, async () => {
        const { admin, staking, tee, registry, token } = await networkHelpers.loadFixture(deploy);
        const args = [
          admin.address,
          await staking.getAddress(),
          await tee.getAddress(),
          await registry.getAddress(),
          await token.getAddress(),
        ];
        args[index] = ZeroAddress;
        const factory = await ethers.getContractFactory("InferenceLedger");
        await expect(
          factory.deploy(...(args as [string, string, string, string, string])),
        ).to.be.revertedWithCustomError(factory, "LedgerZeroAddress");
      });
    }
  });

  describe("hashing", () => {
    it("computes the same receipt, verdict and batch digests as eip712.ts", async () => {
      const { ledger, domain, gpuNode, enclave } = await networkHelpers.loadFixture(deploy);
      const receipt = makeReceipt(gpuNode, { timestamp: 2n ** 64n - 1n });
      expect(await ledger.receiptDigest(receipt)).to.equal(receiptDigest(domain, receipt));
      expect(await ledger.receiptStructHash(receipt)).to.equal(receiptStructHash(receipt));
      expect(await ledger.receiptLeaf(receipt)).to.equal(receiptLeafHash(receipt));
      for (const agree of [true, false]) {
        const verdict = { receiptHash: receiptStructHash(receipt), agree, outputHash: random32() };
        expect(await ledger.verdictDigest(verdict.receiptHash, agree, verdict.outputHash)).to.equal(
          verdictDigest(domain, verdict),
        );
      }
      const batch: Batch = {
        enclave: enclave.address,
        sequence: 7n,
        root: random32(),
        count: 4_000_000_000,
        reexecuted: 3,
        usageHash: usageHash([MODEL_ID], [4_000_000_000]),
      };
      expect(await ledger.batchDigest(batch)).to.equal(batchDigest(domain, batch));
    });

    it("hashes a request as keccak256(abi.encode(request))", async () => {
      const { ledger, requester } = await networkHelpers.loadFixture(deploy);
      const request = {
        requester: requester.address,
        fee: FEE,
        modelId: MODEL_ID,
        inputHash: random32(),
        deadline: 123n,
        callbackGasLimit: 456n,
      };
      expect(await ledger.hashRequest(request)).to.equal(
        keccak256(
          abi.encode(
            ["address", "uint96", "bytes32", "bytes32", "uint64", "uint32"],
            Object.values(request),
          ),
        ),
      );
    });
  });

  // ---------------------------------------------------------------------------------------------------
  // Anchoring
  // ---------------------------------------------------------------------------------------------------

  describe("anchorBatch", () => {
    async function batchOfThree() {
      const f = await networkHelpers.loadFixture(deploy);
      const receipts = [
        makeReceipt(f.gpuNode),
        makeReceipt(f.gpuNode, { modelId: OTHER_MODEL_ID }),
        makeReceipt(f.gpuNode),
      ];
      const b = await signedBatch(f.enclave, f.domain, 0n, receipts);
      return { ...f, receipts, ...b };
    }

    it("stores the root, advances the sequence and emits the batch with its usage summary", async () => {
      const { ledger, batch, signature, usage, enclave } = await batchOfThree();
      await expect(ledger.anchorBatch(batch, signature, usage.modelIds, usage.counts))
        .to.emit(ledger, "BatchAnchored")
        .withArgs(1n, enclave.address, 0n, batch.root, 3n, 1n, usage.modelIds, usage.counts);
      expect(await ledger.rootOf(1n)).to.equal(batch.root);
      expect(await ledger.batchCount()).to.equal(1n);
      expect(await ledger.nextSequenceOf(enclave.address)).to.equal(1n);
      expect(usage.modelIds).to.have.length(2);
    });

    it("numbers batches with a counter across enclaves and sequences", async () => {
      const { ledger, batch, signature, usage, enclave, domain, gpuNode, tee, verifierNode } =
        await batchOfThree();
      await ledger.anchorBatch(batch, signature, usage.modelIds, usage.counts);
      const next = await signedBatch(enclave, domain, 1n, [makeReceipt(gpuNode)]);
      await expect(
        ledger.anchorBatch(next.batch, next.signature, next.usage.modelIds, next.usage.counts),
      )
        .to.emit(ledger, "BatchAnchored")
        .withArgs(
          2n,
          enclave.address,
          1n,
          next.batch.root,
          1n,
          1n,
          next.usage.modelIds,
          next.usage.counts,
        );
      const second = Wallet.createRandom();
      await tee.setEnclave(second.address, verifierNode, true);
      const b2 = await signedBatch(second, domain, 0n, [makeReceipt(gpuNode)]);
      await ledger.anchorBatch(b2.batch, b2.signature, b2.usage.modelIds, b2.usage.counts);
      expect(await ledger.batchCount()).to.equal(3n);
      expect(await ledger.rootOf(3n)).to.equal(b2.batch.root);
      expect(await ledger.nextSequenceOf(second.address)).to.equal(1n);
    });

    it("reverts with LedgerUnexpectedSequence for a replayed batch", async () => {
      const { ledger, batch, signature, usage, enclave } = await batchOfThree();
      await ledger.anchorBatch(batch, signature, usage.modelIds, usage.counts);
      await expect(ledger.anchorBatch(batch, signature, usage.modelIds, usage.counts))
        .to.be.revertedWithCustomError(ledger, "LedgerUnexpectedSequence")
        .withArgs(enclave.address, 0n, 1n);
    });

    it("reverts with LedgerUnexpectedSequence for a batch that skips ahead", async () => {
      const { ledger, enclave, domain, gpuNode } = await batchOfThree();
      const b = await signedBatch(enclave, domain, 1n, [makeReceipt(gpuNode)]);
      await expect(ledger.anchorBatch(b.batch, b.signature, b.usage.modelIds, b.usage.counts))
        .to.be.revertedWithCustomError(ledger, "LedgerUnexpectedSequence")
        .withArgs(enclave.address, 1n, 0n);
    });

    it("reverts with LedgerInvalidBatchSigner when another key signed", async () => {
      const { ledger, batch, usage, enclave, domain } = await batchOfThree();
      const other = Wallet.createRandom();
      const sig = await signBatch(other, domain, batch);
      await expect(ledger.anchorBatch(batch, sig, usage.modelIds, usage.counts))
        .to.be.revertedWithCustomError(ledger, "LedgerInvalidBatchSigner")
        .withArgs(enclave.address, other.address);
    });

    it("reverts with LedgerInvalidBatchSigner for a signature made for another enclave's batch", async () => {
      const { ledger, batch, usage, enclave, domain, tee, verifierNode } = await batchOfThree();
      const other = Wallet.createRandom();
      await tee.setEnclave(other.address, verifierNode, true);
      const sig = await signBatch(enclave, domain, batch);
      const moved = { ...batch, enclave: other.address };
      await expect(ledger.anchorBatch(moved, sig, usage.modelIds, usage.counts))
        .to.be.revertedWithCustomError(ledger, "LedgerInvalidBatchSigner")
        .withArgs(other.address, recoverBatchSigner(domain, moved, sig));
    });

    it("reverts with LedgerInvalidBatchSigner for a signature from another chain", async () => {
      const { ledger, batch, usage, enclave, domain } = await batchOfThree();
      const sig = await signBatch(enclave, { ...domain, chainId: domain.chainId + 1n }, batch);
      await expect(ledger.anchorBatch(batch, sig, usage.modelIds, usage.counts))
        .to.be.revertedWithCustomError(ledger, "LedgerInvalidBatchSigner")
        .withArgs(enclave.address, recoverBatchSigner(domain, batch, sig));
    });

    it("reverts with LedgerInvalidBatchSigner for a signature made for another ledger", async () => {
      const { ledger, batch, usage, enclave, domain, admin, staking, tee, registry, token } =
        await batchOfThree();
      const ledger2 = await ethers.deployContract("InferenceLedger", [
        admin.address,
        await staking.getAddress(),
        await tee.getAddress(),
        await registry.getAddress(),
        await token.getAddress(),
      ]);
      const domain2 = ledgerDomain(domain.chainId, await ledger2.getAddress());
      const sig = await signBatch(enclave, domain2, batch);
      await ledger2.anchorBatch(batch, sig, usage.modelIds, usage.counts);
      await expect(ledger.anchorBatch(batch, sig, usage.modelIds, usage.counts))
        .to.be.revertedWithCustomError(ledger, "LedgerInvalidBatchSigner")
        .withArgs(enclave.address, recoverBatchSigner(domain, batch, sig));
    });

    it("reverts with ECDSAInvalidSignatureLength for a malformed signature", async () => {
      const { ledger, batch, usage, signature } = await batchOfThree();
      await expect(ledger.anchorBatch(batch, signature.slice(0, 130), usage.modelIds, usage.counts))
        .to.be.revertedWithCustomError(ledger, "ECDSAInvalidSignatureLength")
        .withArgs(64n);
    });

    it("reverts with LedgerInactiveEnclave when the enclave is not active", async () => {
      // Revoked measurement, expired registration or an inactive VERIFIER node: the registry says inactive.
      const { ledger, batch, signature, usage, enclave, tee, verifierNode } = await batchOfThree();
      await tee.setEnclave(enclave.address, verifierNode, false);
      await expect(ledger.anchorBatch(batch, signature, usage.modelIds, usage.counts))
        .to.be.revertedWithCustomError(ledger, "LedgerInactiveEnclave")
        .withArgs(enclave.address);
    });

    describe("when the batch is malformed", () => {
      const cases: Array<[string, (b: Batch) => Batch]> = [
        ["a zero root", (b) => ({ ...b, root: ZeroHash })],
        ["no receipts", (b) => ({ ...b, count: 0 })],
        ["more re-executions than receipts", (b) => ({ ...b, reexecuted: b.count + 1 })],
      ];
      for (const [name, alter] of cases) {
        it(`reverts with LedgerInvalidBatch for ${name}`, async () => {
          const { ledger, batch, usage, enclave, domain } = await batchOfThree();
          const bad = alter(batch);
          const sig = await signBatch(enclave, domain, bad);
          await expect(ledger.anchorBatch(bad, sig, usage.modelIds, usage.counts))
            .to.be.revertedWithCustomError(ledger, "LedgerInvalidBatch")
            .withArgs(bad.root, bad.count, bad.reexecuted);
        });
      }
    });

    describe("when the usage summary is wrong", () => {
      it("reverts with LedgerUsageLengthMismatch", async () => {
        const { ledger, batch, signature, usage } = await batchOfThree();
        await expect(ledger.anchorBatch(batch, signature, usage.modelIds, [3]))
          .to.be.revertedWithCustomError(ledger, "LedgerUsageLengthMismatch")
          .withArgs(2n, 1n);
      });

      it("reverts with LedgerUsageNotSorted for descending modelIds", async () => {
        const { ledger, batch, signature, usage } = await batchOfThree();
        const ids = [...usage.modelIds].reverse();
        await expect(ledger.anchorBatch(batch, signature, ids, [...usage.counts].reverse()))
          .to.be.revertedWithCustomError(ledger, "LedgerUsageNotSorted")
          .withArgs(1n, ids[1]);
      });

      it("reverts with LedgerUsageNotSorted for a repeated modelId", async () => {
        const { ledger, batch, signature, usage } = await batchOfThree();
        const ids = [usage.modelIds[0]!, usage.modelIds[0]!];
        await expect(ledger.anchorBatch(batch, signature, ids, usage.counts))
          .to.be.revertedWithCustomError(ledger, "LedgerUsageNotSorted")
          .withArgs(1n, ids[1]);
      });

      it("reverts with LedgerUsageCountMismatch when the counts do not add up", async () => {
        const { ledger, batch, signature, usage } = await batchOfThree();
        await expect(ledger.anchorBatch(batch, signature, usage.modelIds, [1, 1]))
          .to.be.revertedWithCustomError(ledger, "LedgerUsageCountMismatch")
          .withArgs(2n, 3n);
      });

      it("reverts with LedgerUsageCountMismatch without overflowing on huge counts", async () => {
        const { ledger, batch, signature, usage } = await batchOfThree();
        await expect(ledger.anchorBatch(batch, signature, usage.modelIds, [MAX_UINT32, MAX_UINT32]))
          .to.be.revertedWithCustomError(ledger, "LedgerUsageCountMismatch")
          .withArgs(2n * MAX_UINT32, 3n);
      });

      it("reverts with LedgerUsageHashMismatch for a summary other than the signed one", async () => {
        const { ledger, batch, signature, usage } = await batchOfThree();
        const counts = [...usage.counts].reverse();
        await expect(ledger.anchorBatch(batch, signature, usage.modelIds, counts))
          .to.be.revertedWithCustomError(ledger, "LedgerUsageHashMismatch")
          .withArgs(batch.usageHash, usageHash(usage.modelIds, counts));
      });
    });
  });

  describe("verifyReceipt", () => {
    async function anchored() {
      const f = await networkHelpers.loadFixture(deploy);
      const receipts = Array.from({ length: 5 }, () => makeReceipt(f.gpuNode));
      const b = await signedBatch(f.enclave, f.domain, 0n, receipts);
      await f.ledger.anchorBatch(b.batch, b.signature, b.usage.modelIds, b.usage.counts);
      return { ...f, receipts, ...b };
    }

    it("returns true for every receipt of the batch with its proof", async () => {
      const { ledger, receipts, tree } = await anchored();
      for (let i = 0; i < receipts.length; i++) {
        expect(await ledger.verifyReceipt(1n, receipts[i]!, tree.proof(i))).to.equal(true);
      }
    });

    it("returns false for an altered receipt", async () => {
      const { ledger, receipts, tree } = await anchored();
      const altered = { ...receipts[0]!, outputHash: random32() };
      expect(await ledger.verifyReceipt(1n, altered, tree.proof(0))).to.equal(false);
    });

    it("returns false for another receipt's proof and for an empty proof", async () => {
      const { ledger, receipts, tree } = await anchored();
      expect(await ledger.verifyReceipt(1n, receipts[0]!, tree.proof(1))).to.equal(false);
      expect(await ledger.verifyReceipt(1n, receipts[0]!, [])).to.equal(false);
    });

    it("returns false against another batch's root", async () => {
      const { ledger, receipts, tree, enclave, domain, gpuNode } = await anchored();
      const b = await signedBatch(enclave, domain, 1n, [
        makeReceipt(gpuNode),
        makeReceipt(gpuNode),
      ]);
      await ledger.anchorBatch(b.batch, b.signature, b.usage.modelIds, b.usage.counts);
      expect(await ledger.verifyReceipt(2n, receipts[0]!, tree.proof(0))).to.equal(false);
    });

    it("reverts with LedgerUnknownBatch for a batch never anchored", async () => {
      const { ledger, receipts, tree } = await anchored();
      for (const id of [0n, 2n]) {
        await expect(ledger.verifyReceipt(id, receipts[0]!, tree.proof(0)))
          .to.be.revertedWithCustomError(ledger, "LedgerUnknownBatch")
          .withArgs(id);
        await expect(ledger.rootOf(id))
          .to.be.revertedWithCustomError(ledger, "LedgerUnknownBatch")
          .withArgs(id);
      }
    });
  });

  // ---------------------------------------------------------------------------------------------------
  // On-chain requests
  // ---------------------------------------------------------------------------------------------------

  const INPUT = "0x" + "ab".repeat(40);
  const OUTPUT = AbiCoder.defaultAbiCoder().encode(["uint256"], [42n]);
  const TTL = 3600n;

  async function requested(callbackGasLimit = 0, fee = FEE) {
    const f = await networkHelpers.loadFixture(deploy);
    const tx = await f.ledger
      .connect(f.requester)
      .requestInference(MODEL_ID, INPUT, fee, TTL, callbackGasLimit);
    const mined = await tx.wait();
    const requestId = keccak256(
      abi.encode(["uint256", "address", "uint256"], [f.chainId, await f.ledger.getAddress(), 1n]),
    );
    const block = await ethers.provider.getBlock(mined!.blockNumber);
    const request = {
      requester: f.requester.address,
      fee,
      modelId: MODEL_ID,
      inputHash: keccak256(INPUT),
      deadline: BigInt(block!.timestamp) + TTL,
      callbackGasLimit: BigInt(callbackGasLimit),
    };
    const receipt = makeReceipt(f.gpuNode, {
      requestId,
      inputHash: request.inputHash,
      outputHash: keccak256(OUTPUT),
    });
    const nodeSig = await signReceipt(f.gpuSigner, f.domain, receipt);
    const enclaveSig = await signVerdict(
      f.enclave,
      f.domain,
      buildVerdict(receipt, receipt.outputHash),
    );
    return { ...f, tx, requestId, request, receipt, nodeSig, enclaveSig };
  }

  describe("requestInference", () => {
    it("escrows the fee, stores the request's hash and emits the input", async () => {
      const { ledger, token, requester, tx, requestId, request } = await requested();
      await expect(tx)
        .to.emit(ledger, "InferenceRequested")
        .withArgs(
          requestId,
          requester.address,
          MODEL_ID,
          request.inputHash,
          FEE,
          request.deadline,
          0n,
          INPUT,
          "",
        );
      await expect(tx).to.changeTokenBalances(ethers, token, [requester, ledger], [-FEE, FEE]);
      expect(await ledger.requestHashOf(requestId)).to.equal(await ledger.hashRequest(request));
    });

    it("gives every request a new id", async () => {
      const { ledger, requester, requestId } = await requested();
      const second = await ledger
        .connect(requester)
        .requestInference.staticCall(MODEL_ID, INPUT, FEE, TTL, 0);
      expect(second).to.not.equal(requestId);
    });

    it("moves no tokens for a zero fee", async () => {
      const { ledger, token, requester } = await networkHelpers.loadFixture(deploy);
      const tx = ledger.connect(requester).requestInference(MODEL_ID, INPUT, 0n, TTL, 0);
      await expect(tx).to.changeTokenBalances(ethers, token, [requester, ledger], [0n, 0n]);
    });

    it("reverts with LedgerUnknownModel for an unregistered model", async () => {
      const { ledger, requester } = await networkHelpers.loadFixture(deploy);
      const model = random32();
      await expect(ledger.connect(requester).requestInference(model, INPUT, FEE, TTL, 0))
        .to.be.revertedWithCustomError(ledger, "LedgerUnknownModel")
        .withArgs(model);
    });

    for (const ttl of [59n, 30n * 86400n + 1n]) {
      it(`reverts with LedgerInvalidTtl for a ttl of ${ttl} s`, async () => {
        const { ledger, requester } = await networkHelpers.loadFixture(deploy);
        await expect(ledger.connect(requester).requestInference(MODEL_ID, INPUT, FEE, ttl, 0))
          .to.be.revertedWithCustomError(ledger, "LedgerInvalidTtl")
          .withArgs(ttl, 60n, 30n * 86400n);
      });
    }

    it("reverts with LedgerCallbackGasTooHigh above the governance limit", async () => {
      const { ledger, requester } = await networkHelpers.loadFixture(deploy);
      await expect(ledger.connect(requester).requestInference(MODEL_ID, INPUT, FEE, TTL, 500_001))
        .to.be.revertedWithCustomError(ledger, "LedgerCallbackGasTooHigh")
        .withArgs(500_001n, 500_000n);
    });

    it("reverts with the token's error without an allowance", async () => {
      const { ledger, token, other, admin } = await networkHelpers.loadFixture(deploy);
      await token.connect(admin).transfer(other.address, FEE);
      await expect(ledger.connect(other).requestInference(MODEL_ID, INPUT, FEE, TTL, 0))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
        .withArgs(await ledger.getAddress(), 0n, FEE);
    });
  });

  describe("requestInferenceByHash", () => {
    it("stores the given input hash and emits the URI", async () => {
      const { ledger, requester } = await networkHelpers.loadFixture(deploy);
      const inputHash = random32();
      await expect(
        ledger
          .connect(requester)
          .requestInferenceByHash(MODEL_ID, inputHash, "ipfs://input", FEE, TTL, 0),
      )
        .to.emit(ledger, "InferenceRequested")
        .withArgs(
          anyValue,
          requester.address,
          MODEL_ID,
          inputHash,
          FEE,
          anyValue,
          0n,
          "0x",
          "ipfs://input",
        );
    });

    it("reverts with LedgerUnknownModel for an unregistered model", async () => {
      const { ledger, requester } = await networkHelpers.loadFixture(deploy);
      await expect(
        ledger.connect(requester).requestInferenceByHash(ZeroHash, random32(), "u", FEE, TTL, 0),
      )
        .to.be.revertedWithCustomError(ledger, "LedgerUnknownModel")
        .withArgs(ZeroHash);
    });
  });

  describe("fulfil", () => {
    it("pays the node, settles the request and emits the output", async () => {
      const {
        ledger,
        token,
        request,
        receipt,
        nodeSig,
        enclaveSig,
        requestId,
        gpuNode,
        enclave,
        other,
      } = await requested();
      const tx = ledger.connect(other).fulfil(request, receipt, nodeSig, enclaveSig, OUTPUT);
      await expect(tx)
        .to.emit(ledger, "InferenceFulfilled")
        .withArgs(requestId, gpuNode, enclave.address, receipt.outputHash, true, OUTPUT);
      await expect(tx).to.changeTokenBalances(ethers, token, [ledger, gpuNode], [-FEE, FEE]);
      expect(await ledger.requestHashOf(requestId)).to.equal(ZeroHash);
    });

    it("reverts with LedgerRequestNotPending when fulfilled twice", async () => {
      const { ledger, request, receipt, nodeSig, enclaveSig, requestId } = await requested();
      await ledger.fulfil(request, receipt, nodeSig, enclaveSig, OUTPUT);
      await expect(ledger.fulfil(request, receipt, nodeSig, enclaveSig, OUTPUT))
        .to.be.revertedWithCustomError(ledger, "LedgerRequestNotPending")
        .withArgs(requestId);
    });

    it("reverts with LedgerRequestNotPending for an unknown request", async () => {
      const { ledger, request, gpuNode, gpuSigner, enclave, domain } = await requested();
      const receipt = makeReceipt(gpuNode, {
        inputHash: request.inputHash,
        outputHash: keccak256(OUTPUT),
      });
      const nodeSig = await signReceipt(gpuSigner, domain, receipt);
      const enclaveSig = await signVerdict(
        enclave,
        domain,
        buildVerdict(receipt, receipt.outputHash),
      );
      await expect(ledger.fulfil(request, receipt, nodeSig, enclaveSig, OUTPUT))
        .to.be.revertedWithCustomError(ledger, "LedgerRequestNotPending")
        .withArgs(receipt.requestId);
    });

    it("reverts with LedgerRequestMismatch when the request is altered", async () => {
      const { ledger, request, receipt, nodeSig, enclaveSig, requestId } = await requested();
      const altered = { ...request, fee: request.fee * 2n };
      await expect(ledger.fulfil(altered, receipt, nodeSig, enclaveSig, OUTPUT))
        .to.be.revertedWithCustomError(ledger, "LedgerRequestMismatch")
        .withArgs(requestId, await ledger.hashRequest(request), await ledger.hashRequest(altered));
    });

    it("reverts with LedgerRequestExpired after the deadline", async () => {
      const { ledger, request, receipt, nodeSig, enclaveSig, requestId } = await requested();
      await networkHelpers.time.increaseTo(request.deadline + 1n);
      await expect(ledger.fulfil(request, receipt, nodeSig, enclaveSig, OUTPUT))
        .to.be.revertedWithCustomError(ledger, "LedgerRequestExpired")
        .withArgs(requestId, request.deadline);
    });

    for (const field of ["modelId", "inputHash"] as const) {
      it(`reverts with LedgerReceiptNotForRequest for a receipt with another ${field}`, async () => {
        const { ledger, request, receipt, gpuSigner, enclave, domain } = await requested();
        const other = { ...receipt, [field]: random32() };
        const nodeSig = await signReceipt(gpuSigner, domain, other);
        const enclaveSig = await signVerdict(
          enclave,
          domain,
          buildVerdict(other, other.outputHash),
        );
        await expect(ledger.fulfil(request, other, nodeSig, enclaveSig, OUTPUT))
          .to.be.revertedWithCustomError(ledger, "LedgerReceiptNotForRequest")
          .withArgs(receipt.requestId, other.modelId, other.inputHash);
      });
    }

    it("reverts with LedgerOutputMismatch when the output is not the receipt's", async () => {
      const { ledger, request, receipt, nodeSig, enclaveSig } = await requested();
      await expect(ledger.fulfil(request, receipt, nodeSig, enclaveSig, "0x01"))
        .to.be.revertedWithCustomError(ledger, "LedgerOutputMismatch")
        .withArgs(receipt.outputHash, keccak256("0x01"));
    });

    for (const role of [ROLE.NONE, ROLE.VERIFIER]) {
      it(`reverts with LedgerNotInferenceNode for a node with role ${role}`, async () => {
        const { ledger, staking, request, receipt, nodeSig, enclaveSig, gpuNode, gpuSigner } =
          await requested();
        await staking.setNode(gpuNode, role, gpuSigner.address, true, STAKE);
        await expect(ledger.fulfil(request, receipt, nodeSig, enclaveSig, OUTPUT))
          .to.be.revertedWithCustomError(ledger, "LedgerNotInferenceNode")
          .withArgs(gpuNode, role);
      });
    }

    it("reverts with LedgerInactiveNode for a jailed or unbonded node", async () => {
      const { ledger, staking, request, receipt, nodeSig, enclaveSig, gpuNode } = await requested();
      await staking.setActive(gpuNode, false);
      await expect(ledger.fulfil(request, receipt, nodeSig, enclaveSig, OUTPUT))
        .to.be.revertedWithCustomError(ledger, "LedgerInactiveNode")
        .withArgs(gpuNode);
    });

    it("reverts with LedgerInvalidReceiptSigner after the node rotated its signer", async () => {
      const { ledger, staking, request, receipt, nodeSig, enclaveSig, gpuNode, gpuSigner } =
        await requested();
      const rotated = Wallet.createRandom().address;
      await staking.setSigner(gpuNode, rotated);
      await expect(ledger.fulfil(request, receipt, nodeSig, enclaveSig, OUTPUT))
        .to.be.revertedWithCustomError(ledger, "LedgerInvalidReceiptSigner")
        .withArgs(gpuNode, rotated, gpuSigner.address);
    });

    it("reverts with LedgerInvalidReceiptSigner for a receipt signed for another chain", async () => {
      const { ledger, request, receipt, enclaveSig, gpuNode, gpuSigner, domain } =
        await requested();
      const sig = await signReceipt(gpuSigner, { ...domain, chainId: 1n }, receipt);
      await expect(ledger.fulfil(request, receipt, sig, enclaveSig, OUTPUT))
        .to.be.revertedWithCustomError(ledger, "LedgerInvalidReceiptSigner")
        .withArgs(gpuNode, gpuSigner.address, recoverReceiptSigner(domain, receipt, sig));
    });

    it("reverts with LedgerInactiveEnclave for a verdict from a key that is not an active enclave", async () => {
      const { ledger, request, receipt, nodeSig, domain } = await requested();
      const stranger = Wallet.createRandom();
      const sig = await signVerdict(stranger, domain, buildVerdict(receipt, receipt.outputHash));
      await expect(ledger.fulfil(request, receipt, nodeSig, sig, OUTPUT))
        .to.be.revertedWithCustomError(ledger, "LedgerInactiveEnclave")
        .withArgs(stranger.address);
    });

    it("reverts with LedgerInactiveEnclave when the enclave was revoked or expired", async () => {
      const { ledger, tee, request, receipt, nodeSig, enclaveSig, enclave, verifierNode } =
        await requested();
      await tee.setEnclave(enclave.address, verifierNode, false);
      await expect(ledger.fulfil(request, receipt, nodeSig, enclaveSig, OUTPUT))
        .to.be.revertedWithCustomError(ledger, "LedgerInactiveEnclave")
        .withArgs(enclave.address);
    });

    it("rejects a disagreeing verdict (it recovers to no active enclave)", async () => {
      const { ledger, request, receipt, nodeSig, enclave, domain } = await requested();
      const verdict = buildVerdict(receipt, random32());
      const sig = await signVerdict(enclave, domain, verdict);
      const asAgreeing = { ...verdict, agree: true, outputHash: receipt.outputHash };
      await expect(ledger.fulfil(request, receipt, nodeSig, sig, OUTPUT))
        .to.be.revertedWithCustomError(ledger, "LedgerInactiveEnclave")
        .withArgs(recoverVerdictSigner(domain, asAgreeing, sig));
    });

    describe("with a consumer contract", () => {
      async function consumerRequest(behaviour: number, callbackGas = 200_000) {
        const f = await networkHelpers.loadFixture(deploy);
        const consumer = await ethers.deployContract("MockInferenceConsumer", [
          await f.ledger.getAddress(),
        ]);
        await consumer.setBehaviour(behaviour);
        await f.token.transfer(await consumer.getAddress(), FEE);
        const tx = await consumer.request(
          await f.token.getAddress(),
          MODEL_ID,
          INPUT,
          FEE,
          TTL,
          callbackGas,
        );
        const mined = await tx.wait();
        const event = mined!.logs
          .map((l) => f.ledger.interface.parseLog(l))
          .find((l) => l?.name === "InferenceRequested")!;
        const request = {
          requester: await consumer.getAddress(),
          fee: FEE,
          modelId: MODEL_ID,
          inputHash: keccak256(INPUT),
          deadline: event.args.getValue("deadline") as bigint,
          callbackGasLimit: BigInt(callbackGas),
        };
        const receipt = makeReceipt(f.gpuNode, {
          requestId: event.args.getValue("requestId") as string,
          inputHash: request.inputHash,
          outputHash: keccak256(OUTPUT),
        });
        const nodeSig = await signReceipt(f.gpuSigner, f.domain, receipt);
        const enclaveSig = await signVerdict(
          f.enclave,
          f.domain,
          buildVerdict(receipt, receipt.outputHash),
        );
        return { ...f, consumer, request, receipt, nodeSig, enclaveSig };
      }

      it("delivers the output to the callback", async () => {
        const { ledger, consumer, request, receipt, nodeSig, enclaveSig, gpuNode, enclave } =
          await consumerRequest(0);
        const tx = ledger.fulfil(request, receipt, nodeSig, enclaveSig, OUTPUT);
        await expect(tx)
          .to.emit(consumer, "ResultReceived")
          .withArgs(receipt.requestId, MODEL_ID, receipt.outputHash, OUTPUT);
        await expect(tx)
          .to.emit(ledger, "InferenceFulfilled")
          .withArgs(receipt.requestId, gpuNode, enclave.address, receipt.outputHash, true, OUTPUT);
        expect(await consumer.lastOutput()).to.equal(OUTPUT);
      });

      it("still fulfils and pays when the callback reverts", async () => {
        const { ledger, token, request, receipt, nodeSig, enclaveSig, gpuNode, enclave } =
          await consumerRequest(1);
        const tx = ledger.fulfil(request, receipt, nodeSig, enclaveSig, OUTPUT);
        await expect(tx)
          .to.emit(ledger, "InferenceFulfilled")
          .withArgs(receipt.requestId, gpuNode, enclave.address, receipt.outputHash, false, OUTPUT);
        await expect(tx).to.changeTokenBalances(ethers, token, [gpuNode], [FEE]);
        expect(await ledger.requestHashOf(receipt.requestId)).to.equal(ZeroHash);
      });

      it("still fulfils when the callback burns all its gas, spending no more than its limit", async () => {
        const { ledger, request, receipt, nodeSig, enclaveSig, gpuNode, enclave } =
          await consumerRequest(2);
        const tx = await ledger.fulfil(request, receipt, nodeSig, enclaveSig, OUTPUT);
        await expect(tx)
          .to.emit(ledger, "InferenceFulfilled")
          .withArgs(receipt.requestId, gpuNode, enclave.address, receipt.outputHash, false, OUTPUT);
        const gasUsed = (await tx.wait())!.gasUsed;
        expect(gasUsed).to.be.greaterThan(200_000n);
        expect(gasUsed).to.be.lessThan(200_000n + 150_000n);
      });

      it("still fulfils when the callback tries to re-enter the ledger (the re-entry fails)", async () => {
        const { ledger, consumer, request, receipt, nodeSig, enclaveSig, gpuNode, enclave } =
          await consumerRequest(3);
        await expect(ledger.fulfil(request, receipt, nodeSig, enclaveSig, OUTPUT))
          .to.emit(ledger, "InferenceFulfilled")
          .withArgs(receipt.requestId, gpuNode, enclave.address, receipt.outputHash, false, OUTPUT);
        expect(await consumer.lastRequestId()).to.equal(ZeroHash);
        await consumer.setBehaviour(3);
        await expect(
          consumer.onInferenceResult(receipt.requestId, MODEL_ID, receipt.outputHash, OUTPUT),
        ).to.emit(ledger, "InferenceRequested");
      });

      it("reverts with LedgerInsufficientCallbackGas when the fulfiller withholds the callback's gas", async () => {
        const { ledger, request, receipt, nodeSig, enclaveSig } = await consumerRequest(2, 500_000);
        const required = 500_000n + 500_000n / 63n + 5_000n;
        await expect(
          ledger.fulfil(request, receipt, nodeSig, enclaveSig, OUTPUT, { gasLimit: 400_000 }),
        )
          .to.be.revertedWithCustomError(ledger, "LedgerInsufficientCallbackGas")
          .withArgs(anyValue, required);
      });
    });
  });

  describe("refund", () => {
    it("returns the fee to the requester after the deadline", async () => {
      const { ledger, token, request, requestId, requester, other } = await requested();
      await networkHelpers.time.increaseTo(request.deadline + 1n);
      const tx = ledger.connect(other).refund(requestId, request);
      await expect(tx)
        .to.emit(ledger, "RequestRefunded")
        .withArgs(requestId, requester.address, FEE);
      await expect(tx).to.changeTokenBalances(ethers, token, [ledger, requester], [-FEE, FEE]);
      expect(await ledger.requestHashOf(requestId)).to.equal(ZeroHash);
    });

    it("moves no tokens for a zero-fee request", async () => {
      const { ledger, token, request, requestId, requester } = await requested(0, 0n);
      await networkHelpers.time.increaseTo(request.deadline + 1n);
      await expect(ledger.refund(requestId, request)).to.changeTokenBalances(
        ethers,
        token,
        [requester],
        [0n],
      );
    });

    it("reverts with LedgerRequestNotExpired at the deadline", async () => {
      const { ledger, request, requestId } = await requested();
      await networkHelpers.time.setNextBlockTimestamp(request.deadline);
      await expect(ledger.refund(requestId, request))
        .to.be.revertedWithCustomError(ledger, "LedgerRequestNotExpired")
        .withArgs(requestId, request.deadline);
    });

    it("reverts with LedgerRequestNotPending once refunded, and fulfil does too", async () => {
      const { ledger, request, requestId, receipt, nodeSig, enclaveSig } = await requested();
      await networkHelpers.time.increaseTo(request.deadline + 1n);
      await ledger.refund(requestId, request);
      await expect(ledger.refund(requestId, request))
        .to.be.revertedWithCustomError(ledger, "LedgerRequestNotPending")
        .withArgs(requestId);
      await expect(ledger.fulfil(request, receipt, nodeSig, enclaveSig, OUTPUT))
        .to.be.revertedWithCustomError(ledger, "LedgerRequestNotPending")
        .withArgs(requestId);
    });

    it("reverts with LedgerRequestMismatch for an altered request (a different requester)", async () => {
      const { ledger, request, requestId, other } = await requested();
      await networkHelpers.time.increaseTo(request.deadline + 1n);
      const altered = { ...request, requester: other.address };
      await expect(ledger.refund(requestId, altered))
        .to.be.revertedWithCustomError(ledger, "LedgerRequestMismatch")
        .withArgs(requestId, await ledger.hashRequest(request), await ledger.hashRequest(altered));
    });
  });

  // ---------------------------------------------------------------------------------------------------
  // Evidence
  // ---------------------------------------------------------------------------------------------------

  describe("reportDoubleReceipt", () => {
    async function twoOutputs() {
      const f = await networkHelpers.loadFixture(deploy);
      const a = makeReceipt(f.gpuNode);
      const b = { ...a, outputHash: random32() };
      const sigA = await signReceipt(f.gpuSigner, f.domain, a);
      const sigB = await signReceipt(f.gpuSigner, f.domain, b);
      const key = offenceKey(
        ["uint8", "address", "bytes32"],
        [OFFENCE.DOUBLE_RECEIPT, f.gpuNode, a.requestId],
      );
      return { ...f, a, b, sigA, sigB, key };
    }

    it("slashes the node with the governance parameters and pays the reporter's bounty through staking", async () => {
      const { ledger, staking, reporter, a, b, sigA, sigB, gpuNode, key } = await twoOutputs();
      const tx = ledger.connect(reporter).reportDoubleReceipt(a, sigA, b, sigB);
      await expect(tx)
        .to.emit(ledger, "OffenceSlashed")
        .withArgs(OFFENCE.DOUBLE_RECEIPT, gpuNode, key, reporter.address, STAKE / 10n);
      await expect(tx)
        .to.emit(staking, "Slashed")
        .withArgs(gpuNode, 1000n, reporter.address, true, key);
      expect(await staking.stakeOf(gpuNode)).to.equal(STAKE - STAKE / 10n);
      expect(await ledger.isOffenceSlashed(key)).to.equal(true);
    });

    it("reverts with LedgerOffenceAlreadySlashed for the same offence again, in any order", async () => {
      const { ledger, a, b, sigA, sigB, key, gpuSigner, domain } = await twoOutputs();
      await ledger.reportDoubleReceipt(a, sigA, b, sigB);
      await expect(ledger.reportDoubleReceipt(b, sigB, a, sigA))
        .to.be.revertedWithCustomError(ledger, "LedgerOffenceAlreadySlashed")
        .withArgs(key);
      const c = { ...a, outputHash: random32() };
      await expect(ledger.reportDoubleReceipt(a, sigA, c, await signReceipt(gpuSigner, domain, c)))
        .to.be.revertedWithCustomError(ledger, "LedgerOffenceAlreadySlashed")
        .withArgs(key);
    });

    it("slashes a node that is jailed or unbonding (inactive) all the same", async () => {
      const { ledger, staking, a, b, sigA, sigB, gpuNode } = await twoOutputs();
      await staking.setActive(gpuNode, false);
      await expect(ledger.reportDoubleReceipt(a, sigA, b, sigB)).to.emit(ledger, "OffenceSlashed");
    });

    const notConflicting: Array<[string, (a: Receipt, b: Receipt) => Receipt]> = [
      ["the same output", (a, b) => ({ ...b, outputHash: a.outputHash })],
      ["another request", (_a, b) => ({ ...b, requestId: random32() })],
      ["another node", (_a, b) => ({ ...b, node: Wallet.createRandom().address })],
    ];
    for (const [name, alter] of notConflicting) {
      it(`reverts with LedgerReceiptsNotConflicting for ${name}`, async () => {
        const { ledger, a, b, sigA, gpuSigner, domain } = await twoOutputs();
        const c = alter(a, b);
        await expect(
          ledger.reportDoubleReceipt(a, sigA, c, await signReceipt(gpuSigner, domain, c)),
        )
          .to.be.revertedWithCustomError(ledger, "LedgerReceiptsNotConflicting")
          .withArgs(receiptStructHash(a), receiptStructHash(c));
      });
    }

    it("reverts with LedgerInvalidReceiptSigner when one receipt is not the node's", async () => {
      const { ledger, a, b, sigA, gpuNode, gpuSigner, domain } = await twoOutputs();
      const forger = Wallet.createRandom();
      await expect(ledger.reportDoubleReceipt(a, sigA, b, await signReceipt(forger, domain, b)))
        .to.be.revertedWithCustomError(ledger, "LedgerInvalidReceiptSigner")
        .withArgs(gpuNode, gpuSigner.address, forger.address);
    });

    it("reverts with LedgerInvalidReceiptSigner for receipts signed for another ledger", async () => {
      const { ledger, a, b, gpuNode, gpuSigner, domain } = await twoOutputs();
      const elsewhere = { ...domain, verifyingContract: Wallet.createRandom().address };
      const sigA = await signReceipt(gpuSigner, elsewhere, a);
      const sigB = await signReceipt(gpuSigner, elsewhere, b);
      await expect(ledger.reportDoubleReceipt(a, sigA, b, sigB))
        .to.be.revertedWithCustomError(ledger, "LedgerInvalidReceiptSigner")
        .withArgs(gpuNode, gpuSigner.address, recoverReceiptSigner(domain, a, sigA));
    });

    it("reverts with LedgerNotInferenceNode for an unknown node", async () => {
      const { ledger, gpuSigner, domain } = await twoOutputs();
      const stranger = Wallet.createRandom().address;
      const a = makeReceipt(stranger);
      const b = { ...a, outputHash: random32() };
      await expect(
        ledger.reportDoubleReceipt(
          a,
          await signReceipt(gpuSigner, domain, a),
          b,
          await signReceipt(gpuSigner, domain, b),
        ),
      )
        .to.be.revertedWithCustomError(ledger, "LedgerNotInferenceNode")
        .withArgs(stranger, ROLE.NONE);
    });

    it("bubbles up NodeStaking's refusal when the ledger is not a slasher", async () => {
      const { ledger, staking, a, b, sigA, sigB } = await twoOutputs();
      await staking.setSlasher(await ledger.getAddress(), false);
      await expect(ledger.reportDoubleReceipt(a, sigA, b, sigB))
        .to.be.revertedWithCustomError(staking, "MockNotSlasher")
        .withArgs(await ledger.getAddress());
    });
  });

  describe("reportContradictedReceipt", () => {
    async function contradicted() {
      const f = await networkHelpers.loadFixture(deploy);
      const receipt = makeReceipt(f.gpuNode);
      const nodeSig = await signReceipt(f.gpuSigner, f.domain, receipt);
      const verdict = buildVerdict(receipt, random32());
      const enclaveSig = await signVerdict(f.enclave, f.domain, verdict);
      const key = offenceKey(
        ["uint8", "bytes32"],
        [OFFENCE.CONTRADICTED_RECEIPT, receiptStructHash(receipt)],
      );
      return { ...f, receipt, nodeSig, verdict, enclaveSig, key };
    }

    it("slashes the GPU node on an active enclave's disagreeing verdict", async () => {
      const { ledger, staking, reporter, receipt, nodeSig, verdict, enclaveSig, gpuNode, key } =
        await contradicted();
      expect(verdict.agree).to.equal(false);
      const tx = ledger
        .connect(reporter)
        .reportContradictedReceipt(receipt, nodeSig, verdict.outputHash, enclaveSig);
      await expect(tx)
        .to.emit(ledger, "OffenceSlashed")
        .withArgs(OFFENCE.CONTRADICTED_RECEIPT, gpuNode, key, reporter.address, STAKE / 10n);
      await expect(tx)
        .to.emit(staking, "Slashed")
        .withArgs(gpuNode, 1000n, reporter.address, true, key);
    });

    it("reverts with LedgerOffenceAlreadySlashed when replayed", async () => {
      const { ledger, receipt, nodeSig, verdict, enclaveSig, key } = await contradicted();
      await ledger.reportContradictedReceipt(receipt, nodeSig, verdict.outputHash, enclaveSig);
      await expect(
        ledger.reportContradictedReceipt(receipt, nodeSig, verdict.outputHash, enclaveSig),
      )
        .to.be.revertedWithCustomError(ledger, "LedgerOffenceAlreadySlashed")
        .withArgs(key);
    });

    it("reverts with LedgerVerdictNotContradicting when the verdict names the receipt's own output", async () => {
      const { ledger, receipt, nodeSig, enclaveSig } = await contradicted();
      await expect(
        ledger.reportContradictedReceipt(receipt, nodeSig, receipt.outputHash, enclaveSig),
      )
        .to.be.revertedWithCustomError(ledger, "LedgerVerdictNotContradicting")
        .withArgs(receiptStructHash(receipt), receipt.outputHash);
    });

    it("cannot turn an agreeing verdict into evidence (reverts with LedgerInactiveEnclave)", async () => {
      const { ledger, receipt, nodeSig, enclave, domain } = await contradicted();
      const agreeing = buildVerdict(receipt, receipt.outputHash);
      const sig = await signVerdict(enclave, domain, agreeing);
      const claimed = random32();
      await expect(ledger.reportContradictedReceipt(receipt, nodeSig, claimed, sig))
        .to.be.revertedWithCustomError(ledger, "LedgerInactiveEnclave")
        .withArgs(
          recoverVerdictSigner(
            domain,
            { receiptHash: agreeing.receiptHash, agree: false, outputHash: claimed },
            sig,
          ),
        );
    });

    it("reverts with LedgerInactiveEnclave when the enclave is revoked or expired", async () => {
      const { ledger, tee, receipt, nodeSig, verdict, enclaveSig, enclave, verifierNode } =
        await contradicted();
      await tee.setEnclave(enclave.address, verifierNode, false);
      await expect(
        ledger.reportContradictedReceipt(receipt, nodeSig, verdict.outputHash, enclaveSig),
      )
        .to.be.revertedWithCustomError(ledger, "LedgerInactiveEnclave")
        .withArgs(enclave.address);
    });

    it("reverts with LedgerInactiveEnclave for a verdict signed for another chain", async () => {
      const { ledger, receipt, nodeSig, verdict, enclave, domain } = await contradicted();
      const sig = await signVerdict(enclave, { ...domain, chainId: 5n }, verdict);
      await expect(ledger.reportContradictedReceipt(receipt, nodeSig, verdict.outputHash, sig))
        .to.be.revertedWithCustomError(ledger, "LedgerInactiveEnclave")
        .withArgs(recoverVerdictSigner(domain, verdict, sig));
    });

    it("reverts with LedgerInvalidReceiptSigner when the node did not sign the receipt", async () => {
      const { ledger, receipt, verdict, enclaveSig, gpuNode, gpuSigner, domain } =
        await contradicted();
      const forger = Wallet.createRandom();
      await expect(
        ledger.reportContradictedReceipt(
          receipt,
          await signReceipt(forger, domain, receipt),
          verdict.outputHash,
          enclaveSig,
        ),
      )
        .to.be.revertedWithCustomError(ledger, "LedgerInvalidReceiptSigner")
        .withArgs(gpuNode, gpuSigner.address, forger.address);
    });

    it("reverts with LedgerNotInferenceNode when the receipt names a VERIFIER node", async () => {
      const { ledger, gpuSigner, enclave, domain, verifierNode } = await contradicted();
      const receipt = makeReceipt(verifierNode);
      const verdict = buildVerdict(receipt, random32());
      await expect(
        ledger.reportContradictedReceipt(
          receipt,
          await signReceipt(gpuSigner, domain, receipt),
          verdict.outputHash,
          await signVerdict(enclave, domain, verdict),
        ),
      )
        .to.be.revertedWithCustomError(ledger, "LedgerNotInferenceNode")
        .withArgs(verifierNode, ROLE.VERIFIER);
    });
  });

  describe("reportBatchEquivocation", () => {
    async function twoBatches() {
      const f = await networkHelpers.loadFixture(deploy);
      const x = await signedBatch(f.enclave, f.domain, 4n, [makeReceipt(f.gpuNode)]);
      const y = await signedBatch(f.enclave, f.domain, 4n, [makeReceipt(f.gpuNode)]);
      const key = offenceKey(
        ["uint8", "address", "uint64"],
        [OFFENCE.BATCH_EQUIVOCATION, f.enclave.address, 4n],
      );
      return { ...f, x, y, key };
    }

    it("slashes the enclave's VERIFIER node", async () => {
      const { ledger, staking, reporter, x, y, verifierNode, key } = await twoBatches();
      const tx = ledger
        .connect(reporter)
        .reportBatchEquivocation(x.batch, x.signature, y.batch, y.signature);
      await expect(tx)
        .to.emit(ledger, "OffenceSlashed")
        .withArgs(OFFENCE.BATCH_EQUIVOCATION, verifierNode, key, reporter.address, STAKE / 5n);
      await expect(tx)
        .to.emit(staking, "Slashed")
        .withArgs(verifierNode, 2000n, reporter.address, true, key);
    });

    it("slashes an enclave that is no longer active all the same", async () => {
      const { ledger, tee, x, y, enclave, verifierNode } = await twoBatches();
      await tee.setEnclave(enclave.address, verifierNode, false);
      await expect(
        ledger.reportBatchEquivocation(x.batch, x.signature, y.batch, y.signature),
      ).to.emit(ledger, "OffenceSlashed");
    });

    it("reverts with LedgerOffenceAlreadySlashed for a third batch with the same sequence", async () => {
      const { ledger, x, y, key, enclave, domain, gpuNode } = await twoBatches();
      await ledger.reportBatchEquivocation(x.batch, x.signature, y.batch, y.signature);
      const z = await signedBatch(enclave, domain, 4n, [makeReceipt(gpuNode)]);
      await expect(ledger.reportBatchEquivocation(x.batch, x.signature, z.batch, z.signature))
        .to.be.revertedWithCustomError(ledger, "LedgerOffenceAlreadySlashed")
        .withArgs(key);
    });

    it("reverts with LedgerBatchesNotConflicting for one batch twice", async () => {
      const { ledger, x } = await twoBatches();
      const h = batchStructHash(x.batch);
      await expect(ledger.reportBatchEquivocation(x.batch, x.signature, x.batch, x.signature))
        .to.be.revertedWithCustomError(ledger, "LedgerBatchesNotConflicting")
        .withArgs(h, h);
    });

    it("reverts with LedgerBatchesNotConflicting for different sequence numbers", async () => {
      const { ledger, x, enclave, domain, gpuNode } = await twoBatches();
      const z = await signedBatch(enclave, domain, 5n, [makeReceipt(gpuNode)]);
      await expect(ledger.reportBatchEquivocation(x.batch, x.signature, z.batch, z.signature))
        .to.be.revertedWithCustomError(ledger, "LedgerBatchesNotConflicting")
        .withArgs(batchStructHash(x.batch), batchStructHash(z.batch));
    });

    it("reverts with LedgerBatchesNotConflicting for two enclaves", async () => {
      const { ledger, x, domain, gpuNode } = await twoBatches();
      const z = await signedBatch(Wallet.createRandom(), domain, 4n, [makeReceipt(gpuNode)]);
      await expect(ledger.reportBatchEquivocation(x.batch, x.signature, z.batch, z.signature))
        .to.be.revertedWithCustomError(ledger, "LedgerBatchesNotConflicting")
        .withArgs(batchStructHash(x.batch), batchStructHash(z.batch));
    });

    it("reverts with LedgerInvalidBatchSigner when either batch is not the enclave's signature", async () => {
      const { ledger, x, y, enclave, domain } = await twoBatches();
      const forger = Wallet.createRandom();
      const forgedY = await signBatch(forger, domain, y.batch);
      await expect(ledger.reportBatchEquivocation(x.batch, x.signature, y.batch, forgedY))
        .to.be.revertedWithCustomError(ledger, "LedgerInvalidBatchSigner")
        .withArgs(enclave.address, forger.address);
      const forgedX = await signBatch(forger, domain, x.batch);
      await expect(ledger.reportBatchEquivocation(x.batch, forgedX, y.batch, y.signature))
        .to.be.revertedWithCustomError(ledger, "LedgerInvalidBatchSigner")
        .withArgs(enclave.address, forger.address);
    });

    it("reverts with LedgerInvalidBatchSigner for batches signed on another chain", async () => {
      const { ledger, x, y, enclave, domain } = await twoBatches();
      const other = { ...domain, chainId: domain.chainId + 7n };
      const sigX = await signBatch(enclave, other, x.batch);
      const sigY = await signBatch(enclave, other, y.batch);
      await expect(ledger.reportBatchEquivocation(x.batch, sigX, y.batch, sigY))
        .to.be.revertedWithCustomError(ledger, "LedgerInvalidBatchSigner")
        .withArgs(enclave.address, recoverBatchSigner(domain, x.batch, sigX));
    });

    it("reverts with LedgerUnknownEnclave when no VERIFIER node registered the key", async () => {
      const { ledger, domain, gpuNode } = await twoBatches();
      const loose = Wallet.createRandom();
      const x = await signedBatch(loose, domain, 0n, [makeReceipt(gpuNode)]);
      const y = await signedBatch(loose, domain, 0n, [makeReceipt(gpuNode)]);
      await expect(ledger.reportBatchEquivocation(x.batch, x.signature, y.batch, y.signature))
        .to.be.revertedWithCustomError(ledger, "LedgerUnknownEnclave")
        .withArgs(loose.address);
    });
  });

  // ---------------------------------------------------------------------------------------------------
  // Governance
  // ---------------------------------------------------------------------------------------------------

  describe("setSlashParams", () => {
    it("changes how an offence is punished", async () => {
      const { ledger, admin } = await networkHelpers.loadFixture(deploy);
      await expect(ledger.connect(admin).setSlashParams(OFFENCE.DOUBLE_RECEIPT, 10_000, false))
        .to.emit(ledger, "SlashParamsSet")
        .withArgs(OFFENCE.DOUBLE_RECEIPT, 10_000n, false);
      const p = await ledger.slashParamsOf(OFFENCE.DOUBLE_RECEIPT);
      expect([p.bps, p.jail]).to.deep.equal([10_000n, false]);
    });

    it("is used by the next slash", async () => {
      const { ledger, staking, gpuNode, gpuSigner, domain } =
        await networkHelpers.loadFixture(deploy);
      await ledger.setSlashParams(OFFENCE.DOUBLE_RECEIPT, 2_500, false);
      const a = makeReceipt(gpuNode);
      const b = { ...a, outputHash: random32() };
      await expect(
        ledger.reportDoubleReceipt(
          a,
          await signReceipt(gpuSigner, domain, a),
          b,
          await signReceipt(gpuSigner, domain, b),
        ),
      )
        .to.emit(staking, "Slashed")
        .withArgs(gpuNode, 2_500n, anyValue, false, anyValue);
      expect(await staking.isActive(gpuNode)).to.equal(true);
    });

    for (const bps of [0, 10_001]) {
      it(`reverts with LedgerInvalidSlashBps for ${bps}`, async () => {
        const { ledger } = await networkHelpers.loadFixture(deploy);
        await expect(ledger.setSlashParams(OFFENCE.BATCH_EQUIVOCATION, bps, true))
          .to.be.revertedWithCustomError(ledger, "LedgerInvalidSlashBps")
          .withArgs(bps);
      });
    }

    it("reverts with AccessControlUnauthorizedAccount for anyone but the governor", async () => {
      const { ledger, other } = await networkHelpers.loadFixture(deploy);
      await expect(ledger.connect(other).setSlashParams(OFFENCE.BATCH_EQUIVOCATION, 1, true))
        .to.be.revertedWithCustomError(ledger, "AccessControlUnauthorizedAccount")
        .withArgs(other.address, GOVERNOR_ROLE);
    });
  });

  describe("setMaxCallbackGas", () => {
    it("changes the limit for new requests", async () => {
      const { ledger, requester } = await networkHelpers.loadFixture(deploy);
      await expect(ledger.setMaxCallbackGas(1_000_000))
        .to.emit(ledger, "MaxCallbackGasSet")
        .withArgs(1_000_000n);
      expect(await ledger.maxCallbackGas()).to.equal(1_000_000n);
      await expect(
        ledger.connect(requester).requestInference(MODEL_ID, INPUT, FEE, TTL, 1_000_000),
      ).to.emit(ledger, "InferenceRequested");
    });

    for (const gas of [0, 5_000_001]) {
      it(`reverts with LedgerInvalidMaxCallbackGas for ${gas}`, async () => {
        const { ledger } = await networkHelpers.loadFixture(deploy);
        await expect(ledger.setMaxCallbackGas(gas))
          .to.be.revertedWithCustomError(ledger, "LedgerInvalidMaxCallbackGas")
          .withArgs(gas);
      });
    }

    it("reverts with AccessControlUnauthorizedAccount for anyone but the governor", async () => {
      const { ledger, other } = await networkHelpers.loadFixture(deploy);
      await expect(ledger.connect(other).setMaxCallbackGas(1))
        .to.be.revertedWithCustomError(ledger, "AccessControlUnauthorizedAccount")
        .withArgs(other.address, GOVERNOR_ROLE);
    });
  });
});
