/**
 * The relayer's durable store: one embedded SQLite file (node:sqlite), shared by the components of the
 * service. Each component owns its tables and its ordered list of migrations; `migrate` applies the
 * ones not yet applied, each in its own transaction, and records them in `schema_migrations`.
 */
import { createRequire } from "node:module";
import type * as Sqlite from "node:sqlite";
import type { DatabaseSync } from "node:sqlite";

/**
 * node:sqlite prints an ExperimentalWarning to every relayer's stderr when it loads (Node 22). We chose
 * it knowingly (docs/relayer.md); load it with that one warning, recognised by its text, held back.
 * Every other warning, from this module or any other, is emitted as usual.
 */
function loadSqlite(): typeof Sqlite {
  const emit = Reflect.get(process, "emitWarning");
  process.emitWarning = function (warning: string | Error, ...rest: unknown[]) {
    const text = typeof warning === "string" ? warning : warning.message;
    if (text.startsWith("SQLite is an experimental feature")) return;
    Reflect.apply(emit, process, [warning, ...rest]);
  };
  try {
    const required: unknown = createRequire(import.meta.url)("node:sqlite");
    return required as typeof Sqlite;
  } finally {
    process.emitWarning = emit;
  }
}

const sqlite = loadSqlite();

export interface Migration {
  /** 1, 2, 3, ... per component, never reused or edited once released. */
  version: number;
  description: string;
  sql: string;
}

/** Opens (or creates) the store with settings for durability under crashes: WAL + full sync. */
export function openDatabase(path: string): DatabaseSync {
  const db = new sqlite.DatabaseSync(path);
  db.exec(
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
  );
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    component TEXT NOT NULL,
    version INTEGER NOT NULL,
    description TEXT NOT NULL,
    applied_at INTEGER NOT NULL,
    PRIMARY KEY (component, version)
  )`);
  return db;
}

/** Opens the store read-only (inspection: `opg relayer status`, the soak's checks). */
export function openDatabaseReadOnly(path: string): DatabaseSync {
  return new sqlite.DatabaseSync(path, { readOnly: true });
}

/** Applies `component`'s pending migrations in order; returns the versions applied now. */
export function migrate(db: DatabaseSync, component: string, migrations: Migration[]): number[] {
  const versions = migrations.map((m) => m.version);
  if (versions.some((v, i) => v !== i + 1)) {
    throw new Error(
      `${component}: migrations must be numbered 1..n in order, got ${versions.join(",")}`,
    );
  }
  const row = db
    .prepare("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations WHERE component = ?")
    .get(component) as { v: number };
  const applied: number[] = [];
  for (const m of migrations.slice(row.v)) {
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(m.sql);
      db.prepare(
        "INSERT INTO schema_migrations (component, version, description, applied_at) VALUES (?, ?, ?, ?)",
      ).run(component, m.version, m.description, Date.now());
      db.exec("COMMIT");
    } catch (error) {
      db.exec("ROLLBACK");
      throw error;
    }
    applied.push(m.version);
  }
  return applied;
}

/** Runs `fn` inside one IMMEDIATE transaction (all or nothing, even across a crash). */
export function transaction<T>(db: DatabaseSync, fn: () => T): T {
  db.exec("BEGIN IMMEDIATE");
  try {
    const result = fn();
    db.exec("COMMIT");
    return result;
  } catch (error) {
    db.exec("ROLLBACK");
    throw error;
  }
}
