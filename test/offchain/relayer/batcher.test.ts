/**
 * The batcher on a real chain (test/offchain/relayer/rig.ts: a hardhat node, the protocol, an
 * enclave registered in TeeRegistry, the real TxSender): it asks the enclave to cut, stores and
 * anchors; a transient failure stalls anchoring with a reason and is retried with backoff until its
 * cause is gone; a permanent one stalls only its enclave key; a batch id the chain holds with
 * another root is never recorded anchored; what the enclave logged or signed before a crash let the
 * store write it is recovered.
 */
import { expect } from "chai";
import { Wallet, id } from "ethers";

import { DigestSigner } from "../../../offchain/chain/ecdsa.js";
import { batchIdOf } from "../../../offchain/relayer/batcher.js";
import { JobStore, type JobRecord } from "../../../offchain/relayer/store.js";
import { DEFAULT_REGISTRATION_TTL } from "../../../offchain/staking/deploy.js";
import { fundedWallet } from "../../../offchain/relayer/testing/chain.js";
import type { EnclaveChain } from "../../../offchain/tee/chain-view.js";
import {
  accept,
  batcher,
  execute,
  increaseTime,
  localEnclave,
  pipeline,
  rig,
  setUp,
  tearDown,
  type Rig,
} from "./rig.js";

describe("offchain/relayer/batcher", function () {
  this.timeout(120_000);
  let r: Rig;
  let done: () => Promise<void>;
  before(async () => {
    r = await rig();
  });
  after(async () => tearDown(r));
  beforeEach(async () => {
    done = await setUp(r);
  });
  afterEach(async () => done?.());

  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  /** The job as stored, with its batch anchored on chain under the batch's own root. */
  async function expectAnchored(job: JobRecord, proof: string[]): Promise<void> {
    const stored = r.t.store.getJob(job.requestId)!;
    expect(stored.batch, job.requestId).to.deep.include({ state: "anchored", failure: null });
    const batch = stored.batch!;
    expect(batch.batchId).to.equal(batchIdOf(batch.enclave, batch.sequence));
    expect(await r.system.ledger.rootOf(batch.batchId!)).to.equal(batch.root);
    expect(await r.system.ledger.verifyReceipt(batch.batchId!, stored.receipt, proof)).to.equal(
      true,
    );
  }

  it("cuts a batch at the enclave, stores it with its jobs and anchors it", async () => {
    const b = batcher(r);
    const jobs = await accept(r, ["a", "b", "c"]);
    await b.tick();
    const enclave = r.t.current.enclave.address;
    const batch = r.t.store.getBatch(enclave, 0n)!;
    expect(batch).to.deep.include({
      count: 3,
      reexecuted: 3,
      state: "anchored",
      node: r.system.gpuNode,
      signer: r.system.nodeSigner.address,
    });
    expect(batch.anchorTx).to.match(/^0x[0-9a-f]{64}$/);
    for (const job of jobs) await expectAnchored(job, b.proofOf(r.t.store.getJob(job.requestId)!));
    expect(b.stalled()).to.equal(null);
    expect(r.t.store.oldestUnanchored()).to.equal(null);
    // The done check: the ledger stores this batch's root under its id.
    const check = r.t.doneChecks.get("anchor")!;
    const intent = {
      key: `anchor:${enclave}:0`,
      kind: "anchor" as const,
      to: r.ledgerAddress,
      data: "0x",
    };
    expect(await check(intent)).to.equal(true);
    expect(await check({ ...intent, key: `anchor:${enclave}:1` })).to.equal(false);
  });

  it("stalls, saying why, while the enclave's registration has lapsed, and anchors once it is renewed", async () => {
    const b = batcher(r);
    const enclave = r.t.current.enclave.address;
    await increaseTime(r, DEFAULT_REGISTRATION_TTL + 1n);
    expect(await r.system.tee.isActiveEnclave(enclave)).to.equal(false);
    const jobs = await accept(r, ["d", "e"]);
    await b.tick();
    const stall = b.stalled()!;
    expect(stall).to.deep.include({ permanent: false, enclave, sequence: 0n });
    expect(stall.reason).to.match(
      new RegExp(
        `^anchoring stalled: batch 0 of enclave ${enclave} failed \\(LedgerInactiveEnclave: LedgerInactiveEnclave\\(${enclave}\\)\\); retrying in \\d+ s$`,
      ),
    );
    const stored = r.t.store.getBatch(enclave, 0n)!;
    expect(stored).to.deep.include({ state: "signed" });
    expect(stored.failure).to.equal(`LedgerInactiveEnclave: LedgerInactiveEnclave(${enclave})`);
    // Backoff: the next round before the retry time does not try again.
    const tries = r.t.retried.length;
    await b.tick();
    expect(r.t.retried.length).to.equal(tries);
    expect(r.t.sender.status(`anchor:${enclave}:0`)).to.include({ state: "failed", attempts: 0 });
    // Still lapsed at the retry: failed again, the wait doubles, the stall keeps its start.
    await sleep(350);
    await b.tick();
    expect(r.t.retried.length).to.equal(tries + 1);
    expect(b.stalled()).to.deep.include({ since: stall.since, permanent: false });
    expect(b.stalled()!.reason).to.match(/retrying in 1 s$/); // 300 ms, then 600 ms

    await r.system.renewEnclave(enclave);
    await sleep(700);
    await b.tick();
    expect(b.stalled()).to.equal(null);
    for (const job of jobs) await expectAnchored(job, b.proofOf(r.t.store.getJob(job.requestId)!));
  });

  it("stalls only the key the chain refuses for good; the next enclave's batches anchor", async () => {
    // An enclave whose RPC lies about the node's signer: it logs receipts signed by a key that is
    // not the node's, and the chain refuses its batch for good (LedgerInvalidBatchNodeSigner).
    const impostor = Wallet.createRandom();
    const lying: EnclaveChain = {
      ...r.chain,
      signerOf: () => Promise.resolve(impostor.address),
      signerRecordOf: () => Promise.resolve({ node: r.system.gpuNode, since: 0n, until: 0n }),
    };
    const signer = new DigestSigner(impostor.privateKey);
    const misled = await localEnclave(r, { chain: lying, signer });
    const honest = r.t.current;
    r.t.current = misled;
    const p = pipeline(r, { signer });
    const b = batcher(r);
    const lost = await accept(r, ["f", "g"], p);
    await b.tick();
    const stall = b.stalled()!;
    expect(stall).to.deep.include({
      permanent: true,
      enclave: misled.enclave.address,
      sequence: 0n,
    });
    expect(stall.reason).to.contain("LedgerInvalidBatchNodeSigner");
    expect(stall.reason).to.contain("replace the enclave");
    // Nothing more is cut for that key.
    await accept(r, ["h"], p);
    await b.tick(Date.now() + 60_000);
    expect(misled.enclave.stats().batches).to.equal(1);

    // The operator gives the relayer another enclave: the refused batch is given back (its jobs
    // wait again) and the new enclave's batches anchor.
    r.t.current = honest;
    const jobs = await accept(r, ["i", "j"]);
    await b.tick(Date.now() + 60_000);
    expect(b.stalled()).to.equal(null);
    expect(r.t.store.getBatch(misled.enclave.address, 0n)).to.equal(null);
    for (const job of lost)
      expect(r.t.store.getJob(job.requestId)).to.deep.include({ state: "pending", batch: null });
    expect(r.t.store.orphans(honest.enclave.address, 10)).to.have.length(3);
    for (const job of jobs) await expectAnchored(job, b.proofOf(r.t.store.getJob(job.requestId)!));
  });

  it("never records anchored a batch whose id holds another root on chain", async () => {
    const b = batcher(r);
    const enclave = r.t.current.enclave.address;
    const jobs = await accept(r, ["k", "l"]);
    const signed = (await r.t.current.client.cutBatch(10))!;
    // The chain holds the enclave's batch 0 (anchored by anyone) ...
    await (
      await r.system.ledger
        .connect(await fundedWallet(r.t.provider))
        .anchorBatch(signed.batch, signed.signature, signed.modelIds, signed.counts)
    ).wait();
    // ... while this store holds another root under that id.
    const forged = { ...signed, batch: { ...signed.batch, root: id("another root") } };
    r.t.store.insertBatch(forged);
    const check = r.t.doneChecks.get("anchor")!;
    expect(
      await check({ key: `anchor:${enclave}:0`, kind: "anchor", to: r.ledgerAddress, data: "0x" }),
    ).to.equal(false);
    await b.tick();
    expect(r.t.store.getBatch(enclave, 0n)).to.equal(null);
    for (const job of jobs)
      expect(r.t.store.getJob(job.requestId)).to.deep.include({ state: "pending", batch: null });
    expect(b.stalled()).to.equal(null);
  });

  it("records a batch anchored by someone else with its root and transaction, sending nothing", async () => {
    const b = batcher(r);
    const enclave = r.t.current.enclave.address;
    const jobs = await accept(r, ["m"]);
    const signed = (await r.t.current.client.cutBatch(10))!;
    r.t.store.insertBatch(signed);
    const tx = await r.system.ledger
      .connect(await fundedWallet(r.t.provider))
      .anchorBatch(signed.batch, signed.signature, signed.modelIds, signed.counts);
    await tx.wait();
    await b.tick();
    expect(r.t.store.getBatch(enclave, 0n)).to.deep.include({
      state: "anchored",
      anchorTx: tx.hash,
    });
    expect(r.t.sender.status(`anchor:${enclave}:0`)).to.equal(undefined);
    await expectAnchored(jobs[0]!, []);
  });

  describe("after a crash", () => {
    it("adopts a batch the enclave signed that the store never wrote", async () => {
      const b = batcher(r);
      const jobs = await accept(r, ["n", "o"]);
      const signed = (await r.t.current.client.cutBatch(10))!; // the relayer died here
      await b.tick();
      const batch = r.t.store.getBatch(r.t.current.enclave.address, 0n)!;
      expect(batch).to.deep.include({ root: signed.batch.root, state: "anchored" });
      for (const job of jobs)
        await expectAnchored(job, b.proofOf(r.t.store.getJob(job.requestId)!));
    });

    it("adopts a lost batch cut after the earlier ones were anchored, once the next cut shows the gap", async () => {
      const b = batcher(r);
      const enclave = r.t.current.enclave.address;
      await accept(r, ["s"]);
      await b.tick(Date.now() + 60_000); // batch 0, anchored
      expect(r.t.store.getBatch(enclave, 0n)).to.deep.include({ state: "anchored" });
      const lost = await accept(r, ["t", "u"]);
      await r.t.current.client.cutBatch(10); // batch 1: the relayer died before writing it
      const later = await accept(r, ["v"]);
      await b.tick(Date.now() + 60_000); // cuts batch 2: the gap sends it back for batch 1
      await b.tick(Date.now() + 120_000);
      expect(r.t.store.getBatch(enclave, 1n)).to.deep.include({ state: "anchored" });
      expect(r.t.store.getBatch(enclave, 2n)).to.deep.include({ state: "anchored" });
      for (const job of [...lost, ...later])
        await expectAnchored(job, b.proofOf(r.t.store.getJob(job.requestId)!));
    });

    it("recovers receipts the enclave logged that the store never wrote, then completes them", async () => {
      const b = batcher(r);
      const p = pipeline(r);
      const [lost] = await execute(p, r, ["p"]); // logged by the enclave; the write never happened
      const [kept] = await accept(r, ["q"], p);
      await b.tick();
      const recovered = r.t.store.getJob(lost!.requestId)!;
      expect(JobStore.isRecovered(recovered)).to.equal(true);
      expect(recovered.receipt).to.deep.equal(lost!.receipt);
      expect(recovered.batch).to.deep.include({ state: "anchored" });
      await expectAnchored(kept!, b.proofOf(r.t.store.getJob(kept!.requestId)!));
      // The request arrives again: the enclave's logged receipt completes the job, still anchored.
      const [again] = await execute(p, r, ["p"]);
      expect(again!.receipt).to.deep.equal(lost!.receipt);
      expect(r.t.store.insertJob(again!)).to.equal(true);
      const completed = r.t.store.getJob(lost!.requestId)!;
      expect(JobStore.isRecovered(completed)).to.equal(false);
      await expectAnchored(completed, b.proofOf(completed));
    });
  });
});
