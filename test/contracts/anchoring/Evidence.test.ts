/**
 * InferenceLedger's evidence entry points against the NodeStaking and TeeRegistry test doubles:
 * double receipts, contradicted receipts, batch equivocation, and the repeat rule every slash goes
 * through (a slash covers the earlier offences of its type, then a cooldown).
 */
import { expect } from "chai";
import { AbiCoder, Wallet, keccak256 } from "ethers";
import type { ContractTransactionResponse } from "ethers";
import { network } from "hardhat";

import { receiptStructHash } from "../../../offchain/chain/eip712.js";
import type { Receipt } from "../../../offchain/chain/eip712.js";
import {
  batchStructHash,
  buildVerdict,
  recoverBatchSigner,
  recoverReceiptSigner,
  recoverVerdictSigner,
  signBatch,
  signReceipt,
  signVerdict,
} from "../../../offchain/chain/receipts.js";
import type { TypedSigner } from "../../../offchain/chain/receipts.js";
import {
  MAX_CLOCK_SKEW,
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
type Fixture = Awaited<ReturnType<typeof deployLedgerSystem>>;

const DAY = 86_400n;
/** The default slash parameters (bps of the stake; cooldown one day for every offence). */
const BPS = { DOUBLE: 1_000n, CONTRADICTED: 1_000n, EQUIVOCATION: 2_000n } as const;
/** When the enclave signed the fixture's disagreeing verdict. */
const VERDICT_AT = SIGNED_AT + 60n;

/** TypeScript reference of MockNodeStaking.slash: floor(stake × bps / 10,000). */
const slashOf = (stake: bigint, bps: bigint) => (stake * bps) / 10_000n;

const doubleKey = (node: string, requestId: string) =>
  keccak256(abi.encode(["uint8", "address", "bytes32"], [OFFENCE.DOUBLE_RECEIPT, node, requestId]));
const contradictedKey = (receipt: Receipt) =>
  keccak256(
    abi.encode(["uint8", "bytes32"], [OFFENCE.CONTRADICTED_RECEIPT, receiptStructHash(receipt)]),
  );
const equivocationKey = (enclave: string, sequence: bigint) =>
  keccak256(
    abi.encode(["uint8", "address", "uint64"], [OFFENCE.BATCH_EQUIVOCATION, enclave, sequence]),
  );

async function minedAt(tx: Promise<ContractTransactionResponse>): Promise<bigint> {
  const receipt = await (await tx).wait();
  return BigInt((await ethers.provider.getBlock(receipt!.blockNumber))!.timestamp);
}

/**
 * A node's first slash: the ledger's OffenceSlashed with floor(STAKE × bps / 10,000), NodeStaking's
 * call with the governance parameters (jailed, the offence key as evidence), and the stake left.
 */
async function expectFirstSlash(
  f: Pick<Fixture, "ledger" | "staking">,
  tx: Promise<ContractTransactionResponse>,
  s: { offence: number; node: string; key: string; reporter: { address: string }; bps: bigint },
) {
  const amount = slashOf(STAKE, s.bps);
  await expect(tx)
    .to.emit(f.ledger, "OffenceSlashed")
    .withArgs(s.offence, s.node, s.key, s.reporter.address, amount);
  await expect(tx)
    .to.emit(f.staking, "Slashed")
    .withArgs(s.node, s.bps, s.reporter.address, true, s.key);
  expect(await f.staking.stakeOf(s.node)).to.equal(STAKE - amount);
}

/** Two conflicting receipts of the GPU node (one question, two outputs) dated `at` and `atB`. */
async function doubleReceipt(
  f: Fixture,
  at = SIGNED_AT,
  atB = at,
  signerA: TypedSigner = f.gpuSigner,
  signerB: TypedSigner = signerA,
) {
  const a = makeReceipt(f.gpuNode, { timestamp: at });
  const b = { ...a, outputHash: random32(), timestamp: atB };
  const sigA = await signReceipt(signerA, f.domain, a);
  const sigB = await signReceipt(signerB, f.domain, b);
  return { a, b, sigA, sigB, key: doubleKey(f.gpuNode, a.requestId) };
}

/** A receipt of the GPU node dated `receiptAt`, contradicted by the enclave's verdict signed at `verdictAt`. */
async function contradiction(
  f: Fixture,
  verdictAt = VERDICT_AT,
  receiptAt = SIGNED_AT,
  nodeSigner: TypedSigner = f.gpuSigner,
) {
  const receipt = makeReceipt(f.gpuNode, { timestamp: receiptAt });
  const nodeSig = await signReceipt(nodeSigner, f.domain, receipt);
  const verdict = buildVerdict(receipt, random32(), verdictAt);
  const enclaveSig = await signVerdict(f.enclave, f.domain, verdict);
  const report = () =>
    f.ledger.reportContradictedReceipt(
      receipt,
      nodeSig,
      verdict.outputHash,
      verdict.timestamp,
      enclaveSig,
    );
  return { receipt, nodeSig, verdict, enclaveSig, report, key: contradictedKey(receipt) };
}

/** Two different batches of the enclave with one sequence number, signed at `atA` and `atB`. */
async function equivocation(f: Fixture, sequence = 4n, atA = SIGNED_AT, atB = atA) {
  const signing = { node: f.gpuNode, signer: f.gpuSigner.address };
  const x = await signedBatch(f.enclave, f.domain, sequence, [makeReceipt(f.gpuNode)], {
    ...signing,
    asOf: atA,
  });
  const y = await signedBatch(f.enclave, f.domain, sequence, [makeReceipt(f.gpuNode)], {
    ...signing,
    asOf: atB,
  });
  const report = () => f.ledger.reportBatchEquivocation(x.batch, x.signature, y.batch, y.signature);
  return { x, y, report, key: equivocationKey(f.enclave.address, sequence) };
}

/** The GPU node rotates away from its first signer key at `rotatedAt`. */
async function rotated(f: Fixture) {
  const newSigner = Wallet.createRandom();
  const rotatedAt = await minedAt(f.staking.setSigner(f.gpuNode, newSigner.address));
  return { newSigner, rotatedAt };
}

describe("InferenceLedger evidence", () => {
  describe("reportDoubleReceipt", () => {
    async function twoOutputs() {
      const f = await networkHelpers.loadFixture(deploy);
      return { ...f, ...(await doubleReceipt(f)) };
    }

    it("slashes the node with the governance parameters and pays the reporter's bounty through staking", async () => {
      const { ledger, staking, reporter, a, b, sigA, sigB, gpuNode, key } = await twoOutputs();
      const tx = ledger.connect(reporter).reportDoubleReceipt(a, sigA, b, sigB);
      await expectFirstSlash({ ledger, staking }, tx, {
        offence: OFFENCE.DOUBLE_RECEIPT,
        node: gpuNode,
        key,
        reporter,
        bps: BPS.DOUBLE,
      });
      expect(await ledger.isOffenceSlashed(key)).to.equal(true);
    });

    it("returns the amount slashed", async () => {
      const { ledger, a, b, sigA, sigB } = await twoOutputs();
      expect(await ledger.reportDoubleReceipt.staticCall(a, sigA, b, sigB)).to.equal(
        slashOf(STAKE, BPS.DOUBLE),
      );
    });

    it("slashes two receipts of one question with different dates", async () => {
      const f = await networkHelpers.loadFixture(deploy);
      const { a, b, sigA, sigB } = await doubleReceipt(f, SIGNED_AT, SIGNED_AT + 3_600n);
      await expect(f.ledger.reportDoubleReceipt(a, sigA, b, sigB)).to.emit(
        f.ledger,
        "OffenceSlashed",
      );
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

    describe("when the two receipts do not answer one question with two outputs", () => {
      const notConflicting: Array<[string, (a: Receipt, b: Receipt) => Receipt]> = [
        ["the same output", (a, b) => ({ ...b, outputHash: a.outputHash })],
        ["another request", (_a, b) => ({ ...b, requestId: random32() })],
        ["another node", (_a, b) => ({ ...b, node: Wallet.createRandom().address })],
        ["another model", (_a, b) => ({ ...b, modelId: OTHER_MODEL_ID })],
        ["another input", (_a, b) => ({ ...b, inputHash: random32() })],
        ["another execution config", (_a, b) => ({ ...b, execConfigHash: random32() })],
      ];
      for (const [name, alter] of notConflicting) {
        it(`reverts with LedgerReceiptsNotConflicting for ${name}`, async () => {
          const { ledger, staking, a, b, sigA, gpuSigner, domain, gpuNode } = await twoOutputs();
          const c = alter(a, b);
          await expect(
            ledger.reportDoubleReceipt(a, sigA, c, await signReceipt(gpuSigner, domain, c)),
          )
            .to.be.revertedWithCustomError(ledger, "LedgerReceiptsNotConflicting")
            .withArgs(receiptStructHash(a), receiptStructHash(c));
          expect(await staking.stakeOf(gpuNode)).to.equal(STAKE);
        });
      }
    });

    it("reverts with LedgerInvalidReceiptSigner when one receipt is not the node's", async () => {
      const { ledger, a, b, sigA, gpuNode, gpuSigner, domain } = await twoOutputs();
      const forger = Wallet.createRandom();
      await expect(ledger.reportDoubleReceipt(a, sigA, b, await signReceipt(forger, domain, b)))
        .to.be.revertedWithCustomError(ledger, "LedgerInvalidReceiptSigner")
        .withArgs(gpuNode, gpuSigner.address, forger.address);
      await expect(ledger.reportDoubleReceipt(a, await signReceipt(forger, domain, a), b, sigA))
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

    for (const role of [ROLE.NONE, ROLE.VERIFIER]) {
      it(`reverts with LedgerNotInferenceNode for a node with role ${role}`, async () => {
        const { ledger, staking, gpuSigner, domain } = await twoOutputs();
        const node = Wallet.createRandom().address;
        if (role !== ROLE.NONE) await staking.setNode(node, role, gpuSigner.address, true, STAKE);
        const a = makeReceipt(node);
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
          .withArgs(node, role);
      });
    }

    it("bubbles up NodeStaking's refusal when the ledger is not a slasher", async () => {
      const { ledger, staking, a, b, sigA, sigB } = await twoOutputs();
      await staking.setSlasher(await ledger.getAddress(), false);
      await expect(ledger.reportDoubleReceipt(a, sigA, b, sigB))
        .to.be.revertedWithCustomError(staking, "MockNotSlasher")
        .withArgs(await ledger.getAddress());
    });

    describe("when the node rotated its signer key", () => {
      it("slashes on two receipts of the former key dated one second before the rotation", async () => {
        const f = await networkHelpers.loadFixture(deploy);
        const { rotatedAt } = await rotated(f);
        const { a, b, sigA, sigB } = await doubleReceipt(f, rotatedAt - 1n);
        await expect(f.ledger.reportDoubleReceipt(a, sigA, b, sigB))
          .to.emit(f.ledger, "OffenceSlashed")
          .withArgs(
            OFFENCE.DOUBLE_RECEIPT,
            f.gpuNode,
            doubleKey(f.gpuNode, a.requestId),
            f.admin.address,
            slashOf(STAKE, BPS.DOUBLE),
          );
      });

      for (const offset of [0n, 1n]) {
        it(`reverts with LedgerInvalidReceiptSigner for the former key's receipt dated ${offset} s after the rotation`, async () => {
          const f = await networkHelpers.loadFixture(deploy);
          const { newSigner, rotatedAt } = await rotated(f);
          const early = await doubleReceipt(f, rotatedAt - 1n, rotatedAt + offset);
          await expect(f.ledger.reportDoubleReceipt(early.a, early.sigA, early.b, early.sigB))
            .to.be.revertedWithCustomError(f.ledger, "LedgerInvalidReceiptSigner")
            .withArgs(f.gpuNode, newSigner.address, f.gpuSigner.address);
          const late = await doubleReceipt(f, rotatedAt + offset, rotatedAt - 1n);
          await expect(f.ledger.reportDoubleReceipt(late.a, late.sigA, late.b, late.sigB))
            .to.be.revertedWithCustomError(f.ledger, "LedgerInvalidReceiptSigner")
            .withArgs(f.gpuNode, newSigner.address, f.gpuSigner.address);
          expect(await f.staking.stakeOf(f.gpuNode)).to.equal(STAKE);
        });
      }

      it("checks each signature at its own receipt's date (former key before, new key after)", async () => {
        const f = await networkHelpers.loadFixture(deploy);
        const { newSigner, rotatedAt } = await rotated(f);
        const { a, b, sigA, sigB } = await doubleReceipt(
          f,
          rotatedAt - 1n,
          rotatedAt + 1n,
          f.gpuSigner,
          newSigner,
        );
        await expect(f.ledger.reportDoubleReceipt(a, sigA, b, sigB)).to.emit(
          f.ledger,
          "OffenceSlashed",
        );
      });
    });

    describe("when a receipt is dated ahead of the chain", () => {
      for (const [ahead, accepted] of [
        [MAX_CLOCK_SKEW - 1n, true],
        [MAX_CLOCK_SKEW, true],
        [MAX_CLOCK_SKEW + 1n, false],
      ] as const) {
        it(`${accepted ? "slashes" : "reverts with LedgerSignedInFuture"} for a receipt ${ahead} s ahead`, async () => {
          const f = await networkHelpers.loadFixture(deploy);
          const now = BigInt(await time.latest()) + 10n;
          const { a, b, sigA, sigB } = await doubleReceipt(f, SIGNED_AT, now + ahead);
          await time.setNextBlockTimestamp(now);
          const tx = f.ledger.reportDoubleReceipt(a, sigA, b, sigB);
          if (accepted) await expect(tx).to.emit(f.ledger, "OffenceSlashed");
          else
            await expect(tx)
              .to.be.revertedWithCustomError(f.ledger, "LedgerSignedInFuture")
              .withArgs(now + ahead, now);
        });
      }
    });
  });

  describe("reportContradictedReceipt", () => {
    async function contradicted() {
      const f = await networkHelpers.loadFixture(deploy);
      return { ...f, ...(await contradiction(f)) };
    }

    it("slashes the GPU node on an accountable enclave's disagreeing verdict", async () => {
      const { ledger, staking, reporter, receipt, nodeSig, verdict, enclaveSig, gpuNode, key } =
        await contradicted();
      expect(verdict.agree).to.equal(false);
      const tx = ledger
        .connect(reporter)
        .reportContradictedReceipt(receipt, nodeSig, verdict.outputHash, VERDICT_AT, enclaveSig);
      await expectFirstSlash({ ledger, staking }, tx, {
        offence: OFFENCE.CONTRADICTED_RECEIPT,
        node: gpuNode,
        key,
        reporter,
        bps: BPS.CONTRADICTED,
      });
    });

    it("slashes on the verdict of an enclave that is no longer active (deregistered, lapsed, node exited)", async () => {
      const { ledger, tee, report, enclave, verifierNode } = await contradicted();
      await tee.setEnclave(enclave.address, verifierNode, false);
      await expect(report()).to.emit(ledger, "OffenceSlashed");
    });

    it("reverts with LedgerOffenceAlreadySlashed when replayed", async () => {
      const { ledger, report, key } = await contradicted();
      await report();
      await expect(report())
        .to.be.revertedWithCustomError(ledger, "LedgerOffenceAlreadySlashed")
        .withArgs(key);
    });

    it("reverts with LedgerVerdictNotContradicting when the verdict names the receipt's own output", async () => {
      const { ledger, receipt, nodeSig, enclaveSig } = await contradicted();
      await expect(
        ledger.reportContradictedReceipt(
          receipt,
          nodeSig,
          receipt.outputHash,
          VERDICT_AT,
          enclaveSig,
        ),
      )
        .to.be.revertedWithCustomError(ledger, "LedgerVerdictNotContradicting")
        .withArgs(receiptStructHash(receipt), receipt.outputHash);
    });

    it("cannot turn an agreeing verdict into evidence (reverts with LedgerUnaccountableEnclave)", async () => {
      const { ledger, receipt, nodeSig, enclave, domain } = await contradicted();
      const agreeing = buildVerdict(receipt, receipt.outputHash, VERDICT_AT);
      const sig = await signVerdict(enclave, domain, agreeing);
      const claimed = random32();
      const recovered = recoverVerdictSigner(
        domain,
        { ...agreeing, agree: false, outputHash: claimed },
        sig,
      );
      await expect(ledger.reportContradictedReceipt(receipt, nodeSig, claimed, VERDICT_AT, sig))
        .to.be.revertedWithCustomError(ledger, "LedgerUnaccountableEnclave")
        .withArgs(recovered, VERDICT_AT);
    });

    it("reverts with LedgerUnaccountableEnclave for a verdict timestamp other than the signed one", async () => {
      const { ledger, receipt, nodeSig, verdict, enclaveSig, domain } = await contradicted();
      const claimed = { ...verdict, timestamp: VERDICT_AT + 1n };
      await expect(
        ledger.reportContradictedReceipt(
          receipt,
          nodeSig,
          verdict.outputHash,
          claimed.timestamp,
          enclaveSig,
        ),
      )
        .to.be.revertedWithCustomError(ledger, "LedgerUnaccountableEnclave")
        .withArgs(recoverVerdictSigner(domain, claimed, enclaveSig), claimed.timestamp);
    });

    it("reverts with LedgerUnaccountableEnclave for a verdict signed for another chain", async () => {
      const { ledger, receipt, nodeSig, verdict, enclave, domain } = await contradicted();
      const sig = await signVerdict(enclave, { ...domain, chainId: 5n }, verdict);
      await expect(
        ledger.reportContradictedReceipt(receipt, nodeSig, verdict.outputHash, VERDICT_AT, sig),
      )
        .to.be.revertedWithCustomError(ledger, "LedgerUnaccountableEnclave")
        .withArgs(recoverVerdictSigner(domain, verdict, sig), VERDICT_AT);
    });

    it("reverts with LedgerUnaccountableEnclave for a key no VERIFIER node registered", async () => {
      const { ledger, receipt, nodeSig, verdict, domain } = await contradicted();
      const loose = Wallet.createRandom();
      const sig = await signVerdict(loose, domain, verdict);
      await expect(
        ledger.reportContradictedReceipt(receipt, nodeSig, verdict.outputHash, VERDICT_AT, sig),
      )
        .to.be.revertedWithCustomError(ledger, "LedgerUnaccountableEnclave")
        .withArgs(loose.address, VERDICT_AT);
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
          VERDICT_AT,
          enclaveSig,
        ),
      )
        .to.be.revertedWithCustomError(ledger, "LedgerInvalidReceiptSigner")
        .withArgs(gpuNode, gpuSigner.address, forger.address);
    });

    it("reverts with LedgerNotInferenceNode when the receipt names a VERIFIER node", async () => {
      const { ledger, gpuSigner, enclave, domain, verifierNode } = await contradicted();
      const receipt = makeReceipt(verifierNode);
      const verdict = buildVerdict(receipt, random32(), VERDICT_AT);
      await expect(
        ledger.reportContradictedReceipt(
          receipt,
          await signReceipt(gpuSigner, domain, receipt),
          verdict.outputHash,
          VERDICT_AT,
          await signVerdict(enclave, domain, verdict),
        ),
      )
        .to.be.revertedWithCustomError(ledger, "LedgerNotInferenceNode")
        .withArgs(verifierNode, ROLE.VERIFIER);
    });

    describe("when the enclave key answers only for some signing times", () => {
      // The key was registered at FROM and retired at UNTIL (TeeRegistry.accountableNodeOf).
      const FROM = SIGNED_AT + 1_000n;
      const UNTIL = SIGNED_AT + 2_000n;
      for (const [verdictAt, accepted] of [
        [FROM - 1n, false],
        [FROM, true],
        [FROM + 1n, true],
        [UNTIL - 1n, true],
        [UNTIL, false],
        [UNTIL + 1n, false],
      ] as const) {
        it(`${accepted ? "slashes on" : "reverts with LedgerUnaccountableEnclave for"} a verdict signed at ${verdictAt - FROM} s from registration`, async () => {
          const f = await networkHelpers.loadFixture(deploy);
          await f.tee.setAccountable(f.enclave.address, FROM, UNTIL);
          const { report } = await contradiction(f, verdictAt);
          if (accepted) {
            await expect(report()).to.emit(f.ledger, "OffenceSlashed");
            expect(await f.staking.stakeOf(f.gpuNode)).to.equal(
              STAKE - slashOf(STAKE, BPS.CONTRADICTED),
            );
          } else {
            await expect(report())
              .to.be.revertedWithCustomError(f.ledger, "LedgerUnaccountableEnclave")
              .withArgs(f.enclave.address, verdictAt);
            expect(await f.staking.stakeOf(f.gpuNode)).to.equal(STAKE);
          }
        });
      }
    });

    describe("when the verdict or the receipt is dated ahead of the chain", () => {
      for (const [what, ahead, accepted] of [
        ["verdict", MAX_CLOCK_SKEW, true],
        ["verdict", MAX_CLOCK_SKEW + 1n, false],
        ["receipt", MAX_CLOCK_SKEW, true],
        ["receipt", MAX_CLOCK_SKEW + 1n, false],
      ] as const) {
        it(`${accepted ? "slashes" : "reverts with LedgerSignedInFuture"} for a ${what} ${ahead} s ahead`, async () => {
          const f = await networkHelpers.loadFixture(deploy);
          const now = BigInt(await time.latest()) + 10n;
          const { report } =
            what === "verdict"
              ? await contradiction(f, now + ahead)
              : await contradiction(f, VERDICT_AT, now + ahead);
          await time.setNextBlockTimestamp(now);
          if (accepted) await expect(report()).to.emit(f.ledger, "OffenceSlashed");
          else
            await expect(report())
              .to.be.revertedWithCustomError(f.ledger, "LedgerSignedInFuture")
              .withArgs(now + ahead, now);
        });
      }
    });

    describe("when the node rotated its signer key", () => {
      it("slashes on a receipt of the former key dated before the rotation", async () => {
        const f = await networkHelpers.loadFixture(deploy);
        const { rotatedAt } = await rotated(f);
        const { report } = await contradiction(f, VERDICT_AT, rotatedAt - 1n);
        await expect(report()).to.emit(f.ledger, "OffenceSlashed");
      });

      it("reverts with LedgerInvalidReceiptSigner for a receipt of the former key dated at the rotation", async () => {
        const f = await networkHelpers.loadFixture(deploy);
        const { newSigner, rotatedAt } = await rotated(f);
        const { report } = await contradiction(f, VERDICT_AT, rotatedAt);
        await expect(report())
          .to.be.revertedWithCustomError(f.ledger, "LedgerInvalidReceiptSigner")
          .withArgs(f.gpuNode, newSigner.address, f.gpuSigner.address);
      });
    });
  });

  describe("reportBatchEquivocation", () => {
    async function twoBatches() {
      const f = await networkHelpers.loadFixture(deploy);
      return { ...f, ...(await equivocation(f)) };
    }

    it("slashes the enclave's VERIFIER node", async () => {
      const { ledger, staking, reporter, x, y, verifierNode, key } = await twoBatches();
      const tx = ledger
        .connect(reporter)
        .reportBatchEquivocation(x.batch, x.signature, y.batch, y.signature);
      await expectFirstSlash({ ledger, staking }, tx, {
        offence: OFFENCE.BATCH_EQUIVOCATION,
        node: verifierNode,
        key,
        reporter,
        bps: BPS.EQUIVOCATION,
      });
    });

    it("slashes an enclave that is no longer active all the same", async () => {
      const { ledger, tee, report, enclave, verifierNode } = await twoBatches();
      await tee.setEnclave(enclave.address, verifierNode, false);
      await expect(report()).to.emit(ledger, "OffenceSlashed");
    });

    it("slashes when one of the two batches was anchored", async () => {
      const f = await networkHelpers.loadFixture(deploy);
      const { x, y, report } = await equivocation(f, 0n);
      await f.ledger.anchorBatch(x.batch, x.signature, x.usage.modelIds, x.usage.counts);
      expect(y.batch.root).to.not.equal(x.batch.root);
      await expect(report()).to.emit(f.ledger, "OffenceSlashed");
    });

    it("reverts with LedgerOffenceAlreadySlashed for a third batch with the same sequence", async () => {
      const { ledger, x, key, enclave, domain, gpuNode, gpuSigner, report } = await twoBatches();
      await report();
      const z = await signedBatch(enclave, domain, 4n, [makeReceipt(gpuNode)], {
        node: gpuNode,
        signer: gpuSigner.address,
      });
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
      const f = await twoBatches();
      const other = await equivocation(f, 5n);
      await expect(
        f.ledger.reportBatchEquivocation(
          f.x.batch,
          f.x.signature,
          other.y.batch,
          other.y.signature,
        ),
      )
        .to.be.revertedWithCustomError(f.ledger, "LedgerBatchesNotConflicting")
        .withArgs(batchStructHash(f.x.batch), batchStructHash(other.y.batch));
    });

    it("reverts with LedgerBatchesNotConflicting for two enclaves", async () => {
      const { ledger, x, domain, gpuNode, gpuSigner } = await twoBatches();
      const z = await signedBatch(Wallet.createRandom(), domain, 4n, [makeReceipt(gpuNode)], {
        node: gpuNode,
        signer: gpuSigner.address,
      });
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

    it("reverts with LedgerUnaccountableEnclave when no VERIFIER node registered the key", async () => {
      const { ledger, domain, gpuNode, gpuSigner } = await twoBatches();
      const loose = Wallet.createRandom();
      const signing = { node: gpuNode, signer: gpuSigner.address };
      const x = await signedBatch(loose, domain, 0n, [makeReceipt(gpuNode)], signing);
      const y = await signedBatch(loose, domain, 0n, [makeReceipt(gpuNode)], signing);
      await expect(ledger.reportBatchEquivocation(x.batch, x.signature, y.batch, y.signature))
        .to.be.revertedWithCustomError(ledger, "LedgerUnaccountableEnclave")
        .withArgs(loose.address, SIGNED_AT);
    });

    describe("when the enclave key answers only for some signing times", () => {
      const FROM = SIGNED_AT + 1_000n;
      const UNTIL = SIGNED_AT + 2_000n;
      for (const [atA, atB, refused] of [
        [FROM - 1n, FROM, FROM - 1n],
        [FROM, FROM - 1n, FROM - 1n],
        [UNTIL - 1n, UNTIL, UNTIL],
        [UNTIL, UNTIL - 1n, UNTIL],
        [FROM, UNTIL - 1n, null],
      ] as const) {
        it(`${refused === null ? "slashes" : "reverts with LedgerUnaccountableEnclave"} for batches signed at +${atA - FROM} s and +${atB - FROM} s`, async () => {
          const f = await networkHelpers.loadFixture(deploy);
          await f.tee.setAccountable(f.enclave.address, FROM, UNTIL);
          const { report } = await equivocation(f, 4n, atA, atB);
          if (refused === null) {
            await expect(report()).to.emit(f.ledger, "OffenceSlashed");
          } else {
            await expect(report())
              .to.be.revertedWithCustomError(f.ledger, "LedgerUnaccountableEnclave")
              .withArgs(f.enclave.address, refused);
            expect(await f.staking.stakeOf(f.verifierNode)).to.equal(STAKE);
          }
        });
      }
    });

    for (const which of ["first", "second"] as const) {
      it(`reverts with LedgerSignedInFuture when the ${which} batch is signed more than MAX_CLOCK_SKEW ahead`, async () => {
        const f = await networkHelpers.loadFixture(deploy);
        const now = BigInt(await time.latest()) + 10n;
        const late = now + MAX_CLOCK_SKEW + 1n;
        const { report } =
          which === "first"
            ? await equivocation(f, 4n, late, now)
            : await equivocation(f, 4n, now, late);
        await time.setNextBlockTimestamp(now);
        await expect(report())
          .to.be.revertedWithCustomError(f.ledger, "LedgerSignedInFuture")
          .withArgs(late, now);
      });
    }
  });

  describe("the repeat rule", () => {
    /** The GPU node was slashed once for a double receipt, at `slashedAt`. */
    async function slashedOnce() {
      const f = await networkHelpers.loadFixture(deploy);
      const first = await doubleReceipt(f);
      const slashedAt = await minedAt(
        f.ledger.reportDoubleReceipt(first.a, first.sigA, first.b, first.sigB),
      );
      const left = STAKE - slashOf(STAKE, BPS.DOUBLE);
      return { ...f, first, slashedAt, left };
    }

    it("records when the node was last slashed for each offence type", async () => {
      const { ledger, gpuNode, verifierNode, slashedAt } = await slashedOnce();
      expect(await ledger.lastSlashOf(gpuNode, OFFENCE.DOUBLE_RECEIPT)).to.equal(slashedAt);
      expect(await ledger.lastSlashOf(gpuNode, OFFENCE.CONTRADICTED_RECEIPT)).to.equal(0n);
      expect(await ledger.lastSlashOf(verifierNode, OFFENCE.DOUBLE_RECEIPT)).to.equal(0n);
    });

    for (const before of [1n, 0n]) {
      it(`reverts with LedgerOffenceCovered for an offence dated ${before} s before the slash, even after the cooldown`, async () => {
        const f = await slashedOnce();
        const datedAt = f.slashedAt - before;
        const { a, b, sigA, sigB, key } = await doubleReceipt(f, datedAt);
        await time.increaseTo(f.slashedAt + 30n * DAY);
        await expect(f.ledger.reportDoubleReceipt(a, sigA, b, sigB))
          .to.be.revertedWithCustomError(f.ledger, "LedgerOffenceCovered")
          .withArgs(OFFENCE.DOUBLE_RECEIPT, f.gpuNode, datedAt, f.slashedAt);
        expect(await f.ledger.isOffenceSlashed(key)).to.equal(false);
        expect(await f.staking.stakeOf(f.gpuNode)).to.equal(f.left);
      });
    }

    it("slashes a burst of offences dated before one slash exactly once", async () => {
      const f = await networkHelpers.loadFixture(deploy);
      const burst = await Promise.all(
        Array.from({ length: 5 }, (_, i) => doubleReceipt(f, SIGNED_AT + BigInt(i))),
      );
      const [first, ...rest] = burst;
      const slashedAt = await minedAt(
        f.ledger.reportDoubleReceipt(first!.a, first!.sigA, first!.b, first!.sigB),
      );
      for (const { a, sigA, b, sigB } of rest) {
        await expect(f.ledger.reportDoubleReceipt(a, sigA, b, sigB))
          .to.be.revertedWithCustomError(f.ledger, "LedgerOffenceCovered")
          .withArgs(OFFENCE.DOUBLE_RECEIPT, f.gpuNode, a.timestamp, slashedAt);
      }
      expect(await f.staking.slashCount()).to.equal(1n);
      expect(await f.staking.stakeOf(f.gpuNode)).to.equal(STAKE - slashOf(STAKE, BPS.DOUBLE));
    });

    for (const [offset, accepted] of [
      [DAY - 1n, false],
      [DAY, true],
      [DAY + 1n, true],
    ] as const) {
      it(`${accepted ? "slashes" : "reverts with LedgerOffenceCooldown for"} a later offence ${offset} s after the slash`, async () => {
        const f = await slashedOnce();
        const { a, b, sigA, sigB, key } = await doubleReceipt(f, f.slashedAt + 1n);
        await time.setNextBlockTimestamp(f.slashedAt + offset);
        const tx = f.ledger.reportDoubleReceipt(a, sigA, b, sigB);
        if (accepted) {
          const second = slashOf(f.left, BPS.DOUBLE);
          await expect(tx)
            .to.emit(f.ledger, "OffenceSlashed")
            .withArgs(OFFENCE.DOUBLE_RECEIPT, f.gpuNode, key, f.admin.address, second);
          expect(await f.staking.stakeOf(f.gpuNode)).to.equal(f.left - second);
          expect(await f.ledger.lastSlashOf(f.gpuNode, OFFENCE.DOUBLE_RECEIPT)).to.equal(
            f.slashedAt + offset,
          );
        } else {
          await expect(tx)
            .to.be.revertedWithCustomError(f.ledger, "LedgerOffenceCooldown")
            .withArgs(OFFENCE.DOUBLE_RECEIPT, f.gpuNode, f.slashedAt + DAY);
          expect(await f.ledger.isOffenceSlashed(key)).to.equal(false);
          expect(await f.staking.stakeOf(f.gpuNode)).to.equal(f.left);
        }
      });
    }

    it("dates a double receipt by the later of its two receipts", async () => {
      const f = await slashedOnce();
      const covered = await doubleReceipt(f, f.slashedAt - 5n, f.slashedAt);
      const fresh = await doubleReceipt(f, f.slashedAt - 5n, f.slashedAt + 1n);
      await time.increaseTo(f.slashedAt + DAY);
      await expect(f.ledger.reportDoubleReceipt(covered.a, covered.sigA, covered.b, covered.sigB))
        .to.be.revertedWithCustomError(f.ledger, "LedgerOffenceCovered")
        .withArgs(OFFENCE.DOUBLE_RECEIPT, f.gpuNode, f.slashedAt, f.slashedAt);
      await expect(f.ledger.reportDoubleReceipt(fresh.a, fresh.sigA, fresh.b, fresh.sigB)).to.emit(
        f.ledger,
        "OffenceSlashed",
      );
    });

    it("leaves the other offence types and the other nodes free to be slashed at once", async () => {
      const f = await slashedOnce();
      const { report, key } = await contradiction(f);
      await expect(report())
        .to.emit(f.ledger, "OffenceSlashed")
        .withArgs(
          OFFENCE.CONTRADICTED_RECEIPT,
          f.gpuNode,
          key,
          f.admin.address,
          slashOf(f.left, BPS.CONTRADICTED),
        );
      const other = Wallet.createRandom();
      const otherNode = Wallet.createRandom().address;
      await f.staking.setNode(otherNode, ROLE.INFERENCE, other.address, true, STAKE);
      const a = makeReceipt(otherNode);
      const b = { ...a, outputHash: random32() };
      await expect(
        f.ledger.reportDoubleReceipt(
          a,
          await signReceipt(other, f.domain, a),
          b,
          await signReceipt(other, f.domain, b),
        ),
      ).to.emit(f.ledger, "OffenceSlashed");
    });

    it("with a cooldown of zero, slashes a later offence in the next second", async () => {
      const f = await slashedOnce();
      await f.ledger.setSlashParams(OFFENCE.DOUBLE_RECEIPT, 1_000, true, 0);
      const now = BigInt(await time.latest()) + 1n;
      const { a, b, sigA, sigB } = await doubleReceipt(f, now);
      await time.setNextBlockTimestamp(now);
      await expect(f.ledger.reportDoubleReceipt(a, sigA, b, sigB)).to.emit(
        f.ledger,
        "OffenceSlashed",
      );
    });

    it("applies a cooldown governance lengthened to the last slash", async () => {
      const f = await slashedOnce();
      await f.ledger.setSlashParams(OFFENCE.DOUBLE_RECEIPT, 1_000, true, 2n * DAY);
      const { a, b, sigA, sigB } = await doubleReceipt(f, f.slashedAt + 1n);
      await time.setNextBlockTimestamp(f.slashedAt + DAY);
      await expect(f.ledger.reportDoubleReceipt(a, sigA, b, sigB))
        .to.be.revertedWithCustomError(f.ledger, "LedgerOffenceCooldown")
        .withArgs(OFFENCE.DOUBLE_RECEIPT, f.gpuNode, f.slashedAt + 2n * DAY);
    });

    it("dates a contradicted receipt by its verdict", async () => {
      const f = await networkHelpers.loadFixture(deploy);
      const first = await contradiction(f);
      const slashedAt = await minedAt(first.report());
      const covered = await contradiction(f, slashedAt, slashedAt + 1n);
      const fresh = await contradiction(f, slashedAt + 1n, SIGNED_AT);
      await time.increaseTo(slashedAt + DAY);
      await expect(covered.report())
        .to.be.revertedWithCustomError(f.ledger, "LedgerOffenceCovered")
        .withArgs(OFFENCE.CONTRADICTED_RECEIPT, f.gpuNode, slashedAt, slashedAt);
      await expect(fresh.report()).to.emit(f.ledger, "OffenceSlashed");
    });

    it("dates batch equivocation by the later of the two batches", async () => {
      const f = await networkHelpers.loadFixture(deploy);
      const first = await equivocation(f, 0n);
      const slashedAt = await minedAt(first.report());
      const covered = await equivocation(f, 1n, slashedAt - 1n, slashedAt);
      const fresh = await equivocation(f, 2n, slashedAt - 1n, slashedAt + 1n);
      await time.increaseTo(slashedAt + DAY);
      await expect(covered.report())
        .to.be.revertedWithCustomError(f.ledger, "LedgerOffenceCovered")
        .withArgs(OFFENCE.BATCH_EQUIVOCATION, f.verifierNode, slashedAt, slashedAt);
      const left = STAKE - slashOf(STAKE, BPS.EQUIVOCATION);
      await expect(fresh.report())
        .to.emit(f.ledger, "OffenceSlashed")
        .withArgs(
          OFFENCE.BATCH_EQUIVOCATION,
          f.verifierNode,
          fresh.key,
          f.admin.address,
          slashOf(left, BPS.EQUIVOCATION),
        );
    });

    describe("when the slash would take nothing", () => {
      it("reverts with LedgerNothingToSlash and leaves the offence reportable", async () => {
        const f = await networkHelpers.loadFixture(deploy);
        await f.staking.setNode(f.gpuNode, ROLE.INFERENCE, f.gpuSigner.address, false, 0n);
        const { a, b, sigA, sigB, key } = await doubleReceipt(f);
        await expect(f.ledger.reportDoubleReceipt(a, sigA, b, sigB))
          .to.be.revertedWithCustomError(f.ledger, "LedgerNothingToSlash")
          .withArgs(f.gpuNode, key);
        expect(await f.ledger.isOffenceSlashed(key)).to.equal(false);
        expect(await f.ledger.lastSlashOf(f.gpuNode, OFFENCE.DOUBLE_RECEIPT)).to.equal(0n);
        // The node stakes again: the same evidence reaches the new stake.
        await f.staking.setNode(f.gpuNode, ROLE.INFERENCE, f.gpuSigner.address, true, STAKE);
        await expect(f.ledger.reportDoubleReceipt(a, sigA, b, sigB))
          .to.emit(f.ledger, "OffenceSlashed")
          .withArgs(
            OFFENCE.DOUBLE_RECEIPT,
            f.gpuNode,
            key,
            f.admin.address,
            slashOf(STAKE, BPS.DOUBLE),
          );
        expect(await f.ledger.isOffenceSlashed(key)).to.equal(true);
      });

      it("reverts with LedgerNothingToSlash when the share rounds down to zero", async () => {
        const f = await networkHelpers.loadFixture(deploy);
        // 9 wei × 10% rounds to 0 in NodeStaking's floor(total × bps / 10,000).
        await f.staking.setNode(f.gpuNode, ROLE.INFERENCE, f.gpuSigner.address, false, 9n);
        const { a, b, sigA, sigB, key } = await doubleReceipt(f);
        await expect(f.ledger.reportDoubleReceipt(a, sigA, b, sigB))
          .to.be.revertedWithCustomError(f.ledger, "LedgerNothingToSlash")
          .withArgs(f.gpuNode, key);
        await f.staking.setNode(f.gpuNode, ROLE.INFERENCE, f.gpuSigner.address, false, 10n);
        await expect(f.ledger.reportDoubleReceipt(a, sigA, b, sigB))
          .to.emit(f.ledger, "OffenceSlashed")
          .withArgs(OFFENCE.DOUBLE_RECEIPT, f.gpuNode, key, f.admin.address, 1n);
      });
    });
  });
});
