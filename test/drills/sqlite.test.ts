import { createReadStream, createWriteStream, existsSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Manifest, manifestSchema } from "../../src/catalog/manifest.ts";
import { type Config, configSchema, type Drill, type DrillInput, drillSchema, type Job, jobSchema } from "../../src/config/schema.ts";
import type { ArtifactInput } from "../../src/drills/kind.ts";
import { sqliteDrillKind } from "../../src/drills/sqlite.ts";
import { ConfigError, IntegrityError, RefusedError } from "../../src/errors.ts";
import type { Inventory } from "../../src/sources/source.ts";
import { SqliteSource } from "../../src/sources/sqlite.ts";

const FIXTURE = `
  pragma journal_mode = wal;
  create table "Order Items" (id integer primary key, sku text not null);
  create table "select" (id int);
  create table empty (id int);
  create table t (id integer primary key, v text);
  create index t_v on t (v);
  with recursive g(n) as (select 1 union all select n + 1 from g where n < 5000)
    insert into "Order Items" (sku) select 'sku-' || n from g;
  insert into "select" values (1), (2), (3);
  with recursive g(n) as (select 1 union all select n + 1 from g where n < 50) insert into t select n, 'value-' || n from g;
`;
const HASH = "0".repeat(64);

let tmp: string;
let dbPath: string;
let scratchDir: string;
let artifact: string;
let inventory: Inventory;
let runs = 0;

function makeConfig(directory: string | undefined): Config {
  return configSchema.parse({
    encryption: { recipients: ["age1test"] },
    targets: { nas: { type: "filesystem", path: join(tmp, "nas"), boundary: "nas" } },
    scratch: directory === undefined ? {} : { directory },
  });
}

function makeJob(path = dbPath): Job {
  return jobSchema.parse({ name: "shop-db", source: { type: "sqlite", path, boundary: "app" }, targets: ["nas"] });
}

const manifest: Manifest = manifestSchema.parse({
  format: "lifeboat-snapshot",
  version: 1,
  job: "shop-db",
  snapshotId: "20260101T000000Z-abcd",
  target: "nas",
  startedAt: "2026-01-01T00:00:00.000Z",
  finishedAt: "2026-01-01T00:00:01.000Z",
  source: { kind: "sqlite", boundary: "app" },
  encryption: { scheme: "age", recipients: ["age1test"] },
  compression: { scheme: "zstd", level: 1 },
  artifacts: [
    { name: "db.sqlite.zst.age", size: 1, sha256: HASH, format: "sqlite3", encoding: ["age", "zstd"], rawBytes: 1, compressedBytes: 1 },
  ],
  inventory: { name: "inventory.json.age", size: 1, sha256: HASH, counts: "exact" },
  tool: { name: "lifeboat", version: "0.0.0" },
});

function drill(checks: DrillInput["checks"] = {}): Drill {
  return drillSchema.parse({ name: "shop-weekly", job: "shop-db", checks });
}

function fileInput(path: string): ArtifactInput {
  return { stream: async () => createReadStream(path), file: async () => path };
}

/** Creates a scratch place under `directory` (null: scratch.directory unset). */
async function scratch(directory: string | null = scratchDir, job = makeJob()) {
  runs++;
  const signal = new AbortController().signal;
  return sqliteDrillKind.createScratch({ config: makeConfig(directory ?? undefined), job, manifest, runId: `run${runs}`, signal });
}

/** Restores `path` into a fresh scratch directory and runs the drill's checks there; always drops it. */
async function restoreAndCheck(path: string, d: Drill, inv: Inventory = inventory) {
  const s = await scratch();
  const signal = new AbortController().signal;
  try {
    await s.restore(fileInput(path), signal);
    return await s.check(inv, d, signal);
  } finally {
    await s.drop();
    expect(existsSync(s.location)).toBe(false);
  }
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "lifeboat-sqlite-drill-"));
  await mkdir(join(tmp, "app"));
  dbPath = join(tmp, "app", "shop.db");
  scratchDir = join(tmp, "scratch");
  const db = new DatabaseSync(dbPath);
  db.exec(FIXTURE);
  db.close();
  // The artifact as a backup made it: the source's dump, written to a file.
  const dump = await new SqliteSource({ type: "sqlite", path: dbPath, boundary: "app", lockTimeoutMs: 1000 }).dump(
    new AbortController().signal,
  );
  artifact = join(tmp, "db.sqlite");
  await pipeline(dump.stream, createWriteStream(artifact));
  await dump.done;
  inventory = await dump.inventory;
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("sqliteDrillKind", () => {
  it("restores a dump into a fresh private directory; integrity, row counts and queries pass", async () => {
    const s = await scratch();
    expect(s.location).toBe(join(scratchDir, "lifeboat_drill_shop-db_run1"));
    expect(statSync(s.location).mode & 0o777).toBe(0o700);
    const signal = new AbortController().signal;
    await s.restore(fileInput(artifact), signal);
    expect(existsSync(join(s.location, "db.sqlite"))).toBe(true);
    const results = await s.check(
      inventory,
      drill({
        queries: [
          { name: "orders", sql: 'select count(*) from "Order Items"', min: 1, max: 10_000 },
          { name: "selects", sql: 'select sum(id) from "select"', equals: 6 },
          { name: "any number", sql: "select 1.5" },
        ],
      }),
      signal,
    );
    expect(results.map((r) => [r.kind, r.name, r.ok])).toEqual([
      ["integrity", "integrity_check", true],
      ["rowCounts", "row counts equal the backup's snapshot", true],
      ["query", "orders", true],
      ["query", "selects", true],
      ["query", "any number", true],
    ]);
    expect(results[1]?.expected).toEqual({ tables: 4, rows: 5053 });
    await s.drop();
    expect(existsSync(s.location)).toBe(false);
    await s.drop(); // idempotent
  });

  it("reports every row-count mismatch when the inventory was tampered with", async () => {
    const { empty: _, ...rest } = inventory.tables ?? {};
    const tampered: Inventory = { ...inventory, tables: { ...rest, "Order Items": 4999, ghost: 3 } };
    const results = await restoreAndCheck(artifact, drill(), tampered);
    const counts = results.find((r) => r.kind === "rowCounts");
    expect(counts?.ok).toBe(false);
    expect(counts?.mismatches).toEqual([
      { item: "Order Items", expected: 4999, actual: 5000 },
      { item: "ghost", expected: 3, actual: "missing" },
      { item: "empty", expected: "absent", actual: 0 },
    ]);
    expect(counts?.detail).toBe(
      '3 tables differ: "Order Items" expected 4999, got 5000; "ghost" expected 3, got missing; "empty" expected absent, got 0',
    );
    expect(results.find((r) => r.kind === "integrity")?.ok).toBe(true);
  });

  it("skips row counts when checks.rowCounts is off", async () => {
    const tampered: Inventory = { ...inventory, tables: { nothing: 1 } };
    const results = await restoreAndCheck(artifact, drill({ rowCounts: "off" }), tampered);
    expect(results.map((r) => r.kind)).toEqual(["integrity"]);
  });

  it("fails the integrity check for a corrupted index and for garbage pages", async () => {
    // A changed value in the index's only page: the table and its index disagree.
    const bytes = readFileSync(artifact);
    const db = new DatabaseSync(artifact, { readOnly: true });
    const root = Number(db.prepare("select rootpage from sqlite_schema where name = 't_v'").get()?.rootpage);
    const pageSize = Number(db.prepare("pragma page_size").get()?.page_size);
    db.close();
    const page = bytes.subarray((root - 1) * pageSize, root * pageSize);
    page.write("value-X", page.indexOf("value-7"));
    const badIndex = join(tmp, "bad-index.sqlite");
    writeFileSync(badIndex, bytes);
    const r1 = await restoreAndCheck(badIndex, drill());
    expect(r1[0]).toMatchObject({ kind: "integrity", ok: false, detail: expect.stringMatching(/missing from index t_v/) });

    // Pages overwritten with garbage: SQLite stops with "malformed", which fails the check with that message.
    const garbage = readFileSync(artifact);
    garbage.fill(0xab, pageSize * 2, pageSize * 6);
    const badPages = join(tmp, "bad-pages.sqlite");
    writeFileSync(badPages, garbage);
    const r2 = await restoreAndCheck(badPages, drill());
    expect(r2[0]).toMatchObject({ kind: "integrity", ok: false, detail: expect.stringMatching(/malformed/) });
    expect(r2.every((r) => !r.ok)).toBe(true);
  });

  it("judges query checks by min, max and equals, and fails erroring or ill-shaped queries with the reason", async () => {
    const results = await restoreAndCheck(
      artifact,
      drill({
        queries: [
          { name: "too few", sql: 'select count(*) from "Order Items"', min: 6000 },
          { name: "too many", sql: 'select count(*) from "Order Items"', max: 10 },
          { name: "not equal", sql: 'select count(*) from "select"', equals: 4 },
          { name: "no table", sql: "select count(*) from no_such_table" },
          { name: "two rows", sql: 'select id from "select"' },
          { name: "text", sql: "select 'x'" },
          { name: "writes", sql: "delete from t returning 1" },
        ],
      }),
    );
    const queries = Object.fromEntries(results.filter((r) => r.kind === "query").map((r) => [r.name, r]));
    expect(queries["too few"]).toMatchObject({ ok: false, actual: 5000, expected: { min: 6000 } });
    expect(queries["too many"]).toMatchObject({ ok: false, actual: 5000, expected: { max: 10 } });
    expect(queries["not equal"]).toMatchObject({ ok: false, actual: 3, expected: { equals: 4 } });
    expect(queries["no table"]).toMatchObject({ ok: false, detail: expect.stringMatching(/no such table: no_such_table/) });
    expect(queries["two rows"]).toMatchObject({ ok: false, detail: expect.stringMatching(/more than one row/) });
    expect(queries.text).toMatchObject({ ok: false, detail: expect.stringMatching(/returned string, not a number/) });
    expect(queries.writes).toMatchObject({ ok: false, detail: expect.stringMatching(/readonly/) });
    // The other checks still ran and passed.
    expect(results.slice(0, 2).every((r) => r.ok)).toBe(true);
  });

  it("drops the scratch directory after a failed restore", async () => {
    const s = await scratch();
    const failing: ArtifactInput = {
      stream: async () =>
        Readable.from(
          (async function* () {
            yield readFileSync(artifact).subarray(0, 8192);
            throw new Error("hash mismatch at end of stream");
          })(),
        ),
      file: async () => artifact,
    };
    await expect(s.restore(failing, new AbortController().signal)).rejects.toThrow(/restore into .*hash mismatch/);
    expect(existsSync(join(s.location, "db.sqlite"))).toBe(true);
    await s.drop();
    expect(existsSync(s.location)).toBe(false);
  });

  it("needs scratch.directory and refuses one in or at the database's directory", async () => {
    const unset = await scratch(null).catch((e: unknown) => e);
    expect(unset).toBeInstanceOf(ConfigError);
    expect((unset as ConfigError).hint).toMatch(/scratch/);
    await expect(scratch(join(tmp, "app"))).rejects.toBeInstanceOf(RefusedError);
    await expect(scratch(join(tmp, "app", "drills"))).rejects.toBeInstanceOf(RefusedError);
    const link = join(tmp, "link-to-app");
    symlinkSync(join(tmp, "app"), link);
    await expect(scratch(link)).rejects.toBeInstanceOf(RefusedError);
    expect(await readdir(join(tmp, "app"))).not.toContain("drills");
    // The parent of the database's directory is fine: the scratch directory is a sibling, not inside.
    const sibling = await scratch(tmp);
    await sibling.drop();
  });

  it("a restore refuses an artifact that is not a SQLite database and leaves the file it would replace alone", async () => {
    const dest = join(tmp, "restore-target.db");
    writeFileSync(dest, readFileSync(dbPath));
    const before = readFileSync(dest);
    const notSqlite = join(tmp, "not-sqlite.bin");
    writeFileSync(notSqlite, "PGDMP\u0001\u000f\u0000 a custom-format dump, not a database");
    const signal = new AbortController().signal;
    const to = await sqliteDrillKind.openDestination(dest, { config: makeConfig(undefined), job: makeJob(), manifest });
    const err = await to.restore(fileInput(notSqlite), { overwrite: true }, signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as IntegrityError).message).toMatch(
      /the snapshot's artifact is not a SQLite database \(it starts "PGDMP.*nothing was replaced/,
    );
    expect(readFileSync(dest).equals(before)).toBe(true);
    expect((await readdir(tmp)).filter((f) => f.includes(".lifeboat-"))).toEqual([]);
    // An empty file is a valid, empty database.
    const empty = join(tmp, "empty.bin");
    writeFileSync(empty, "");
    await to.restore(fileInput(empty), { overwrite: true }, signal);
    expect(statSync(dest).size).toBe(0);
  });
});
