/**
 * The relayer's durable job store (component "jobs" of the SQLite file in db.ts).
 *
 * A job is written once, when the API (or the listener) accepts it, and answered only after the
 * write committed. A batch is cut atomically: one transaction writes the batch row (root, counts,
 * usage) and points its jobs at it, so after a crash the very same batch is signed and anchored
 * again, never a different one for that sequence number.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";

import type { Receipt, Verdict } from "../chain/eip712.js";
import type { QuantisedTensorJson } from "../inference/tensor.js";
import { receiptLeafHash } from "../chain/hasher.js";
import { migrate, transaction, type Migration } from "./db.js";

export const JOB_MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: "jobs and batches",
    sql: `
      CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL CHECK (source IN ('http', 'chain')),
        model_id TEXT NOT NULL,
        receipt TEXT NOT NULL,
        node_signature TEXT NOT NULL,
        outputs TEXT NOT NULL,
        enclave TEXT NOT NULL,
        selected INTEGER NOT NULL,
        verdict TEXT,
        enclave_signature TEXT,
        state TEXT NOT NULL CHECK (state IN ('pending', 'batched', 'rejected')),
        batch_enclave TEXT,
        batch_sequence INTEGER,
        leaf_index INTEGER,
        created_at INTEGER NOT NULL
      );
      CREATE INDEX jobs_by_state ON jobs (state, seq);
      CREATE INDEX jobs_by_batch ON jobs (batch_enclave, batch_sequence, leaf_index);
      CREATE TABLE batches (
        enclave TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        root TEXT NOT NULL,
        count INTEGER NOT NULL,
        reexecuted INTEGER NOT NULL,
        model_ids TEXT NOT NULL,
        counts TEXT NOT NULL,
        usage_hash TEXT NOT NULL,
        signature TEXT,
        state TEXT NOT NULL CHECK (state IN ('built', 'signed', 'anchored')),
        batch_id TEXT,
        anchor_tx TEXT,
        anchor_block INTEGER,
        gas_used TEXT,
        created_at INTEGER NOT NULL,
        anchored_at INTEGER,
        PRIMARY KEY (enclave, sequence)
      );
    `,
  },
  {
    version: 2,
    description: "jobs.leaf_hash: the receipt's Merkle leaf hash, written with the job",
    // NULL for jobs stored before this migration: cutBatch hashes those from their receipt.
    sql: "ALTER TABLE jobs ADD COLUMN leaf_hash TEXT",
  },
];

export type JobSource = "http" | "chain";

export interface JobRecord {
  requestId: string;
  source: JobSource;
  receipt: Receipt;
  nodeSignature: string;
  outputs: QuantisedTensorJson[];
  /** The enclave asked to check this receipt. */
  enclave: string;
  /** Whether the enclave re-executed it (sampling). */
  selected: boolean;
  verdict: Verdict | null;
  enclaveSignature: string | null;
  /** pending: waits for a batch; batched: in a batch; rejected: the enclave disagreed (never anchored). */
  state: "pending" | "batched" | "rejected";
  createdAt: number;
}

export interface BatchRecord {
  enclave: string;
  sequence: bigint;
  root: string;
  count: number;
  reexecuted: number;
  modelIds: string[];
  counts: number[];
  usageHash: string;
  signature: string | null;
  state: "built" | "signed" | "anchored";
  batchId: bigint | null;
  anchorTx: string | null;
  anchorBlock: number | null;
  gasUsed: bigint | null;
  createdAt: number;
}

export interface StoredJob extends JobRecord {
  batch: (BatchRecord & { leafIndex: number }) | null;
}

/** What a batch is built from, per job in leaf order. */
export interface BatchJob {
  /** The receipt's Merkle leaf hash (receiptLeafHash). */
  leafHash: string;
  modelId: string;
  /** Whether the enclave re-executed it. */
  selected: boolean;
}

export interface BatchContents {
  root: string;
  reexecuted: number;
  modelIds: string[];
  counts: number[];
  usageHash: string;
}

type Row = Record<string, string | number | bigint | null>;

const receiptToJson = (r: Receipt): string =>
  JSON.stringify({ ...r, timestamp: r.timestamp.toString() });
const receiptFromJson = (text: string): Receipt => {
  const r = JSON.parse(text) as Omit<Receipt, "timestamp"> & { timestamp: string };
  return { ...r, timestamp: BigInt(r.timestamp) };
};

function batchFromRow(row: Row, prefix = ""): BatchRecord {
  const get = (k: string) => row[prefix + k];
  const batchId = get("batch_id");
  const gas = get("gas_used");
  const block = get("anchor_block");
  return {
    enclave: String(get("enclave")),
    sequence: BigInt(get("sequence")!),
    root: String(get("root")),
    count: Number(get("count")),
    reexecuted: Number(get("reexecuted")),
    modelIds: JSON.parse(String(get("model_ids"))) as string[],
    counts: JSON.parse(String(get("counts"))) as number[],
    usageHash: String(get("usage_hash")),
    signature: get("signature") === null ? null : String(get("signature")),
    state: String(get("state")) as BatchRecord["state"],
    batchId: batchId === null ? null : BigInt(batchId!),
    anchorTx: get("anchor_tx") === null ? null : String(get("anchor_tx")),
    anchorBlock: block === null ? null : Number(block),
    gasUsed: gas === null ? null : BigInt(gas!),
    createdAt: Number(get("created_at")),
  };
}

function jobFromRow(row: Row): JobRecord {
  return {
    requestId: String(row.request_id),
    source: String(row.source) as JobSource,
    receipt: receiptFromJson(String(row.receipt)),
    nodeSignature: String(row.node_signature),
    outputs: JSON.parse(String(row.outputs)) as QuantisedTensorJson[],
    enclave: String(row.enclave),
    selected: Number(row.selected) === 1,
    verdict: row.verdict === null ? null : (JSON.parse(String(row.verdict)) as Verdict),
    enclaveSignature: row.enclave_signature === null ? null : String(row.enclave_signature),
    state: String(row.state) as JobRecord["state"],
    createdAt: Number(row.created_at),
  };
}

export class JobStore {
  private readonly insert: StatementSync;
  private readonly byId: StatementSync;
  private readonly batchOf: StatementSync;
  private readonly pendingForBatch: StatementSync;
  private readonly assign: StatementSync;

  constructor(readonly db: DatabaseSync) {
    migrate(db, "jobs", JOB_MIGRATIONS);
    // Only a duplicate request id is skipped (OR IGNORE would also skip a CHECK violation silently).
    this.insert = db.prepare(`INSERT INTO jobs
      (request_id, source, model_id, receipt, node_signature, outputs, enclave, selected, verdict,
       enclave_signature, state, created_at, leaf_hash)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING`);
    this.byId = db.prepare("SELECT * FROM jobs WHERE request_id = ?");
    this.batchOf = db.prepare("SELECT * FROM batches WHERE enclave = ? AND sequence = ?");
    this.pendingForBatch = db.prepare(
      "SELECT seq, leaf_hash, model_id, selected FROM jobs WHERE state = 'pending' ORDER BY seq LIMIT ?",
    );
    this.assign = db.prepare(
      `UPDATE jobs SET state = 'batched', batch_enclave = ?1, batch_sequence = ?2,
         leaf_index = ranked.idx
       FROM (SELECT seq AS s, ROW_NUMBER() OVER (ORDER BY seq) - 1 AS idx FROM jobs
             WHERE state = 'pending' AND seq BETWEEN ?3 AND ?4) AS ranked
       WHERE jobs.seq = ranked.s`,
    );
  }

  /** Inserts jobs (a request id already stored is left as it was); call inside a transaction for many. */
  insertJob(job: JobRecord): boolean {
    const result = this.insert.run(
      job.requestId,
      job.source,
      job.receipt.modelId,
      receiptToJson(job.receipt),
      job.nodeSignature,
      JSON.stringify(job.outputs),
      job.enclave,
      job.selected ? 1 : 0,
      job.verdict === null ? null : JSON.stringify(job.verdict),
      job.enclaveSignature,
      job.state,
      job.createdAt,
      receiptLeafHash(job.receipt),
    );
    return Number(result.changes) === 1;
  }

  /** Inserts jobs in one transaction; says for each whether it was stored (false: id already stored). */
  insertJobs(jobs: readonly JobRecord[]): boolean[] {
    return transaction(this.db, () => jobs.map((job) => this.insertJob(job)));
  }

  getJob(requestId: string): StoredJob | null {
    const row = this.byId.get(requestId.toLowerCase()) as Row | undefined;
    if (row === undefined) return null;
    const job = jobFromRow(row);
    if (row.batch_enclave === null) return { ...job, batch: null };
    const batchRow = this.batchOf.get(row.batch_enclave!, row.batch_sequence!) as Row;
    return { ...job, batch: { ...batchFromRow(batchRow), leafIndex: Number(row.leaf_index) } };
  }

  /** Jobs waiting for a batch, and when the oldest arrived. */
  pending(): { count: number; oldest: number | null } {
    const row = this.db
      .prepare("SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM jobs WHERE state = 'pending'")
      .get() as { n: number; oldest: number | null };
    return { count: Number(row.n), oldest: row.oldest === null ? null : Number(row.oldest) };
  }

  /**
   * Cuts the next batch atomically: takes up to `maxSize` pending jobs in arrival order, lets
   * `build` compute the root and summary over their receipts (leaf order = arrival order), writes
   * the batch and assigns the jobs. Returns null when nothing is pending.
   */
  cutBatch(
    enclave: string,
    sequence: bigint,
    maxSize: number,
    build: (jobs: BatchJob[]) => BatchContents,
  ): BatchRecord | null {
    return transaction(this.db, () => {
      // Only what a batch is built from: this runs on the event loop with requests waiting, and
      // reading whole jobs (outputs, verdicts) cost ~40 µs each.
      const rows = this.pendingForBatch.all(maxSize) as Array<{
        seq: number;
        leaf_hash: string | null;
        model_id: string;
        selected: number;
      }>;
      if (rows.length === 0) return null;
      const jobs = rows.map((r) => ({
        leafHash: r.leaf_hash ?? this.leafHashOf(r.seq),
        modelId: r.model_id,
        selected: r.selected === 1,
      }));
      const contents = build(jobs);
      const now = Date.now();
      this.db
        .prepare(
          `INSERT INTO batches (enclave, sequence, root, count, reexecuted, model_ids, counts,
          usage_hash, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'built', ?)`,
        )
        .run(
          enclave,
          sequence,
          contents.root,
          jobs.length,
          contents.reexecuted,
          JSON.stringify(contents.modelIds),
          JSON.stringify(contents.counts),
          contents.usageHash,
          now,
        );
      // One statement for every row (leaf index = rank in arrival order), in SQLite rather than
      // one call from JavaScript per row: the cut blocks the event loop while it runs.
      this.assign.run(enclave, sequence, rows[0]!.seq, rows[rows.length - 1]!.seq);
      return this.getBatch(enclave, sequence)!;
    });
  }

  /** The leaf hash of a job stored before leaf hashes were (migration 2), from its receipt. */
  private leafHashOf(seq: number): string {
    const row = this.db.prepare("SELECT receipt FROM jobs WHERE seq = ?").get(seq) as {
      receipt: string;
    };
    return receiptLeafHash(receiptFromJson(row.receipt));
  }

  getBatch(enclave: string, sequence: bigint): BatchRecord | null {
    const row = this.batchOf.get(enclave, sequence) as Row | undefined;
    return row === undefined ? null : batchFromRow(row);
  }

  /** Batches cut but not yet anchored, oldest first. */
  openBatches(): BatchRecord[] {
    return (
      this.db
        .prepare("SELECT * FROM batches WHERE state != 'anchored' ORDER BY created_at, sequence")
        .all() as Row[]
    ).map((r) => batchFromRow(r));
  }

  /** The receipts of a batch in leaf order. */
  batchReceipts(enclave: string, sequence: bigint): Receipt[] {
    return (
      this.db
        .prepare(
          "SELECT receipt FROM jobs WHERE batch_enclave = ? AND batch_sequence = ? ORDER BY leaf_index",
        )
        .all(enclave, sequence) as Array<{ receipt: string }>
    ).map((r) => receiptFromJson(r.receipt));
  }

  /** The next sequence number this store would use for `enclave` (max + 1), or null if it has none. */
  nextLocalSequence(enclave: string): bigint | null {
    const row = this.db
      .prepare("SELECT MAX(sequence) AS s FROM batches WHERE enclave = ?")
      .get(enclave) as { s: number | bigint | null };
    return row.s === null ? null : BigInt(row.s) + 1n;
  }

  setBatchSigned(enclave: string, sequence: bigint, signature: string): void {
    this.db
      .prepare(
        "UPDATE batches SET signature = ?, state = 'signed' WHERE enclave = ? AND sequence = ? AND state = 'built'",
      )
      .run(signature, enclave, sequence);
  }

  setBatchAnchored(
    enclave: string,
    sequence: bigint,
    anchored: { batchId: bigint; txHash: string; block: number; gasUsed: bigint },
  ): void {
    this.db
      .prepare(
        `UPDATE batches SET state = 'anchored', batch_id = ?, anchor_tx = ?, anchor_block = ?,
        gas_used = ?, anchored_at = ? WHERE enclave = ? AND sequence = ?`,
      )
      .run(
        anchored.batchId.toString(),
        anchored.txHash,
        anchored.block,
        anchored.gasUsed.toString(),
        Date.now(),
        enclave,
        sequence,
      );
  }

  /**
   * Gives a batch that can never be anchored (its enclave key is gone and the chain never saw it)
   * back: its jobs wait for the next batch again.
   */
  releaseBatch(enclave: string, sequence: bigint): number {
    return transaction(this.db, () => {
      const result = this.db
        .prepare(
          "UPDATE jobs SET state = 'pending', batch_enclave = NULL, batch_sequence = NULL, leaf_index = NULL WHERE batch_enclave = ? AND batch_sequence = ?",
        )
        .run(enclave, sequence);
      this.db
        .prepare("DELETE FROM batches WHERE enclave = ? AND sequence = ? AND state != 'anchored'")
        .run(enclave, sequence);
      return Number(result.changes);
    });
  }

  /** Counts for status and metrics. */
  stats(): {
    jobs: Record<"pending" | "batched" | "rejected" | "anchored", number>;
    batches: Record<"built" | "signed" | "anchored", number>;
    gasUsed: bigint;
  } {
    const jobs = { pending: 0, batched: 0, rejected: 0, anchored: 0 };
    for (const r of this.db
      .prepare("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
      .all() as Array<{ state: keyof typeof jobs; n: number }>)
      jobs[r.state] = Number(r.n);
    const batches = { built: 0, signed: 0, anchored: 0 };
    let anchoredReceipts = 0;
    let gasUsed = 0n;
    for (const r of this.db
      .prepare("SELECT state, COUNT(*) AS n, SUM(count) AS receipts FROM batches GROUP BY state")
      .all() as Array<{ state: keyof typeof batches; n: number; receipts: number }>) {
      batches[r.state] = Number(r.n);
      if (r.state === "anchored") anchoredReceipts = Number(r.receipts);
    }
    for (const r of this.db
      .prepare("SELECT gas_used FROM batches WHERE state = 'anchored'")
      .all() as Array<{ gas_used: string }>)
      gasUsed += BigInt(r.gas_used);
    jobs.anchored = anchoredReceipts;
    jobs.batched -= anchoredReceipts;
    return { jobs, batches, gasUsed };
  }
}
