import { expect } from "chai";
import {
  AbiCoder,
  Wallet,
  ZeroAddress,
  ZeroHash,
  getAddress,
  keccak256,
  toUtf8Bytes,
} from "ethers";
import { network } from "hardhat";
import { anyValue } from "@nomicfoundation/hardhat-ethers-chai-matchers/withArgs";

import {
  FULL_SAMPLE_RATE_PPM,
  batchDigest,
  ledgerDomain,
  receiptDigest,
  receiptStructHash,
  usageHash,
  verdictDigest,
} from "../../../offchain/chain/eip712.js";
import type { Batch, Receipt } from "../../../offchain/chain/eip712.js";
import {
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
  MAX_CLOCK_SKEW,
  MODEL_ID,
  OFFENCE,
  OTHER_MODEL_ID,
  ROLE,
  SIGNED_AT,
  STAKE,
  deployLedgerSystem,
  makeReceipt,
  random32,
  signedBatch,
} from "./helpers.js";

const { ethers, networkHelpers } = await network.create();
const abi = AbiCoder.defaultAbiCoder();
const time = networkHelpers.time;

const deploy = () => deployLedgerSystem(ethers);

const GOVERNOR_ROLE = keccak256(toUtf8Bytes("GOVERNOR_ROLE"));
const MAX_UINT32 = 0xffff_ffffn;
const DAY = 86_400n;
/** When the enclave signed the fulfilments' agreeing verdicts. */
const VERDICT_AT = SIGNED_AT + 60n;

/** TypeScript reference of InferenceLedger.batchIdOf: enclave << 64 | sequence. */
const batchIdOf = (enclave: string, sequence: bigint) => (BigInt(enclave) << 64n) | sequence;

type Fixture = Awaited<ReturnType<typeof deployLedgerSystem>>;

/** The fixture's enclave signs batch `sequence` of the GPU node's receipts (signed by its signer). */
const gpuBatch = (
  f: Fixture,
  sequence: bigint,
  receipts: Receipt[],
  signing: Partial<{ asOf: bigint; sampleRatePpm: number; signer: string }> = {},
) =>
  signedBatch(f.enclave, f.domain, sequence, receipts, {
    node: f.gpuNode,
    signer: f.gpuSigner.address,
    ...signing,
  });

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
      expect([p.bps, p.jail, p.cooldown]).to.deep.equal([2000n, true, DAY]);
      for (const offence of [OFFENCE.DOUBLE_RECEIPT, OFFENCE.CONTRADICTED_RECEIPT]) {
        const d = await ledger.slashParamsOf(offence);
        expect([d.bps, d.jail, d.cooldown]).to.deep.equal([1000n, true, DAY]);
      }
      expect(await ledger.sampleRate()).to.equal(BigInt(FULL_SAMPLE_RATE_PPM));
    });

    it("exposes the clock skew, cooldown ceiling and full sample rate", async () => {
      const { ledger } = await networkHelpers.loadFixture(deploy);
      expect(await ledger.MAX_CLOCK_SKEW()).to.equal(MAX_CLOCK_SKEW);
      expect(await ledger.MAX_OFFENCE_COOLDOWN()).to.equal(90n * DAY);
      expect(await ledger.FULL_SAMPLE_RATE()).to.equal(BigInt(FULL_SAMPLE_RATE_PPM));
    });

    it("emits the initial sample rate", async () => {
      const { admin, staking, tee, registry, token } = await networkHelpers.loadFixture(deploy);
      const ledger = await ethers.deployContract("InferenceLedger", [
        admin.address,
        await staking.getAddress(),
        await tee.getAddress(),
        await registry.getAddress(),
        await token.getAddress(),
      ]);
      await expect(ledger.deploymentTransaction())
        .to.emit(ledger, "SampleRateSet")
        .withArgs(BigInt(FULL_SAMPLE_RATE_PPM));
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
      const { ledger, domain, gpuNode, gpuSigner, enclave } =
        await networkHelpers.loadFixture(deploy);
      const receipt = makeReceipt(gpuNode, { timestamp: 2n ** 64n - 1n });
      expect(await ledger.receiptDigest(receipt)).to.equal(receiptDigest(domain, receipt));
      expect(await ledger.receiptStructHash(receipt)).to.equal(receiptStructHash(receipt));
      expect(await ledger.receiptLeaf(receipt)).to.equal(receiptLeafHash(receipt));
      for (const agree of [true, false]) {
        for (const timestamp of [0n, SIGNED_AT, 2n ** 64n - 1n]) {
          const verdict = {
            receiptHash: receiptStructHash(receipt),
            agree,
            outputHash: random32(),
            timestamp,
          };
          expect(
            await ledger.verdictDigest(verdict.receiptHash, agree, verdict.outputHash, timestamp),
          ).to.equal(verdictDigest(domain, verdict));
        }
      }
      const batch: Batch = {
        enclave: enclave.address,
        sequence: 7n,
        root: random32(),
        count: 4_000_000_000,
        reexecuted: 3,
        usageHash: usageHash([MODEL_ID], [4_000_000_000]),
        node: gpuNode,
        signer: gpuSigner.address,
        asOf: 2n ** 64n - 1n,
        sampleRatePpm: 12_345,
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
        requestedAt: 100n,
        seed: random32(),
      };
      expect(await ledger.hashRequest(request)).to.equal(
        keccak256(
          abi.encode(
            ["address", "uint96", "bytes32", "bytes32", "uint64", "uint32", "uint64", "bytes32"],
            Object.values(request),
          ),
        ),
      );
    });

    it("numbers a batch enclave << 64 | sequence (batchIdOf)", async () => {
      const { ledger, enclave } = await networkHelpers.loadFixture(deploy);
      for (const sequence of [0n, 1n, 2n ** 32n, 2n ** 64n - 1n]) {
        expect(await ledger.batchIdOf(enclave.address, sequence)).to.equal(
          batchIdOf(enclave.address, sequence),
        );
      }
      expect(await ledger.batchIdOf(ZeroAddress, 5n)).to.equal(5n);
      const top = getAddress("0x" + "ff".repeat(20));
      expect(await ledger.batchIdOf(top, 2n ** 64n - 1n)).to.equal(2n ** 224n - 1n);
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
      const b = await gpuBatch(f, 0n, receipts);
      return { ...f, receipts, ...b };
    }

    it("stores the root under enclave << 64 | sequence and emits the batch with its node and usage summary", async () => {
      const { ledger, batch, signature, usage, enclave, gpuNode } = await batchOfThree();
      const id = batchIdOf(enclave.address, 0n);
      expect(
        await ledger.anchorBatch.staticCall(batch, signature, usage.modelIds, usage.counts),
      ).to.equal(id);
      await expect(ledger.anchorBatch(batch, signature, usage.modelIds, usage.counts))
        .to.emit(ledger, "BatchAnchored")
        .withArgs(
          id,
          enclave.address,
          gpuNode,
          0n,
          batch.root,
          3n,
          1n,
          usage.modelIds,
          usage.counts,
        );
      expect(await ledger.rootOf(id)).to.equal(batch.root);
      expect(await ledger.nextSequenceOf(enclave.address)).to.equal(1n);
      expect(usage.modelIds).to.have.length(2);
    });

    it("gives every enclave its own id space: its sequences, no shared counter", async () => {
      const f = await batchOfThree();
      const { ledger, batch, signature, usage, enclave, domain, gpuNode, gpuSigner, tee } = f;
      await ledger.anchorBatch(batch, signature, usage.modelIds, usage.counts);
      const next = await gpuBatch(f, 1n, [makeReceipt(gpuNode)]);
      await expect(
        ledger.anchorBatch(next.batch, next.signature, next.usage.modelIds, next.usage.counts),
      )
        .to.emit(ledger, "BatchAnchored")
        .withArgs(
          batchIdOf(enclave.address, 1n),
          enclave.address,
          gpuNode,
          1n,
          next.batch.root,
          1n,
          1n,
          next.usage.modelIds,
          next.usage.counts,
        );
      const second = Wallet.createRandom();
      await tee.setEnclave(second.address, f.verifierNode, true);
      const b2 = await signedBatch(second, domain, 0n, [makeReceipt(gpuNode)], {
        node: gpuNode,
        signer: gpuSigner.address,
      });
      await ledger.anchorBatch(b2.batch, b2.signature, b2.usage.modelIds, b2.usage.counts);
      expect(await ledger.rootOf(batchIdOf(second.address, 0n))).to.equal(b2.batch.root);
      expect(await ledger.rootOf(batchIdOf(enclave.address, 0n))).to.equal(batch.root);
      expect(await ledger.rootOf(batchIdOf(enclave.address, 1n))).to.equal(next.batch.root);
      expect(await ledger.nextSequenceOf(second.address)).to.equal(1n);
      expect(await ledger.nextSequenceOf(enclave.address)).to.equal(2n);
    });

    it("reverts with LedgerUnexpectedSequence for a replayed batch", async () => {
      const { ledger, batch, signature, usage, enclave } = await batchOfThree();
      await ledger.anchorBatch(batch, signature, usage.modelIds, usage.counts);
      await expect(ledger.anchorBatch(batch, signature, usage.modelIds, usage.counts))
        .to.be.revertedWithCustomError(ledger, "LedgerUnexpectedSequence")
        .withArgs(enclave.address, 0n, 1n);
    });

    it("reverts with LedgerUnexpectedSequence for a batch that skips ahead", async () => {
      const f = await batchOfThree();
      const b = await gpuBatch(f, 1n, [makeReceipt(f.gpuNode)]);
      await expect(f.ledger.anchorBatch(b.batch, b.signature, b.usage.modelIds, b.usage.counts))
        .to.be.revertedWithCustomError(f.ledger, "LedgerUnexpectedSequence")
        .withArgs(f.enclave.address, 1n, 0n);
    });

    it("reverts with LedgerUnexpectedSequence for an anchored sequence re-signed with other contents", async () => {
      const f = await batchOfThree();
      await f.ledger.anchorBatch(f.batch, f.signature, f.usage.modelIds, f.usage.counts);
      const other = await gpuBatch(f, 0n, [makeReceipt(f.gpuNode)]);
      await expect(
        f.ledger.anchorBatch(
          other.batch,
          other.signature,
          other.usage.modelIds,
          other.usage.counts,
        ),
      )
        .to.be.revertedWithCustomError(f.ledger, "LedgerUnexpectedSequence")
        .withArgs(f.enclave.address, 0n, 1n);
      expect(await f.ledger.rootOf(batchIdOf(f.enclave.address, 0n))).to.equal(f.batch.root);
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

    const signedFields: Array<[string, (b: Batch) => Batch]> = [
      ["node", (b) => ({ ...b, node: Wallet.createRandom().address })],
      ["signer", (b) => ({ ...b, signer: Wallet.createRandom().address })],
      ["asOf", (b) => ({ ...b, asOf: b.asOf + 1n })],
    ];
    for (const [field, alter] of signedFields) {
      it(`reverts with LedgerInvalidBatchSigner when ${field} differs from what the enclave signed`, async () => {
        const { ledger, batch, signature, usage, enclave, domain } = await batchOfThree();
        const altered = alter(batch);
        await expect(ledger.anchorBatch(altered, signature, usage.modelIds, usage.counts))
          .to.be.revertedWithCustomError(ledger, "LedgerInvalidBatchSigner")
          .withArgs(enclave.address, recoverBatchSigner(domain, altered, signature));
      });
    }

    it("reverts with LedgerInvalidBatchSigner when sampleRatePpm differs from what the enclave signed", async () => {
      const f = await batchOfThree();
      await f.ledger.setSampleRate(500_000);
      const b = await gpuBatch(f, 0n, [makeReceipt(f.gpuNode)], { sampleRatePpm: 600_000 });
      const claimed = { ...b.batch, sampleRatePpm: 700_000 };
      await expect(f.ledger.anchorBatch(claimed, b.signature, b.usage.modelIds, b.usage.counts))
        .to.be.revertedWithCustomError(f.ledger, "LedgerInvalidBatchSigner")
        .withArgs(f.enclave.address, recoverBatchSigner(f.domain, claimed, b.signature));
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

    describe("when the batch names a signer that was not the node's when the enclave signed", () => {
      it("reverts with LedgerInvalidBatchNodeSigner for a key the node never had (a fabricated receipt)", async () => {
        const f = await batchOfThree();
        const forger = Wallet.createRandom();
        const b = await gpuBatch(f, 0n, [makeReceipt(f.gpuNode)], { signer: forger.address });
        await expect(f.ledger.anchorBatch(b.batch, b.signature, b.usage.modelIds, b.usage.counts))
          .to.be.revertedWithCustomError(f.ledger, "LedgerInvalidBatchNodeSigner")
          .withArgs(f.gpuNode, forger.address);
      });

      it("reverts with LedgerInvalidBatchNodeSigner for a zero signer", async () => {
        const f = await batchOfThree();
        const b = await gpuBatch(f, 0n, [makeReceipt(f.gpuNode)], { signer: ZeroAddress });
        await expect(f.ledger.anchorBatch(b.batch, b.signature, b.usage.modelIds, b.usage.counts))
          .to.be.revertedWithCustomError(f.ledger, "LedgerInvalidBatchNodeSigner")
          .withArgs(f.gpuNode, ZeroAddress);
      });

      it("reverts with LedgerInvalidBatchNodeSigner for another INFERENCE node's signer", async () => {
        const f = await batchOfThree();
        const otherNode = Wallet.createRandom().address;
        const otherSigner = Wallet.createRandom().address;
        await f.staking.setNode(otherNode, ROLE.INFERENCE, otherSigner, true, STAKE);
        const b = await gpuBatch(f, 0n, [makeReceipt(f.gpuNode)], { signer: otherSigner });
        await expect(f.ledger.anchorBatch(b.batch, b.signature, b.usage.modelIds, b.usage.counts))
          .to.be.revertedWithCustomError(f.ledger, "LedgerInvalidBatchNodeSigner")
          .withArgs(f.gpuNode, otherSigner);
      });

      /** The node rotated away from its first key at `rotatedAt`; a batch of that key signed at `asOf`. */
      async function rotated() {
        const f = await batchOfThree();
        const newSigner = Wallet.createRandom();
        const tx = await f.staking.setSigner(f.gpuNode, newSigner.address);
        const rotatedAt = BigInt((await ethers.provider.getBlock(tx.blockNumber!))!.timestamp);
        const former = (asOf: bigint) => gpuBatch(f, 0n, [makeReceipt(f.gpuNode)], { asOf });
        return { ...f, newSigner, rotatedAt, former };
      }

      it("anchors a former signer's batch signed one second before the rotation", async () => {
        const f = await rotated();
        const b = await f.former(f.rotatedAt - 1n);
        await expect(
          f.ledger.anchorBatch(b.batch, b.signature, b.usage.modelIds, b.usage.counts),
        ).to.emit(f.ledger, "BatchAnchored");
      });

      for (const offset of [0n, 1n]) {
        it(`reverts with LedgerInvalidBatchNodeSigner for a former signer's batch signed ${offset} s after the rotation`, async () => {
          const f = await rotated();
          const b = await f.former(f.rotatedAt + offset);
          await expect(f.ledger.anchorBatch(b.batch, b.signature, b.usage.modelIds, b.usage.counts))
            .to.be.revertedWithCustomError(f.ledger, "LedgerInvalidBatchNodeSigner")
            .withArgs(f.gpuNode, f.gpuSigner.address);
        });
      }

      it("anchors the new signer's batch, whatever its signing time", async () => {
        const f = await rotated();
        for (const [sequence, asOf] of [
          [0n, f.rotatedAt - 1n],
          [1n, f.rotatedAt],
        ] as const) {
          const b = await gpuBatch(f, sequence, [makeReceipt(f.gpuNode)], {
            signer: f.newSigner.address,
            asOf,
          });
          await expect(
            f.ledger.anchorBatch(b.batch, b.signature, b.usage.modelIds, b.usage.counts),
          ).to.emit(f.ledger, "BatchAnchored");
        }
      });
    });

    for (const [name, role] of [
      ["a VERIFIER node", ROLE.VERIFIER],
      ["an unknown node", ROLE.NONE],
    ] as const) {
      it(`reverts with LedgerNotInferenceNode for a batch of ${name}`, async () => {
        const f = await batchOfThree();
        const node = Wallet.createRandom().address;
        const signer = Wallet.createRandom().address;
        if (role !== ROLE.NONE) await f.staking.setNode(node, role, signer, true, STAKE);
        const b = await signedBatch(f.enclave, f.domain, 0n, [makeReceipt(node)], { node, signer });
        await expect(f.ledger.anchorBatch(b.batch, b.signature, b.usage.modelIds, b.usage.counts))
          .to.be.revertedWithCustomError(f.ledger, "LedgerNotInferenceNode")
          .withArgs(node, role);
      });
    }

    describe("when the enclave's clock runs ahead of the chain's", () => {
      for (const [ahead, accepted] of [
        [MAX_CLOCK_SKEW - 1n, true],
        [MAX_CLOCK_SKEW, true],
        [MAX_CLOCK_SKEW + 1n, false],
      ] as const) {
        it(`${accepted ? "anchors" : "reverts with LedgerSignedInFuture for"} a batch signed ${ahead} s ahead`, async () => {
          const f = await batchOfThree();
          const now = BigInt(await time.latest()) + 10n;
          const b = await gpuBatch(f, 0n, [makeReceipt(f.gpuNode)], { asOf: now + ahead });
          await time.setNextBlockTimestamp(now);
          const tx = f.ledger.anchorBatch(b.batch, b.signature, b.usage.modelIds, b.usage.counts);
          if (accepted) await expect(tx).to.emit(f.ledger, "BatchAnchored");
          else
            await expect(tx)
              .to.be.revertedWithCustomError(f.ledger, "LedgerSignedInFuture")
              .withArgs(now + ahead, now);
        });
      }
    });

    describe("when the batch was sampled below governance's rate", () => {
      /** Governance lowers the rate to 500,000 ppm, then at `changedAt` raises it to 700,000 ppm. */
      async function rateRaised() {
        const f = await batchOfThree();
        await f.ledger.setSampleRate(500_000);
        await time.increase(DAY);
        const tx = await f.ledger.setSampleRate(700_000);
        const changedAt = BigInt((await ethers.provider.getBlock(tx.blockNumber!))!.timestamp);
        const batchAt = (asOf: bigint, sampleRatePpm: number) =>
          gpuBatch(f, 0n, [makeReceipt(f.gpuNode)], { asOf, sampleRatePpm });
        return { ...f, changedAt, batchAt };
      }

      it("reverts with LedgerSampleRateTooLow one ppm below the rate", async () => {
        const f = await rateRaised();
        const b = await f.batchAt(f.changedAt + 1n, 699_999);
        await expect(f.ledger.anchorBatch(b.batch, b.signature, b.usage.modelIds, b.usage.counts))
          .to.be.revertedWithCustomError(f.ledger, "LedgerSampleRateTooLow")
          .withArgs(699_999n, 700_000n);
      });

      it("anchors at exactly the rate, and above it", async () => {
        const f = await rateRaised();
        for (const [sequence, rate] of [
          [0n, 700_000],
          [1n, FULL_SAMPLE_RATE_PPM],
        ] as const) {
          const b = await gpuBatch(f, sequence, [makeReceipt(f.gpuNode)], {
            asOf: f.changedAt,
            sampleRatePpm: rate,
          });
          await expect(
            f.ledger.anchorBatch(b.batch, b.signature, b.usage.modelIds, b.usage.counts),
          ).to.emit(f.ledger, "BatchAnchored");
        }
      });

      it("anchors a batch signed one second before the change at the rate then in force", async () => {
        const f = await rateRaised();
        const b = await f.batchAt(f.changedAt - 1n, 500_000);
        await expect(
          f.ledger.anchorBatch(b.batch, b.signature, b.usage.modelIds, b.usage.counts),
        ).to.emit(f.ledger, "BatchAnchored");
      });

      for (const offset of [0n, 1n]) {
        it(`reverts with LedgerSampleRateTooLow for the previous rate in a batch signed ${offset} s after the change`, async () => {
          const f = await rateRaised();
          const b = await f.batchAt(f.changedAt + offset, 500_000);
          await expect(f.ledger.anchorBatch(b.batch, b.signature, b.usage.modelIds, b.usage.counts))
            .to.be.revertedWithCustomError(f.ledger, "LedgerSampleRateTooLow")
            .withArgs(500_000n, 700_000n);
        });
      }

      it("reverts with LedgerSampleRateTooLow below the previous rate even before the change", async () => {
        const f = await rateRaised();
        const b = await f.batchAt(f.changedAt - 1n, 499_999);
        await expect(f.ledger.anchorBatch(b.batch, b.signature, b.usage.modelIds, b.usage.counts))
          .to.be.revertedWithCustomError(f.ledger, "LedgerSampleRateTooLow")
          .withArgs(499_999n, 700_000n);
      });

      it("reverts with LedgerSampleRateTooLow for a rate above the full rate", async () => {
        const f = await batchOfThree();
        const bad = { ...f.batch, sampleRatePpm: FULL_SAMPLE_RATE_PPM + 1 };
        const sig = await signBatch(f.enclave, f.domain, bad);
        await expect(f.ledger.anchorBatch(bad, sig, f.usage.modelIds, f.usage.counts))
          .to.be.revertedWithCustomError(f.ledger, "LedgerSampleRateTooLow")
          .withArgs(BigInt(FULL_SAMPLE_RATE_PPM + 1), BigInt(FULL_SAMPLE_RATE_PPM));
      });
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

  describe("nextSequenceOf", () => {
    it("is 0 for an enclave that never anchored", async () => {
      const { ledger, enclave } = await networkHelpers.loadFixture(deploy);
      expect(await ledger.nextSequenceOf(enclave.address)).to.equal(0n);
      expect(await ledger.nextSequenceOf(Wallet.createRandom().address)).to.equal(0n);
    });

    it("finds the end of the anchored prefix after every batch, across the powers of two", async () => {
      const f = await networkHelpers.loadFixture(deploy);
      for (let sequence = 0n; sequence < 18n; sequence++) {
        const b = await gpuBatch(f, sequence, [makeReceipt(f.gpuNode)]);
        await f.ledger.anchorBatch(b.batch, b.signature, b.usage.modelIds, b.usage.counts);
        expect(await f.ledger.nextSequenceOf(f.enclave.address)).to.equal(sequence + 1n);
      }
    });
  });

  describe("verifyReceipt", () => {
    async function anchored() {
      const f = await networkHelpers.loadFixture(deploy);
      const receipts = Array.from({ length: 5 }, () => makeReceipt(f.gpuNode));
      const b = await gpuBatch(f, 0n, receipts);
      await f.ledger.anchorBatch(b.batch, b.signature, b.usage.modelIds, b.usage.counts);
      return { ...f, receipts, ...b, id: batchIdOf(f.enclave.address, 0n) };
    }

    it("returns true for every receipt of the batch with its proof", async () => {
      const { ledger, receipts, tree, id } = await anchored();
      for (let i = 0; i < receipts.length; i++) {
        expect(await ledger.verifyReceipt(id, receipts[i]!, tree.proof(i))).to.equal(true);
      }
    });

    it("returns false for an altered receipt", async () => {
      const { ledger, receipts, tree, id } = await anchored();
      const altered = { ...receipts[0]!, outputHash: random32() };
      expect(await ledger.verifyReceipt(id, altered, tree.proof(0))).to.equal(false);
    });

    it("returns false for another receipt's proof and for an empty proof", async () => {
      const { ledger, receipts, tree, id } = await anchored();
      expect(await ledger.verifyReceipt(id, receipts[0]!, tree.proof(1))).to.equal(false);
      expect(await ledger.verifyReceipt(id, receipts[0]!, [])).to.equal(false);
    });

    it("returns false against another batch's root", async () => {
      const f = await anchored();
      const b = await gpuBatch(f, 1n, [makeReceipt(f.gpuNode), makeReceipt(f.gpuNode)]);
      await f.ledger.anchorBatch(b.batch, b.signature, b.usage.modelIds, b.usage.counts);
      const second = batchIdOf(f.enclave.address, 1n);
      expect(await f.ledger.verifyReceipt(second, f.receipts[0]!, f.tree.proof(0))).to.equal(false);
    });

    it("reverts with LedgerUnknownBatch for a batch never anchored", async () => {
      const { ledger, receipts, tree, enclave } = await anchored();
      for (const id of [0n, 1n, batchIdOf(enclave.address, 1n), batchIdOf(ZeroAddress, 0n)]) {
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
    // prevrandao is the block's mixHash since the merge (ethers' Block leaves prevRandao empty here).
    const { mixHash: prevrandao } = (await ethers.provider.send("eth_getBlockByNumber", [
      `0x${mined!.blockNumber.toString(16)}`,
      false,
    ])) as { mixHash: string };
    const request = {
      requester: f.requester.address,
      fee,
      modelId: MODEL_ID,
      inputHash: keccak256(INPUT),
      deadline: BigInt(block!.timestamp) + TTL,
      callbackGasLimit: BigInt(callbackGasLimit),
      requestedAt: BigInt(block!.timestamp),
      // keccak256(abi.encode(block.prevrandao, requestId)): drawn from the request's block.
      seed: keccak256(abi.encode(["uint256", "bytes32"], [prevrandao, requestId])),
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
      buildVerdict(receipt, receipt.outputHash, VERDICT_AT),
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
          request.requestedAt,
          request.seed,
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
          anyValue,
          anyValue,
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
    it("pays the node's payee (never the node id), settles the request and emits the output", async () => {
      const {
        ledger,
        token,
        request,
        receipt,
        nodeSig,
        enclaveSig,
        requestId,
        gpuNode,
        gpuPayee,
        enclave,
        other,
      } = await requested();
      const tx = ledger
        .connect(other)
        .fulfil(request, receipt, nodeSig, VERDICT_AT, enclaveSig, OUTPUT);
      await expect(tx)
        .to.emit(ledger, "InferenceFulfilled")
        .withArgs(requestId, gpuNode, enclave.address, receipt.outputHash, true, OUTPUT);
      await expect(tx).to.changeTokenBalances(
        ethers,
        token,
        [ledger, gpuPayee, gpuNode],
        [-FEE, FEE, 0n],
      );
      expect(await ledger.requestHashOf(requestId)).to.equal(ZeroHash);
    });

    it("pays whichever payee NodeStaking names at fulfilment", async () => {
      const { ledger, token, staking, request, receipt, nodeSig, enclaveSig, gpuNode, other } =
        await requested();
      await staking.setPayee(gpuNode, other.address);
      await expect(
        ledger.fulfil(request, receipt, nodeSig, VERDICT_AT, enclaveSig, OUTPUT),
      ).to.changeTokenBalances(ethers, token, [ledger, other], [-FEE, FEE]);
    });

    it("reverts with LedgerInactiveEnclave when the verdict's timestamp is not the one signed", async () => {
      const { ledger, request, receipt, nodeSig, enclaveSig, domain } = await requested();
      const recovered = recoverVerdictSigner(
        domain,
        buildVerdict(receipt, receipt.outputHash, VERDICT_AT + 1n),
        enclaveSig,
      );
      await expect(ledger.fulfil(request, receipt, nodeSig, VERDICT_AT + 1n, enclaveSig, OUTPUT))
        .to.be.revertedWithCustomError(ledger, "LedgerInactiveEnclave")
        .withArgs(recovered);
    });

    it("reverts with LedgerRequestNotPending when fulfilled twice", async () => {
      const { ledger, request, receipt, nodeSig, enclaveSig, requestId } = await requested();
      await ledger.fulfil(request, receipt, nodeSig, VERDICT_AT, enclaveSig, OUTPUT);
      await expect(ledger.fulfil(request, receipt, nodeSig, VERDICT_AT, enclaveSig, OUTPUT))
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
        buildVerdict(receipt, receipt.outputHash, VERDICT_AT),
      );
      await expect(ledger.fulfil(request, receipt, nodeSig, VERDICT_AT, enclaveSig, OUTPUT))
        .to.be.revertedWithCustomError(ledger, "LedgerRequestNotPending")
        .withArgs(receipt.requestId);
    });

    it("reverts with LedgerRequestMismatch when the request is altered", async () => {
      const { ledger, request, receipt, nodeSig, enclaveSig, requestId } = await requested();
      const altered = { ...request, fee: request.fee * 2n };
      await expect(ledger.fulfil(altered, receipt, nodeSig, VERDICT_AT, enclaveSig, OUTPUT))
        .to.be.revertedWithCustomError(ledger, "LedgerRequestMismatch")
        .withArgs(requestId, await ledger.hashRequest(request), await ledger.hashRequest(altered));
    });

    it("reverts with LedgerRequestExpired after the deadline", async () => {
      const { ledger, request, receipt, nodeSig, enclaveSig, requestId } = await requested();
      await networkHelpers.time.increaseTo(request.deadline + 1n);
      await expect(ledger.fulfil(request, receipt, nodeSig, VERDICT_AT, enclaveSig, OUTPUT))
        .to.be.revertedWithCustomError(ledger, "LedgerRequestExpired")
        .withArgs(requestId, request.deadline);
    });

    describe("at the deadline boundary (deadline - 1, deadline, deadline + 1)", () => {
      for (const offset of [-1n, 0n]) {
        it(`fulfils at deadline ${offset === 0n ? "exactly" : "- 1"} and pays the payee`, async () => {
          const { ledger, token, request, receipt, nodeSig, enclaveSig, requestId, gpuPayee } =
            await requested();
          await networkHelpers.time.setNextBlockTimestamp(request.deadline + offset);
          const tx = ledger.fulfil(request, receipt, nodeSig, VERDICT_AT, enclaveSig, OUTPUT);
          await expect(tx).to.emit(ledger, "InferenceFulfilled");
          await expect(tx).to.changeTokenBalances(ethers, token, [ledger, gpuPayee], [-FEE, FEE]);
          expect(await ledger.requestHashOf(requestId)).to.equal(ZeroHash);
        });
      }

      it("reverts with LedgerRequestExpired at deadline + 1 exactly", async () => {
        const { ledger, request, receipt, nodeSig, enclaveSig, requestId } = await requested();
        await networkHelpers.time.setNextBlockTimestamp(request.deadline + 1n);
        await expect(ledger.fulfil(request, receipt, nodeSig, VERDICT_AT, enclaveSig, OUTPUT))
          .to.be.revertedWithCustomError(ledger, "LedgerRequestExpired")
          .withArgs(requestId, request.deadline);
      });
    });

    for (const field of ["modelId", "inputHash"] as const) {
      it(`reverts with LedgerReceiptNotForRequest for a receipt with another ${field}`, async () => {
        const { ledger, request, receipt, gpuSigner, enclave, domain } = await requested();
        const other = { ...receipt, [field]: random32() };
        const nodeSig = await signReceipt(gpuSigner, domain, other);
        const enclaveSig = await signVerdict(
          enclave,
          domain,
          buildVerdict(other, other.outputHash, VERDICT_AT),
        );
        await expect(ledger.fulfil(request, other, nodeSig, VERDICT_AT, enclaveSig, OUTPUT))
          .to.be.revertedWithCustomError(ledger, "LedgerReceiptNotForRequest")
          .withArgs(receipt.requestId, other.modelId, other.inputHash);
      });
    }

    it("reverts with LedgerOutputMismatch when the output is not the receipt's", async () => {
      const { ledger, request, receipt, nodeSig, enclaveSig } = await requested();
      await expect(ledger.fulfil(request, receipt, nodeSig, VERDICT_AT, enclaveSig, "0x01"))
        .to.be.revertedWithCustomError(ledger, "LedgerOutputMismatch")
        .withArgs(receipt.outputHash, keccak256("0x01"));
    });

    for (const role of [ROLE.NONE, ROLE.VERIFIER]) {
      it(`reverts with LedgerNotInferenceNode for a node with role ${role}`, async () => {
        const { ledger, staking, request, receipt, nodeSig, enclaveSig, gpuNode, gpuSigner } =
          await requested();
        await staking.setNode(gpuNode, role, gpuSigner.address, true, STAKE);
        await expect(ledger.fulfil(request, receipt, nodeSig, VERDICT_AT, enclaveSig, OUTPUT))
          .to.be.revertedWithCustomError(ledger, "LedgerNotInferenceNode")
          .withArgs(gpuNode, role);
      });
    }

    it("reverts with LedgerInactiveNode for a jailed or unbonded node", async () => {
      const { ledger, staking, request, receipt, nodeSig, enclaveSig, gpuNode } = await requested();
      await staking.setActive(gpuNode, false);
      await expect(ledger.fulfil(request, receipt, nodeSig, VERDICT_AT, enclaveSig, OUTPUT))
        .to.be.revertedWithCustomError(ledger, "LedgerInactiveNode")
        .withArgs(gpuNode);
    });

    it("reverts with LedgerInvalidReceiptSigner after the node rotated its signer", async () => {
      const { ledger, staking, request, receipt, nodeSig, enclaveSig, gpuNode, gpuSigner } =
        await requested();
      const rotated = Wallet.createRandom().address;
      await staking.setSigner(gpuNode, rotated);
      await expect(ledger.fulfil(request, receipt, nodeSig, VERDICT_AT, enclaveSig, OUTPUT))
        .to.be.revertedWithCustomError(ledger, "LedgerInvalidReceiptSigner")
        .withArgs(gpuNode, rotated, gpuSigner.address);
    });

    it("reverts with LedgerInvalidReceiptSigner for a receipt signed for another chain", async () => {
      const { ledger, request, receipt, enclaveSig, gpuNode, gpuSigner, domain } =
        await requested();
      const sig = await signReceipt(gpuSigner, { ...domain, chainId: 1n }, receipt);
      await expect(ledger.fulfil(request, receipt, sig, VERDICT_AT, enclaveSig, OUTPUT))
        .to.be.revertedWithCustomError(ledger, "LedgerInvalidReceiptSigner")
        .withArgs(gpuNode, gpuSigner.address, recoverReceiptSigner(domain, receipt, sig));
    });

    it("reverts with LedgerInactiveEnclave for a verdict from a key that is not an active enclave", async () => {
      const { ledger, request, receipt, nodeSig, domain } = await requested();
      const stranger = Wallet.createRandom();
      const sig = await signVerdict(
        stranger,
        domain,
        buildVerdict(receipt, receipt.outputHash, VERDICT_AT),
      );
      await expect(ledger.fulfil(request, receipt, nodeSig, VERDICT_AT, sig, OUTPUT))
        .to.be.revertedWithCustomError(ledger, "LedgerInactiveEnclave")
        .withArgs(stranger.address);
    });

    it("reverts with LedgerInactiveEnclave when the enclave was revoked or expired", async () => {
      const { ledger, tee, request, receipt, nodeSig, enclaveSig, enclave, verifierNode } =
        await requested();
      await tee.setEnclave(enclave.address, verifierNode, false);
      await expect(ledger.fulfil(request, receipt, nodeSig, VERDICT_AT, enclaveSig, OUTPUT))
        .to.be.revertedWithCustomError(ledger, "LedgerInactiveEnclave")
        .withArgs(enclave.address);
    });

    it("rejects a disagreeing verdict (it recovers to no active enclave)", async () => {
      const { ledger, request, receipt, nodeSig, enclave, domain } = await requested();
      const verdict = buildVerdict(receipt, random32(), VERDICT_AT);
      const sig = await signVerdict(enclave, domain, verdict);
      const asAgreeing = { ...verdict, agree: true, outputHash: receipt.outputHash };
      await expect(ledger.fulfil(request, receipt, nodeSig, VERDICT_AT, sig, OUTPUT))
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
          requestedAt: event.args.getValue("requestedAt") as bigint,
          seed: event.args.getValue("seed") as string,
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
          buildVerdict(receipt, receipt.outputHash, VERDICT_AT),
        );
        return { ...f, consumer, request, receipt, nodeSig, enclaveSig };
      }

      it("delivers the output to the callback", async () => {
        const { ledger, consumer, request, receipt, nodeSig, enclaveSig, gpuNode, enclave } =
          await consumerRequest(0);
        const tx = ledger.fulfil(request, receipt, nodeSig, VERDICT_AT, enclaveSig, OUTPUT);
        await expect(tx)
          .to.emit(consumer, "ResultReceived")
          .withArgs(receipt.requestId, MODEL_ID, receipt.outputHash, OUTPUT);
        await expect(tx)
          .to.emit(ledger, "InferenceFulfilled")
          .withArgs(receipt.requestId, gpuNode, enclave.address, receipt.outputHash, true, OUTPUT);
        expect(await consumer.lastOutput()).to.equal(OUTPUT);
      });

      it("still fulfils and pays when the callback reverts", async () => {
        const { ledger, token, request, receipt, nodeSig, enclaveSig, gpuNode, gpuPayee, enclave } =
          await consumerRequest(1);
        const tx = ledger.fulfil(request, receipt, nodeSig, VERDICT_AT, enclaveSig, OUTPUT);
        await expect(tx)
          .to.emit(ledger, "InferenceFulfilled")
          .withArgs(receipt.requestId, gpuNode, enclave.address, receipt.outputHash, false, OUTPUT);
        await expect(tx).to.changeTokenBalances(ethers, token, [gpuPayee, gpuNode], [FEE, 0n]);
        expect(await ledger.requestHashOf(receipt.requestId)).to.equal(ZeroHash);
      });

      it("still fulfils when the callback burns all its gas, spending no more than its limit", async () => {
        const { ledger, request, receipt, nodeSig, enclaveSig, gpuNode, enclave } =
          await consumerRequest(2);
        const tx = await ledger.fulfil(request, receipt, nodeSig, VERDICT_AT, enclaveSig, OUTPUT);
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
        await expect(ledger.fulfil(request, receipt, nodeSig, VERDICT_AT, enclaveSig, OUTPUT))
          .to.emit(ledger, "InferenceFulfilled")
          .withArgs(receipt.requestId, gpuNode, enclave.address, receipt.outputHash, false, OUTPUT);
        expect(await consumer.lastRequestId()).to.equal(ZeroHash);
        await consumer.setBehaviour(3);
        await expect(
          consumer.onInferenceResult(receipt.requestId, MODEL_ID, receipt.outputHash, OUTPUT),
        ).to.emit(ledger, "InferenceRequested");
      });

      describe("when the callback reads the ledger and tries to re-enter (checks-effects-interactions)", () => {
        for (const reentry of ["fulfil", "refund"] as const) {
          it(`sees the request settled and the fee paid, and its ${reentry} re-entry fails`, async () => {
            const f = await consumerRequest(4, 500_000);
            const { ledger, token, consumer, request, receipt, nodeSig, enclaveSig, gpuPayee } = f;
            const args =
              reentry === "fulfil"
                ? ledger.interface.encodeFunctionData("fulfil", [
                    request,
                    receipt,
                    nodeSig,
                    VERDICT_AT,
                    enclaveSig,
                    OUTPUT,
                  ])
                : ledger.interface.encodeFunctionData("refund", [receipt.requestId, request]);
            await consumer.setObservation(await token.getAddress(), gpuPayee, args);
            const payeeBefore = await token.balanceOf(gpuPayee);
            const ledgerBefore = await token.balanceOf(await ledger.getAddress());
            expect(await ledger.requestHashOf(receipt.requestId)).to.not.equal(ZeroHash);

            const tx = ledger.fulfil(request, receipt, nodeSig, VERDICT_AT, enclaveSig, OUTPUT);
            await expect(tx)
              .to.emit(ledger, "InferenceFulfilled")
              .withArgs(receipt.requestId, anyValue, anyValue, receipt.outputHash, true, OUTPUT);
            await expect(tx).to.changeTokenBalances(ethers, token, [ledger, gpuPayee], [-FEE, FEE]);

            // During the callback: the fulfilment was already recorded and the fee already paid.
            expect(await consumer.seenRequestHash(), "settled before the callback").to.equal(
              ZeroHash,
            );
            expect(await consumer.seenPayeeBalance(), "paid before the callback").to.equal(
              payeeBefore + FEE,
            );
            expect(await consumer.seenLedgerBalance()).to.equal(ledgerBefore - FEE);
            // The re-entry failed on the guard, and nothing was paid twice.
            expect(await consumer.reentrySucceeded()).to.equal(false);
            expect(await consumer.reentryResult()).to.equal(
              ledger.interface.getError("ReentrancyGuardReentrantCall")!.selector,
            );
            expect(await consumer.lastRequestId()).to.equal(receipt.requestId);
          });
        }
      });

      it("reverts with LedgerInsufficientCallbackGas when the fulfiller withholds the callback's gas", async () => {
        const { ledger, request, receipt, nodeSig, enclaveSig } = await consumerRequest(2, 500_000);
        const required = 500_000n + 500_000n / 63n + 5_000n;
        await expect(
          ledger.fulfil(request, receipt, nodeSig, VERDICT_AT, enclaveSig, OUTPUT, {
            gasLimit: 400_000,
          }),
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

    describe("at the deadline boundary (deadline - 1, deadline, deadline + 1)", () => {
      for (const offset of [-1n, 0n]) {
        it(`reverts with LedgerRequestNotExpired at deadline ${offset === 0n ? "exactly" : "- 1"}`, async () => {
          const { ledger, request, requestId } = await requested();
          await networkHelpers.time.setNextBlockTimestamp(request.deadline + offset);
          await expect(ledger.refund(requestId, request))
            .to.be.revertedWithCustomError(ledger, "LedgerRequestNotExpired")
            .withArgs(requestId, request.deadline);
        });
      }

      it("refunds at deadline + 1 exactly", async () => {
        const { ledger, token, request, requestId, requester } = await requested();
        await networkHelpers.time.setNextBlockTimestamp(request.deadline + 1n);
        const tx = ledger.refund(requestId, request);
        await expect(tx)
          .to.emit(ledger, "RequestRefunded")
          .withArgs(requestId, requester.address, FEE);
        await expect(tx).to.changeTokenBalances(ethers, token, [ledger, requester], [-FEE, FEE]);
      });
    });

    it("reverts with LedgerRequestNotPending once refunded, and fulfil does too", async () => {
      const { ledger, request, requestId, receipt, nodeSig, enclaveSig } = await requested();
      await networkHelpers.time.increaseTo(request.deadline + 1n);
      await ledger.refund(requestId, request);
      await expect(ledger.refund(requestId, request))
        .to.be.revertedWithCustomError(ledger, "LedgerRequestNotPending")
        .withArgs(requestId);
      await expect(ledger.fulfil(request, receipt, nodeSig, VERDICT_AT, enclaveSig, OUTPUT))
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
  // Governance
  // ---------------------------------------------------------------------------------------------------

  describe("setSlashParams", () => {
    it("changes how an offence is punished and how long its cooldown lasts", async () => {
      const { ledger, admin } = await networkHelpers.loadFixture(deploy);
      await expect(
        ledger.connect(admin).setSlashParams(OFFENCE.DOUBLE_RECEIPT, 10_000, false, 7n * DAY),
      )
        .to.emit(ledger, "SlashParamsSet")
        .withArgs(OFFENCE.DOUBLE_RECEIPT, 10_000n, false, 7n * DAY);
      const p = await ledger.slashParamsOf(OFFENCE.DOUBLE_RECEIPT);
      expect([p.bps, p.jail, p.cooldown]).to.deep.equal([10_000n, false, 7n * DAY]);
    });

    it("is used by the next slash", async () => {
      const { ledger, staking, gpuNode, gpuSigner, domain } =
        await networkHelpers.loadFixture(deploy);
      await ledger.setSlashParams(OFFENCE.DOUBLE_RECEIPT, 2_500, false, DAY);
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
      expect(await staking.stakeOf(gpuNode)).to.equal(STAKE - (STAKE * 2_500n) / 10_000n);
    });

    for (const cooldown of [0n, 90n * DAY]) {
      it(`accepts a cooldown of ${cooldown} s`, async () => {
        const { ledger } = await networkHelpers.loadFixture(deploy);
        await expect(ledger.setSlashParams(OFFENCE.BATCH_EQUIVOCATION, 1, true, cooldown))
          .to.emit(ledger, "SlashParamsSet")
          .withArgs(OFFENCE.BATCH_EQUIVOCATION, 1n, true, cooldown);
      });
    }

    it("reverts with LedgerInvalidOffenceCooldown above MAX_OFFENCE_COOLDOWN", async () => {
      const { ledger } = await networkHelpers.loadFixture(deploy);
      await expect(ledger.setSlashParams(OFFENCE.BATCH_EQUIVOCATION, 1, true, 90n * DAY + 1n))
        .to.be.revertedWithCustomError(ledger, "LedgerInvalidOffenceCooldown")
        .withArgs(90n * DAY + 1n, 90n * DAY);
    });

    for (const bps of [0, 10_001]) {
      it(`reverts with LedgerInvalidSlashBps for ${bps}`, async () => {
        const { ledger } = await networkHelpers.loadFixture(deploy);
        await expect(ledger.setSlashParams(OFFENCE.BATCH_EQUIVOCATION, bps, true, DAY))
          .to.be.revertedWithCustomError(ledger, "LedgerInvalidSlashBps")
          .withArgs(bps);
      });
    }

    it("reverts with AccessControlUnauthorizedAccount for anyone but the governor", async () => {
      const { ledger, other } = await networkHelpers.loadFixture(deploy);
      await expect(ledger.connect(other).setSlashParams(OFFENCE.BATCH_EQUIVOCATION, 1, true, DAY))
        .to.be.revertedWithCustomError(ledger, "AccessControlUnauthorizedAccount")
        .withArgs(other.address, GOVERNOR_ROLE);
    });
  });

  describe("setSampleRate", () => {
    it("sets the rate batches must be sampled at", async () => {
      const { ledger } = await networkHelpers.loadFixture(deploy);
      for (const rate of [1n, 10_000n, BigInt(FULL_SAMPLE_RATE_PPM)]) {
        await expect(ledger.setSampleRate(rate)).to.emit(ledger, "SampleRateSet").withArgs(rate);
        expect(await ledger.sampleRate()).to.equal(rate);
      }
    });

    it("lets a batch sampled at the new rate anchor from the change on", async () => {
      const f = await networkHelpers.loadFixture(deploy);
      await f.ledger.setSampleRate(10_000);
      const b = await gpuBatch(f, 0n, [makeReceipt(f.gpuNode)], {
        asOf: BigInt(await time.latest()),
        sampleRatePpm: 10_000,
      });
      await expect(
        f.ledger.anchorBatch(b.batch, b.signature, b.usage.modelIds, b.usage.counts),
      ).to.emit(f.ledger, "BatchAnchored");
    });

    for (const rate of [0n, BigInt(FULL_SAMPLE_RATE_PPM) + 1n]) {
      it(`reverts with LedgerInvalidSampleRate for ${rate}`, async () => {
        const { ledger } = await networkHelpers.loadFixture(deploy);
        await expect(ledger.setSampleRate(rate))
          .to.be.revertedWithCustomError(ledger, "LedgerInvalidSampleRate")
          .withArgs(rate);
      });
    }

    it("reverts with AccessControlUnauthorizedAccount for anyone but the governor", async () => {
      const { ledger, other } = await networkHelpers.loadFixture(deploy);
      await expect(ledger.connect(other).setSampleRate(1))
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
