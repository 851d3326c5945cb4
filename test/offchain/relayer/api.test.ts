/**
 * The relayer's HTTP API on its own (no chain, no enclave process): a real inference engine and
 * pipeline with an enclave stand-in that selects nothing. Bad requests get the documented 4xx
 * answers, and the service keeps serving afterwards.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import type { FastifyInstance } from "fastify";
import { Wallet, id } from "ethers";
import { pino } from "pino";

import { ledgerDomain } from "../../../offchain/chain/eip712.js";
import { InferenceEngine } from "../../../offchain/inference/engine.js";
import { createApi } from "../../../offchain/relayer/api.js";
import { openDatabase } from "../../../offchain/relayer/db.js";
import { RelayerMetrics } from "../../../offchain/relayer/metrics.js";
import { InferencePipeline } from "../../../offchain/relayer/pipeline.js";
import { JobStore } from "../../../offchain/relayer/store.js";
import { JobWriter } from "../../../offchain/relayer/writer.js";
import { RISK_MLP, riskInput } from "../../e2e/relayer-system.js";

const LEDGER = Wallet.createRandom().address;
const BODY_LIMIT = 4096;

describe("offchain/relayer/api", function () {
  this.timeout(60_000);
  let dir: string;
  let engine: InferenceEngine;
  let store: JobStore;
  let app: FastifyInstance;
  let url: string;
  let enclaveCalls = 0;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "opg-relayer-api-"));
    engine = new InferenceEngine({ config: { provider: "cpu" }, logger: pino({ enabled: false }) });
    await engine.loadModelsDir("models");
    store = new JobStore(openDatabase(path.join(dir, "relayer.db")));
    const domain = ledgerDomain(31337n, LEDGER);
    const metrics = new RelayerMetrics();
    const pipeline = new InferencePipeline({
      engine,
      nodeSigner: Wallet.createRandom() as unknown as Wallet,
      node: Wallet.createRandom().address,
      domain,
      enclave: {
        enclave: Wallet.createRandom().address,
        verify: () => {
          enclaveCalls++;
          return Promise.resolve({ selected: false, receiptDigest: id("digest") });
        },
      },
      sampleRate: 0,
      metrics,
      log: pino({ enabled: false }),
    });
    app = createApi({
      pipeline,
      writer: new JobWriter(store),
      store,
      engine,
      metrics,
      chainId: 31337n,
      ledger: LEDGER,
      bodyLimit: BODY_LIMIT,
      proofOf: () => [],
      notReady: () => Promise.resolve(null),
    });
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
        "a tensor value is neither a number nor an integer string",
        { modelId: RISK_MLP.modelId, inputs: { features: { dims: [1, 1], data: [true] } } },
        /data/,
      ],
    ];
    for (const [what, body, message] of cases) {
      it(`answers 400 when ${what}, and keeps serving`, async () => {
        const before = enclaveCalls;
        const res = await post(JSON.stringify(body));
        expect(res.status).to.equal(400);
        expect(res.json.error).to.equal("InputError");
        expect(String(res.json.message)).to.match(message);
        expect(enclaveCalls).to.equal(before); // rejected before any work
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
      await stillServing();
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
