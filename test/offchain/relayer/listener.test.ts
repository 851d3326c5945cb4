/**
 * The listener on a real chain (rig.ts): an on-chain request is served with a forced enclave check
 * and fulfilled; a job that does not answer the request it read (another source, model or input,
 * or one squatting its id) is never fulfilled, and the request is marked rejected with the reason.
 */
import { expect } from "chai";
import { Wallet, getBytes, keccak256, type Contract } from "ethers";

import {
  encodeInputs,
  encodeOutputs,
  validateInputs,
  type QuantisedTensor,
} from "../../../offchain/inference/tensor.js";
import type { TxIntent, TxSenderLike } from "../../../offchain/relayer/tx.js";
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
    listener = listenerOf(r.system.gpuNode, r.t.senderLike);
  });

  /** A listener of `node` on the rig's store and chain, sending through `sender`. */
  function listenerOf(node: string, sender: TxSenderLike): Listener {
    return new Listener({
      db: r.t.store.db,
      store: r.t.store,
      pipeline: pipeline(r),
      sender,
      ledger: r.system.ledger as unknown as Contract,
      provider: r.system.provider,
      node,
      clock: r.t.clock,
      confirmations: 0,
      deployBlock: r.system.deployBlock,
      maxBlockRange: 1_000,
      pollMs: 50,
      metrics: r.t.metrics,
      log: silent,
    });
  }
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

  /**
   * A listener of `node` whose fulfil intents are held until `release`, so that the test can settle
   * the request on chain first (what a faster relayer does).
   */
  function heldListener(node: string): { listener: Listener; release: () => void } {
    const held: TxIntent[] = [];
    let holding = true;
    let open: () => void = () => {};
    const released = new Promise<void>((resolve) => (open = resolve));
    const l = listenerOf(node, {
      ...r.t.senderLike,
      submit: (intent) => (holding ? void held.push(intent) : r.t.senderLike.submit(intent)),
      // Waits for the intent once it is released (the sender knows nothing of it before).
      wait: (key) => released.then(() => r.t.senderLike.wait(key)),
    });
    return {
      listener: l,
      release: () => {
        holding = false;
        held.splice(0).forEach((i) => r.t.senderLike.submit(i));
        open();
      },
    };
  }

  /** Sends the fulfil the listener would send, from another account (a faster sender). */
  async function fulfilFirst(requestId: string, input: string): Promise<string> {
    const job = r.t.store.getJob(requestId)!;
    const output = encodeOutputs(
      job.outputs.map((t): QuantisedTensor => ({
        ...t,
        values: BigInt64Array.from(t.values.map(BigInt)),
      })),
    );
    const stored = JSON.parse(
      (
        r.t.store.db
          .prepare("SELECT request FROM chain_requests WHERE request_id = ?")
          .get(requestId) as { request: string }
      ).request,
    ) as Record<string, string | number>;
    expect(stored.inputHash).to.equal(keccak256(input));
    const racer = await fundedWallet(r.t.provider);
    const tx = await r.system.ledger
      .connect(racer)
      .fulfil(
        { ...stored, fee: BigInt(stored.fee!), deadline: BigInt(stored.deadline!) } as never,
        job.receipt,
        job.nodeSignature,
        job.verdict!.timestamp,
        job.enclaveSignature!,
        output,
      );
    await tx.wait();
    return tx.hash;
  }

  async function settled(l: Listener): Promise<void> {
    for (let i = 0; i < 100 && l.counts().submitted !== undefined; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it("records a request another node fulfilled first as lost, with the winner, not as done", async () => {
    const { requestId, input } = await request(40);
    // This relayer is node `us`; the request is fulfilled first in the GPU node's name.
    const us = Wallet.createRandom().address;
    const { listener: l, release } = heldListener(us);
    expect(await l.scan()).to.equal(1);
    await l.serve();
    const winnerTx = await fulfilFirst(requestId, input);
    release();
    await settled(l);
    expect(row(requestId)).to.deep.equal({
      state: "lost",
      reason: `fulfilled by node ${r.system.gpuNode} (${winnerTx})`,
    });
    expect(l.counts().lost).to.equal(1);
  });

  it("records a request this node's receipt fulfilled as done, even when another account sent the fulfil", async () => {
    const { requestId, input } = await request(41);
    const { listener: l, release } = heldListener(r.system.gpuNode);
    expect(await l.scan()).to.equal(1);
    await l.serve();
    await fulfilFirst(requestId, input);
    release();
    await settled(l);
    expect(row(requestId).state).to.equal("done");
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
