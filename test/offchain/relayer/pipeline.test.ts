/**
 * The GPU node's side of a request (offchain/relayer/pipeline.ts) with the real enclave over HTTP
 * (the in-process chain of test/offchain/tee/fixture.ts): infer, sign, hand to the enclave's log;
 * after a crash the enclave's logged receipt is the answer (409 -> logged()), but only for the same
 * output; a contradicted output is a rejected job, reported.
 */
import { expect } from "chai";
import { Wallet, recoverAddress } from "ethers";

import { DigestSigner } from "../../../offchain/chain/ecdsa.js";
import { receiptDigest } from "../../../offchain/chain/eip712.js";
import { RelayerMetrics } from "../../../offchain/relayer/metrics.js";
import {
  InferencePipeline,
  httpRequestId,
  type InferenceJob,
  type PipelineOptions,
} from "../../../offchain/relayer/pipeline.js";
import type { JobRecord } from "../../../offchain/relayer/store.js";
import { EnclaveClient, EnclaveRequestError } from "../../../offchain/tee/client.js";
import type { Enclave } from "../../../offchain/tee/enclave.js";
import { createEnclaveServer, listen } from "../../../offchain/tee/server.js";
import { silent, world, type World } from "../tee/fixture.js";

describe("offchain/relayer/pipeline", function () {
  this.timeout(120_000);
  let w: World;
  let enclave: Enclave;
  let client: EnclaveClient;
  let close: () => Promise<void>;

  before(async () => {
    w = await world();
    enclave = await w.enclave();
    const server = createEnclaveServer({ enclave, clock: w.clock, logger: silent });
    const url = await listen(server, 0);
    client = new EnclaveClient({
      url,
      enclave: enclave.address,
      domain: w.domain,
      node: w.protocol.gpuNode,
      signer: w.nodeSigner,
      clock: w.clock,
    });
    close = () =>
      new Promise((resolve) => {
        client.close();
        server.closeAllConnections();
        server.close(() => resolve());
      });
  });
  after(async () => {
    await close?.();
    await w?.close();
  });

  function pipeline(o: Partial<PipelineOptions> = {}): InferencePipeline {
    return new InferencePipeline({
      engine: w.engine,
      nodeSigner: w.nodeSigner,
      node: w.protocol.gpuNode,
      domain: w.domain,
      enclave: () => client,
      clock: w.clock,
      metrics: new RelayerMetrics(false),
      log: silent,
      ...o,
    });
  }

  const job = (key: string, seed = key.length): InferenceJob => ({
    requestId: httpRequestId(w.protocol.gpuNode, key),
    modelId: w.risk.modelId,
    inputs: w.inputs(seed),
    source: "http",
  });

  it("signs the receipt with the node's key and stores the enclave's checked verdict", async () => {
    const record = await pipeline().execute(job("a"));
    expect(record).to.deep.include({
      requestId: job("a").requestId,
      source: "http",
      enclave: enclave.address,
      selected: true,
      state: "pending",
      inputs: job("a").inputs,
    });
    expect(record.receipt).to.deep.include({ node: w.protocol.gpuNode, timestamp: w.clock.now() });
    expect(recoverAddress(receiptDigest(w.domain, record.receipt), record.nodeSignature)).to.equal(
      w.nodeSigner.address,
    );
    expect(record.verdict).to.deep.include({ agree: true, outputHash: record.receipt.outputHash });
    expect(record.enclaveSignature).to.equal(enclave.logged(record.requestId)!.signature);
  });

  it("dates and signs a receipt anew, once, when the enclave finds it stale and the clock resyncs", async () => {
    const behind = { t: w.clock.now() - 3_600n, now: () => behind.t };
    let resyncs = 0;
    const resyncClock = (): Promise<void> => {
      resyncs++;
      behind.t = w.clock.now();
      return Promise.resolve();
    };
    const record = await pipeline({ clock: behind, resyncClock }).execute(job("stale-1"));
    expect(resyncs).to.equal(1);
    expect(record.receipt.timestamp).to.equal(w.clock.now());
    expect(recoverAddress(receiptDigest(w.domain, record.receipt), record.nodeSignature)).to.equal(
      w.nodeSigner.address,
    );
    // Without a clock to resync, the enclave's refusal stands.
    behind.t = w.clock.now() - 3_600n;
    const error = await pipeline({ clock: behind })
      .execute(job("stale-2"))
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(error).to.be.instanceOf(EnclaveRequestError);
    expect((error as EnclaveRequestError).status).to.equal(422);
  });

  it("answers with the receipt the enclave logged when the request comes again after a crash", async () => {
    const p = pipeline();
    const first = await p.execute(job("b"));
    w.clock.advance(5); // the retry signs a new receipt: the enclave refuses it (409)
    const again = await p.execute(job("b"));
    expect(again.receipt).to.deep.equal(first.receipt);
    expect(again.nodeSignature).to.equal(first.nodeSignature);
    expect(again.verdict).to.deep.equal(first.verdict);
    expect(again.enclaveSignature).to.equal(first.enclaveSignature);
    expect(enclave.evidence(0).filter((e) => e.kind === "double-receipt")).to.deep.equal([]);
  });

  it("refuses the logged receipt when it is another output (the 409 stands)", async () => {
    const metrics = new RelayerMetrics(false);
    await pipeline().execute(job("c"));
    w.clock.advance(1);
    const error = await pipeline({ corruptOutputs: true, metrics })
      .execute(job("c"))
      .then(
        () => expect.fail("expected the enclave's 409"),
        (e: unknown) => e as EnclaveRequestError,
      );
    expect(error).to.be.instanceOf(EnclaveRequestError);
    expect(error.status).to.equal(409);
    expect(await metrics.registry.getSingleMetricAsString("opg_relayer_failures_total")).to.match(
      /stage="enclave"\} 1/,
    );
  });

  it("does not look up the log for another refusal", async () => {
    let lookups = 0;
    const counting = {
      enclave: client.enclave,
      submit: (r: Parameters<EnclaveClient["submit"]>[0]) => client.submit(r),
      logged: (id: string) => {
        lookups++;
        return client.logged(id);
      },
    };
    // Receipts signed by a key that is not the node's: refused (403), not a crash to recover from.
    const outsider = pipeline({
      nodeSigner: new DigestSigner(Wallet.createRandom().privateKey),
      enclave: () => counting,
    });
    const error = await outsider.execute(job("d")).then(
      () => expect.fail("expected a 403"),
      (e: unknown) => e as EnclaveRequestError,
    );
    expect(error.status).to.equal(403);
    expect(lookups).to.equal(0);
  });

  it("rejects a job the enclave contradicts, and hands it to onRejected", async () => {
    const rejected: JobRecord[] = [];
    const record = await pipeline({
      corruptOutputs: true,
      onRejected: (j) => rejected.push(j),
    }).execute(job("e"));
    expect(record.state).to.equal("rejected");
    expect(record.verdict).to.deep.include({ agree: false });
    expect(rejected).to.deep.equal([record]);
    expect(enclave.evidence(0).some((e) => e.kind === "contradicted")).to.equal(true);
  });
});
