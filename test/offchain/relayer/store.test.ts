import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { DatabaseSync } from "node:sqlite";

import { expect } from "chai";
import { Wallet, id } from "ethers";

import { StandardMerkleTree } from "@openzeppelin/merkle-tree";

import { buildTreeFromHashes } from "../../../native/index.js";
import {
  RECEIPT_LEAF_TYPES,
  receiptLeafValues,
  usageHash,
} from "../../../offchain/chain/eip712.js";
import { receiptLeafHash } from "../../../offchain/chain/hasher.js";
import { usageSummary } from "../../../offchain/chain/receipts.js";
import { migrate, openDatabase } from "../../../offchain/relayer/db.js";
import {
  BatchMismatchError,
  JOB_MIGRATIONS,
  JobStore,
  type JobRecord,
} from "../../../offchain/relayer/store.js";
import type { SignedBatch } from "../../../offchain/tee/enclave.js";

const ENCLAVE = Wallet.createRandom().address;
const OTHER_ENCLAVE = Wallet.createRandom().address;
const NODE = Wallet.createRandom().address;
const SIGNER = Wallet.createRandom().address;

function job(i: number, overrides: Partial<JobRecord> = {}): JobRecord {
  return {
    requestId: id(`request-${i}`),
    source: "http",
    receipt: {
      requestId: id(`request-${i}`),
      modelId: id(i % 2 === 0 ? "model-a" : "model-b"),
      inputHash: id(`in-${i}`),
      outputHash: id(`out-${i}`),
      node: NODE,
      execConfigHash: id("cpu"),
      timestamp: 1_700_000_000n + BigInt(i),
    },
    nodeSignature: `0x${"ab".repeat(65)}`,
    inputs: { features: { dims: [1, 2], data: [i, 0.5] } },
    outputs: [{ name: "score", scale: 1_000_000, dims: [1, 1], values: [String(i)] }],
    enclave: ENCLAVE,
    selected: false,
    verdict: null,
    enclaveSignature: null,
    state: "pending",
    createdAt: 1_000 + i,
    ...overrides,
  };
}

/** What the enclave signs for `jobs` (in this order) as batch `sequence`; the signature is not checked here. */
function signed(jobs: readonly JobRecord[], sequence = 0n, enclave = ENCLAVE): SignedBatch {
  const receipts = jobs.map((j) => j.receipt);
  const leafHashes = receipts.map(receiptLeafHash);
  const usage = usageSummary(receipts);
  return {
    batch: {
      enclave,
      sequence,
      root: buildTreeFromHashes(leafHashes).root,
      count: jobs.length,
      reexecuted: jobs.filter((j) => j.selected).length,
      usageHash: usageHash(usage.modelIds, usage.counts),
      node: NODE,
      signer: SIGNER,
      asOf: 1_700_000_100n,
      sampleRatePpm: 250_000,
    },
    digest: id(`digest-${sequence}`),
    signature: `0x${"cd".repeat(65)}`,
    requestIds: jobs.map((j) => j.requestId),
    leafHashes,
    modelIds: usage.modelIds,
    counts: usage.counts,
  };
}

describe("offchain/relayer/store (JobStore)", () => {
  let dir: string;
  let file: string;
  let db: DatabaseSync;
  let store: JobStore;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "opg-relayer-store-"));
    file = path.join(dir, "relayer.db");
    db = openDatabase(file);
    store = new JobStore(db);
  });
  afterEach(async () => {
    if (db.isOpen) db.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The BatchMismatchError `fn` throws. */
  function mismatch(fn: () => unknown): BatchMismatchError {
    try {
      fn();
    } catch (error) {
      expect(error).to.be.instanceOf(BatchMismatchError);
      return error as BatchMismatchError;
    }
    return expect.fail("expected BatchMismatchError");
  }

  /** Nothing of batch `sequence` was written: no batch row, its listed jobs still pending. */
  function nothingWritten(jobs: readonly JobRecord[], sequence = 0n): void {
    expect(store.getBatch(ENCLAVE, sequence)).to.equal(null);
    for (const j of jobs) {
      const stored = store.getJob(j.requestId);
      if (stored !== null) expect(stored).to.deep.include({ state: j.state, batch: null });
    }
  }

  describe("insertJobs", () => {
    it("keeps every field of a job across a close and reopen", () => {
      const written = [job(1), job(2, { source: "chain", state: "rejected", inputs: null })];
      store.insertJobs(written);
      db.close();
      db = openDatabase(file);
      store = new JobStore(db);
      for (const w of written)
        expect(store.getJob(w.requestId)).to.deep.equal({ ...w, batch: null });
      expect(store.pending(ENCLAVE)).to.deep.equal({ count: 1, oldest: 1_001 });
      expect(store.pending(OTHER_ENCLAVE)).to.deep.equal({ count: 0, oldest: null });
    });

    it("leaves a request id already stored as it was (idempotent submit)", () => {
      expect(store.insertJobs([job(1)])).to.deep.equal([true]);
      expect(
        store.insertJobs([job(2), job(1, { nodeSignature: `0x${"cd".repeat(65)}` })]),
      ).to.deep.equal([true, false]);
      expect(store.getJob(job(1).requestId)!.nodeSignature).to.equal(job(1).nodeSignature);
    });

    it("writes nothing of a group when one job in it cannot be written", () => {
      const bad = job(2, { source: "nowhere" as JobRecord["source"] });
      expect(() => store.insertJobs([job(1), bad])).to.throw();
      expect(store.getJob(job(1).requestId)).to.equal(null);
    });
  });

  describe("insertBatch", () => {
    it("points the listed jobs at the batch with leaf indexes in the enclave's order, not the store's", () => {
      const jobs = [job(1), job(2), job(3), job(4)];
      store.insertJobs(jobs);
      const order = [jobs[2]!, jobs[0]!, jobs[3]!];
      const batch = store.insertBatch(signed(order, 7n));
      expect(batch).to.deep.include({
        enclave: ENCLAVE,
        sequence: 7n,
        count: 3,
        node: NODE,
        signer: SIGNER,
        asOf: 1_700_000_100n,
        sampleRatePpm: 250_000,
        signature: `0x${"cd".repeat(65)}`,
        state: "signed",
        failure: null,
        batchId: null,
      });
      for (const [i, j] of order.entries()) {
        const stored = store.getJob(j.requestId)!;
        expect(stored.state).to.equal("batched");
        expect(stored.batch).to.include({ sequence: 7n, leafIndex: i });
      }
      expect(store.batchReceipts(ENCLAVE, 7n)).to.deep.equal(order.map((j) => j.receipt));
      expect(store.pending(ENCLAVE)).to.deep.equal({ count: 1, oldest: 1_002 });
      expect(store.openBatches().map((b) => b.sequence)).to.deep.equal([7n]);
    });

    it("keeps the receipts whose StandardMerkleTree root the enclave signed", () => {
      const jobs = Array.from({ length: 37 }, (_, i) => job(i));
      store.insertJobs(jobs);
      const batch = store.insertBatch(signed(jobs));
      const reference = StandardMerkleTree.of(
        store.batchReceipts(ENCLAVE, 0n).map(receiptLeafValues),
        [...RECEIPT_LEAF_TYPES],
      );
      expect(reference.root).to.equal(batch.root);
    });

    it("refuses a batch listing a request it does not hold, writing nothing", () => {
      const jobs = [job(1), job(2)];
      store.insertJobs(jobs);
      const error = mismatch(() => store.insertBatch(signed([...jobs, job(3)])));
      expect(error.details).to.deep.include({
        listed: 3,
        assigned: 2,
        missing: [job(3).requestId],
      });
      nothingWritten(jobs);
      expect(store.missing([job(1).requestId, job(3).requestId])).to.deep.equal([job(3).requestId]);
    });

    it("refuses a batch whose leaf hash differs from the stored receipt's, writing nothing", () => {
      const jobs = [job(1), job(2)];
      store.insertJobs(jobs);
      const forged = signed(jobs);
      forged.leafHashes[1] = receiptLeafHash({ ...jobs[1]!.receipt, outputHash: id("other") });
      expect(mismatch(() => store.insertBatch(forged)).details.missing).to.deep.equal([]);
      nothingWritten(jobs);
      // Listed in another order than the leaves: refused too.
      const swapped = signed(jobs);
      swapped.requestIds.reverse();
      mismatch(() => store.insertBatch(swapped));
      nothingWritten(jobs);
    });

    it("refuses a batch listing another enclave's, a batched or a rejected job", () => {
      const theirs = job(1, { enclave: OTHER_ENCLAVE });
      const rejected = job(2, { state: "rejected" });
      const batched = job(3);
      store.insertJobs([theirs, rejected, batched]);
      store.insertBatch(signed([batched], 0n));
      for (const listed of [[theirs], [rejected], [batched]]) {
        mismatch(() => store.insertBatch(signed(listed, 1n)));
        expect(store.getBatch(ENCLAVE, 1n)).to.equal(null);
      }
      expect(store.getJob(theirs.requestId)).to.deep.include({ state: "pending", batch: null });
      expect(store.getJob(rejected.requestId)).to.deep.include({ state: "rejected", batch: null });
      expect(store.getJob(batched.requestId)!.batch).to.include({ sequence: 0n, leafIndex: 0 });
    });

    it("hashes the leaves of jobs stored before leaf hashes were kept (migration 2)", () => {
      store.insertJobs([job(1), job(2)]);
      db.prepare("UPDATE jobs SET leaf_hash = NULL WHERE request_id = ?").run(job(1).requestId);
      expect(store.insertBatch(signed([job(1), job(2)])).count).to.equal(2);
    });

    it("survives a reopen with the batch and its assignments intact", () => {
      store.insertJobs([job(1), job(2)]);
      store.insertBatch(signed([job(2), job(1)], 5n));
      db.close();
      db = openDatabase(file);
      store = new JobStore(db);
      expect(store.openBatches().map((b) => b.sequence)).to.deep.equal([5n]);
      expect(store.getJob(job(1).requestId)!.batch).to.include({ sequence: 5n, leafIndex: 1 });
    });
  });

  describe("batches after insertBatch", () => {
    beforeEach(() => {
      store.insertJobs([job(1), job(2), job(3)]);
      store.insertBatch(signed([job(1), job(2)]));
    });

    it("records a failure, cleared once anchored with its transaction", () => {
      store.setBatchFailure(ENCLAVE, 0n, "LedgerInactiveEnclave(0x..)");
      expect(store.getBatch(ENCLAVE, 0n)!.failure).to.equal("LedgerInactiveEnclave(0x..)");
      store.setBatchAnchored(ENCLAVE, 0n, {
        batchId: 9n,
        txHash: id("tx"),
        block: 12,
        gasUsed: 99n,
      });
      expect(store.getBatch(ENCLAVE, 0n)).to.deep.include({
        state: "anchored",
        failure: null,
        batchId: 9n,
        anchorTx: id("tx"),
        anchorBlock: 12,
        gasUsed: 99n,
      });
      expect(store.openBatches()).to.deep.equal([]);
      expect(store.stats()).to.deep.include({
        jobs: { pending: 1, batched: 0, rejected: 0, anchored: 2 },
        batches: { built: 0, signed: 0, anchored: 1 },
        gasUsed: 99n,
      });
    });

    it("releaseBatch gives a batch that can never be anchored back: its jobs wait again", () => {
      expect(store.releaseBatch(ENCLAVE, 0n)).to.equal(2);
      expect(store.getBatch(ENCLAVE, 0n)).to.equal(null);
      expect(store.getJob(job(1).requestId)).to.deep.include({ state: "pending", batch: null });
      expect(store.pending(ENCLAVE).count).to.equal(3);
      // ... and they can go into another batch under the same sequence.
      store.insertBatch(signed([job(3), job(1)]));
    });

    it("releaseBatch leaves an anchored batch and its jobs alone", () => {
      store.setBatchAnchored(ENCLAVE, 0n, {
        batchId: 9n,
        txHash: id("tx"),
        block: 12,
        gasUsed: 1n,
      });
      expect(store.releaseBatch(ENCLAVE, 0n)).to.equal(0);
      expect(store.getBatch(ENCLAVE, 0n)!.state).to.equal("anchored");
      expect(store.getJob(job(1).requestId)!.batch).to.include({ state: "anchored", leafIndex: 0 });
      expect(store.pending(ENCLAVE).count).to.equal(1);
    });
  });

  describe("insertRecovered (a receipt the enclave logged that this store never wrote)", () => {
    const recovered = (j: JobRecord): Omit<JobRecord, "inputs" | "outputs"> => {
      const rest: Partial<JobRecord> = { ...j };
      delete rest.inputs;
      delete rest.outputs;
      return rest as Omit<JobRecord, "inputs" | "outputs">;
    };

    it("stores what the enclave holds, which the same request arriving again completes", () => {
      const full = job(1, { source: "chain", selected: true });
      expect(store.insertRecovered(recovered({ ...full, source: "http" }))).to.equal(true);
      const stored = store.getJob(full.requestId)!;
      expect(stored).to.deep.include({ inputs: null, outputs: [], receipt: full.receipt });
      expect(JobStore.isRecovered(stored)).to.equal(true);
      expect(store.insertRecovered(recovered(full))).to.equal(false);

      expect(store.insertJob(full)).to.equal(true);
      const completed = store.getJob(full.requestId)!;
      expect(completed).to.deep.include({
        inputs: full.inputs,
        outputs: full.outputs,
        source: "chain",
      });
      expect(JobStore.isRecovered(completed)).to.equal(false);
      expect(store.insertJob(full)).to.equal(false); // complete now: a repeat changes nothing
    });

    it("is not completed, nor overwritten, by another receipt for the request", () => {
      const full = job(1);
      store.insertRecovered(recovered(full));
      const other = job(1, {
        receipt: { ...full.receipt, timestamp: full.receipt.timestamp + 1n },
        outputs: [{ name: "score", scale: 1_000_000, dims: [1, 1], values: ["777"] }],
      });
      expect(store.insertJob(other)).to.equal(false);
      const stored = store.getJob(full.requestId)!;
      expect(stored.receipt).to.deep.equal(full.receipt);
      expect(JobStore.isRecovered(stored)).to.equal(true);
    });

    it("keeps a recovered job's batch when it is completed after the batch was stored", () => {
      store.insertRecovered(recovered(job(1)));
      store.insertBatch(signed([job(1)]));
      expect(store.insertJob(job(1))).to.equal(true);
      expect(store.getJob(job(1).requestId)).to.deep.include({
        state: "batched",
        outputs: job(1).outputs,
      });
      expect(store.getJob(job(1).requestId)!.batch).to.include({ sequence: 0n, leafIndex: 0 });
    });
  });

  describe("orphans and oldestUnanchored", () => {
    it("orphans: pending jobs another enclave logged, oldest first, at most `limit`", () => {
      store.insertJobs([
        job(1, { enclave: OTHER_ENCLAVE }),
        job(2),
        job(3, { enclave: OTHER_ENCLAVE, state: "rejected" }),
        job(4, { enclave: OTHER_ENCLAVE }),
        job(5, { enclave: OTHER_ENCLAVE }),
      ]);
      expect(store.orphans(ENCLAVE, 2).map((j) => j.requestId)).to.deep.equal([
        job(1).requestId,
        job(4).requestId,
      ]);
      expect(store.orphans(OTHER_ENCLAVE, 10).map((j) => j.requestId)).to.deep.equal([
        job(2).requestId,
      ]);
      // A replaced job is the current enclave's: no orphan any more.
      store.replaceJob(job(1));
      expect(store.orphans(ENCLAVE, 10).map((j) => j.requestId)).to.deep.equal([
        job(4).requestId,
        job(5).requestId,
      ]);
    });

    it("oldestUnanchored: the oldest pending or batched-but-not-anchored job, never a rejected one", () => {
      expect(store.oldestUnanchored()).to.equal(null);
      store.insertJobs([job(1, { state: "rejected" }), job(2), job(3), job(4)]);
      expect(store.oldestUnanchored()).to.equal(1_002);
      store.insertBatch(signed([job(2), job(3)]));
      expect(store.oldestUnanchored()).to.equal(1_002);
      store.setBatchAnchored(ENCLAVE, 0n, { batchId: 1n, txHash: id("tx"), block: 1, gasUsed: 1n });
      expect(store.oldestUnanchored()).to.equal(1_004);
      store.insertBatch(signed([job(4)], 1n));
      store.setBatchAnchored(ENCLAVE, 1n, {
        batchId: 2n,
        txHash: id("tx2"),
        block: 2,
        gasUsed: 1n,
      });
      expect(store.oldestUnanchored()).to.equal(null);
    });
  });

  describe("migration 3 on a database written by the previous relayer", () => {
    it("upgrades it in place: old jobs and batches read back, new ones carry the new fields", () => {
      db.close();
      const old = path.join(dir, "v2.db");
      const v2 = openDatabase(old);
      expect(migrate(v2, "jobs", JOB_MIGRATIONS.slice(0, 2))).to.deep.equal([1, 2]);
      const o = job(1);
      v2.prepare(
        `INSERT INTO jobs (request_id, source, model_id, receipt, node_signature, outputs, enclave,
         selected, verdict, enclave_signature, state, batch_enclave, batch_sequence, leaf_index,
         created_at, leaf_hash) VALUES (?, 'http', ?, ?, ?, ?, ?, 0, NULL, NULL, 'batched', ?, 0, 0, ?, ?)`,
      ).run(
        o.requestId,
        o.receipt.modelId,
        JSON.stringify({ ...o.receipt, timestamp: o.receipt.timestamp.toString() }),
        o.nodeSignature,
        JSON.stringify(o.outputs),
        ENCLAVE,
        ENCLAVE,
        o.createdAt,
        receiptLeafHash(o.receipt),
      );
      v2.prepare(
        `INSERT INTO batches (enclave, sequence, root, count, reexecuted, model_ids, counts, usage_hash,
         signature, state, batch_id, anchor_tx, anchor_block, gas_used, created_at, anchored_at)
         VALUES (?, 0, ?, 1, 0, ?, '[1]', ?, ?, 'anchored', '5', ?, 3, '100', 1, 2)`,
      ).run(
        ENCLAVE,
        receiptLeafHash(o.receipt),
        JSON.stringify([o.receipt.modelId]),
        id("usage"),
        `0x${"cd".repeat(65)}`,
        id("tx"),
      );
      v2.close();

      db = openDatabase(old);
      store = new JobStore(db);
      const versions = db
        .prepare("SELECT version FROM schema_migrations WHERE component = 'jobs' ORDER BY version")
        .all()
        .map((r) => Number((r as { version: number }).version));
      expect(versions).to.deep.equal([1, 2, 3]);
      const stored = store.getJob(o.requestId)!;
      expect(stored).to.deep.include({ inputs: null, outputs: o.outputs, state: "batched" });
      expect(JobStore.isRecovered(stored)).to.equal(false);
      expect(stored.batch).to.deep.include({
        state: "anchored",
        node: null,
        signer: null,
        asOf: null,
        sampleRatePpm: null,
        failure: null,
        batchId: 5n,
        leafIndex: 0,
      });
      store.insertJobs([job(2)]);
      store.insertBatch(signed([job(2)], 1n));
      expect(store.getJob(job(2).requestId)).to.deep.include({ inputs: job(2).inputs });
      expect(store.getBatch(ENCLAVE, 1n)).to.deep.include({
        signer: SIGNER,
        sampleRatePpm: 250_000,
      });
      // Reopening applies nothing more.
      expect(migrate(db, "jobs", JOB_MIGRATIONS)).to.deep.equal([]);
    });
  });
});
