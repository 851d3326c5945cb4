/**
 * The enclave against a real chain (test/offchain/tee/fixture.ts: the protocol deployed in process,
 * a GPU node staked with its signer key): it logs only what its node signed, fresh, with inputs and
 * outputs that are the receipt's; draws the sample then, at the chain's rate; judges within the
 * manifest's tolerance, one verdict per receipt; publishes evidence; cuts, numbers and signs every
 * batch itself; and keeps its state bounded. Each attack sits next to the honest path.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runInNewContext } from "node:vm";
import { setFlagsFromString } from "node:v8";

import { expect } from "chai";
import {
  Wallet,
  concat,
  hexlify,
  id,
  keccak256,
  randomBytes,
  recoverAddress,
  toBeHex,
  zeroPadValue,
} from "ethers";

import { InputError } from "../../../offchain/common/errors.js";
import { stringifyJson } from "../../../offchain/common/json.js";
import { DigestSigner } from "../../../offchain/chain/ecdsa.js";
import {
  batchDigest,
  receiptStructHash,
  usageHash,
  verdictDigest,
  type Receipt,
} from "../../../offchain/chain/eip712.js";
import { receiptLeafHash } from "../../../offchain/chain/hasher.js";
import { buildReceiptTree } from "../../../offchain/chain/merkle.js";
import { usageSummary } from "../../../offchain/chain/receipts.js";
import { InferenceEngine, band } from "../../../offchain/inference/index.js";
import { verifyAttestation } from "../../../offchain/tee/attestation.js";
import {
  DEFAULT_ENCLAVE_LIMITS,
  Enclave,
  EnclaveBusyError,
  bindingUserData,
  readBinding,
  type LoggedReceipt,
  type SignedBatch,
  type SubmitOutcome,
} from "../../../offchain/tee/enclave.js";
import { isSelected, sampleThreshold } from "../../../offchain/tee/sampling.js";
import { silent, world, type Item, type World } from "./fixture.js";

/** The logged receipt of an outcome that must have been accepted. */
function accepted(outcome: SubmitOutcome | undefined): LoggedReceipt {
  expect(outcome?.ok, stringifyJson(outcome ?? null, 0)).to.equal(true);
  return (outcome as { result: LoggedReceipt }).result;
}

/** An outcome refused with `status` and `error`, revealing no draw. */
function refused(
  outcome: SubmitOutcome | undefined,
  status: number,
  error: string,
): Extract<SubmitOutcome, { ok: false }> {
  expect(outcome, stringifyJson(outcome ?? null, 0)).to.deep.include({ ok: false, status, error });
  expect(outcome).to.not.have.property("result");
  expect(stringifyJson(outcome, 0)).to.not.match(/selected|verdict/);
  return outcome as Extract<SubmitOutcome, { ok: false }>;
}

const one = async (enclave: Enclave, item: unknown): Promise<SubmitOutcome> =>
  (await enclave.submit([item]))[0]!;

describe("Enclave", function () {
  this.timeout(180_000);
  let w: World;
  const window = BigInt(DEFAULT_ENCLAVE_LIMITS.receiptWindowSeconds);

  before(async () => {
    w = await world();
  });
  after(async () => w?.close());

  /** Anchors a batch on the real InferenceLedger, sent by an account that is no party to it. */
  async function anchor(signed: SignedBatch): Promise<bigint> {
    const anyone = (await w.protocol.ethers.getSigners())[19]!;
    const tx = await w.protocol.ledger
      .connect(anyone)
      .anchorBatch(signed.batch, signed.signature, signed.modelIds, signed.counts);
    await expect(tx).to.emit(w.protocol.ledger, "BatchAnchored");
    return w.protocol.ledger.batchIdOf(signed.batch.enclave, signed.batch.sequence);
  }

  describe("attestation", () => {
    it("binds its key in public_key and address || chainId || ledger || client node in user_data", async () => {
      const enclave = await w.enclave();
      const nonce = randomBytes(16);
      const v = verifyAttestation(enclave.attestation(nonce), {
        roots: [w.attestor.rootPem],
        nonce,
        approvedPcrs: [w.attestor.measurement()],
      });
      expect(readBinding(v.document.publicKey, v.document.userData)).to.deep.equal({
        address: enclave.address,
        chainId: w.chainId,
        ledger: w.ledger,
        clientNode: w.protocol.gpuNode,
      });
      expect(hexlify(v.document.userData ?? new Uint8Array())).to.equal(
        hexlify(
          concat([
            enclave.address,
            zeroPadValue(toBeHex(w.chainId), 32),
            w.ledger,
            w.protocol.gpuNode,
          ]),
        ).toLowerCase(),
      );
    });

    it("refuses a binding whose user_data address is not the public key's, or of the wrong size", async () => {
      const enclave = await w.enclave();
      const other = Wallet.createRandom();
      const userData = bindingUserData(other.address, w.chainId, w.ledger, w.protocol.gpuNode);
      expect(() => readBinding(enclave.publicKey, userData)).to.throw(
        "user_data address is not the attested public key's address",
      );
      expect(() => readBinding(null, userData)).to.throw("does not bind an enclave key");
      expect(() => readBinding(enclave.publicKey, userData.subarray(0, 72))).to.throw(
        "user_data 92 bytes expected",
      );
    });

    it("refuses a nonce shorter than 8 or longer than 64 bytes", async () => {
      const enclave = await w.enclave();
      expect(() => enclave.attestation(new Uint8Array(7))).to.throw(
        InputError,
        "nonce must be 8..64 bytes, got 7",
      );
      expect(() => enclave.attestation(new Uint8Array(65))).to.throw(InputError, "got 65");
    });

    it("only runs on a cpu engine", () => {
      const fake = { provider: "cuda" } as unknown as InferenceEngine;
      expect(
        () =>
          new Enclave({
            engine: fake,
            attestor: w.attestor,
            chainId: w.chainId,
            ledger: w.ledger,
            clientNode: w.protocol.gpuNode,
            chain: w.chain,
            clock: w.clock,
          }),
      ).to.throw(InputError, "re-executes on cpu");
    });
  });

  describe("who may log a receipt", () => {
    it("logs its node's receipt signed by the node's signer: drawn, re-executed, one signed verdict", async () => {
      const enclave = await w.enclave();
      const item = await w.item(1);
      const before = enclave.stats();
      const answer = accepted(await one(enclave, item));
      expect(answer).to.deep.include({
        requestId: item.receipt.requestId.toLowerCase(),
        receiptDigest: w.hasher.receiptDigest(item.receipt),
        enclave: enclave.address,
        selected: true,
        sampleRatePpm: 1_000_000,
        maxDiff: "0",
        duplicate: false,
      });
      expect(answer.verdict).to.deep.equal({
        receiptHash: receiptStructHash(item.receipt),
        agree: true,
        outputHash: item.receipt.outputHash,
        timestamp: w.clock.now(),
      });
      expect(recoverAddress(verdictDigest(w.domain, answer.verdict!), answer.signature!)).to.equal(
        enclave.address,
      );
      // The digest InferenceLedger rebuilds the verdict with.
      expect(
        await w.protocol.ledger.verdictDigest(
          answer.verdict!.receiptHash,
          true,
          answer.verdict!.outputHash,
          answer.verdict!.timestamp,
        ),
      ).to.equal(verdictDigest(w.domain, answer.verdict!));
      expect(enclave.stats()).to.deep.include({
        logged: before.logged! + 1,
        reexecuted: before.reexecuted! + 1,
        entries: before.entries! + 1,
        pending: before.pending! + 1,
      });
      expect(enclave.logged(item.receipt.requestId)).to.deep.include({
        receipt: item.receipt,
        nodeSignature: item.nodeSignature,
        duplicate: true,
      });
    });

    it("refuses a receipt not signed by the node's signer (403) and logs nothing; the request stays free", async () => {
      const enclave = await w.enclave();
      const outsider = new DigestSigner(Wallet.createRandom().privateKey);
      const forged = await w.item(2, { signer: outsider });
      const before = enclave.stats();
      const answer = refused(await one(enclave, forged), 403, "ForbiddenError");
      expect(answer.details).to.deep.equal({
        signer: outsider.address,
        clientNode: w.protocol.gpuNode,
      });
      expect(enclave.logged(forged.receipt.requestId)).to.equal(null);
      expect(enclave.stats()).to.deep.include({
        logged: before.logged,
        entries: before.entries,
        reexecuted: before.reexecuted,
        refused: before.refused! + 1,
      });
      accepted(await one(enclave, await w.item(2)));
    });

    it("with requireRegistration, logs nothing before its key is registered (503), and logs once it is", async () => {
      const enclave = await w.enclave({ requireRegistration: true });
      const item = await w.item(31);
      const answer = refused(await one(enclave, item), 503, "EnclaveNotRegisteredError");
      expect(answer.details).to.deep.equal({ enclave: enclave.address });
      expect(enclave.logged(item.receipt.requestId)).to.equal(null);
      await w.protocol.registerEnclave(enclave.address, enclave.attestation(randomBytes(32)));
      await new Promise((r) => setTimeout(r, 1_100)); // it reads its registration at most once a second
      await w.sync();
      accepted(await one(enclave, await w.item(31)));
    });

    it("refuses a receipt naming another node, even signed by its node's signer (403)", async () => {
      const enclave = await w.enclave();
      const other = Wallet.createRandom().address;
      const answer = refused(
        await one(enclave, await w.item(3, { node: other })),
        403,
        "ForbiddenError",
      );
      expect(answer.details).to.deep.equal({ receiptNode: other });
      expect(enclave.stats().entries).to.equal(0);
    });

    it("refuses a malformed signature (422) and a malformed item (400), judging each item alone", async () => {
      const enclave = await w.enclave();
      const honest = await w.item(4);
      const zeroSig = { ...(await w.item(5)), nodeSignature: `0x${"00".repeat(65)}` };
      const noInputs: Partial<Item> = { ...(await w.item(6)) };
      delete noInputs.inputs;
      const extra = { ...(await w.item(7)), more: 1 };
      const [a, b, c, d] = await enclave.submit([honest, zeroSig, noInputs, extra]);
      accepted(a);
      expect(refused(b, 422, "VerificationError").message).to.equal(
        "signature is not a canonical secp256k1 signature",
      );
      expect(refused(c, 400, "InputError").message).to.equal("invalid receipt 2");
      expect(stringifyJson(c, 0)).to.contain("inputs:");
      refused(d, 400, "InputError");
      expect(enclave.stats().entries).to.equal(1);
    });
  });

  describe("freshness: receiptWindowSeconds of the enclave's clock", () => {
    const W = BigInt(DEFAULT_ENCLAVE_LIMITS.receiptWindowSeconds);
    const cases: Array<[string, bigint, boolean]> = [
      ["now - window", -W, true],
      ["now - window - 1", -W - 1n, false],
      ["now + window", W, true],
      ["now + window + 1", W + 1n, false],
    ];
    for (const [at, offset, ok] of cases) {
      it(`${ok ? "logs" : "refuses (422) and does not log"} a receipt dated ${at}`, async () => {
        const enclave = await w.enclave();
        const now = w.clock.now();
        const item = await w.item(10, { timestamp: now + offset });
        const outcome = await one(enclave, item);
        if (ok) {
          accepted(outcome);
          return;
        }
        const answer = refused(outcome, 422, "StaleReceiptError");
        expect(answer.details).to.deep.equal({
          timestamp: now + offset,
          enclaveTime: now,
          windowSeconds: W,
        });
        expect(enclave.logged(item.receipt.requestId)).to.equal(null);
        expect(enclave.stats().entries).to.equal(0);
      });
    }
  });

  describe("inputs and outputs that are the receipt's", () => {
    it("refuses inputs that do not hash to the receipt's inputHash (422) before any draw", async () => {
      const enclave = await w.enclave();
      const item = await w.item(20);
      const answer = refused(
        await one(enclave, { ...item, inputs: w.inputs(21) }),
        422,
        "InputMismatchError",
      );
      expect(answer.message).to.equal("inputs do not hash to the receipt's inputHash");
      expect(answer.details.receiptInputHash).to.equal(item.receipt.inputHash);
      expect(enclave.stats()).to.deep.include({ entries: 0, logged: 0, reexecuted: 0 });
      // The honest item for that request is still welcome.
      expect(accepted(await one(enclave, item)).duplicate).to.equal(false);
    });

    it("refuses outputs that do not hash to the receipt's outputHash (422) before any draw", async () => {
      const enclave = await w.enclave();
      const item = await w.item(22);
      const other = await w.item(22, { delta: 1n });
      const answer = refused(
        await one(enclave, { ...item, outputs: other.outputs }),
        422,
        "InputMismatchError",
      );
      expect(answer.message).to.equal("outputs do not hash to the receipt's outputHash");
      expect(enclave.stats()).to.deep.include({ entries: 0, reexecuted: 0 });
    });

    it("answers 404 for a model it does not serve and 400 for inputs the manifest refuses", async () => {
      const enclave = await w.enclave();
      const item = await w.item(23);
      const unknown: Receipt = { ...item.receipt, modelId: id("no such model") };
      refused(
        await one(enclave, { ...item, receipt: unknown, nodeSignature: w.sign(unknown) }),
        404,
        "UnknownModelError",
      );
      refused(
        await one(enclave, { ...item, inputs: { features: { dims: [1, 3], data: [1, 2, 3] } } }),
        400,
        "InferenceInputError",
      );
      expect(enclave.stats().entries).to.equal(0);
    });
  });

  describe("one verdict per receipt, ever", () => {
    it("answers a repeat with what it logged (duplicate: true, the same signature), never re-executing", async () => {
      const enclave = await w.enclave();
      const item = await w.item(30);
      const first = accepted(await one(enclave, item));
      const stats = enclave.stats();
      const again = accepted(await one(enclave, item));
      expect(again).to.deep.equal({ ...first, duplicate: true });
      expect(enclave.stats()).to.deep.include({
        logged: stats.logged,
        reexecuted: stats.reexecuted,
        entries: stats.entries,
      });
    });

    it("answers the same verdict to a repeat sent while the first is being re-executed", async () => {
      const enclave = await w.enclave();
      const item = await w.item(31);
      const [a, b] = (await enclave.submit([item, item])).map(accepted);
      expect(a!.verdict).to.not.equal(null);
      expect(b).to.deep.equal({ ...a, duplicate: true });
      expect(enclave.stats().reexecuted).to.equal(1);
    });

    it("refuses a second receipt for a logged request (409); one with another output for the same question is evidence", async () => {
      const enclave = await w.enclave();
      const first = await w.item(32);
      accepted(await one(enclave, first));
      const lie = await w.item(32, { delta: 5n });
      const answer = refused(await one(enclave, lie), 409, "DuplicateRequestError");
      expect(answer.details).to.deep.equal({
        requestId: first.receipt.requestId.toLowerCase(),
        loggedReceiptDigest: w.hasher.receiptDigest(first.receipt),
        receiptDigest: w.hasher.receiptDigest(lie.receipt),
      });
      const evidence = enclave.evidence(0);
      expect(evidence).to.deep.equal([
        {
          index: 1,
          kind: "double-receipt",
          a: { receipt: first.receipt, nodeSignature: first.nodeSignature },
          b: { receipt: lie.receipt, nodeSignature: lie.nodeSignature },
        },
      ]);
      // The same output re-signed later, another input under this request id, an outsider's
      // receipt: refused, and none of them is evidence.
      w.clock.advance(1);
      refused(await one(enclave, await w.item(32)), 409, "DuplicateRequestError");
      refused(
        await one(enclave, await w.item(33, { requestId: first.receipt.requestId })),
        409,
        "DuplicateRequestError",
      );
      const outsider = new DigestSigner(Wallet.createRandom().privateKey);
      refused(
        await one(enclave, await w.item(32, { delta: 7n, signer: outsider })),
        403,
        "ForbiddenError",
      );
      expect(enclave.evidence(0)).to.have.length(1);
      expect(enclave.logged(first.receipt.requestId)!.receipt).to.deep.equal(first.receipt);

      // Anyone can report it: the chain slashes the node.
      await w.isolated(async () => {
        const tx = w.protocol.ledger.reportDoubleReceipt(
          first.receipt,
          first.nodeSignature,
          lie.receipt,
          lie.nodeSignature,
        );
        await expect(tx).to.emit(w.protocol.ledger, "OffenceSlashed");
      });
    });
  });

  describe("judged within the manifest's tolerance, on the actual outputs", () => {
    describe("when the output's tolerance has a relative part", () => {
      let dir: string;
      let engine: InferenceEngine;
      before(async () => {
        dir = mkdtempSync(join(tmpdir(), "opg-rel-"));
        const copy = join(dir, "risk-rel");
        cpSync(w.risk.dir, copy, { recursive: true });
        const m = JSON.parse(readFileSync(join(copy, "manifest.json"), "utf8")) as {
          outputs: Array<Record<string, unknown>>;
        };
        m.outputs[0]!.tolerance = { mode: "elementwise", abs: 0, rel: 0.01 };
        writeFileSync(join(copy, "manifest.json"), JSON.stringify(m));
        engine = new InferenceEngine({ config: { provider: "cpu" }, logger: silent });
        await engine.loadModels(dir);
      });
      after(async () => {
        await engine?.close();
        rmSync(dir, { recursive: true, force: true });
      });

      it("agrees with an output off by exactly floor(rel × |enclave value|), far above the old abs", async () => {
        const enclave = await w.enclave({ engine });
        const exact = await w.engine.run(w.risk.modelId, w.inputs(44));
        const x = exact.outputs[0]!.values[0]!;
        const limit = band({ abs: 0, rel: 0.01 }, x);
        expect(limit > BigInt(w.risk.manifest.tolerance!)).to.equal(true);
        const answer = accepted(await one(enclave, await w.item(44, { delta: limit })));
        expect(answer.verdict).to.deep.include({ agree: true });
        expect(answer).to.deep.include({ maxDiff: limit.toString(), where: "risk[0]" });
        // The same output is a lie under the manifest's single absolute tolerance.
        const strict = await w.enclave();
        const judged = accepted(await one(strict, await w.item(45, { delta: limit })));
        expect(judged.verdict!.agree).to.equal(false);
      });

      it("disagrees one unit beyond it", async () => {
        const enclave = await w.enclave({ engine });
        const exact = await w.engine.run(w.risk.modelId, w.inputs(46));
        const limit = band({ abs: 0, rel: 0.01 }, exact.outputs[0]!.values[0]!);
        const answer = accepted(await one(enclave, await w.item(46, { delta: limit + 1n })));
        expect(answer.verdict).to.deep.include({ agree: false, outputHash: exact.outputHash });
        expect(answer).to.deep.include({ maxDiff: (limit + 1n).toString(), where: "risk[0]" });
        expect(enclave.stats()).to.deep.include({ contradicted: 1 });
      });
    });

    it("agrees with outputs off by up to the tolerance, though their hash is not the enclave's", async () => {
      const enclave = await w.enclave();
      const tolerance = BigInt(w.risk.manifest.tolerance!);
      for (const [seed, delta] of [
        [40, tolerance],
        [41, -tolerance],
      ] as const) {
        const item = await w.item(seed, { delta });
        const exact = await w.engine.run(w.risk.modelId, w.inputs(seed));
        expect(item.receipt.outputHash).to.not.equal(exact.outputHash);
        const answer = accepted(await one(enclave, item));
        expect(answer.verdict).to.deep.include({
          agree: true,
          outputHash: item.receipt.outputHash,
        });
        expect(answer).to.deep.include({ maxDiff: tolerance.toString(), where: "risk[0]" });
      }
      expect(enclave.stats()).to.deep.include({ contradicted: 0, pending: 2 });
    });

    it("disagrees just beyond it, publishes the evidence, and never batches the receipt", async () => {
      const enclave = await w.enclave({ register: true });
      const tolerance = BigInt(w.risk.manifest.tolerance!);
      const honest = await w.item(42);
      const lie = await w.item(43, { delta: tolerance + 1n });
      const exact = await w.engine.run(w.risk.modelId, w.inputs(43));
      const [, answer] = (await enclave.submit([honest, lie])).map(accepted);
      expect(answer!.verdict).to.deep.equal({
        receiptHash: receiptStructHash(lie.receipt),
        agree: false,
        outputHash: exact.outputHash,
        timestamp: w.clock.now(),
      });
      expect(answer!.maxDiff).to.equal((tolerance + 1n).toString());
      expect(enclave.evidence(0)).to.deep.equal([
        {
          index: 1,
          kind: "contradicted",
          receipt: lie.receipt,
          nodeSignature: lie.nodeSignature,
          verdict: answer!.verdict,
          enclaveSignature: answer!.signature,
        },
      ]);
      expect(enclave.stats()).to.deep.include({ contradicted: 1, pending: 1 });
      const signed = await enclave.cutBatch(10);
      expect(signed!.requestIds).to.deep.equal([honest.receipt.requestId.toLowerCase()]);
      expect(await enclave.cutBatch(10)).to.equal(null);

      // The evidence slashes the node on chain, reported by anyone.
      await w.isolated(async () => {
        const tx = w.protocol.ledger.reportContradictedReceipt(
          lie.receipt,
          lie.nodeSignature,
          answer!.verdict!.outputHash,
          answer!.verdict!.timestamp,
          answer!.signature!,
        );
        await expect(tx).to.emit(w.protocol.ledger, "OffenceSlashed");
      });
    });

    it("keeps the last maxEvidence records, numbered for paging", async () => {
      const enclave = await w.enclave({ limits: { maxEvidence: 2 } });
      for (const seed of [44, 45, 46])
        accepted(await one(enclave, await w.item(seed, { delta: 1_000n })));
      expect(enclave.evidence(0).map((e) => e.index)).to.deep.equal([2, 3]);
      expect(enclave.evidence(2).map((e) => e.index)).to.deep.equal([3]);
      expect(enclave.evidence(0, 1).map((e) => e.index)).to.deep.equal([2]);
    });
  });

  describe("the draw, at the rate governance set on chain", () => {
    it("draws at InferenceLedger.sampleRate and says so in every answer and in the batch, which anchors", async () => {
      await w.isolated(async () => {
        const enclave = await w.enclave({ register: true });
        expect(enclave.sampleRatePpm).to.equal(1_000_000);
        await w.protocol.setSampleRate(250_000, [enclave.address]);
        await w.sync();
        await enclave.refresh();
        expect(enclave.sampleRatePpm).to.equal(250_000);
        expect(await w.protocol.ledger.sampleRate()).to.equal(250_000n);
        const items: Item[] = [];
        for (let seed = 1_000; seed < 1_400; seed++) items.push(await w.item(seed));
        const answers = (await enclave.submit(items)).map(accepted);
        const selected = answers.filter((a) => a.selected);
        // Binomial(400, 0.25): 100 expected, 5 standard deviations (8.7) either side.
        expect(selected.length).to.be.within(100 - 43, 100 + 43);
        for (const a of answers) {
          expect(a.sampleRatePpm).to.equal(250_000);
          expect(a.verdict === null).to.equal(!a.selected);
        }
        const signed = (await enclave.cutBatch(1_000))!;
        expect(signed.batch).to.deep.include({
          count: 400,
          reexecuted: selected.length,
          sampleRatePpm: 250_000,
        });
        expect(enclave.stats().reexecuted).to.equal(selected.length);
        await anchor(signed);
      });
    });

    it("re-executes a forced receipt whatever the draw", async () => {
      await w.isolated(async () => {
        const enclave = await w.enclave();
        await w.protocol.setSampleRate(1, []);
        await w.sync();
        await enclave.refresh();
        const forced = await Promise.all([50, 51, 52].map((s) => w.item(s, { force: true })));
        const drawn = await Promise.all([53, 54, 55].map((s) => w.item(s)));
        const answers = (await enclave.submit([...forced, ...drawn])).map(accepted);
        expect(answers.map((a) => a.selected)).to.deep.equal([
          true,
          true,
          true,
          false,
          false,
          false,
        ]);
        for (const a of answers.slice(0, 3)) expect(a.verdict?.agree).to.equal(true);
        for (const a of answers) expect(a.sampleRatePpm).to.equal(1);
      });
    });
  });

  describe("cutBatch", () => {
    it("builds root, count, usage, re-executed count and asOf itself; the batch verifies and anchors", async () => {
      const enclave = await w.enclave({ register: true });
      const items = [
        ...(await Promise.all([60, 61, 62].map((s) => w.item(s)))),
        ...(await Promise.all([63, 64].map((s) => w.item(s, { model: "cnn" })))),
      ];
      for (const a of (await enclave.submit(items)).map(accepted))
        expect(a.selected).to.equal(true);
      const signed = (await enclave.cutBatch(10))!;
      const byId = new Map(items.map((i) => [i.receipt.requestId.toLowerCase(), i.receipt]));
      expect([...signed.requestIds].sort()).to.deep.equal([...byId.keys()].sort());
      const receipts = signed.requestIds.map((r) => byId.get(r)!);
      const usage = usageSummary(receipts);
      expect(signed.batch).to.deep.equal({
        enclave: enclave.address,
        sequence: 0n,
        root: buildReceiptTree(receipts).root,
        count: 5,
        reexecuted: 5,
        usageHash: usageHash(usage.modelIds, usage.counts),
        node: w.protocol.gpuNode,
        signer: w.nodeSigner.address,
        asOf: w.clock.now(),
        sampleRatePpm: 1_000_000,
      });
      expect(signed.leafHashes).to.deep.equal(receipts.map(receiptLeafHash));
      expect({ modelIds: signed.modelIds, counts: signed.counts }).to.deep.equal(usage);
      expect(signed.digest).to.equal(w.hasher.batchDigest(signed.batch));
      expect(signed.digest).to.equal(batchDigest(w.domain, signed.batch));
      expect(signed.digest).to.equal(await w.protocol.ledger.batchDigest(signed.batch));
      expect(recoverAddress(signed.digest, signed.signature)).to.equal(enclave.address);
      expect(enclave.openBatches()).to.deep.equal([signed]);

      const batchId = await anchor(signed);
      const tree = buildReceiptTree(receipts);
      for (const [i, r] of receipts.entries())
        expect(await w.protocol.ledger.verifyReceipt(batchId, r, tree.proof(i))).to.equal(true);
      await enclave.refresh();
      expect(enclave.openBatches()).to.deep.equal([]);
      expect(enclave.stats()).to.deep.include({ openBatches: 0, pending: 0, batches: 1 });
    });

    it("numbers its batches 0, 1, 2, oldest receipts first, and answers null when nothing waits", async () => {
      const enclave = await w.enclave();
      expect(await enclave.cutBatch(2)).to.equal(null);
      const items = await Promise.all([70, 71, 72, 73, 74].map((s) => w.item(s)));
      for (const item of items) accepted(await one(enclave, item));
      const cuts = [
        await enclave.cutBatch(2),
        await enclave.cutBatch(2),
        await enclave.cutBatch(2),
      ];
      expect(cuts.map((c) => c!.batch.sequence)).to.deep.equal([0n, 1n, 2n]);
      expect(cuts.flatMap((c) => c!.requestIds)).to.deep.equal(
        items.map((i) => i.receipt.requestId.toLowerCase()),
      );
      expect(cuts.map((c) => c!.batch.count)).to.deep.equal([2, 2, 1]);
      expect(await enclave.cutBatch(2)).to.equal(null);
      expect(enclave.stats().nextSequence).to.equal(3);
    });

    it("refuses a maxSize outside 1..maxBatchSize", async () => {
      const enclave = await w.enclave({ limits: { maxBatchSize: 8 } });
      for (const size of [0, 9, 1.5])
        await enclave.cutBatch(size).then(
          () => expect.fail(`cut with maxSize ${size}`),
          (e: unknown) => expect(e).to.be.instanceOf(InputError),
        );
    });

    it("cuts no more while maxOpenBatches signed batches are not anchored (503), and again once one is", async () => {
      const enclave = await w.enclave({ register: true, limits: { maxOpenBatches: 2 } });
      for (const seed of [80, 81, 82]) accepted(await one(enclave, await w.item(seed)));
      const first = (await enclave.cutBatch(1))!;
      await enclave.cutBatch(1);
      const error = await enclave.cutBatch(1).then(
        () => expect.fail("expected EnclaveBusyError"),
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(EnclaveBusyError);
      expect((error as EnclaveBusyError).httpStatus).to.equal(503);
      expect((error as EnclaveBusyError).details).to.deep.include({
        openBatches: 2,
        maxOpenBatches: 2,
      });
      expect(enclave.stats()).to.deep.include({ pending: 1, openBatches: 2 });
      await anchor(first);
      const third = (await enclave.cutBatch(1))!;
      expect(third.batch.sequence).to.equal(2n);
      expect(enclave.openBatches().map((b) => b.batch.sequence)).to.deep.equal([1n, 2n]);
    });

    it("drops receipts logged after the node's signer was rotated away; the batches anchor", async () => {
      await w.isolated(async () => {
        const { staking, gpuNode, gpuOperator } = w.protocol;
        const enclave = await w.enclave({ register: true });
        const before = await w.item(90);
        accepted(await one(enclave, before));
        const next = Wallet.createRandom();
        await (await staking.connect(gpuOperator).rotateSigner(gpuNode, next.address)).wait();
        await w.sync();
        const until = (await staking.signerRecordOf(w.nodeSigner.address)).until;
        expect(w.clock.now()).to.be.at.least(until);
        // Signed with the old key after its rotation: logged (the enclave had not re-read the
        // chain yet), but never in a batch.
        const late = await w.item(91);
        accepted(await one(enclave, late));
        const signed = (await enclave.cutBatch(10))!;
        expect(signed.requestIds).to.deep.equal([before.receipt.requestId.toLowerCase()]);
        expect(signed.batch.signer).to.equal(w.nodeSigner.address);
        expect(signed.batch.asOf < until).to.equal(true);
        await anchor(signed);
        expect(await enclave.cutBatch(10)).to.equal(null);
        expect(enclave.stats().pending).to.equal(0);

        // The new key's receipts are logged once the enclave reads the rotation, the old key's no more.
        await enclave.refresh();
        const newSigner = new DigestSigner(next.privateKey);
        accepted(await one(enclave, await w.item(92, { signer: newSigner })));
        refused(await one(enclave, await w.item(93)), 403, "ForbiddenError");
        const rotated = (await enclave.cutBatch(10))!;
        expect(rotated.batch).to.deep.include({ sequence: 1n, signer: next.address, count: 1 });
        await anchor(rotated);
      });
    });
  });

  describe("bounded state", () => {
    it("refuses to log past maxEntries (503), and logs again once batched entries leave the window", async () => {
      const enclave = await w.enclave({ limits: { maxEntries: 3 } });
      for (const seed of [100, 101, 102]) accepted(await one(enclave, await w.item(seed)));
      const answer = refused(await one(enclave, await w.item(103)), 503, "EnclaveBusyError");
      expect(answer.details).to.deep.equal({ entries: 3, maxEntries: 3 });
      expect(enclave.logged(keccak256(toBeHex(103, 32)))).to.equal(null);
      await enclave.cutBatch(10);
      refused(await one(enclave, await w.item(103)), 503, "EnclaveBusyError");
      w.clock.advance(window + 2n);
      accepted(await one(enclave, await w.item(103)));
      expect(enclave.stats().entries).to.equal(1);
    });

    it("prunes batched and contradicted entries older than the window, never waiting ones", async () => {
      const enclave = await w.enclave();
      const batched = await w.item(110);
      const contradicted = await w.item(111, { delta: 1_000n });
      const waiting = await w.item(112);
      accepted(await one(enclave, batched));
      await enclave.cutBatch(1);
      accepted(await one(enclave, contradicted));
      accepted(await one(enclave, waiting));
      w.clock.advance(window + 2n);
      accepted(await one(enclave, await w.item(113)));
      expect(enclave.logged(batched.receipt.requestId)).to.equal(null);
      expect(enclave.logged(contradicted.receipt.requestId)).to.equal(null);
      expect(enclave.logged(waiting.receipt.requestId)).to.not.equal(null);
      expect(enclave.stats()).to.deep.include({ entries: 2, pending: 2 });
    });

    it("keeps an entry while its receipt is fresh, so a receipt dated ahead is never logged twice", async () => {
      const enclave = await w.enclave();
      const ahead = await w.item(120, { timestamp: w.clock.now() + window });
      accepted(await one(enclave, ahead));
      expect((await enclave.cutBatch(10))!.requestIds).to.have.length(1);
      w.clock.advance(window + 2n); // the entry is older than the window; the receipt is not
      accepted(await one(enclave, await w.item(121)));
      expect(accepted(await one(enclave, ahead)).duplicate).to.equal(true);
      const next = (await enclave.cutBatch(10))!;
      expect(next.requestIds).to.deep.equal([keccak256(toBeHex(121, 32))]);
    });

    it("does not grow with 10,000 refused outsider receipts", async () => {
      setFlagsFromString("--expose-gc");
      const gc = runInNewContext("gc") as () => void;
      const enclave = await w.enclave();
      accepted(await one(enclave, await w.item(130)));
      const template = await w.item(131);
      const outsider = new DigestSigner(Wallet.createRandom().privateKey);
      const stranger = Wallet.createRandom().address;
      const forged = (i: number): unknown => {
        const receipt: Receipt = {
          ...template.receipt,
          requestId: keccak256(toBeHex(1_000_000 + i, 32)),
          // Three kinds of outsider: another key, another node, a stale date.
          ...(i % 3 === 1 ? { node: stranger } : {}),
          ...(i % 3 === 2 ? { timestamp: template.receipt.timestamp - 10n * window } : {}),
        };
        return { ...template, receipt, nodeSignature: w.sign(receipt, outsider) };
      };
      const before = enclave.stats();
      gc();
      const heapBefore = process.memoryUsage().heapUsed;
      for (let chunk = 0; chunk < 10; chunk++) {
        const outcomes = await enclave.submit(
          Array.from({ length: 1_000 }, (_, i) => forged(chunk * 1_000 + i)),
        );
        expect(outcomes.every((o) => !o.ok && (o.status === 403 || o.status === 422))).to.equal(
          true,
        );
      }
      gc();
      const grown = process.memoryUsage().heapUsed - heapBefore;
      expect(enclave.stats()).to.deep.equal({
        ...before,
        refused: before.refused! + 10_000,
      });
      expect(grown, `heap grew by ${grown} bytes`).to.be.below(8 * 1024 * 1024);
    });
  });
});

describe("sampling", () => {
  const digests = Array.from({ length: 10_000 }, (_, i) => keccak256(toBeHex(i, 32)));

  /** |observed - expected| within 5 standard deviations of a binomial(n, p). */
  function expectRate(selected: number, n: number, p: number): void {
    const sd = Math.sqrt(n * p * (1 - p));
    expect(Math.abs(selected - n * p), `selected ${selected} of ${n} at rate ${p}`).to.be.at.most(
      5 * sd + 1e-9,
    );
  }

  it("selects about rate * n receipts, for several rates", () => {
    const secret = randomBytes(32);
    for (const rate of [0.01, 0.1, 0.5, 0.9]) {
      expectRate(digests.filter((d) => isSelected(secret, d, rate)).length, digests.length, rate);
    }
  });

  it("selects none at rate 0 and all at rate 1", () => {
    const secret = randomBytes(32);
    expect(digests.slice(0, 1000).some((d) => isSelected(secret, d, 0))).to.be.false;
    expect(digests.slice(0, 1000).every((d) => isSelected(secret, d, 1))).to.be.true;
  });

  it("is nested: a receipt selected at a rate is selected at every higher rate", () => {
    const secret = randomBytes(32);
    for (const d of digests.slice(0, 2000))
      if (isSelected(secret, d, 0.2)) expect(isSelected(secret, d, 0.3)).to.be.true;
  });

  it("selects independent sets under independent secrets (overlap about rate^2)", () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    const both = digests.filter((d) => isSelected(a, d, 0.5) && isSelected(b, d, 0.5)).length;
    expectRate(both, digests.length, 0.25);
  });

  it("is keccak256(secret || digest) < floor(rate * 2^53) * 2^203", () => {
    const secret = new Uint8Array(32).fill(7);
    const digest = digests[0] as string;
    const value = BigInt(keccak256(concat([secret, digest])));
    expect(isSelected(secret, digest, 0.5)).to.equal(value < 2n ** 255n);
    expect(sampleThreshold(0.5)).to.equal(2n ** 255n);
    expect(sampleThreshold(1)).to.equal(2n ** 256n);
    expect(sampleThreshold(0)).to.equal(0n);
  });

  it("refuses a bad rate, secret or digest", () => {
    expect(() => sampleThreshold(-0.1)).to.throw(InputError, "sample rate");
    expect(() => sampleThreshold(NaN)).to.throw(InputError, "sample rate");
    expect(() => isSelected(new Uint8Array(31), digests[0] as string, 0.5)).to.throw(
      InputError,
      "32 bytes, got 31",
    );
    expect(() => isSelected(new Uint8Array(32), "0x1234", 0.5)).to.throw(
      InputError,
      "receipt digest",
    );
  });
});
