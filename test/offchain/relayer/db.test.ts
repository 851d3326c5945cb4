import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";

import { migrate, openDatabase, transaction } from "../../../offchain/relayer/db.js";

describe("offchain/relayer/db", () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(path.join(tmpdir(), "opg-db-"))));
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  const migrations = [
    { version: 1, description: "jobs", sql: "CREATE TABLE jobs (id TEXT PRIMARY KEY)" },
    { version: 2, description: "jobs.state", sql: "ALTER TABLE jobs ADD COLUMN state TEXT" },
  ];

  it("applies each component's migrations once, in order, across reopenings", () => {
    const file = path.join(dir, "store.db");
    const db = openDatabase(file);
    expect(migrate(db, "jobs", migrations.slice(0, 1))).to.deep.equal([1]);
    db.close();
    const again = openDatabase(file);
    expect(migrate(again, "jobs", migrations)).to.deep.equal([2]);
    expect(migrate(again, "jobs", migrations)).to.deep.equal([]);
    expect(
      migrate(again, "other", [{ version: 1, description: "x", sql: "CREATE TABLE x (a)" }]),
    ).to.deep.equal([1]);
    again.prepare("INSERT INTO jobs (id, state) VALUES (?, ?)").run("a", "new");
    expect(again.prepare("SELECT state FROM jobs").get()).to.deep.equal({ state: "new" });
  });

  it("rolls back a failing migration and refuses misnumbered lists", () => {
    const db = openDatabase(path.join(dir, "store.db"));
    const bad = [{ version: 1, description: "bad", sql: "CREATE TABLE y (a); NOT SQL" }];
    expect(() => migrate(db, "bad", bad)).to.throw();
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'y'").get()).to.equal(undefined);
    expect(() => migrate(db, "gap", [{ version: 2, description: "", sql: "" }])).to.throw(
      /numbered 1..n/,
    );
  });

  it("commits a transaction whole or not at all", () => {
    const db = openDatabase(path.join(dir, "store.db"));
    migrate(db, "jobs", migrations);
    expect(() =>
      transaction(db, () => {
        db.prepare("INSERT INTO jobs (id) VALUES ('a')").run();
        throw new Error("crash");
      }),
    ).to.throw("crash");
    transaction(db, () => db.prepare("INSERT INTO jobs (id) VALUES ('b')").run());
    expect(db.prepare("SELECT id FROM jobs").all()).to.deep.equal([{ id: "b" }]);
  });
});
