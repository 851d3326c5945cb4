import type { Server } from "node:http";

import { expect } from "chai";
import { Wallet, keccak256, randomBytes, recoverAddress, toBeHex } from "ethers";
import { pino } from "pino";

import { stringifyJson } from "../../../offchain/common/json.js";
import { ledgerDomain } from "../../../offchain/chain/eip712.js";
import { VerificationError } from "../../../offchain/common/errors.js";
import {
  InferenceEngine,
  outputsToJson,
  receiptFor,
  type LoadedModel,
} from "../../../offchain/inference/index.js";
import { EnclaveClient, EnclaveRequestError } from "../../../offchain/tee/client.js";
import { verifyAttestation } from "../../../offchain/tee/attestation.js";
import { DevAttestor } from "../../../offchain/tee/devAttestation.js";
import { Enclave, readBinding } from "../../../offchain/tee/enclave.js";
import { MAX_VERIFY_BATCH, createEnclaveServer, listen } from "../../../offchain/tee/server.js";
import { KeepAliveEnclaveVerifier } from "../../../offchain/relayer/enclave-http.js";
import { MODELS_DIR } from "../../../scripts/models/generate.js";
import { sampleInputs } from "../inference/reference.js";

const silent = pino({ level: process.env.DEBUG_ENCLAVE ? "debug" : "silent" });
const LEDGER = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const NODE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

describe("enclave HTTP API", () => {
  let engine: InferenceEngine;
  let server: Server;
  let url: string;
  let cnn: LoadedModel;
  let attestor: DevAttestor;

  before(async () => {
    engine = new InferenceEngine({ config: { provider: "cpu" }, logger: silent });
    [, cnn] = (await engine.loadModelsDir(MODELS_DIR)) as [LoadedModel, LoadedModel];
    attestor = new DevAttestor();
    const enclave = new Enclave({ engine, attestor, chainId: 31337n, ledger: LEDGER });
    server = createEnclaveServer({ enclave, devRootPem: attestor.rootPem, logger: silent });
    url = await listen(server, 0);
  });
  after(async () => {
    await new Promise((r) => server.close(r));
    await engine.close();
  });

  async function call(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await fetch(`${url}${path}`, {
      method,
      ...(body === undefined
        ? {}
        : {
            body: typeof body === "string" ? body : stringifyJson(body),
            headers: { "content-type": "application/json" },
          }),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  it("GET /info names the enclave, its deployment and its models", async () => {
    const { status, json } = await call("GET", "/info");
    expect(status).to.equal(200);
    expect(json).to.deep.include({
      chainId: "31337",
      ledger: LEDGER,
      devRootPem: attestor.rootPem,
    });
    expect((json.models as Array<{ modelId: string }>).map((m) => m.modelId)).to.include(
      cnn.modelId,
    );
  });

  it("GET /attestation returns a document answering the nonce and binding the enclave key", async () => {
    const nonce = Buffer.from(randomBytes(16));
    const { status, json } = await call("GET", `/attestation?nonce=${nonce.toString("hex")}`);
    expect(status).to.equal(200);
    const v = verifyAttestation(Buffer.from(json.document as string, "base64"), {
      roots: [attestor.rootPem],
      nonce,
    });
    expect(readBinding(v.document.publicKey, v.document.userData).address).to.equal(json.enclave);
  });

  it("GET /attestation without a hex nonce answers 400", async () => {
    expect((await call("GET", "/attestation")).status).to.equal(400);
    const bad = await call("GET", "/attestation?nonce=xyz");
    expect(bad.status).to.equal(400);
    expect(bad.json.message).to.equal("nonce query parameter must be hex bytes");
  });

  it("POST /verify answers a signed verdict", async () => {
    const inputs = { signal: { dims: [1, 1, 32], data: sampleInputs(11, 32) } };
    const result = await engine.run(cnn.modelId, inputs);
    const receipt = {
      requestId: keccak256("0x01"),
      modelId: cnn.modelId,
      inputHash: result.inputHash,
      outputHash: result.outputHash,
      node: NODE,
      execConfigHash: result.execConfigHash,
      timestamp: "1770000000",
    };
    const { status, json } = await call("POST", "/verify", {
      receipt,
      inputs,
      outputs: outputsToJson(result.outputs),
    });
    expect(status).to.equal(200);
    expect(json.verdict).to.deep.include({ agree: true, outputHash: result.outputHash });
    expect(recoverAddress(json.digest as string, json.signature as string)).to.equal(json.enclave);
  });

  it("POST /verify answers 400 naming the problem for a malformed receipt or body", async () => {
    const bad = await call("POST", "/verify", { receipt: { requestId: "0x12" }, inputs: {} });
    expect(bad.status).to.equal(400);
    expect(JSON.stringify(bad.json.details)).to.contain("receipt.requestId: 0x + 64 hex digits");
    expect((await call("POST", "/verify", "{not json")).json.message).to.equal(
      "request body is not valid JSON",
    );
  });

  it("POST /verify answers 400 for an address with a bad checksum", async () => {
    const receipt = {
      requestId: keccak256("0x01"),
      modelId: cnn.modelId,
      inputHash: keccak256("0x02"),
      outputHash: keccak256("0x03"),
      node: "0x70997970C51812dc3A79C7f17720b8C4af1d6F54",
      execConfigHash: keccak256("0x04"),
      timestamp: 1,
    };
    const res = await call("POST", "/verify", { receipt, inputs: {} });
    expect(res.status).to.equal(400);
    expect(JSON.stringify(res.json.details)).to.contain("receipt.node: not a valid address");
  });

  it("POST /verify answers 404 for an unknown model", async () => {
    const receipt = {
      requestId: keccak256("0x01"),
      modelId: keccak256("0x99"),
      inputHash: keccak256("0x02"),
      outputHash: keccak256("0x03"),
      node: NODE,
      execConfigHash: keccak256("0x04"),
      timestamp: 1,
    };
    const res = await call("POST", "/verify", { receipt, inputs: {} });
    expect(res.status).to.equal(404);
    expect(res.json.error).to.equal("UnknownModelError");
  });

  it("POST /sign-batch signs once per sequence and answers 409 for a conflicting batch", async () => {
    const batch = {
      sequence: "7",
      root: keccak256("0x0a"),
      count: 4,
      reexecuted: 1,
      usageHash: keccak256("0x0b"),
    };
    const first = await call("POST", "/sign-batch", batch);
    expect(first.status).to.equal(200);
    expect((await call("POST", "/sign-batch", batch)).json.signature).to.equal(
      first.json.signature,
    );
    const conflict = await call("POST", "/sign-batch", { ...batch, root: keccak256("0x0c") });
    expect(conflict.status).to.equal(409);
    expect(conflict.json.error).to.equal("BatchConflictError");
    const invalid = await call("POST", "/sign-batch", { ...batch, count: -1 });
    expect(invalid.status).to.equal(400);
  });

  describe("EnclaveClient", () => {
    async function honestReceipt(seed: number) {
      const inputs = { signal: { dims: [1, 1, 32], data: sampleInputs(seed, 32) } };
      const result = await engine.run(cnn.modelId, inputs);
      return {
        inputs,
        result,
        receipt: receiptFor(result, {
          requestId: keccak256(toBeHex(seed, 32)),
          node: NODE,
          timestamp: 1_770_000_000n,
        }),
      };
    }

    it("gets a verdict and a batch signature checked against the expected enclave", async () => {
      const info = await call("GET", "/info");
      const client = new EnclaveClient(
        url,
        info.json.enclave as string,
        ledgerDomain(31337n, LEDGER),
      );
      const { inputs, result, receipt } = await honestReceipt(21);
      const verdict = await client.verify({
        receipt,
        inputs,
        outputs: outputsToJson(result.outputs),
      });
      expect(verdict.selected && verdict.verdict.agree).to.be.true;
      const batch = {
        sequence: 40n,
        root: keccak256("0x0d"),
        count: 1,
        reexecuted: 1,
        usageHash: keccak256("0x0e"),
      };
      const signed = await client.signBatch(batch);
      expect(signed.batch).to.deep.equal({ ...batch, enclave: info.json.enclave });
      const attestation = await client.attestation(Buffer.alloc(8, 1));
      expect(attestation.enclave).to.equal(info.json.enclave);
    });

    it("refuses a verdict or batch signed by another key than the expected enclave", async () => {
      const client = new EnclaveClient(
        url,
        Wallet.createRandom().address,
        ledgerDomain(31337n, LEDGER),
      );
      const { inputs, receipt } = await honestReceipt(22);
      await client.verify({ receipt, inputs }).then(
        () => expect.fail("expected VerificationError"),
        (e: unknown) =>
          expect((e as Error).message).to.equal("verdict is not signed by the expected enclave"),
      );
      await client
        .signBatch({
          sequence: 41n,
          root: keccak256("0x0d"),
          count: 1,
          reexecuted: 0,
          usageHash: keccak256("0x0e"),
        })
        .then(
          () => expect.fail("expected VerificationError"),
          (e: unknown) => expect(e).to.be.instanceOf(VerificationError),
        );
    });

    it("reports the enclave's error status, and an unreachable enclave", async () => {
      const client = new EnclaveClient(url, LEDGER, ledgerDomain(31337n, LEDGER));
      await client.attestation(new Uint8Array(2)).then(
        () => expect.fail("expected EnclaveRequestError"),
        (e: unknown) => {
          expect(e).to.be.instanceOf(EnclaveRequestError);
          expect((e as EnclaveRequestError).details.status).to.equal(400);
        },
      );
      const down = new EnclaveClient("http://127.0.0.1:1", LEDGER, ledgerDomain(31337n, LEDGER));
      await down.attestation(new Uint8Array(8)).then(
        () => expect.fail("expected EnclaveRequestError"),
        (e: unknown) => expect((e as Error).message).to.contain("is unreachable"),
      );
    });
  });

  describe("POST /verify-batch and the relayer's KeepAliveEnclaveVerifier", () => {
    async function honest(seed: number) {
      const inputs = { signal: { dims: [1, 1, 32], data: sampleInputs(seed, 32) } };
      const result = await engine.run(cnn.modelId, inputs);
      const receipt = receiptFor(result, {
        requestId: keccak256(toBeHex(seed, 32)),
        node: NODE,
        timestamp: 1_770_000_000n,
      });
      return { receipt, inputs, outputs: outputsToJson(result.outputs) };
    }

    it("answers each request in order, a bad one with its own error and the rest still judged", async () => {
      const good = await honest(31);
      const other = await honest(32);
      const mismatched = { ...other, receipt: { ...other.receipt, inputHash: keccak256("0x77") } };
      const { status, json } = await call("POST", "/verify-batch", {
        requests: [good, { receipt: { requestId: "0x12" }, inputs: {} }, mismatched, other],
      });
      expect(status).to.equal(200);
      const results = json.results as Array<Record<string, unknown>>;
      expect(results.map((r) => r.ok)).to.deep.equal([true, false, false, true]);
      const first = results[0]!.result as Record<string, unknown>;
      expect(first.verdict).to.deep.include({ agree: true, outputHash: good.receipt.outputHash });
      expect(recoverAddress(first.digest as string, first.signature as string)).to.equal(
        first.enclave,
      );
      expect(results[1]).to.include({ status: 400, error: "InputError" });
      expect(JSON.stringify(results[1]!.details)).to.contain("receipt.requestId");
      expect(results[2]).to.include({ status: 422, error: "InputMismatchError" });
      // Same answer as POST /verify for the same request.
      const single = await call("POST", "/verify", other);
      expect((results[3]!.result as Record<string, unknown>).signature).to.equal(
        single.json.signature,
      );
    });

    it("answers 400 for an empty, oversized or malformed batch", async () => {
      for (const body of [{ requests: [] }, { requests: "x" }, {}, { requests: [1], more: 1 }]) {
        const res = await call("POST", "/verify-batch", body);
        expect(res.status, JSON.stringify(body)).to.equal(400);
        expect(res.json.message).to.contain("verify-batch body must be { requests: [...] }");
      }
      const tooMany = await call("POST", "/verify-batch", {
        requests: Array.from({ length: MAX_VERIFY_BATCH + 1 }, () => ({})),
      });
      expect(tooMany.status).to.equal(400);
    });

    it("sends the receipts of one event-loop turn in one request and checks every verdict", async () => {
      const info = await call("GET", "/info");
      const enclave = info.json.enclave as string;
      const domain = ledgerDomain(31337n, LEDGER);
      let posts = 0;
      const counting = (req: { url?: string }) => {
        if (req.url === "/verify-batch") posts++;
      };
      server.on("request", counting);
      const verifier = new KeepAliveEnclaveVerifier(url, enclave, domain);
      try {
        const jobs = await Promise.all([33, 34, 35, 36, 37].map(honest));
        const bad = { ...jobs[4]!, receipt: { ...jobs[4]!.receipt, inputHash: keccak256("0x78") } };
        const answers = await Promise.allSettled(
          [...jobs.slice(0, 4), bad].map((j) => verifier.verify(j)),
        );
        expect(posts).to.equal(1);
        expect(answers.map((a) => a.status)).to.deep.equal([
          "fulfilled",
          "fulfilled",
          "fulfilled",
          "fulfilled",
          "rejected",
        ]);
        const rejected = answers[4] as PromiseRejectedResult;
        expect(rejected.reason).to.be.instanceOf(EnclaveRequestError);
        expect((rejected.reason as EnclaveRequestError).message).to.contain(
          "enclave answered 422 to a verify request",
        );
        // Sampled: not selected answers carry no verdict; selected ones are checked as above.
        const sampled = await verifier.verify({ ...jobs[0]!, sampleRate: 0 });
        expect(sampled.selected).to.equal(false);
      } finally {
        server.off("request", counting);
        verifier.close();
      }
    });

    it("holds receipts while a batch is at the enclave and sends them together after it", async () => {
      const info = await call("GET", "/info");
      let posts = 0;
      const counting = (req: { url?: string }) => {
        if (req.url === "/verify-batch") posts++;
      };
      server.on("request", counting);
      const verifier = new KeepAliveEnclaveVerifier(
        url,
        info.json.enclave as string,
        ledgerDomain(31337n, LEDGER),
      );
      try {
        const jobs = await Promise.all([41, 42, 43, 44].map(honest));
        const first = verifier.verify(jobs[0]!);
        await new Promise((r) => setImmediate(r)); // the first batch (one receipt) has left
        const later: Array<Promise<unknown>> = [];
        for (const job of jobs.slice(1)) {
          later.push(verifier.verify(job)); // one per turn, while the first is in flight
          await new Promise((r) => setImmediate(r));
        }
        await Promise.all([first, ...later]);
        expect(posts).to.equal(2);
      } finally {
        server.off("request", counting);
        verifier.close();
      }
    });

    it("fails the batch's receipts when the enclave does not answer in time", async () => {
      const { createServer } = await import("node:http");
      const silentServer = createServer(() => {
        /* never answers */
      });
      const silentUrl = await listen(silentServer, 0);
      const verifier = new KeepAliveEnclaveVerifier(
        silentUrl,
        NODE,
        ledgerDomain(31337n, LEDGER),
        256,
        1,
        200,
      );
      try {
        await verifier.verify(await honest(45)).then(
          () => expect.fail("expected EnclaveRequestError"),
          (e: unknown) => {
            expect(e).to.be.instanceOf(EnclaveRequestError);
            expect((e as Error).message).to.contain("did not answer within 200 ms");
          },
        );
      } finally {
        verifier.close();
        silentServer.closeAllConnections();
        await new Promise((r) => silentServer.close(r));
      }
    });

    it("refuses verdicts signed by another key than the attested enclave", async () => {
      const verifier = new KeepAliveEnclaveVerifier(
        url,
        Wallet.createRandom().address,
        ledgerDomain(31337n, LEDGER),
      );
      try {
        await verifier.verify(await honest(38)).then(
          () => expect.fail("expected VerificationError"),
          (e: unknown) => {
            expect(e).to.be.instanceOf(VerificationError);
            expect((e as Error).message).to.equal("verdict is not signed by the expected enclave");
          },
        );
      } finally {
        verifier.close();
      }
    });

    it("reports an unreachable enclave for every receipt of the batch", async () => {
      const verifier = new KeepAliveEnclaveVerifier(
        "http://127.0.0.1:1",
        NODE,
        ledgerDomain(31337n, LEDGER),
      );
      const job = await honest(39);
      const answers = await Promise.allSettled([verifier.verify(job), verifier.verify(job)]);
      for (const a of answers) {
        expect(a.status).to.equal("rejected");
        expect(((a as PromiseRejectedResult).reason as Error).message).to.contain("is unreachable");
      }
      verifier.close();
    });
  });

  it("answers 404 for any other route", async () => {
    const res = await call("DELETE", "/verify");
    expect(res.status).to.equal(404);
    expect(res.json.message).to.equal("no route DELETE /verify");
  });
});
