/**
 * The relayer's durable job store (component "jobs" of the SQLite file in db.ts).
 *
 * A job is written once, when the API (or the listener) accepts it, after the enclave logged its
 * receipt, and answered only after the write committed. Batches are cut and signed by the enclave;
 * one transaction writes the signed batch and points its jobs at it (checking that the enclave's
 * leaves are exactly those jobs' receipts, in its order), so after a crash the very same batch is
 * anchored, never a different one for that sequence number.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";

import type { Receipt, Verdict } from "../chain/eip712.js";
import { VerificationError } from "../common/errors.js";
import { stringifyJson } from "../common/json.js";
import type { QuantisedTensorJson, TensorJson } from "../inference/tensor.js";
import { receiptLeafHash } from "../chain/hasher.js";
import type { SignedBatch } from "../tee/enclave.js";
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
    // NULL for jobs stored before this migration: they are hashed from their receipt when read.
    sql: "ALTER TABLE jobs ADD COLUMN leaf_hash TEXT",
  },
  {
    version: 3,
    description:
      "enclave-built batches: jobs keep their inputs (to re-submit to a new enclave); batches name their node, signer, asOf and sample rate, and the last anchoring failure",
    sql: `
      ALTER TABLE jobs ADD COLUMN inputs TEXT;
      ALTER TABLE batches ADD COLUMN node TEXT;
      ALTER TABLE batches ADD COLUMN signer TEXT;
      ALTER TABLE batches ADD COLUMN as_of INTEGER;
      ALTER TABLE batches ADD COLUMN sample_rate_ppm INTEGER;
      ALTER TABLE batches ADD COLUMN failure TEXT;
      CREATE INDEX jobs_by_request ON jobs (state, enclave, seq);
    `,
  },
];

export type JobSource = "http" | "chain";

export interface JobRecord {
  requestId: string;
  source: JobSource;
  receipt: Receipt;
  nodeSignature: string;
  /** The request's inputs (null for jobs stored before migration 3, or recovered from the enclave). */
  inputs: Record<string, TensorJson> | null;
  outputs: QuantisedTensorJson[];
  /** The enclave whose log holds this receipt. */
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
  /** The node, its signer key, the enclave's asOf and sample rate (null for batches before migration 3). */
  node: string | null;
  signer: string | null;
  asOf: bigint | null;
  sampleRatePpm: number | null;
  signature: string | null;
  /** Why the last anchoring attempt failed (null: none, or it succeeded). */
  failure: string | null;
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

/** The enclave's leaves do not match this store's jobs: the batch is refused, nothing written. */
export class BatchMismatchError extends VerificationError {
  override name = "BatchMismatchError";
}

type Row = Record<string, string | number | bigint | null>;

const receiptToJson = (r: Receipt): string =>
  JSON.stringify({ ...r, timestamp: r.timestamp.toString() });
const receiptFromJson = (text: string): Receipt => {
  const r = JSON.parse(text) as Omit<Receipt, "timestamp"> & { timestamp: string };
  return { ...r, timestamp: BigInt(r.timestamp) };
};

function verdictFromJson(text: string): Verdict {
  const v = JSON.parse(text) as Omit<Verdict, "timestamp"> & { timestamp?: string };
  return { ...v, timestamp: BigInt(v.timestamp ?? 0) };
}

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
    node: get("node") === null || get("node") === undefined ? null : String(get("node")),
    signer: get("signer") === null || get("signer") === undefined ? null : String(get("signer")),
    asOf: get("as_of") === null || get("as_of") === undefined ? null : BigInt(get("as_of")!),
    sampleRatePpm:
      get("sample_rate_ppm") === null || get("sample_rate_ppm") === undefined
        ? null
        : Number(get("sample_rate_ppm")),
    signature: get("signature") === null ? null : String(get("signature")),
    failure:
      get("failure") === null || get("failure") === undefined ? null : String(get("failure")),
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
    inputs:
      row.inputs === null || row.inputs === undefined
        ? null
        : (JSON.parse(String(row.inputs)) as Record<string, TensorJson>),
    outputs: JSON.parse(String(row.outputs)) as QuantisedTensorJson[],
    enclave: String(row.enclave),
    selected: Number(row.selected) === 1,
    verdict: row.verdict === null ? null : verdictFromJson(String(row.verdict)),
    enclaveSignature: row.enclave_signature === null ? null : String(row.enclave_signature),
    state: String(row.state) as JobRecord["state"],
    createdAt: Number(row.created_at),
  };
}

export class JobStore {
  private readonly insert: StatementSync;
  private readonly byId: StatementSync;
  private readonly batchOf: StatementSync;
  private readonly assign: StatementSync;
  private readonly leavesOf: StatementSync;

  constructor(readonly db: DatabaseSync) {
    migrate(db, "jobs", JOB_MIGRATIONS);
    // Only a duplicate request id is skipped (OR IGNORE would also skip a CHECK violation silently),
    // unless the stored job is one recovered from the enclave's log without its inputs and outputs
    // (see `insertRecovered`) and this is the same receipt with them: then it is completed.
    this.insert = db.prepare(`INSERT INTO jobs
      (request_id, source, model_id, receipt, node_signature, outputs, enclave, selected, verdict,
       enclave_signature, state, created_at, leaf_hash, inputs)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (request_id) DO UPDATE SET outputs = excluded.outputs, inputs = excluded.inputs,
        source = excluded.source
      WHERE jobs.inputs IS NULL AND jobs.outputs = '[]' AND excluded.outputs != '[]'
        AND jobs.leaf_hash = excluded.leaf_hash`);
    this.byId = db.prepare("SELECT * FROM jobs WHERE request_id = ?");
    this.batchOf = db.prepare("SELECT * FROM batches WHERE enclave = ? AND sequence = ?");
    // One statement for every row of a batch (leaf index = position in the enclave's list).
    this.assign = db.prepare(
      `UPDATE jobs SET state = 'batched', batch_enclave = ?1, batch_sequence = ?2, leaf_index = j.key
       FROM json_each(?3) AS j
       WHERE jobs.request_id = j.value AND jobs.state = 'pending' AND jobs.enclave = ?1`,
    );
    this.leavesOf = db.prepare(
      "SELECT seq, leaf_hash, receipt FROM jobs WHERE batch_enclave = ? AND batch_sequence = ? ORDER BY leaf_index",
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
      job.verdict === null ? null : stringifyJson(job.verdict, 0),
      job.enclaveSignature,
      job.state,
      job.createdAt,
      receiptLeafHash(job.receipt),
      job.inputs === null ? null : JSON.stringify(job.inputs),
    );
    return Number(result.changes) === 1;
  }

  /**
   * A job for a receipt the enclave logged but this store never wrote (the relayer died between the
   * enclave's answer and its own write): what the enclave holds, without inputs and outputs until
   * the same request arrives again (`insertJob` completes it). False when the id is stored already.
   */
  insertRecovered(job: Omit<JobRecord, "inputs" | "outputs">): boolean {
    return this.insertJob({ ...job, inputs: null, outputs: [] });
  }

  /** True for a job recovered from the enclave's log and not completed yet. */
  static isRecovered(job: JobRecord): boolean {
    return job.inputs === null && job.outputs.length === 0;
  }

  /** Inserts jobs in one transaction; says for each whether it was stored (false: id already stored). */
  insertJobs(jobs: readonly JobRecord[]): boolean[] {
    return transaction(this.db, () => jobs.map((job) => this.insertJob(job)));
  }

  /** Replaces a pending job's receipt and enclave answer (re-submitted to a new enclave). */
  replaceJob(job: JobRecord): void {
    this.db
      .prepare(
        `UPDATE jobs SET receipt = ?, node_signature = ?, outputs = ?, enclave = ?, selected = ?,
         verdict = ?, enclave_signature = ?, state = ?, leaf_hash = ? WHERE request_id = ? AND state = 'pending'`,
      )
      .run(
        receiptToJson(job.receipt),
        job.nodeSignature,
        JSON.stringify(job.outputs),
        job.enclave,
        job.selected ? 1 : 0,
        job.verdict === null ? null : stringifyJson(job.verdict, 0),
        job.enclaveSignature,
        job.state,
        receiptLeafHash(job.receipt),
        job.requestId,
      );
  }

  getJob(requestId: string): StoredJob | null {
    const row = this.byId.get(requestId.toLowerCase()) as Row | undefined;
    if (row === undefined) return null;
    const job = jobFromRow(row);
    if (row.batch_enclave === null) return { ...job, batch: null };
    const batchRow = this.batchOf.get(row.batch_enclave!, row.batch_sequence!) as Row;
    return { ...job, batch: { ...batchFromRow(batchRow), leafIndex: Number(row.leaf_index) } };
  }

  /** Jobs in `enclave`'s log waiting for a batch, and when the oldest arrived. */
  pending(enclave: string): { count: number; oldest: number | null } {
    const row = this.db
      .prepare(
        "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM jobs WHERE state = 'pending' AND enclave = ?",
      )
      .get(enclave) as { n: number; oldest: number | null };
    return { count: Number(row.n), oldest: row.oldest === null ? null : Number(row.oldest) };
  }

  /** Pending jobs logged by another enclave than `enclave` (a restarted or replaced one), oldest first. */
  orphans(enclave: string, limit: number): JobRecord[] {
    return (
      this.db
        .prepare("SELECT * FROM jobs WHERE state = 'pending' AND enclave != ? ORDER BY seq LIMIT ?")
        .all(enclave, limit) as Row[]
    ).map(jobFromRow);
  }

  /** Pending jobs of `enclave` accepted before `before` (ms), oldest first. */
  strandedPending(enclave: string, before: number, limit: number): JobRecord[] {
    return (
      this.db
        .prepare(
          "SELECT * FROM jobs WHERE state = 'pending' AND enclave = ? AND created_at < ? ORDER BY seq LIMIT ?",
        )
        .all(enclave, before, limit) as Row[]
    ).map(jobFromRow);
  }

  /** When the oldest receipt not yet anchored was accepted (ms), or null when all are anchored. */
  oldestUnanchored(): number | null {
    const row = this.db
      .prepare(
        `SELECT MIN(j.created_at) AS oldest FROM jobs j
         LEFT JOIN batches b ON b.enclave = j.batch_enclave AND b.sequence = j.batch_sequence
         WHERE j.state = 'pending' OR (j.state = 'batched' AND b.state != 'anchored')`,
      )
      .get() as { oldest: number | null };
    return row.oldest === null ? null : Number(row.oldest);
  }

  /**
   * Writes a batch the enclave cut and signed, and points its jobs at it (leaf index = position),
   * in one transaction. Every listed request must be a pending job of this enclave, and the stored
   * leaf hashes, in order, must be the enclave's: else BatchMismatchError and nothing is written.
   * `missing` answers which listed requests this store does not hold (see the batcher's recovery).
   */
  insertBatch(signed: SignedBatch): BatchRecord {
    const { batch } = signed;
    return transaction(this.db, () => {
      this.db
        .prepare(
          `INSERT INTO batches (enclave, sequence, root, count, reexecuted, model_ids, counts,
          usage_hash, signature, state, created_at, node, signer, as_of, sample_rate_ppm)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'signed', ?, ?, ?, ?, ?)`,
        )
        .run(
          batch.enclave,
          batch.sequence,
          batch.root,
          batch.count,
          batch.reexecuted,
          JSON.stringify(signed.modelIds),
          JSON.stringify(signed.counts),
          batch.usageHash,
          signed.signature,
          Date.now(),
          batch.node,
          batch.signer,
          batch.asOf,
          batch.sampleRatePpm,
        );
      const assigned = Number(
        this.assign.run(batch.enclave, batch.sequence, JSON.stringify(signed.requestIds)).changes,
      );
      const leaves = this.leavesOf.all(batch.enclave, batch.sequence) as Array<{
        seq: number;
        leaf_hash: string | null;
        receipt: string;
      }>;
      const stored = leaves.map((r) => r.leaf_hash ?? receiptLeafHash(receiptFromJson(r.receipt)));
      if (
        assigned !== signed.requestIds.length ||
        stored.some((h, i) => h.toLowerCase() !== signed.leafHashes[i]!.toLowerCase())
      ) {
        throw new BatchMismatchError(
          `enclave batch ${batch.sequence} lists receipts this store does not hold as pending`,
          {
            details: {
              sequence: batch.sequence,
              listed: signed.requestIds.length,
              assigned,
              missing: this.missing(signed.requestIds),
            },
          },
        );
      }
      return this.getBatch(batch.enclave, batch.sequence)!;
    });
  }

  /** Which of `requestIds` this store holds no job for. */
  missing(requestIds: readonly string[]): string[] {
    const rows = this.db
      .prepare(
        "SELECT j.value AS id FROM json_each(?) AS j LEFT JOIN jobs ON jobs.request_id = j.value WHERE jobs.request_id IS NULL",
      )
      .all(JSON.stringify(requestIds)) as Array<{ id: string }>;
    return rows.map((r) => r.id);
  }

  getBatch(enclave: string, sequence: bigint): BatchRecord | null {
    const row = this.batchOf.get(enclave, sequence) as Row | undefined;
    return row === undefined ? null : batchFromRow(row);
  }

  /** The highest sequence of `enclave`'s batches this store wrote, in any state (null: none). */
  lastSequence(enclave: string): bigint | null {
    const row = this.db
      .prepare("SELECT MAX(sequence) AS s FROM batches WHERE enclave = ?")
      .get(enclave) as { s: number | bigint | string | null };
    return row.s === null ? null : BigInt(row.s);
  }

  /** Batches signed but not yet anchored, in sequence order per enclave, oldest enclave first. */
  openBatches(): BatchRecord[] {
    return (
      this.db
        .prepare("SELECT * FROM batches WHERE state != 'anchored' ORDER BY created_at, sequence")
        .all() as Row[]
    ).map((r) => batchFromRow(r));
  }

  /** The receipts of a batch in leaf order. */
  batchReceipts(enclave: string, sequence: bigint): Receipt[] {
    return (this.leavesOf.all(enclave, sequence) as Array<{ receipt: string }>).map((r) =>
      receiptFromJson(r.receipt),
    );
  }

  setBatchFailure(enclave: string, sequence: bigint, failure: string | null): void {
    this.db
      .prepare("UPDATE batches SET failure = ? WHERE enclave = ? AND sequence = ?")
      .run(failure, enclave, sequence);
  }

  setBatchAnchored(
    enclave: string,
    sequence: bigint,
    anchored: { batchId: bigint; txHash: string; block: number; gasUsed: bigint },
  ): void {
    this.db
      .prepare(
        `UPDATE batches SET state = 'anchored', batch_id = ?, anchor_tx = ?, anchor_block = ?,
        gas_used = ?, anchored_at = ?, failure = NULL WHERE enclave = ? AND sequence = ?`,
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
   * back: its jobs wait for the next enclave again.
   */
  releaseBatch(enclave: string, sequence: bigint): number {
    return transaction(this.db, () => {
      // An anchored batch is the chain's: its jobs must never wait for (and land in) another one.
      if (this.getBatch(enclave, sequence)?.state === "anchored") return 0;
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
