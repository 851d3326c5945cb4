/**
 * The relayer's HTTP API on its own (no chain, no enclave process): a real inference engine and
 * pipeline with an enclave stand-in that logs one receipt per request and selects none. Bad
 * requests get the documented 4xx answers, and the service keeps serving afterwards; request ids
 * come from the idempotency key under the HTTP prefix, never from the client.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import type { FastifyInstance } from "fastify";
import { AbiCoder, Wallet, id, keccak256, toUtf8Bytes } from "ethers";
import { pino } from "pino";

import { systemClock } from "../../../offchain/chain/clock.js";
import { DigestSigner } from "../../../offchain/chain/ecdsa.js";
import { ledgerDomain, type Receipt } from "../../../offchain/chain/eip712.js";
import { EnclavePayloadTooLargeError, EnclaveRequestError } from "../../../offchain/tee/client.js";
import type { LoggedReceipt } from "../../../offchain/tee/enclave.js";
import { InferenceEngine } from "../../../offchain/inference/engine.js";
import { parseManifest } from "../../../offchain/inference/manifest.js";
import { encodeInputs, validateInputs } from "../../../offchain/inference/tensor.js";
import { createApi, requestBodyLimit } from "../../../offchain/relayer/api.js";
import { openDatabase } from "../../../offchain/relayer/db.js";
import { RelayerMetrics } from "../../../offchain/relayer/metrics.js";
import {
  InferencePipeline,
  httpRequestId,
  type EnclaveLog,
} from "../../../offchain/relayer/pipeline.js";
import { JobStore } from "../../../offchain/relayer/store.js";
import { JobWriter } from "../../../offchain/relayer/writer.js";
import { RISK_MLP, riskInput } from "../../e2e/relayer-system.js";
import { mixedModelsDir } from "../inference/models-dir.js";

const LEDGER = Wallet.createRandom().address;
const NODE = Wallet.createRandom().address;
const ENCLAVE = Wallet.createRandom().address;
const BODY_LIMIT = 4096;

/** An enclave's log in memory: one receipt per request (a second one is 409), none selected. */
class LogStandIn implements EnclaveLog {
  readonly enclave = ENCLAVE;
  readonly receipts = new Map<string, { receipt: Receipt; nodeSignature: string }>();
  calls = 0;
  /** The next submit fails with this (what EnclaveClient throws for the enclave's answer). */
  failNext: Error | null = null;

  submit(request: { receipt: Receipt; nodeSignature: string }): Promise<LoggedReceipt> {
    this.calls++;
    if (this.failNext !== null) {
      const error = this.failNext;
      this.failNext = null;
      return Promise.reject(error);
    }
    const id = request.receipt.requestId.toLowerCase();
    const logged = this.receipts.get(id);
    if (
      logged !== undefined &&
      JSON.stringify(logged.receipt, replacer) !== JSON.stringify(request.receipt, replacer)
    ) {
      return Promise.reject(
        new EnclaveRequestError("enclave answered 409 to a receipt", { details: { status: 409 } }),
      );
    }
    this.receipts.set(id, { receipt: request.receipt, nodeSignature: request.nodeSignature });
    return Promise.resolve(this.answer(id, logged !== undefined));
  }

  logged(requestId: string) {
    const logged = this.receipts.get(requestId.toLowerCase());
    return Promise.resolve(
      logged === undefined ? null : { ...this.answer(requestId, true), ...logged },
    );
  }

  private answer(requestId: string, duplicate: boolean): LoggedReceipt {
    return {
      requestId,
      receiptDigest: id(requestId),
      enclave: ENCLAVE,
      selected: false,
      sampleRatePpm: 10_000,
      verdict: null,
      signature: null,
      maxDiff: null,
      where: null,
      duplicate,
    };
  }
}

const replacer = (_k: string, v: unknown): unknown => (typeof v === "bigint" ? v.toString() : v);

describe("offchain/relayer/api", function () {
  this.timeout(60_000);
  let dir: string;
  let engine: InferenceEngine;
  let store: JobStore;
  let app: FastifyInstance;
  let url: string;
  let options: Parameters<typeof createApi>[0];
  const log = new LogStandIn();

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "opg-relayer-api-"));
    engine = new InferenceEngine({ config: { provider: "cpu" }, logger: pino({ enabled: false }) });
    await engine.loadModelsDir("models");
    store = new JobStore(openDatabase(path.join(dir, "relayer.db")));
    const domain = ledgerDomain(31337n, LEDGER);
    const metrics = new RelayerMetrics();
    const pipeline = new InferencePipeline({
      engine,
      nodeSigner: new DigestSigner(Wallet.createRandom().privateKey),
      node: NODE,
      domain,
      enclave: () => log,
      clock: systemClock,
      metrics,
      log: pino({ enabled: false }),
    });
    options = {
      pipeline,
      writer: new JobWriter(store),
      store,
      engine,
      metrics,
      chainId: 31337n,
      ledger: LEDGER,
      node: NODE,
      bodyLimit: BODY_LIMIT,
      proofOf: () => [],
      notReady: () => Promise.resolve(null),
    };
    app = createApi(options);
    url = await app.listen({ host: "127.0.0.1", port: 0 });
  });
  after(async () => {
    await app.close();
    store.db.close();
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function post(body: string): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await fetch(`${url}/v1/inferences`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  async function stillServing(): Promise<void> {
    expect((await fetch(`${url}/healthz`)).status).to.equal(200);
    const ok = await post(JSON.stringify({ modelId: RISK_MLP.modelId, inputs: riskInput(1) }));
    expect(ok.status).to.equal(200);
    expect(ok.json.status).to.equal("pending");
    expect(store.getJob(String(ok.json.requestId))).to.not.equal(null);
  }

  it("accepts a well-formed request and answers with the signed receipt", async () => {
    await stillServing();
  });

  describe("POST /v1/inferences", () => {
    const cases: Array<[string, unknown, RegExp]> = [
      ["inputs are missing", { modelId: RISK_MLP.modelId }, /inputs/],
      ["the model id is not 32-byte hex", { modelId: "0x12", inputs: riskInput(0) }, /modelId/],
      [
        "a field is not in the schema",
        { modelId: RISK_MLP.modelId, inputs: riskInput(0), extra: 1 },
        /additional/,
      ],
      [
        "a tensor value is neither a number, an integer string nor a bool",
        { modelId: RISK_MLP.modelId, inputs: { features: { dims: [1, 1], data: [{}] } } },
        /data/,
      ],
    ];
    for (const [what, body, message] of cases) {
      it(`answers 400 when ${what}, and keeps serving`, async () => {
        const before = log.calls;
        const res = await post(JSON.stringify(body));
        expect(res.status).to.equal(400);
        expect(res.json.error).to.equal("InputError");
        expect(String(res.json.message)).to.match(message);
        expect(log.calls).to.equal(before); // rejected before any work
        await stillServing();
      });
    }

    it("answers 400 for a tensor of the wrong shape, naming it", async () => {
      const res = await post(
        JSON.stringify({
          modelId: RISK_MLP.modelId,
          inputs: { features: { dims: [1, 3], data: [1, 2, 3] } },
        }),
      );
      expect(res.status).to.equal(400);
      expect(JSON.stringify(res.json)).to.contain("features");
      await stillServing();
    });

    it("answers 400 for a body that is not JSON", async () => {
      const res = await post("{ nope");
      expect(res.status).to.equal(400);
      await stillServing();
    });

    it("answers 404 for a model it does not serve, naming the model", async () => {
      const unknown = id("no such model");
      const res = await post(JSON.stringify({ modelId: unknown, inputs: riskInput(0) }));
      expect(res.status).to.equal(404);
      expect(String(res.json.message)).to.contain(unknown);
      await stillServing();
    });

    it("answers 413 for a body over the limit", async () => {
      const data = Array.from({ length: BODY_LIMIT }, () => 0.5);
      const res = await post(
        JSON.stringify({
          modelId: RISK_MLP.modelId,
          inputs: { features: { dims: [1, data.length], data } },
        }),
      );
      expect(res.status).to.equal(413);
      expect(res.json.error).to.equal("PayloadTooLargeError");
      expect(String(res.json.message)).to.contain(`over ${BODY_LIMIT} bytes`);
      expect(res.json.details).to.deep.equal({ limit: BODY_LIMIT });
      await stillServing();
    });

    it("answers 413, naming the enclave's limit, when the enclave refuses the body as too large", async () => {
      log.failNext = new EnclavePayloadTooLargeError(
        "enclave refused a 6000000-byte POST /v1/receipts: its body limit (--max-body) is 4194304 bytes",
        { details: { status: 413, error: "HttpError", limit: 4_194_304, length: 6_000_000 } },
      );
      const res = await post(JSON.stringify({ modelId: RISK_MLP.modelId, inputs: riskInput(2) }));
      expect(res.status).to.equal(413);
      expect(res.json.error).to.equal("EnclavePayloadTooLargeError");
      expect(String(res.json.message)).to.contain("4194304 bytes");
      expect(res.json.details).to.include({ limit: 4_194_304, length: 6_000_000 });
      await stillServing();
    });

    it("answers 502 when the enclave fails the request otherwise", async () => {
      log.failNext = new EnclaveRequestError("enclave answered 500 to POST /v1/receipts: boom", {
        details: { status: 500 },
      });
      const res = await post(JSON.stringify({ modelId: RISK_MLP.modelId, inputs: riskInput(3) }));
      expect(res.status).to.equal(502);
      await stillServing();
    });
  });

  describe("POST /v1/inferences, binary (application/octet-stream)", () => {
    const binary = (bytes: Uint8Array, headers: Record<string, string> = {}) =>
      fetch(`${url}/v1/inferences`, {
        method: "POST",
        headers: { "content-type": "application/octet-stream", ...headers },
        body: new Uint8Array(bytes),
      }).then(async (res) => ({
        status: res.status,
        json: (await res.json()) as Record<string, unknown>,
      }));
    const riskBytes = (i: number): Buffer => {
      const model = engine.get(RISK_MLP.modelId).manifest;
      return encodeInputs(validateInputs(model, riskInput(i)));
    };

    it("answers as the same request in JSON: the same inputHash, outputs and request id", async () => {
      const headers = { "x-opg-model-id": RISK_MLP.modelId, "x-opg-idempotency-key": "bin-1" };
      const bin = await binary(riskBytes(11), headers);
      expect(bin.status).to.equal(200);
      expect(bin.json.requestId).to.equal(httpRequestId(NODE, "bin-1"));
      const json = await post(
        JSON.stringify({ modelId: RISK_MLP.modelId, inputs: riskInput(11), idempotencyKey: "j-1" }),
      );
      const receipt = (r: { json: Record<string, unknown> }) =>
        r.json.receipt as Record<string, unknown>;
      expect(receipt(bin).inputHash).to.equal(keccak256(riskBytes(11)));
      expect(receipt(bin).inputHash).to.equal(receipt(json).inputHash);
      expect(bin.json.outputs).to.deep.equal(json.json.outputs);
      await stillServing();
    });

    it("answers 400 without x-opg-model-id, and for a body that is not the canonical encoding", async () => {
      const none = await binary(riskBytes(1));
      expect(none.status).to.equal(400);
      expect(String(none.json.message)).to.contain("x-opg-model-id");
      const cut = await binary(riskBytes(1).subarray(0, 30), {
        "x-opg-model-id": RISK_MLP.modelId,
      });
      expect(cut.status).to.equal(400);
      expect(cut.json.error).to.equal("InferenceInputError");
      await stillServing();
    });

    it("answers 413 for a body over the binary limit, naming it", async () => {
      const res = await binary(Buffer.alloc(256 * 1024 + 1), {
        "x-opg-model-id": RISK_MLP.modelId,
      });
      expect(res.status).to.equal(413);
      expect(res.json.error).to.equal("PayloadTooLargeError");
      expect(res.json.details).to.deep.equal({ limit: 256 * 1024 });
      await stillServing();
    });
  });

  describe("the default body limit (api.bodyLimitBytes unset)", () => {
    const image = parseManifest({
      schema: "opg.model-manifest/1",
      name: "image",
      modelFile: "model.onnx",
      modelId: `0x${"cd".repeat(32)}`,
      inputs: [{ name: "image", dtype: "float32", shape: [1, 3, 640, 640] }],
      outputs: [{ name: "mask", dtype: "float32", shape: [1, 640, 640] }],
      outputScale: 1000,
      tolerance: 2,
      maxBatch: 1,
    });

    it("is 256 KiB for the shipped models", () => {
      expect(requestBodyLimit(engine.list().map((m) => m.manifest))).to.equal(256 * 1024);
    });

    it("is what a JSON request for the largest model needs: 24 bytes a value and 64 KiB", () => {
      const limit = requestBodyLimit([...engine.list().map((m) => m.manifest), image]);
      expect(limit).to.equal(64 * 1024 + 24 * 3 * 640 * 640);
    });

    it("follows a model's maxInputBytes", () => {
      const capped = parseManifest({ ...image, maxInputBytes: 4 * 1024 * 1024 });
      expect(requestBodyLimit([capped])).to.equal(64 * 1024 + 24 * 1024 * 1024);
    });
  });

  describe("request ids", () => {
    const submit = (body: Record<string, unknown>) =>
      post(JSON.stringify({ modelId: RISK_MLP.modelId, inputs: riskInput(7), ...body }));

    it("are httpRequestId(node, idempotencyKey): the same key is the same request, answered from the store", async () => {
      const first = await submit({ idempotencyKey: "order-1" });
      expect(first.status).to.equal(200);
      expect(first.json.requestId).to.equal(httpRequestId(NODE, "order-1"));
      const calls = log.calls;
      const again = await submit({ idempotencyKey: "order-1" });
      expect(again.json).to.deep.equal(first.json);
      expect(log.calls).to.equal(calls); // not inferred, signed or logged again
      const other = await submit({ idempotencyKey: "order-2" });
      expect(other.json.requestId).to.equal(httpRequestId(NODE, "order-2"));
      // Without a key, every request is a new one.
      const [a, b] = [await submit({}), await submit({})];
      expect(a.json.requestId).to.not.equal(b.json.requestId);
    });

    it("answer one request to the same key sent twice at once", async () => {
      const [a, b] = await Promise.all([
        submit({ idempotencyKey: "order-3" }),
        submit({ idempotencyKey: "order-3" }),
      ]);
      expect(a.json.requestId).to.equal(httpRequestId(NODE, "order-3"));
      expect(b.json.receipt).to.deep.equal(a.json.receipt);
      const stored = store.getJob(httpRequestId(NODE, "order-3"))!;
      expect(stored.nodeSignature).to.equal(a.json.nodeSignature);
    });

    it("is keccak256(abi.encode(tag, node, keccak256(key))), for any key (unicode, empty, long)", () => {
      const tag = keccak256(toUtf8Bytes("OPG HTTP request v1"));
      for (const key of ["order-1", "", "ключ-✓", "x".repeat(10_000)]) {
        for (const node of [NODE, NODE.toLowerCase()]) {
          expect(httpRequestId(node, key)).to.equal(
            keccak256(
              AbiCoder.defaultAbiCoder().encode(
                ["bytes32", "address", "bytes32"],
                [tag, node, keccak256(toUtf8Bytes(key))],
              ),
            ),
          );
        }
      }
      expect(() => httpRequestId("0x12", "k")).to.throw("node is not a 20-byte hex address");
    });

    it("cannot be an on-chain request's id (keccak256(abi.encode(chainId, ledger, nonce)))", async () => {
      const onChain = (nonce: number) =>
        keccak256(
          AbiCoder.defaultAbiCoder().encode(
            ["uint256", "address", "uint256"],
            [31337n, LEDGER, nonce],
          ),
        );
      const refused = await submit({ requestId: onChain(1) });
      expect(refused.status).to.equal(400);
      expect(String(refused.json.message)).to.match(/additional/);
      for (let nonce = 1; nonce <= 5; nonce++) {
        const res = await submit({ idempotencyKey: onChain(nonce) });
        expect(res.status).to.equal(200);
        expect(res.json.requestId).to.not.equal(onChain(nonce));
        expect(store.getJob(onChain(nonce))).to.equal(null);
      }
    });

    it("complete a job recovered from the enclave's log when its request arrives again", async () => {
      const requestId = httpRequestId(NODE, "order-4");
      await submit({ idempotencyKey: "order-4" });
      const job = store.getJob(requestId)!;
      // As if this relayer had crashed after the enclave logged the receipt (a while ago) and
      // before its own write: the store holds only what the enclave's log says.
      const logged = log.receipts.get(requestId)!;
      const older = { ...logged.receipt, timestamp: logged.receipt.timestamp - 10n };
      log.receipts.set(requestId, { ...logged, receipt: older });
      store.db.prepare("DELETE FROM jobs WHERE request_id = ?").run(requestId);
      store.insertRecovered({ ...job, receipt: older, source: "http" });
      expect(JobStore.isRecovered(store.getJob(requestId)!)).to.equal(true);
      // The request runs again; the enclave refuses its new receipt (409), and the logged one,
      // the same output, is the answer.
      const again = await submit({ idempotencyKey: "order-4" });
      expect(again.json.receipt).to.deep.include({ timestamp: older.timestamp.toString() });
      expect(again.json.outputs).to.deep.equal(job.outputs);
      expect(JobStore.isRecovered(store.getJob(requestId)!)).to.equal(false);
    });
  });

  describe("GET /v1/models", () => {
    it("lists the models served, and no failures when every folder loaded", async () => {
      const res = await fetch(`${url}/v1/models`);
      expect(res.status).to.equal(200);
      const json = (await res.json()) as { models: Array<{ name: string }>; failures: unknown[] };
      expect(json.models.map((m) => m.name)).to.have.members(["risk-mlp", "seq-cnn"]);
      expect(json.failures).to.deep.equal([]);
    });

    it("serves the models that loaded and names each model folder that did not", async () => {
      const mixed = mixedModelsDir();
      const mixedEngine = new InferenceEngine({
        config: { provider: "cpu" },
        logger: pino({ enabled: false }),
      });
      const mixedApp = createApi({ ...options, engine: mixedEngine });
      try {
        await mixedEngine.loadModels(mixed.root);
        const res = await mixedApp.inject({ method: "GET", url: "/v1/models" });
        expect(res.statusCode).to.equal(200);
        const json = res.json<{
          models: Array<{ name: string; modelId: string }>;
          failures: Array<Record<string, unknown>>;
        }>();
        expect(json.models.map((m) => m.name)).to.deep.equal(["risk-mlp", "seq-cnn"]);
        expect(json.failures).to.have.length(1);
        expect(json.failures[0]).to.deep.include({ dir: mixed.broken, error: "ModelLoadError" });
        expect(json.failures[0]!.message).to.contain("invalid model manifest");
      } finally {
        await mixedApp.close();
        await mixedEngine.close();
        mixed.remove();
      }
    });
  });

  describe("GET /v1/receipts/:requestId", () => {
    it("answers 400 for an id that is not 32-byte hex and 404 for an unknown one", async () => {
      expect((await fetch(`${url}/v1/receipts/0x12`)).status).to.equal(400);
      const res = await fetch(`${url}/v1/receipts/${id("unknown")}`);
      expect(res.status).to.equal(404);
      expect(((await res.json()) as { error: string }).error).to.equal("NotFound");
      await stillServing();
    });
  });

  it("answers 404 for an unknown route", async () => {
    expect((await fetch(`${url}/v2/nothing`)).status).to.equal(404);
    await stillServing();
  });
});
