import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { Wallet, id } from "ethers";

import { StandardMerkleTree } from "@openzeppelin/merkle-tree";

import { buildTreeFromHashes } from "../../../native/index.js";
import { RECEIPT_LEAF_TYPES, receiptLeafValues } from "../../../offchain/chain/eip712.js";
import { receiptLeafHash } from "../../../offchain/chain/hasher.js";
import { openDatabase } from "../../../offchain/relayer/db.js";
import { JobStore, type BatchContents, type JobRecord } from "../../../offchain/relayer/store.js";

const ENCLAVE = Wallet.createRandom().address;
const NODE = Wallet.createRandom().address;

function job(i: number, overrides: Partial<JobRecord> = {}): JobRecord {
  return {
    requestId: id(`request-${i}`),
    source: "http",
    receipt: {
      requestId: id(`request-${i}`),
      modelId: id("model"),
      inputHash: id(`in-${i}`),
      outputHash: id(`out-${i}`),
      node: NODE,
      execConfigHash: id("cpu"),
      timestamp: 1_700_000_000n + BigInt(i),
    },
    nodeSignature: `0x${"ab".repeat(65)}`,
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

const CONTENTS: BatchContents = {
  root: id("root"),
  reexecuted: 0,
  modelIds: [id("model")],
  counts: [3],
  usageHash: id("usage"),
};

describe("offchain/relayer/store (JobStore)", () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "opg-relayer-store-"));
    file = path.join(dir, "relayer.db");
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  describe("insertJobs", () => {
    it("keeps every field of a job across a close and reopen", () => {
      const db = openDatabase(file);
      const written = [job(1), job(2, { source: "chain", state: "rejected" })];
      new JobStore(db).insertJobs(written);
      db.close();

      const reopened = openDatabase(file);
      const store = new JobStore(reopened);
      for (const w of written)
        expect(store.getJob(w.requestId)).to.deep.equal({ ...w, batch: null });
      expect(store.pending()).to.deep.equal({ count: 1, oldest: 1_001 });
      reopened.close();
    });

    it("leaves a request id already stored as it was (idempotent submit)", () => {
      const db = openDatabase(file);
      const store = new JobStore(db);
      expect(store.insertJobs([job(1)])).to.deep.equal([true]);
      expect(
        store.insertJobs([job(2), job(1, { nodeSignature: `0x${"cd".repeat(65)}` })]),
      ).to.deep.equal([true, false]);
      expect(store.getJob(job(1).requestId)!.nodeSignature).to.equal(job(1).nodeSignature);
      db.close();
    });

    it("writes nothing of a group when one job in it cannot be written", () => {
      const db = openDatabase(file);
      const store = new JobStore(db);
      const bad = job(2, { source: "nowhere" as JobRecord["source"] });
      expect(() => store.insertJobs([job(1), bad])).to.throw();
      expect(store.getJob(job(1).requestId)).to.equal(null);
      db.close();
    });
  });

  describe("cutBatch", () => {
    it("assigns the pending jobs in arrival order, leaf indexes 0..n-1, in one step", () => {
      const db = openDatabase(file);
      const store = new JobStore(db);
      store.insertJobs([job(1), job(2), job(3), job(4)]);
      let seen: string[] = [];
      const batch = store.cutBatch(ENCLAVE, 0n, 3, (jobs) => {
        seen = jobs.map((j) => j.leafHash);
        return CONTENTS;
      });
      expect(seen).to.deep.equal([job(1), job(2), job(3)].map((j) => receiptLeafHash(j.receipt)));
      expect(batch).to.include({ count: 3, state: "built", root: CONTENTS.root });
      for (const [i, j] of [job(1), job(2), job(3)].entries()) {
        const stored = store.getJob(j.requestId)!;
        expect(stored.state).to.equal("batched");
        expect(stored.batch).to.include({ sequence: 0n, leafIndex: i });
      }
      expect(store.pending()).to.deep.equal({ count: 1, oldest: 1_004 });
      db.close();
    });

    it("writes neither the batch nor any assignment when building the batch fails", () => {
      const db = openDatabase(file);
      const store = new JobStore(db);
      store.insertJobs([job(1), job(2)]);
      expect(() =>
        store.cutBatch(ENCLAVE, 0n, 10, () => {
          throw new Error("crash while building the root");
        }),
      ).to.throw("crash while building the root");
      expect(store.getBatch(ENCLAVE, 0n)).to.equal(null);
      expect(store.pending().count).to.equal(2);
      expect(store.getJob(job(1).requestId)!.batch).to.equal(null);
      db.close();
    });

    it("survives a reopen with the batch and its assignments intact", () => {
      const db = openDatabase(file);
      new JobStore(db).insertJobs([job(1), job(2)]);
      new JobStore(db).cutBatch(ENCLAVE, 5n, 10, () => ({ ...CONTENTS, counts: [2] }));
      db.close();
      const reopened = openDatabase(file);
      const store = new JobStore(reopened);
      expect(store.openBatches().map((b) => b.sequence)).to.deep.equal([5n]);
      expect(store.getJob(job(2).requestId)!.batch).to.include({ sequence: 5n, leafIndex: 1 });
      reopened.close();
    });

    it("builds from stored leaf hashes the root of the receipts' StandardMerkleTree", () => {
      const db = openDatabase(file);
      const store = new JobStore(db);
      const jobs = Array.from({ length: 37 }, (_, i) => job(i));
      store.insertJobs(jobs);
      let root = "";
      store.cutBatch(ENCLAVE, 0n, 100, (batchJobs) => {
        root = buildTreeFromHashes(batchJobs.map((j) => j.leafHash)).root;
        return CONTENTS;
      });
      const reference = StandardMerkleTree.of(
        jobs.map((j) => receiptLeafValues(j.receipt)),
        [...RECEIPT_LEAF_TYPES],
      );
      expect(root).to.equal(reference.root);
      db.close();
    });

    it("hashes the leaves of jobs stored before leaf hashes were kept (migration 2)", () => {
      const db = openDatabase(file);
      const store = new JobStore(db);
      store.insertJobs([job(1), job(2)]);
      db.exec("UPDATE jobs SET leaf_hash = NULL WHERE request_id = '" + job(1).requestId + "'");
      let seen: string[] = [];
      store.cutBatch(ENCLAVE, 0n, 10, (batchJobs) => {
        seen = batchJobs.map((j) => j.leafHash);
        return CONTENTS;
      });
      expect(seen).to.deep.equal([
        receiptLeafHash(job(1).receipt),
        receiptLeafHash(job(2).receipt),
      ]);
      db.close();
    });

    it("returns null when nothing is pending", () => {
      const db = openDatabase(file);
      expect(new JobStore(db).cutBatch(ENCLAVE, 0n, 10, () => CONTENTS)).to.equal(null);
      db.close();
    });
  });
});
