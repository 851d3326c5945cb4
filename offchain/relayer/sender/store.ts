/**
 * The sender's tables in the relayer store. Everything the sender must remember across a crash is
 * here: each intent and its state, which nonce it holds, every signed attempt (written BEFORE it is
 * broadcast), the next free nonce per signer and the writer lease.
 */
import type { DatabaseSync } from "node:sqlite";

import { migrate, transaction } from "../db.js";
import type { Migration } from "../db.js";

export const SENDER_MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: "intents, nonce slots, attempts, next nonce, writer lease",
    sql: `
CREATE TABLE sender_intents (
  key TEXT PRIMARY KEY,
  signer TEXT NOT NULL,
  kind TEXT NOT NULL,
  to_address TEXT NOT NULL,
  data TEXT NOT NULL,
  gas_limit TEXT,
  state TEXT NOT NULL CHECK (state IN ('queued', 'inflight', 'mined', 'confirmed', 'failed')),
  nonce INTEGER,
  tx_hash TEXT,
  block_number INTEGER,
  gas_used TEXT,
  reason TEXT,
  seq INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX sender_intents_state ON sender_intents (signer, state, seq);
CREATE TABLE sender_slots (
  signer TEXT NOT NULL,
  nonce INTEGER NOT NULL,
  intent_key TEXT REFERENCES sender_intents (key),
  state TEXT NOT NULL CHECK (state IN ('open', 'mined', 'lost')),
  filler INTEGER NOT NULL DEFAULT 0,
  mined_hash TEXT,
  fees_changed_at INTEGER NOT NULL,
  PRIMARY KEY (signer, nonce)
);
CREATE TABLE sender_attempts (
  hash TEXT PRIMARY KEY,
  signer TEXT NOT NULL,
  nonce INTEGER NOT NULL,
  payload TEXT NOT NULL CHECK (payload IN ('intent', 'filler')),
  raw TEXT NOT NULL,
  max_fee_per_gas TEXT NOT NULL,
  max_priority_fee_per_gas TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  FOREIGN KEY (signer, nonce) REFERENCES sender_slots (signer, nonce)
);
CREATE INDEX sender_attempts_slot ON sender_attempts (signer, nonce, created_at);
CREATE TABLE sender_nonces (signer TEXT PRIMARY KEY, next_nonce INTEGER NOT NULL);
CREATE TABLE sender_leases (
  signer TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  pid INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);`,
  },
];

export type IntentState = "queued" | "inflight" | "mined" | "confirmed" | "failed";

export interface IntentRow {
  key: string;
  signer: string;
  kind: string;
  to_address: string;
  data: string;
  gas_limit: string | null;
  state: IntentState;
  nonce: number | null;
  tx_hash: string | null;
  block_number: number | null;
  gas_used: string | null;
  reason: string | null;
  seq: number;
}

export interface SlotRow {
  signer: string;
  nonce: number;
  intent_key: string | null;
  state: "open" | "mined" | "lost";
  /** 1 once the intent became done without this nonce: the slot is then filled by a self-transfer. */
  filler: number;
  mined_hash: string | null;
  fees_changed_at: number;
}

export interface AttemptRow {
  hash: string;
  nonce: number;
  payload: "intent" | "filler";
  raw: string;
  max_fee_per_gas: string;
  max_priority_fee_per_gas: string;
  created_at: number;
}

export interface LeaseRow {
  owner: string;
  pid: number;
  expires_at: number;
}

/** Typed queries over the sender's tables for one signer address. */
export class SenderStore {
  constructor(
    readonly db: DatabaseSync,
    readonly signer: string,
  ) {
    migrate(db, "sender", SENDER_MIGRATIONS);
  }

  tx<T>(fn: () => T): T {
    return transaction(this.db, fn);
  }

  intent(key: string): IntentRow | undefined {
    return this.db.prepare("SELECT * FROM sender_intents WHERE key = ?").get(key) as
      IntentRow | undefined;
  }

  insertIntent(
    row: Omit<
      IntentRow,
      "seq" | "state" | "nonce" | "tx_hash" | "block_number" | "gas_used" | "reason"
    >,
    now: number,
  ): void {
    this.db
      .prepare(
        `INSERT INTO sender_intents (key, signer, kind, to_address, data, gas_limit, state, seq, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, 'queued',
                 (SELECT COALESCE(MAX(seq), 0) + 1 FROM sender_intents), ?, ?)`,
      )
      .run(row.key, row.signer, row.kind, row.to_address, row.data, row.gas_limit, now, now);
  }

  intentsIn(state: IntentState): IntentRow[] {
    return this.db
      .prepare("SELECT * FROM sender_intents WHERE signer = ? AND state = ? ORDER BY seq")
      .all(this.signer, state) as unknown as IntentRow[];
  }

  updateIntent(key: string, fields: Partial<Omit<IntentRow, "key" | "signer">>, now: number): void {
    const names = Object.keys(fields);
    const sets = names.map((n) => `${n} = ?`).join(", ");
    const values = names.map((n) => (fields as Record<string, string | number | null>)[n] ?? null);
    this.db
      .prepare(`UPDATE sender_intents SET ${sets}, updated_at = ? WHERE key = ?`)
      .run(...values, now, key);
  }

  nextNonce(): number | undefined {
    const row = this.db
      .prepare("SELECT next_nonce FROM sender_nonces WHERE signer = ?")
      .get(this.signer) as { next_nonce: number } | undefined;
    return row?.next_nonce;
  }

  setNextNonce(nonce: number): void {
    this.db
      .prepare(
        `INSERT INTO sender_nonces (signer, next_nonce) VALUES (?, ?)
         ON CONFLICT (signer) DO UPDATE SET next_nonce = excluded.next_nonce`,
      )
      .run(this.signer, nonce);
  }

  openSlots(): SlotRow[] {
    return this.db
      .prepare("SELECT * FROM sender_slots WHERE signer = ? AND state = 'open' ORDER BY nonce")
      .all(this.signer) as unknown as SlotRow[];
  }

  insertSlot(nonce: number, intentKey: string | null, now: number): void {
    this.db
      .prepare(
        "INSERT INTO sender_slots (signer, nonce, intent_key, state, fees_changed_at) VALUES (?, ?, ?, 'open', ?)",
      )
      .run(this.signer, nonce, intentKey, now);
  }

  updateSlot(nonce: number, fields: Partial<Omit<SlotRow, "signer" | "nonce">>): void {
    const names = Object.keys(fields);
    const sets = names.map((n) => `${n} = ?`).join(", ");
    const values = names.map((n) => (fields as Record<string, string | number | null>)[n] ?? null);
    this.db
      .prepare(`UPDATE sender_slots SET ${sets} WHERE signer = ? AND nonce = ?`)
      .run(...values, this.signer, nonce);
  }

  attempts(nonce: number): AttemptRow[] {
    return this.db
      .prepare(
        "SELECT * FROM sender_attempts WHERE signer = ? AND nonce = ? ORDER BY created_at, rowid",
      )
      .all(this.signer, nonce) as unknown as AttemptRow[];
  }

  insertAttempt(a: AttemptRow): void {
    this.db
      .prepare(
        `INSERT INTO sender_attempts (hash, signer, nonce, payload, raw, max_fee_per_gas, max_priority_fee_per_gas, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        a.hash,
        this.signer,
        a.nonce,
        a.payload,
        a.raw,
        a.max_fee_per_gas,
        a.max_priority_fee_per_gas,
        a.created_at,
      );
  }

  countAttempts(key: string): number {
    const row = this.db
      .prepare(
        `SELECT COUNT(*) AS n FROM sender_attempts a JOIN sender_slots s ON a.signer = s.signer AND a.nonce = s.nonce
         WHERE s.intent_key = ? AND a.payload = 'intent'`,
      )
      .get(key) as { n: number };
    return row.n;
  }

  lease(): LeaseRow | undefined {
    return this.db
      .prepare("SELECT owner, pid, expires_at FROM sender_leases WHERE signer = ?")
      .get(this.signer) as LeaseRow | undefined;
  }

  putLease(owner: string, expiresAt: number): void {
    this.db
      .prepare(
        `INSERT INTO sender_leases (signer, owner, pid, expires_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (signer) DO UPDATE SET owner = excluded.owner, pid = excluded.pid, expires_at = excluded.expires_at`,
      )
      .run(this.signer, owner, process.pid, expiresAt);
  }

  dropLease(owner: string): void {
    this.db
      .prepare("DELETE FROM sender_leases WHERE signer = ? AND owner = ?")
      .run(this.signer, owner);
  }
}
