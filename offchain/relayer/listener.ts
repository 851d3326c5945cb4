/**
 * Listener for InferenceLedger's on-chain requests. It scans InferenceRequested logs from a block
 * cursor kept in SQLite, only up to `head - confirmations`; each request is stored once (its id is
 * the primary key) in the same transaction that moves the cursor. Each stored request is then
 * served once: inference with a forced enclave check, the job written together with the request's
 * new state, and `fulfil` handed to the sender under the key "fulfil:<requestId>" (done check: the
 * request is no longer pending on chain).
 *
 * `input` is the canonical input encoding (docs/inference-tee.md); requests made by hash with an
 * input URI are recorded as unservable (this relayer does not fetch URIs).
 */
import type { DatabaseSync } from "node:sqlite";

import type { Contract, JsonRpcProvider } from "ethers";
import { getBytes, keccak256 } from "ethers";
import type { Logger } from "pino";

import { eligibleAt } from "../chain/assignment.js";
import type { Clock } from "../chain/clock.js";
import { InputError } from "../common/errors.js";
import { EnclaveRequestError } from "../tee/client.js";
import {
  decodeInputs,
  encodeOutputs,
  inputsToJson,
  type QuantisedTensor,
} from "../inference/tensor.js";
import { migrate, transaction, type Migration } from "./db.js";
import type { RelayerMetrics } from "./metrics.js";
import type { InferencePipeline } from "./pipeline.js";
import { JobStore } from "./store.js";
import type { TxSenderLike } from "./tx.js";

/** NodeStaking's Role.INFERENCE. */
const INFERENCE_ROLE = 1;

export const LISTENER_MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: "cursor and chain requests",
    sql: `
      CREATE TABLE listener_cursor (id INTEGER PRIMARY KEY CHECK (id = 1), block INTEGER NOT NULL);
      CREATE TABLE chain_requests (
        request_id TEXT PRIMARY KEY,
        request TEXT NOT NULL,
        input TEXT NOT NULL,
        block INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('new', 'submitted', 'done', 'unservable', 'rejected')),
        reason TEXT
      );
      CREATE INDEX chain_requests_by_state ON chain_requests (state);
    `,
  },
  {
    version: 2,
    description:
      "chain_requests.state 'lost': another node fulfilled the request first (a lost race, not a fulfilment of ours)",
    sql: `
      CREATE TABLE chain_requests_v2 (
        request_id TEXT PRIMARY KEY,
        request TEXT NOT NULL,
        input TEXT NOT NULL,
        block INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('new', 'submitted', 'done', 'unservable', 'rejected', 'lost')),
        reason TEXT
      );
      INSERT INTO chain_requests_v2 SELECT request_id, request, input, block, state, reason FROM chain_requests;
      DROP TABLE chain_requests;
      ALTER TABLE chain_requests_v2 RENAME TO chain_requests;
      CREATE INDEX chain_requests_by_state ON chain_requests (state);
    `,
  },
];

export interface ChainRequest {
  requester: string;
  fee: bigint;
  modelId: string;
  inputHash: string;
  deadline: bigint;
  callbackGasLimit: number;
  /** When it was requested and its seed: they assign it (InferenceLedger.eligibleAt). */
  requestedAt: bigint;
  seed: string;
}

export interface ListenerOptions {
  db: DatabaseSync;
  store: JobStore;
  pipeline: InferencePipeline;
  sender: TxSenderLike;
  ledger: Contract;
  provider: JsonRpcProvider;
  /** This relayer's node: a request fulfilled by another node is a lost race. */
  node: string;
  /** The relayer's clock: a request is served once it is this node's turn (InferenceLedger.eligibleAt). */
  clock: Clock;
  /**
   * NodeStaking, to know the other GPU nodes and their stakes: an earlier turn of an active node is
   * left to it for `turnGraceSeconds` before this node serves (none: no waiting for others).
   */
  staking?: Contract;
  /** How long an earlier node's turn is left to it (default 10 s). */
  turnGraceSeconds?: number;
  confirmations: number;
  deployBlock: number;
  maxBlockRange: number;
  pollMs: number;
  metrics: RelayerMetrics;
  log: Logger;
}

export class Listener {
  private running = false;
  private loop: Promise<void> | null = null;
  private readonly waiting = new Set<string>();
  /** Other GPU nodes seen registered (NodeStaking.NodeRegistered), and how far the scan went. */
  private readonly known = new Set<string>();
  private knownTo: number | null = null;
  private peers: {
    at: number;
    window: bigint;
    minStake: bigint;
    stakes: Map<string, bigint>;
  } | null = null;

  constructor(private readonly o: ListenerOptions) {
    migrate(o.db, "listener", LISTENER_MIGRATIONS);
    o.sender.registerDoneCheck("fulfil", async (intent) => {
      const requestId = intent.key.slice("fulfil:".length);
      const hash = String(await o.ledger.getFunction("requestHashOf").staticCall(requestId));
      return BigInt(hash) === 0n;
    });
  }

  /** Whether `requestId` is an on-chain request this listener stored. */
  hasRequest(requestId: string): boolean {
    return (
      this.o.db
        .prepare("SELECT 1 FROM chain_requests WHERE request_id = ?")
        .get(requestId.toLowerCase()) !== undefined
    );
  }

  /** The last fully scanned block (deployBlock - 1 before the first scan). */
  cursor(): number {
    const row = this.o.db.prepare("SELECT block FROM listener_cursor WHERE id = 1").get() as
      { block: number } | undefined;
    return row === undefined ? this.o.deployBlock - 1 : Number(row.block);
  }

  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.o.db
      .prepare("SELECT state, COUNT(*) AS n FROM chain_requests GROUP BY state")
      .all() as Array<{ state: string; n: number }>)
      out[r.state] = Number(r.n);
    return out;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        await this.scan();
        await this.serve();
      } catch (error) {
        this.o.metrics.failures.inc({ stage: "listener" });
        this.o.log.error(
          { at: "Listener#run", err: (error as Error).message },
          "listener round failed",
        );
      }
      await new Promise((r) => setTimeout(r, this.o.pollMs));
    }
  }

  /** Stores new confirmed requests and moves the cursor, range by range. */
  async scan(): Promise<number> {
    const { ledger, provider, db } = this.o;
    const head = await provider.getBlockNumber();
    const safe = head - this.o.confirmations;
    let stored = 0;
    for (let from = this.cursor() + 1; from <= safe; from += this.o.maxBlockRange) {
      const to = Math.min(safe, from + this.o.maxBlockRange - 1);
      const events = await ledger.queryFilter(ledger.filters.InferenceRequested!(), from, to);
      transaction(db, () => {
        const insert = db.prepare(
          "INSERT OR IGNORE INTO chain_requests (request_id, request, input, block, state, reason) VALUES (?, ?, ?, ?, ?, ?)",
        );
        for (const e of events) {
          if (!("args" in e)) continue;
          const a = e.args;
          const request = {
            requester: String(a.requester),
            fee: String(a.fee),
            modelId: String(a.modelId),
            inputHash: String(a.inputHash),
            deadline: String(a.deadline),
            callbackGasLimit: Number(a.callbackGasLimit),
            requestedAt: String(a.requestedAt),
            seed: String(a.seed),
          };
          const input = String(a.input);
          const servable = input !== "0x";
          const r = insert.run(
            String(a.requestId).toLowerCase(),
            JSON.stringify(request),
            input,
            e.blockNumber,
            servable ? "new" : "unservable",
            servable ? null : "input given by URI only",
          );
          stored += Number(r.changes);
        }
        db.prepare(
          "INSERT INTO listener_cursor (id, block) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET block = excluded.block",
        ).run(to);
      });
      this.o.metrics.listenerCursor.set(to);
    }
    return stored;
  }

  /** Serves stored requests: new ones are inferred and submitted, submitted ones are awaited. */
  async serve(): Promise<void> {
    const { db, store, pipeline, sender, ledger, log } = this.o;
    const rows = db
      .prepare("SELECT * FROM chain_requests WHERE state IN ('new', 'submitted') ORDER BY block")
      .all() as Array<{ request_id: string; request: string; input: string; state: string }>;
    for (const row of rows) {
      const raw = JSON.parse(row.request) as Record<string, string | number>;
      const request: ChainRequest = {
        requester: String(raw.requester),
        fee: BigInt(raw.fee!),
        modelId: String(raw.modelId),
        inputHash: String(raw.inputHash),
        deadline: BigInt(raw.deadline!),
        callbackGasLimit: Number(raw.callbackGasLimit),
        requestedAt: BigInt(raw.requestedAt ?? 0),
        seed: String(raw.seed ?? `0x${"00".repeat(32)}`),
      };
      const key = `fulfil:${row.request_id}`;
      const held = row.state === "new" ? store.getJob(row.request_id) : null;
      if (held !== null && !JobStore.isRecovered(held)) {
        // Another job holds this id (a previous relayer's HTTP job under a client-chosen id): the
        // request is not served, and the enclave is not handed a receipt this store cannot hold
        // (its batch would list a request whose stored receipt is another, refused forever). A job
        // recovered from the enclave's log is this request's own: serving it completes it.
        db.prepare(
          "UPDATE chain_requests SET state = 'rejected', reason = ? WHERE request_id = ?",
        ).run("another job holds this request id", row.request_id);
        log.error(
          { at: "Listener#serve", requestId: row.request_id },
          "another job holds this on-chain request's id: not served",
        );
        continue;
      }
      if (row.state === "new") {
        // Settled already (fulfilled or refunded: a relayer with a fresh store reads the history
        // again): nothing to serve, and no job that could never be batched (the enclave keeps the
        // receipt it logged for the request then, batched under another store).
        const open = String(await ledger.getFunction("requestHashOf").staticCall(row.request_id));
        if (BigInt(open) === 0n) {
          // Another node's fulfilment is a lost race, not one of ours.
          const winner = await this.fulfilledBy(row.request_id);
          const lost = winner !== null && winner.node.toLowerCase() !== this.o.node.toLowerCase();
          db.prepare("UPDATE chain_requests SET state = ?, reason = ? WHERE request_id = ?").run(
            lost ? "lost" : "done",
            lost
              ? `fulfilled by node ${winner.node} (${winner.txHash}) before this relayer served it`
              : "settled on chain already",
            row.request_id,
          );
          continue;
        }
        // Served in this node's turn only (the assignment rule): before it, another node's turn may
        // come first, and serving now would only burn an inference, a check and a reverted fulfil.
        const turn = BigInt(
          String(await ledger.getFunction("eligibleAt").staticCall(request, this.o.node)),
        );
        // (A turn at the request's own time needs no clock: after a time jump on a local chain the
        // clock may lag the chain for a moment, and a request must not wait into its deadline.)
        const now = this.o.clock.now();
        const deferTo = turn > request.requestedAt ? await this.deferredTo(request, turn) : turn;
        if (deferTo > request.requestedAt && now < deferTo) continue;
        log.info(
          {
            at: "Listener#serve",
            requestId: row.request_id,
            turn: turn.toString(),
            deferredTo: deferTo.toString(),
            now: now.toString(),
          },
          "serving an on-chain request in this node's turn",
        );
        let job;
        try {
          // The canonical input encoding, every dtype (docs/inference-tee.md), as JSON tensors.
          const inputs = inputsToJson(decodeInputs(getBytes(row.input)));
          job = await pipeline.execute({
            requestId: row.request_id,
            modelId: request.modelId,
            inputs,
            source: "chain",
            force: true,
          });
          if (job.receipt.inputHash !== keccak256(row.input))
            throw new InputError("input does not re-encode to its on-chain hash");
        } catch (error) {
          // A receipt the enclave refuses for good (it logged another one for this request: one
          // answer per request) makes the request unservable here, not the listener stuck on it.
          const refused =
            error instanceof EnclaveRequestError && error.status >= 400 && error.status < 500;
          if (!(error instanceof InputError) && !refused) throw error;
          db.prepare(
            "UPDATE chain_requests SET state = 'unservable', reason = ? WHERE request_id = ?",
          ).run((error as Error).message, row.request_id);
          log.warn(
            { at: "Listener#serve", requestId: row.request_id, reason: (error as Error).message },
            "unservable request",
          );
          continue;
        }
        const agreed = job.verdict?.agree === true;
        const stored = transaction(db, () => {
          const inserted = store.insertJob(job);
          db.prepare("UPDATE chain_requests SET state = ?, reason = ? WHERE request_id = ?").run(
            inserted ? (agreed ? "submitted" : "rejected") : "rejected",
            inserted ? null : "another job holds this request id",
            row.request_id,
          );
          return inserted;
        });
        if (!stored) {
          log.error(
            { at: "Listener#serve", requestId: row.request_id },
            "another job holds this on-chain request's id: not fulfilled",
          );
          continue;
        }
        if (!agreed) continue;
      }
      // Submitting again after a restart is a no-op for a key the sender already holds. Only a
      // chain job that answers this very request (its model and input) fulfils it.
      const job = store.getJob(row.request_id);
      if (job === null || job.enclaveSignature === null || job.verdict === null) continue;
      if (
        job.source !== "chain" ||
        job.receipt.modelId.toLowerCase() !== request.modelId.toLowerCase() ||
        job.receipt.inputHash.toLowerCase() !== request.inputHash.toLowerCase()
      ) {
        db.prepare(
          "UPDATE chain_requests SET state = 'rejected', reason = ? WHERE request_id = ?",
        ).run("the stored job does not answer this request", row.request_id);
        log.error(
          { at: "Listener#serve", requestId: row.request_id, jobSource: job.source },
          "the stored job does not answer the on-chain request: not fulfilled",
        );
        continue;
      }
      const output = encodeOutputs(
        job.outputs.map((t): QuantisedTensor => ({
          ...t,
          values: BigInt64Array.from(t.values.map(BigInt)),
        })),
      );
      sender.submit({
        key,
        kind: "fulfil",
        to: await ledger.getAddress(),
        data: ledger.interface.encodeFunctionData("fulfil", [
          request,
          job.receipt,
          job.nodeSignature,
          job.verdict.timestamp,
          job.enclaveSignature,
          output,
        ]),
      });
      if (!this.waiting.has(key)) {
        this.waiting.add(key);
        void this.await(key, row.request_id);
      }
    }
  }

  /**
   * When this node may serve a request whose turn for it is `turn`: no sooner than `grace` seconds
   * after every earlier turn of another active GPU node (computed as InferenceLedger.eligibleAt does,
   * offchain/chain/assignment.ts), so that a live earlier node serves alone and a silent one only
   * delays the request. With a window of 0 (a race) nobody waits.
   */
  private async deferredTo(request: ChainRequest, turn: bigint): Promise<bigint> {
    if (this.o.staking === undefined) return turn;
    const peers = await this.readPeers();
    if (peers.window === 0n) return turn;
    const grace = BigInt(this.o.turnGraceSeconds ?? 10);
    let until = turn;
    for (const [node, stake] of peers.stakes) {
      const at = eligibleAt(request, node, {
        window: peers.window,
        stake,
        minStake: peers.minStake,
      });
      if (at < turn && at + grace > until) until = at + grace;
    }
    return until;
  }

  /** The other active GPU nodes and their stakes, the window and the minimum (re-read every 10 s). */
  private async readPeers(): Promise<{
    window: bigint;
    minStake: bigint;
    stakes: Map<string, bigint>;
  }> {
    if (this.peers !== null && Date.now() - this.peers.at < 10_000) return this.peers;
    const staking = this.o.staking!;
    const head = Number(await this.o.provider.send("eth_blockNumber", []));
    for (
      let from = (this.knownTo ?? this.o.deployBlock - 1) + 1;
      from <= head;
      from += this.o.maxBlockRange
    ) {
      const to = Math.min(head, from + this.o.maxBlockRange - 1);
      for (const e of await staking.queryFilter(staking.filters.NodeRegistered!(), from, to)) {
        if (!("args" in e) || Number(e.args.role) !== INFERENCE_ROLE) continue;
        const node = String(e.args.node).toLowerCase();
        if (node !== this.o.node.toLowerCase()) this.known.add(node);
      }
      this.knownTo = to;
    }
    const stakes = new Map<string, bigint>();
    for (const node of this.known) {
      if (!(await staking.getFunction("isActive").staticCall(node))) continue;
      stakes.set(node, BigInt(String(await staking.getFunction("activeStakeOf").staticCall(node))));
    }
    this.peers = {
      at: Date.now(),
      window: BigInt(String(await this.o.ledger.getFunction("assignmentWindow").staticCall())),
      minStake: BigInt(String(await staking.getFunction("minStake").staticCall(INFERENCE_ROLE))),
      stakes,
    };
    return this.peers;
  }

  /** Who fulfilled `requestId` on chain (its InferenceFulfilled event), or null (not fulfilled). */
  private async fulfilledBy(requestId: string): Promise<{ node: string; txHash: string } | null> {
    const { ledger, provider, db } = this.o;
    const row = db
      .prepare("SELECT block FROM chain_requests WHERE request_id = ?")
      .get(requestId) as { block: number } | undefined;
    // Asked of the node itself: ethers may answer getBlockNumber from a short cache.
    const head = Number(await provider.send("eth_blockNumber", []));
    // From the request's block on (a fulfilment cannot come before it), range by range.
    for (let from = row?.block ?? this.o.deployBlock; from <= head; from += this.o.maxBlockRange) {
      const to = Math.min(head, from + this.o.maxBlockRange - 1);
      const events = await ledger.queryFilter(
        ledger.filters.InferenceFulfilled!(requestId),
        from,
        to,
      );
      const e = events[0];
      if (e !== undefined && "args" in e)
        return { node: String(e.args.node), txHash: e.transactionHash };
    }
    return null;
  }

  private async await(key: string, requestId: string): Promise<void> {
    try {
      const outcome = await this.o.sender.wait(key);
      // "Already done" (the request was not pending when ours was mined, or before it was sent):
      // settled by whoever the chain says, which is a lost race unless it was this node.
      // A fulfil refused as LedgerRequestNotPending (before it was sent, or mined reverted) is the same.
      const settled =
        (outcome.status === "confirmed" && outcome.reason !== undefined) ||
        (outcome.status === "failed" &&
          (outcome.reason ?? "").startsWith("LedgerRequestNotPending"));
      const winner = settled ? await this.fulfilledBy(requestId) : null;
      const lost = winner !== null && winner.node.toLowerCase() !== this.o.node.toLowerCase();
      if (outcome.gasUsed > 0n) {
        this.o.metrics.gasSpent.inc(
          { kind: lost ? "fulfil_lost" : "fulfil" },
          Number(outcome.gasUsed),
        );
      }
      if (outcome.status === "failed" && !lost) this.o.metrics.failures.inc({ stage: "fulfil" });
      if (lost) {
        this.o.metrics.failures.inc({ stage: "fulfil_lost" });
        this.o.log.warn(
          { at: "Listener#await", requestId, winner: winner.node, tx: winner.txHash },
          "another node fulfilled the request first: recorded as lost",
        );
      }
      const reason =
        outcome.status === "failed" && !lost
          ? `fulfil failed (${outcome.txHash})`
          : lost
            ? `fulfilled by node ${winner.node} (${winner.txHash})${outcome.txHash === "" ? "" : `; ours reverted (${outcome.txHash})`}`
            : settled && winner === null
              ? "settled on chain without a fulfilment (refunded)"
              : null;
      this.o.db
        .prepare("UPDATE chain_requests SET state = ?, reason = ? WHERE request_id = ?")
        .run(lost ? "lost" : "done", reason, requestId);
    } catch (error) {
      this.o.log.error(
        { at: "Listener#await", key, err: (error as Error).message },
        "fulfil wait failed",
      );
    } finally {
      this.waiting.delete(key);
    }
  }
}
