/**
 * The listener on a real chain (rig.ts): an on-chain request is served with a forced enclave check
 * and fulfilled; a job that does not answer the request it read (another source, model or input,
 * or one squatting its id) is never fulfilled, and the request is marked rejected with the reason.
 */
import { expect } from "chai";
import { Wallet, getBytes, keccak256, type Contract } from "ethers";

import { encodeInputs, validateInputs } from "../../../offchain/inference/tensor.js";
import { Listener } from "../../../offchain/relayer/listener.js";
import { fundedWallet } from "../../../offchain/relayer/testing/chain.js";
import { RISK_MLP, SEQ_CNN, riskInput } from "../../e2e/relayer-system.js";
import { silent } from "../tee/fixture.js";
import { accept, batcher, execute, pipeline, rig, setUp, tearDown, type Rig } from "./rig.js";

describe("offchain/relayer/listener", function () {
  this.timeout(120_000);
  let r: Rig;
  let done: () => Promise<void>;
  let listener: Listener;
  before(async () => {
    r = await rig();
  });
  after(async () => tearDown(r));
  beforeEach(async () => {
    done = await setUp(r);
    listener = new Listener({
      db: r.t.store.db,
      store: r.t.store,
      pipeline: pipeline(r),
      sender: r.t.senderLike,
      ledger: r.system.ledger as unknown as Contract,
      provider: r.system.provider,
      confirmations: 0,
      deployBlock: r.system.deployBlock,
      maxBlockRange: 1_000,
      pollMs: 50,
      metrics: r.t.metrics,
      log: silent,
    });
  });
  afterEach(async () => done?.());

  /** Asks for a risk-mlp inference on chain; resolves with the request id and its input. */
  async function request(i: number): Promise<{ requestId: string; input: string }> {
    const model = r.engine.get(RISK_MLP.modelId);
    const input = `0x${encodeInputs(validateInputs(model.manifest, riskInput(i))).toString("hex")}`;
    const requester = await fundedWallet(r.t.provider);
    const ledger = r.system.ledger.connect(requester);
    const receipt = await (
      await ledger.requestInference(RISK_MLP.modelId, input, 0, 3_600, 0)
    ).wait();
    const event = receipt!.logs
      .map((l) => r.system.ledger.interface.parseLog(l))
      .find((e) => e?.name === "InferenceRequested")!;
    return { requestId: String(event.args.requestId).toLowerCase(), input };
  }

  const row = (requestId: string) =>
    r.t.store.db
      .prepare("SELECT state, reason FROM chain_requests WHERE request_id = ?")
      .get(requestId) as { state: string; reason: string | null };

  const pendingOnChain = async (requestId: string) =>
    BigInt(await r.system.ledger.requestHashOf(requestId)) !== 0n;

  async function settle(): Promise<void> {
    for (let i = 0; i < 100 && listener.counts().submitted !== undefined; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it("serves an on-chain request with a re-executed, agreeing receipt and fulfils it", async () => {
    const { requestId, input } = await request(1);
    expect(await listener.scan()).to.equal(1);
    await listener.serve();
    const job = r.t.store.getJob(requestId)!;
    expect(job).to.deep.include({ source: "chain", selected: true, state: "pending" });
    expect(job.receipt.inputHash).to.equal(keccak256(getBytes(input)));
    expect(job.verdict?.agree).to.equal(true);
    await settle();
    expect(row(requestId)).to.deep.equal({ state: "done", reason: null });
    expect(await pendingOnChain(requestId)).to.equal(false);
    expect(listener.hasRequest(requestId)).to.equal(true);
  });

  it("never fulfils with a job that squats the request's id, marks it rejected, and keeps anchoring", async () => {
    const { requestId } = await request(2);
    // An HTTP job a previous relayer stored under the id the chain gave the request (the old API
    // took client-chosen ids), logged by that relayer's enclave.
    const [http] = await execute(pipeline(r), r, ["squat"]);
    const squatter = {
      ...http!,
      requestId,
      receipt: { ...http!.receipt, requestId },
      enclave: Wallet.createRandom().address,
    };
    r.t.store.insertJobs([squatter]);
    const later = await accept(r, ["later"]);
    await listener.scan();
    await listener.serve();
    expect(row(requestId)).to.deep.equal({
      state: "rejected",
      reason: "another job holds this request id",
    });
    expect(r.t.sender.status(`fulfil:${requestId}`)).to.equal(undefined);
    expect(await pendingOnChain(requestId)).to.equal(true);
    expect(r.t.store.getJob(requestId)!.receipt).to.deep.equal(squatter.receipt);
    // The enclave was not handed a receipt this store cannot hold: anchoring goes on.
    expect(await r.t.current.client.logged(requestId)).to.equal(null);
    await batcher(r).tick();
    expect(r.t.store.getJob(later[0]!.requestId)!.batch).to.deep.include({ state: "anchored" });
  });

  it("serves a request whose receipt the enclave logged before a crash, recovered by the batcher", async () => {
    const { requestId, input } = await request(4);
    await listener.scan();
    // The relayer died after the enclave logged the receipt, before its own write.
    const logged = await pipeline(r).execute({
      requestId,
      modelId: RISK_MLP.modelId,
      inputs: riskInput(4),
      source: "chain",
      force: true,
    });
    expect(logged.receipt.inputHash).to.equal(keccak256(getBytes(input)));
    await accept(r, ["traffic"]); // a batch is due: the enclave's batch lists the lost receipt
    await batcher(r, { isChainRequest: (id) => listener.hasRequest(id) }).tick();
    const recovered = r.t.store.getJob(requestId)!;
    expect(recovered).to.deep.include({ source: "chain", outputs: [] });
    await listener.serve();
    await settle();
    expect(row(requestId)).to.deep.equal({ state: "done", reason: null });
    expect(await pendingOnChain(requestId)).to.equal(false);
    expect(r.t.store.getJob(requestId)).to.deep.include({ outputs: logged.outputs });
  });

  for (const [what, change] of [
    ["another source", { source: "http" }],
    ["another model", { modelId: SEQ_CNN.modelId }],
    ["another input", { inputHash: keccak256("0x01") }],
  ] as const) {
    it(`never fulfils with a stored job of ${what}, and marks the request rejected`, async () => {
      const { requestId } = await request(3);
      await listener.scan();
      // A restarted relayer finds the request submitted, and a job under its id that is not its.
      const [job] = await accept(r, [`stored-${what}`]);
      const receipt = {
        ...job!.receipt,
        ...("modelId" in change ? { modelId: change.modelId } : {}),
        ...("inputHash" in change ? { inputHash: change.inputHash } : {}),
      };
      r.t.store.db
        .prepare("UPDATE jobs SET request_id = ?, source = ?, receipt = ? WHERE request_id = ?")
        .run(
          requestId,
          "source" in change ? change.source : "chain",
          JSON.stringify({ ...receipt, timestamp: receipt.timestamp.toString() }),
          job!.requestId,
        );
      r.t.store.db
        .prepare("UPDATE chain_requests SET state = 'submitted' WHERE request_id = ?")
        .run(requestId);
      await listener.serve();
      expect(row(requestId)).to.deep.equal({
        state: "rejected",
        reason: "the stored job does not answer this request",
      });
      expect(r.t.sender.status(`fulfil:${requestId}`)).to.equal(undefined);
      expect(await pendingOnChain(requestId)).to.equal(true);
    });
  }
});
