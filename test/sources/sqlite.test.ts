import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, LifeboatError } from "../../src/errors.ts";
import { createSource } from "../../src/sources/index.ts";
import { SqliteSource } from "../../src/sources/sqlite.ts";
import { describeSourceContract, drain, within } from "../contracts/source.ts";

// Names that break unquoted SQL: a keyword, mixed case, spaces, a quote and a dot.
const FIXTURE = `
  pragma journal_mode = wal;
  create table "Order Items" (id integer primary key, sku text not null, qty int not null);
  create table "select" (id int);
  create table "MixedCase" (v text);
  create table "we""ird.name" (v text);
  create table empty (id int);
  create table seq (id integer primary key autoincrement, v text);
  create table big (id integer primary key, payload text not null);
  create table ticks (id integer primary key, at int not null);
  create virtual table docs using fts5(body);
  with recursive g(n) as (select 1 union all select n + 1 from g where n < 1234)
    insert into "Order Items" (sku, qty) select 'sku-' || n, n % 7 from g;
  with recursive g(n) as (select 1 union all select n + 1 from g where n < 17) insert into "select" select n from g;
  insert into "MixedCase" values ('a'), ('b');
  insert into "we""ird.name" values ('x'), ('y'), ('z');
  insert into seq (v) values ('one'), ('two');
  insert into docs (body) values ('hello world'), ('lifeboat drills');
  with recursive g(n) as (select 1 union all select n + 1 from g where n < 200000)
    insert into big select n, hex(randomblob(24)) from g;
`;
// User tables as the inventory keys them: sqlite_sequence is internal, docs is virtual (its shadow tables count).
const TABLES = [
  "MixedCase",
  "Order Items",
  "big",
  "docs_config",
  "docs_content",
  "docs_data",
  "docs_docsize",
  "docs_idx",
  "empty",
  "select",
  "seq",
  "ticks",
  'we"ird.name',
].sort();

// Inserts into ticks until killed, 20 rows per transaction, printing its total every 1000 rows.
const WRITER = `
  const { DatabaseSync } = require("node:sqlite");
  const db = new DatabaseSync(process.argv[1], { timeout: 10000 });
  const ins = db.prepare("insert into ticks (at) values (?)");
  let n = 0;
  const tick = () => {
    db.exec("begin");
    for (let i = 0; i < 20; i++) ins.run(Date.now());
    db.exec("commit");
    n += 20;
    if (n % 1000 === 0) process.stdout.write(n + "\\n");
    setImmediate(tick);
  };
  tick();
`;

let tmp: string;
let dbPath: string;
let tempDir: string;

function source(path = dbPath, lockTimeoutMs = 30_000, dir = tempDir): SqliteSource {
  return new SqliteSource({ type: "sqlite", path, boundary: "test", lockTimeoutMs }, { tempDir: dir });
}

/** Exact counts straight from a file, independent of the code under test. */
function countsIn(path: string, names: string[]): Record<string, number> {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const out: Record<string, number> = {};
    for (const name of names) {
      out[name] = Number(db.prepare(`select count(*) as n from "${name.replaceAll('"', '""')}"`).get()?.n);
    }
    return out;
  } finally {
    db.close();
  }
}

function integrity(path: string): string {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return String(db.prepare("pragma integrity_check").get()?.integrity_check);
  } finally {
    db.close();
  }
}

function startWriter(path: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["-e", WRITER, path], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.once("exit", (c) => reject(new Error(`writer exited with ${c}`)));
    child.stdout?.once("data", () => resolve(child));
  });
}

async function expectTempEmpty(): Promise<void> {
  expect(await readdir(tempDir)).toEqual([]);
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "lifeboat-sqlite-test-"));
  await mkdir(join(tmp, "app data"));
  tempDir = join(tmp, "temp");
  await mkdir(tempDir);
  dbPath = join(tmp, "app data", "app.db");
  const db = new DatabaseSync(dbPath);
  db.exec(FIXTURE);
  db.close();
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describeSourceContract("sqlite", () => source());

describe("SqliteSource", () => {
  it("is what createSource builds for type sqlite", () => {
    expect(createSource({ type: "sqlite", path: dbPath, boundary: "test", lockTimeoutMs: 1000 })).toBeInstanceOf(SqliteSource);
  });

  it("copies a WAL database while a writer inserts; the copy is sound and its counts equal the inventory", async () => {
    const writer = await startWriter(dbPath);
    try {
      const dump = await source().dump(new AbortController().signal);
      expect(dump.artifact).toBe("db.sqlite");
      expect(dump.format).toBe("sqlite3");
      const out = join(tmp, "copy.sqlite");
      await within(60_000, "stream", pipeline(dump.stream, createWriteStream(out)));
      const info = await within(60_000, "done", dump.done);
      const inventory = await dump.inventory;

      expect(inventory).toMatchObject({ kind: "sqlite", counts: "exact", journalMode: "wal" });
      expect(Object.keys(inventory.tables ?? {}).sort()).toEqual(TABLES);
      expect(integrity(out)).toBe("ok");
      expect(countsIn(out, TABLES)).toEqual(inventory.tables);
      expect(inventory.tables).toMatchObject({
        big: 200_000,
        "Order Items": 1234,
        select: 17,
        MixedCase: 2,
        'we"ird.name': 3,
        empty: 0,
        seq: 2,
      });
      expect(inventory.tables?.ticks).toBeGreaterThanOrEqual(1000);

      expect(info.tool).toMatch(/^node:sqlite \(SQLite \d+\.\d+\.\d+\)$/);
      expect(info.details).toMatchObject({ path: dbPath, journalMode: "wal", pageCount: expect.any(Number) });
      expect(info.details?.sqliteVersion).toBe(process.versions.sqlite);
      // The writer was never blocked: it is alive and kept inserting past the copied snapshot.
      expect(writer.exitCode).toBeNull();
      const after = countsIn(dbPath, ["ticks"]).ticks ?? 0;
      expect(after).toBeGreaterThan(inventory.tables?.ticks ?? 0);
      await expectTempEmpty();
    } finally {
      writer.kill();
    }
  });

  it("captures commits that are still only in the -wal file", async () => {
    const path = join(tmp, "app data", "wal-only.db");
    const db = new DatabaseSync(path);
    try {
      db.exec("pragma journal_mode = wal; pragma wal_autocheckpoint = 0; create table t (v int)");
      db.exec("with recursive g(n) as (select 1 union all select n + 1 from g where n < 5000) insert into t select n from g");
      expect(statSync(`${path}-wal`).size).toBeGreaterThan(0);
      const dump = await source(path).dump(new AbortController().signal);
      const out = join(tmp, "wal-only-copy.sqlite");
      await pipeline(dump.stream, createWriteStream(out));
      await dump.done;
      expect((await dump.inventory).tables).toEqual({ t: 5000 });
      expect(countsIn(out, ["t"])).toEqual({ t: 5000 });
    } finally {
      db.close();
    }
  });

  it("backs up a damaged database as it is, with a warning naming quick_check's finding; a sound one gets none", async () => {
    const path = join(tmp, "app data", "damaged.db");
    const db = new DatabaseSync(path);
    db.exec("create table t (v int); insert into t values (1), (2), (3)");
    db.close();
    const sound = await source(path).dump(new AbortController().signal);
    await drain(sound.stream);
    expect((await sound.done).warnings).toEqual([]);
    // A page the header counts but nothing uses: reads still work, quick_check reports it.
    const bytes = readFileSync(path);
    const pageSize = bytes.readUInt16BE(16);
    const pages = bytes.readUInt32BE(28);
    const grown = Buffer.concat([bytes, Buffer.alloc(pageSize)]);
    grown.writeUInt32BE(pages + 1, 28);
    writeFileSync(path, grown);
    const dump = await source(path).dump(new AbortController().signal);
    await drain(dump.stream);
    const info = await dump.done;
    expect((await dump.inventory).tables).toEqual({ t: 3 });
    expect(info.warnings).toHaveLength(1);
    expect(info.warnings[0]).toContain(`sqlite "${path}": PRAGMA quick_check found damage in the database (Page ${pages + 1}`);
    // SQLite versions word it "Page 3 is never used" or "Page 3: never used".
    expect(info.warnings[0]).toMatch(/never used\); the snapshot holds it as it is, and a drill of it will fail: .*\.recover/);
    await expectTempEmpty();
  });

  it("rejects a file that is not a SQLite database, naming the path", async () => {
    const path = join(tmp, "app data", "notes.db");
    writeFileSync(path, "these are notes, not a database\n".repeat(200));
    const err = await source(path)
      .dump(new AbortController().signal)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LifeboatError);
    expect(err).toMatchObject({ code: "SOURCE", message: expect.stringContaining(`"${path}": not a SQLite database`) });
    expect((err as LifeboatError).hint).toMatch(/database file itself/);
    await expectTempEmpty();
  });

  it("rejects a missing file, naming the path, and does not create it", async () => {
    const path = join(tmp, "app data", "missing.db");
    const err = await source(path)
      .dump(new AbortController().signal)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "SOURCE", message: `sqlite "${path}": no such file` });
    expect((err as LifeboatError).hint).toMatch(/check the source's path/);
    expect(existsSync(path)).toBe(false);
    await expectTempEmpty();
  });

  it("rejects a database locked past lockTimeoutMs, and waits out a shorter lock", async () => {
    const path = join(tmp, "app data", "locked.db");
    const holder = new DatabaseSync(path);
    try {
      holder.exec("pragma journal_mode = delete; create table t (v int); insert into t values (1)");
      holder.exec("begin exclusive; insert into t values (2)");
      const started = Date.now();
      const err = await source(path, 300)
        .dump(new AbortController().signal)
        .catch((e: unknown) => e);
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      expect(err).toMatchObject({ code: "SOURCE", message: expect.stringContaining(`"${path}": still locked`) });
      expect((err as LifeboatError).hint).toMatch(/lockTimeoutMs/);
      await expectTempEmpty();

      // The writer commits after 200 ms; a 10 s timeout waits it out and sees the committed row.
      setTimeout(() => holder.exec("commit"), 200);
      const dump = await source(path, 10_000).dump(new AbortController().signal);
      await drain(dump.stream);
      await dump.done;
      expect((await dump.inventory).tables).toEqual({ t: 2 });
    } finally {
      if (holder.isTransaction) holder.exec("rollback");
      holder.close();
    }
  });

  it("refuses a temporary directory inside the database's directory", async () => {
    const inside = join(tmp, "app data", "tmp");
    await mkdir(inside, { recursive: true });
    await expect(source(dbPath, 1000, inside).dump(new AbortController().signal)).rejects.toBeInstanceOf(ConfigError);
    expect(await readdir(inside)).toEqual([]);
  });

  it("deletes the temporary copy after an abort mid-stream", async () => {
    const ac = new AbortController();
    const dump = await source().dump(ac.signal);
    expect((await readdir(tempDir)).length).toBe(1);
    await within(30_000, "first chunk", new Promise<void>((resolve) => dump.stream.once("data", () => resolve())));
    dump.stream.pause();
    ac.abort();
    await expect(dump.done).rejects.toMatchObject({ code: "ABORTED" });
    await Promise.allSettled([dump.inventory]);
    await expectTempEmpty();
  });

  it("fails done and deletes the copy when the consumer closes the stream early", async () => {
    const dump = await source().dump(new AbortController().signal);
    await within(30_000, "first chunk", new Promise<void>((resolve) => dump.stream.once("data", () => resolve())));
    dump.stream.destroy();
    await expect(dump.done).rejects.toMatchObject({ code: "SOURCE", message: expect.stringMatching(/closed before/) });
    await expectTempEmpty();
  });
});
