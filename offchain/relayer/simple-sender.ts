/**
 * A minimal transaction sender behind the TxSenderLike interface, used until the full sender
 * (offchain/relayer/sender/: fee bumping, replacement, dropped-transaction resend) lands. One writer,
 * one transaction at a time: intents are stored in SQLite before anything is sent, the signed
 * transaction's hash is stored before it is broadcast, and a done check runs before every send.
 */
import type { DatabaseSync } from "node:sqlite";

import { keccak256, type Provider, type Wallet } from "ethers";
import type { Logger } from "pino";

import { migrate, type Migration } from "./db.js";
import type { IntentKind, TxIntent, TxOutcome, TxSenderLike } from "./tx.js";

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: "intents",
    sql: `CREATE TABLE simple_sender_intents (
      key TEXT PRIMARY KEY,
      kind TEXT NOT NULL,
      "to" TEXT NOT NULL,
      data TEXT NOT NULL,
      gas_limit TEXT,
      status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'failed')),
      tx_hash TEXT,
      block INTEGER,
      gas_used TEXT,
      error TEXT,
      created_at INTEGER NOT NULL
    )`,
  },
];

interface IntentRow {
  key: string;
  kind: IntentKind;
  to: string;
  data: string;
  gas_limit: string | null;
  status: "pending" | "confirmed" | "failed";
  tx_hash: string | null;
  block: number | null;
  gas_used: string | null;
}

export class SimpleSender implements TxSenderLike {
  private readonly checks = new Map<IntentKind, (intent: TxIntent) => Promise<boolean>>();
  private readonly waiters = new Map<string, Array<(o: TxOutcome) => void>>();
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;

  constructor(
    private readonly db: DatabaseSync,
    private readonly wallet: Wallet,
    private readonly provider: Provider,
    private readonly log: Logger,
    private readonly pollMs = 200,
  ) {
    migrate(db, "simple-sender", MIGRATIONS);
  }

  submit(intent: TxIntent): void {
    this.db
      .prepare(
        `INSERT OR IGNORE INTO simple_sender_intents (key, kind, "to", data, gas_limit, status, created_at)
         VALUES (?, ?, ?, ?, ?, 'pending', ?)`,
      )
      .run(
        intent.key,
        intent.kind,
        intent.to,
        intent.data,
        intent.gasLimit?.toString() ?? null,
        Date.now(),
      );
    this.wake?.();
  }

  registerDoneCheck(kind: IntentKind, check: (intent: TxIntent) => Promise<boolean>): void {
    this.checks.set(kind, check);
  }

  wait(key: string): Promise<TxOutcome> {
    const row = this.row(key);
    if (row === undefined) return Promise.reject(new Error(`no intent with key ${key}`));
    if (row.status !== "pending") return Promise.resolve(outcome(row));
    return new Promise((resolve) => {
      const list = this.waiters.get(key) ?? [];
      list.push(resolve);
      this.waiters.set(key, list);
    });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  private row(key: string): IntentRow | undefined {
    return this.db.prepare("SELECT * FROM simple_sender_intents WHERE key = ?").get(key) as
      IntentRow | undefined;
  }

  private async run(): Promise<void> {
    while (this.running) {
      const next = this.db
        .prepare(
          "SELECT * FROM simple_sender_intents WHERE status = 'pending' ORDER BY created_at, rowid LIMIT 1",
        )
        .get() as IntentRow | undefined;
      if (next === undefined) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, this.pollMs);
        });
        this.wake = null;
        continue;
      }
      try {
        await this.process(next);
      } catch (error) {
        this.log.warn(
          { at: "SimpleSender#run", key: next.key, err: (error as Error).message },
          "send attempt failed; will retry",
        );
        await new Promise((r) => setTimeout(r, this.pollMs));
      }
    }
  }

  private finish(
    key: string,
    status: "confirmed" | "failed",
    fields: Partial<IntentRow> & { error?: string },
  ): void {
    this.db
      .prepare(
        "UPDATE simple_sender_intents SET status = ?, tx_hash = COALESCE(?, tx_hash), block = ?, gas_used = ?, error = ? WHERE key = ?",
      )
      .run(
        status,
        fields.tx_hash ?? null,
        fields.block ?? 0,
        fields.gas_used ?? "0",
        fields.error ?? null,
        key,
      );
    const row = this.row(key)!;
    for (const resolve of this.waiters.get(key) ?? []) resolve(outcome(row));
    this.waiters.delete(key);
  }

  private async process(row: IntentRow): Promise<void> {
    const intent: TxIntent = {
      key: row.key,
      kind: row.kind,
      to: row.to,
      data: row.data,
      ...(row.gas_limit === null ? {} : { gasLimit: BigInt(row.gas_limit) }),
    };
    // A transaction sent before a crash: settle it by its receipt.
    if (row.tx_hash !== null) {
      const receipt = await this.provider.getTransactionReceipt(row.tx_hash);
      if (receipt !== null) {
        this.finish(row.key, receipt.status === 1 ? "confirmed" : "failed", {
          tx_hash: row.tx_hash,
          block: receipt.blockNumber,
          gas_used: receipt.gasUsed.toString(),
        });
        return;
      }
    }
    this.log.debug({ at: "SimpleSender#process", key: row.key }, "checking");
    const check = this.checks.get(row.kind);
    if (check !== undefined && (await check(intent))) {
      this.finish(row.key, "confirmed", {});
      return;
    }
    const signer = this.wallet.connect(this.provider);
    let request;
    try {
      request = await signer.populateTransaction({
        to: intent.to,
        data: intent.data,
        nonce: await this.provider.getTransactionCount(this.wallet.address, "pending"),
        ...(intent.gasLimit === undefined ? {} : { gasLimit: intent.gasLimit }),
      });
    } catch (error) {
      // The call reverts as things stand (estimateGas): a permanent failure for this intent.
      this.finish(row.key, "failed", { error: (error as Error).message.slice(0, 500) });
      this.log.error({ at: "SimpleSender#process", key: row.key }, "transaction would revert");
      return;
    }
    this.log.debug({ at: "SimpleSender#process", key: row.key }, "populated");
    const signed = await signer.signTransaction(request);
    const hash = keccak256(signed);
    this.db
      .prepare("UPDATE simple_sender_intents SET tx_hash = ? WHERE key = ?")
      .run(hash, row.key);
    await this.provider.broadcastTransaction(signed);
    this.log.debug({ at: "SimpleSender#process", key: row.key, hash }, "broadcast");
    // Poll for the receipt (ethers' block subscription can miss a block mined before it subscribed,
    // and an automining chain mines no further block to notice it with).
    let receipt = null;
    for (const end = Date.now() + 120_000; receipt === null && Date.now() < end && this.running;) {
      receipt = await this.provider.getTransactionReceipt(hash);
      if (receipt === null) await new Promise((r) => setTimeout(r, this.pollMs));
    }
    if (receipt === null) return; // still pending: the next round settles it
    this.finish(row.key, receipt.status === 1 ? "confirmed" : "failed", {
      tx_hash: hash,
      block: receipt.blockNumber,
      gas_used: receipt.gasUsed.toString(),
    });
  }
}

function outcome(row: IntentRow): TxOutcome {
  return {
    status: row.status === "failed" ? "failed" : "confirmed",
    txHash: row.tx_hash ?? "",
    blockNumber: row.block ?? 0,
    gasUsed: BigInt(row.gas_used ?? "0"),
  };
}
