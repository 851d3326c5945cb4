import { expect } from "chai";
import { Wallet, keccak256, toUtf8Bytes } from "ethers";

import {
  FULL_SAMPLE_RATE_PPM,
  ledgerDomain,
  receiptStructHash,
  usageHash,
} from "../../../offchain/chain/eip712.js";
import type { Receipt } from "../../../offchain/chain/eip712.js";
import {
  BUNDLE_FORMAT,
  buildReceiptBundle,
  formatReceiptBundle,
  parseReceiptBundle,
} from "../../../offchain/chain/bundle.js";
import {
  buildBatch,
  buildReceipt,
  buildVerdict,
  recoverBatchSigner,
  recoverReceiptSigner,
  recoverVerdictSigner,
  signBatch,
  signReceipt,
  signVerdict,
  usageSummary,
} from "../../../offchain/chain/receipts.js";
import { InputError } from "../../../offchain/common/errors.js";

const h = (s: string) => keccak256(toUtf8Bytes(s));
const domain = ledgerDomain(31337n, "0x5FbDB2315678afecb367f032d93F642f64180aa3");
const receipt: Receipt = {
  requestId: h("req"),
  modelId: h("model"),
  inputHash: h("in"),
  outputHash: h("out"),
  node: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  execConfigHash: h("cfg"),
  timestamp: 1_700_000_000n,
};

describe("offchain/chain receipts", () => {
  describe("buildReceipt", () => {
    it("normalises a valid receipt", () => {
      const r = buildReceipt({
        ...receipt,
        requestId: receipt.requestId.toUpperCase().replace("0X", "0x"),
      });
      expect(r.requestId).to.equal(receipt.requestId);
      expect(r.node).to.equal(receipt.node);
    });

    it("throws InputError naming a bad hash, address or timestamp", () => {
      expect(() => buildReceipt({ ...receipt, outputHash: "0x12" })).to.throw(
        InputError,
        "outputHash",
      );
      expect(() => buildReceipt({ ...receipt, node: "0xnope" })).to.throw(InputError, "node");
      expect(() => buildReceipt({ ...receipt, timestamp: 2n ** 64n })).to.throw(
        InputError,
        "timestamp",
      );
      expect(() => buildReceipt({ ...receipt, timestamp: -1n })).to.throw(InputError, "timestamp");
    });
  });

  describe("signing", () => {
    it("round-trips receipts, verdicts and batches through signature recovery", async () => {
      const gpu = Wallet.createRandom();
      const enclave = Wallet.createRandom();
      expect(
        recoverReceiptSigner(domain, receipt, await signReceipt(gpu, domain, receipt)),
      ).to.equal(gpu.address);
      const verdict = buildVerdict(receipt, receipt.outputHash, 1_700_000_060n);
      expect(verdict).to.deep.equal({
        receiptHash: receiptStructHash(receipt),
        agree: true,
        outputHash: receipt.outputHash,
        timestamp: 1_700_000_060n,
      });
      expect(
        recoverVerdictSigner(domain, verdict, await signVerdict(enclave, domain, verdict)),
      ).to.equal(enclave.address);
      const batch = buildBatch({
        enclave: enclave.address,
        sequence: 0n,
        root: h("root"),
        count: 1,
        reexecuted: 1,
        usage: usageSummary([receipt]),
        node: receipt.node,
        signer: gpu.address,
        asOf: 1_700_000_100n,
        sampleRatePpm: FULL_SAMPLE_RATE_PPM,
      });
      expect(recoverBatchSigner(domain, batch, await signBatch(enclave, domain, batch))).to.equal(
        enclave.address,
      );
    });

    it("builds a disagreeing verdict for another output", () => {
      expect(buildVerdict(receipt, h("other"), 0n).agree).to.equal(false);
    });

    it("throws InputError for a verdict timestamp outside uint64", () => {
      expect(() => buildVerdict(receipt, receipt.outputHash, 2n ** 64n)).to.throw(
        InputError,
        "timestamp",
      );
      expect(() => buildVerdict(receipt, receipt.outputHash, -1n)).to.throw(
        InputError,
        "timestamp",
      );
    });
  });

  describe("usageSummary", () => {
    it("sorts modelIds ascending as numbers and counts them", () => {
      const a = "0x" + "00".repeat(31) + "02";
      const b = "0x" + "ff".repeat(32);
      const c = "0x" + "00".repeat(31) + "10";
      const rs = [b, a, c, a, b, b].map((modelId) => ({ ...receipt, modelId }));
      expect(usageSummary(rs)).to.deep.equal({ modelIds: [a, c, b], counts: [2, 1, 3] });
    });
  });

  describe("buildBatch", () => {
    const base = {
      enclave: Wallet.createRandom().address,
      sequence: 3n,
      root: h("root"),
      count: 2,
      reexecuted: 1,
      usage: { modelIds: [h("m")], counts: [2] },
      node: Wallet.createRandom().address,
      signer: Wallet.createRandom().address,
      asOf: 1_700_000_000n,
      sampleRatePpm: 10_000,
    };

    it("hashes the usage summary into the batch", () => {
      expect(buildBatch(base).usageHash).to.equal(usageHash([h("m")], [2]));
    });

    it("throws InputError when the usage does not add up, or re-executions exceed the count", () => {
      expect(() => buildBatch({ ...base, count: 3 })).to.throw(InputError, "does not add up");
      expect(() =>
        buildBatch({ ...base, usage: { modelIds: [h("m"), h("n")], counts: [2] } }),
      ).to.throw(InputError, "does not add up");
      expect(() => buildBatch({ ...base, reexecuted: 3 })).to.throw(InputError, "reexecuted");
      expect(() => buildBatch({ ...base, root: "0x" })).to.throw(InputError, "root");
    });

    it("carries the node, its signer, the signing time and the sample rate into the batch", () => {
      const batch = buildBatch({ ...base, node: base.node.toLowerCase() });
      expect([batch.node, batch.signer, batch.asOf, batch.sampleRatePpm]).to.deep.equal([
        base.node,
        base.signer,
        base.asOf,
        base.sampleRatePpm,
      ]);
    });

    it("throws InputError for a bad node or signer, a signing time outside uint64 or a rate above 1,000,000 ppm", () => {
      expect(() => buildBatch({ ...base, node: "0x12" })).to.throw(InputError, "node");
      expect(() => buildBatch({ ...base, signer: "nope" })).to.throw(InputError, "signer");
      expect(() => buildBatch({ ...base, asOf: 2n ** 64n })).to.throw(InputError, "asOf");
      expect(() => buildBatch({ ...base, sampleRatePpm: 1_000_001 })).to.throw(
        InputError,
        "sampleRatePpm",
      );
      expect(buildBatch({ ...base, sampleRatePpm: FULL_SAMPLE_RATE_PPM }).sampleRatePpm).to.equal(
        FULL_SAMPLE_RATE_PPM,
      );
    });
  });

  describe("receipt bundle", () => {
    const sig = "0x" + "11".repeat(65);
    const bundle = buildReceiptBundle({
      chainId: 31337n,
      ledger: domain.verifyingContract,
      receipt,
      nodeSignature: sig,
      verdict: buildVerdict(receipt, receipt.outputHash, 2n ** 64n - 1n),
      enclaveSignature: sig,
      batchId: 1n,
      proof: [h("sibling")],
      anchorTx: h("tx"),
    });

    it("round-trips through JSON with bigints as strings", () => {
      const text = formatReceiptBundle(bundle);
      expect(JSON.parse(text).receipt.timestamp).to.equal("1700000000");
      expect(parseReceiptBundle(text)).to.deep.equal(bundle);
      expect(bundle.format).to.equal(BUNDLE_FORMAT);
    });

    it("accepts a bundle without a verdict", () => {
      const json = JSON.parse(formatReceiptBundle(bundle));
      delete json.verdict;
      delete json.enclaveSignature;
      expect(parseReceiptBundle(JSON.stringify(json)).verdict).to.equal(undefined);
    });

    it("throws InputError for invalid JSON", () => {
      expect(() => parseReceiptBundle("{")).to.throw(InputError, "not valid JSON");
    });

    it("throws InputError listing every malformed field", () => {
      const json = JSON.parse(formatReceiptBundle(bundle));
      json.receipt.outputHash = "0x12";
      json.batchId = "-1";
      delete json.enclaveSignature;
      try {
        parseReceiptBundle(JSON.stringify(json));
        expect.fail("should have thrown");
      } catch (error) {
        expect(error).to.be.instanceOf(InputError);
        const issues = (error as InputError).details.issues as string[];
        expect(issues.some((i) => i.startsWith("receipt.outputHash"))).to.equal(true);
        expect(issues.some((i) => i.startsWith("batchId"))).to.equal(true);
        expect(issues.some((i) => i.startsWith("enclaveSignature"))).to.equal(true);
        expect((error as InputError).exitCode).to.equal(2);
      }
    });

    it("keeps the verdict's timestamp (the enclave signed it), as a decimal string", () => {
      const json = JSON.parse(formatReceiptBundle(bundle));
      expect(json.verdict.timestamp).to.equal("18446744073709551615");
      expect(parseReceiptBundle(JSON.stringify(json)).verdict!.timestamp).to.equal(2n ** 64n - 1n);
      delete json.verdict.timestamp;
      expect(() => parseReceiptBundle(JSON.stringify(json))).to.throw(InputError, "malformed");
    });

    it("throws InputError for another format", () => {
      const json = JSON.parse(formatReceiptBundle(bundle));
      json.format = "v0";
      expect(() => parseReceiptBundle(JSON.stringify(json))).to.throw(InputError, "malformed");
    });
  });
});
