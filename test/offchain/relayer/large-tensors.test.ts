/**
 * Large tensors end to end (issue 15): a 3×640×640 float32 image (1,228,800 values) sent to the
 * relayer's HTTP API, inferred, handed to a real enclave over HTTP (which re-executes it), and
 * anchored on chain, on the relayer rig with an image model added to the shipped ones. Binary and
 * JSON requests carry the same tensor to the same inputHash; an enclave whose body limit is below
 * the image answers the relayer's caller 413 naming that limit.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { keccak256 } from "ethers";
import type { FastifyInstance } from "fastify";

import { encodeInputs } from "../../../offchain/inference/tensor.js";
import { createApi, requestBodyLimit } from "../../../offchain/relayer/api.js";
import type { Batcher } from "../../../offchain/relayer/batcher.js";
import { JobWriter } from "../../../offchain/relayer/writer.js";
import { MODELS_DIR, imageMeanModel, prng } from "../../../scripts/models/generate.js";
import { batcher, localEnclave, pipeline, rig, setUp, tearDown, type Rig } from "./rig.js";

const IMAGE = imageMeanModel();
const DIMS = [1, 3, 640, 640];
const VALUES = 3 * 640 * 640;

describe("offchain/relayer large tensors (a 3×640×640 image through the relayer and the enclave)", function () {
  this.timeout(240_000);
  let r: Rig;
  let done: () => Promise<void>;
  let models: string;
  let app: FastifyInstance;
  let url: string;
  let b: Batcher;
  const image = (() => {
    const next = prng(640);
    return new Float32Array(VALUES).map(() => Math.fround(next() / 2 ** 32));
  })();

  before(async () => {
    models = mkdtempSync(path.join(tmpdir(), "opg-large-models-"));
    cpSync(path.join(MODELS_DIR, "risk-mlp"), path.join(models, "risk-mlp"), { recursive: true });
    mkdirSync(path.join(models, IMAGE.name));
    writeFileSync(path.join(models, IMAGE.name, "model.onnx"), IMAGE.onnx);
    writeFileSync(path.join(models, IMAGE.name, "manifest.json"), JSON.stringify(IMAGE.manifest));
    r = await rig({ modelsDir: models });
  });
  after(async () => {
    await tearDown(r);
    rmSync(models, { recursive: true, force: true });
  });
  beforeEach(async () => {
    done = await setUp(r);
    b = batcher(r);
    app = createApi({
      pipeline: pipeline(r),
      writer: new JobWriter(r.t.store),
      store: r.t.store,
      engine: r.engine,
      metrics: r.t.metrics,
      chainId: 31337n,
      ledger: r.ledgerAddress,
      node: r.system.gpuNode,
      bodyLimit: requestBodyLimit(r.engine.list().map((m) => m.manifest)),
      proofOf: (job) => b.proofOf(job),
      notReady: () => Promise.resolve(null),
    });
    url = await app.listen({ host: "127.0.0.1", port: 0 });
  });
  afterEach(async () => {
    await app.close();
    await done?.();
  });

  async function submit(
    body: Uint8Array | string,
    headers: Record<string, string>,
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await fetch(`${url}/v1/inferences`, {
      method: "POST",
      headers,
      body: typeof body === "string" ? body : new Uint8Array(body),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }
  const binary = (key: string) =>
    submit(encodeInputs([{ name: "image", dtype: "float32", dims: DIMS, data: image }]), {
      "content-type": "application/octet-stream",
      "x-opg-model-id": IMAGE.manifest.modelId as string,
      "x-opg-idempotency-key": key,
    });
  const receipt = (r: { json: Record<string, unknown> }) =>
    r.json.receipt as Record<string, string>;

  it("accepts it as binary, the enclave re-executes it and agrees, and its receipt is anchored", async () => {
    const body = encodeInputs([{ name: "image", dtype: "float32", dims: DIMS, data: image }]);
    expect(body.length).to.be.greaterThan(4 * VALUES);
    const res = await binary("image-1");
    expect(res.status, JSON.stringify(res.json).slice(0, 400)).to.equal(200);
    expect(receipt(res).inputHash).to.equal(keccak256(body));
    const verification = res.json.verification as {
      selected: boolean;
      verdict: { agree: boolean };
    };
    expect(verification.selected).to.equal(true);
    expect(verification.verdict.agree).to.equal(true);
    // Per-channel means of uniform [0, 1) pixels: about 0.5 (scale 1e6).
    const [means] = res.json.outputs as Array<{ values: string[] }>;
    for (const v of means!.values) expect(Math.abs(Number(v) - 500_000)).to.be.lessThan(5_000);
    await b.tick();
    const stored = r.t.store.getJob(String(res.json.requestId))!;
    expect(stored.batch?.state).to.equal("anchored");
  });

  it("accepts the same image as JSON, to the same inputHash and outputs", async () => {
    const bin = await binary("image-2");
    const json = await submit(
      JSON.stringify({
        modelId: IMAGE.manifest.modelId,
        inputs: { image: { dims: DIMS, data: Array.from(image) } },
        idempotencyKey: "image-json",
      }),
      { "content-type": "application/json" },
    );
    expect(json.status, JSON.stringify(json.json).slice(0, 400)).to.equal(200);
    expect(receipt(json).inputHash).to.equal(receipt(bin).inputHash);
    expect(json.json.outputs).to.deep.equal(bin.json.outputs);
  });

  it("answers 413 naming the enclave's limit when the enclave's --max-body is below the image", async () => {
    r.t.current = await localEnclave(r, { maxBodyBytes: 4 * 1024 * 1024 });
    const res = await binary("image-3");
    expect(res.status).to.equal(413);
    expect(res.json.error).to.equal("EnclavePayloadTooLargeError");
    expect(String(res.json.message)).to.contain(`${4 * 1024 * 1024} bytes`);
    expect(res.json.details).to.include({ limit: 4 * 1024 * 1024 });
  });
});
