import { createWriteStream, existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, LifeboatError } from "../../src/errors.ts";
import { createSource } from "../../src/sources/index.ts";
import { countTables, PostgresSource, parsePostgresUrl, pgDumpVersion, pgEnv, restorePostgres } from "../../src/sources/postgres.ts";
import { describeSourceContract, drain, within } from "../contracts/source.ts";
import { createTestDatabase, type TestDatabase, withAdmin } from "../helpers/pg.ts";

const PASSWORD = "Sup3r/s3cret+pw";
const FIXTURE = `
  create schema "Sales";
  create schema audit;
  create table "Sales"."Order Items" (id serial primary key, sku text not null, qty int not null);
  insert into "Sales"."Order Items" (sku, qty) select 'sku-' || g, g % 7 from generate_series(1, 1234) g;
  create table public."select" (id int);
  insert into public."select" select generate_series(1, 17);
  create table public."we""ird.name" (v text);
  insert into public."we""ird.name" values ('a'), ('b'), ('c');
  create table public.empty (id int);
  create table audit.events (id bigint, region text not null) partition by list (region);
  create table audit.events_eu partition of audit.events for values in ('eu');
  create table audit.events_us partition of audit.events for values in ('us');
  create table audit.events_ap partition of audit.events for values in ('ap');
  insert into audit.events select g, (array['eu', 'us', 'ap'])[1 + g % 3] from generate_series(1, 3000) g;
  create table public.big (id int primary key, payload text not null);
  insert into public.big select g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) from generate_series(1, 200000) g;
  create table public.ticks (id bigserial primary key, at timestamptz not null default clock_timestamp());
  insert into public.ticks default values;
`;

let db: TestDatabase;
let tmp: string;
const scratch: TestDatabase[] = [];

function source(url = db.url, pgDumpArgs: string[] = []): PostgresSource {
  return new PostgresSource({ type: "postgres", url, boundary: "test", pgDumpArgs });
}

/** db.url with a password in it (trust auth ignores it), to prove it never leaks. */
function withPassword(url: string, database?: string): string {
  const u = new URL(url);
  u.password = encodeURIComponent(PASSWORD);
  if (database) u.pathname = `/${database}`;
  return u.toString();
}

async function countsOf(target: TestDatabase): Promise<Record<string, number>> {
  const c = await target.client();
  try {
    return await countTables(c);
  } finally {
    await c.end();
  }
}

async function emptyDatabase(): Promise<TestDatabase> {
  const d = await createTestDatabase();
  scratch.push(d);
  return d;
}

/** Backends connected to the test database other than the asking one. */
function sessionsOn(name: string): Promise<number> {
  return withAdmin(async (c) => {
    const r = await c.query("select count(*)::int as n from pg_stat_activity where datname = $1", [name]);
    return r.rows[0].n as number;
  });
}

async function eventually(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`${what}: not true after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  tmp = await mkdtemp(join(tmpdir(), "lifeboat-pg-"));
  const c = await db.client();
  await c.query(FIXTURE);
  await c.end();
});

afterAll(async () => {
  await Promise.all([db?.drop(), ...scratch.map((d) => d.drop())]);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("PostgresSource", () => {
  it("counts every leaf table once, keyed by quoted names, and restores to the same counts", async () => {
    const dump = await source().dump(new AbortController().signal);
    expect(dump.artifact).toBe("db.pgdump");
    expect(dump.format).toBe("pg_dump-custom");
    const file = join(tmp, "fixture.pgdump");
    await pipeline(dump.stream, createWriteStream(file));
    const [info, inventory] = await Promise.all([dump.done, dump.inventory]);

    expect(info.tool).toBe(await pgDumpVersion());
    expect(info.tool).toMatch(/^pg_dump \(PostgreSQL\) \d+/);
    expect(info.details).toMatchObject({ database: db.name, host: "127.0.0.1", port: 5432 });
    expect(inventory).toMatchObject({ kind: "postgres", counts: "exact", database: db.name });
    expect(inventory.serverVersion).toMatch(/^\d+/);
    expect(inventory.tables).toEqual({
      '"Sales"."Order Items"': 1234,
      "audit.events_ap": 1000,
      "audit.events_eu": 1000,
      "audit.events_us": 1000,
      "public.big": 200000,
      "public.empty": 0,
      'public."select"': 17,
      "public.ticks": 1,
      'public."we""ird.name"': 3,
    });

    const restored = await emptyDatabase();
    await restorePostgres({ url: restored.url, file, jobs: 2 });
    expect(await countsOf(restored)).toEqual(inventory.tables);
  });

  it("counts and dumps the same instant while another connection keeps inserting", async () => {
    const writer = await db.client();
    let stop = false;
    let inserted = 0;
    const inserting = (async () => {
      while (!stop) {
        await writer.query("insert into public.ticks default values");
        inserted++;
      }
    })();
    await eventually("inserts started", async () => inserted > 20);

    const restored = await emptyDatabase();
    const dump = await source().dump(new AbortController().signal);
    const [restore, info, inventory] = await Promise.all([
      restorePostgres({ url: restored.url, input: dump.stream }),
      dump.done,
      dump.inventory,
    ]);
    stop = true;
    await inserting;
    const after = await writer.query("select count(*)::int as n from public.ticks");
    await writer.end();

    expect(restore.warnings).toEqual([]);
    expect(info.warnings).toEqual([]);
    // The writer kept going during the dump, so the table grew past what the snapshot saw.
    expect(after.rows[0].n).toBeGreaterThan(inventory.tables?.["public.ticks"] ?? Infinity);
    expect(await countsOf(restored)).toEqual(inventory.tables);
  });

  it("rejects an unknown database with a clear message and no password", async () => {
    const url = withPassword(db.url, "lifeboat_test_does_not_exist_xyz");
    const err = await within(20_000, "dump", source(url).dump(new AbortController().signal)).catch((e) => e);
    expect(err).toBeInstanceOf(LifeboatError);
    expect(err.code).toBe("SOURCE");
    expect(err.message).toContain('database "lifeboat_test_does_not_exist_xyz" does not exist');
    expect(err.message).toContain("127.0.0.1:5432");
    expect(err.hint).toMatch(/database name/);
    expect(JSON.stringify({ m: err.message, h: err.hint, s: err.stack })).not.toMatch(/s3cret|Sup3r/);
  });

  it("rejects an unreachable server and an unknown user with their own hints", async () => {
    const down = await source("postgres://postgres:pw-secret-1@127.0.0.1:1/x")
      .dump(new AbortController().signal)
      .catch((e) => e);
    expect(down).toMatchObject({ code: "SOURCE" });
    expect(down.message).toMatch(/cannot reach the server at 127\.0\.0\.1:1/);
    expect(down.message).not.toContain("pw-secret-1");
    const u = new URL(withPassword(db.url));
    u.username = "lifeboat_no_such_role";
    const auth = await source(u.toString())
      .dump(new AbortController().signal)
      .catch((e) => e);
    expect(auth).toMatchObject({ code: "SOURCE" });
    expect(auth.message).toMatch(/authentication failed for user "lifeboat_no_such_role"/);
    expect(auth.hint).toMatch(/user and password/);
    expect(auth.message).not.toMatch(/s3cret|Sup3r/);
  });

  it("says so when what answers on the port is not PostgreSQL (MariaDB's port here)", async () => {
    for (const query of ["", "?sslmode=disable"]) {
      const err = await source(`postgres://postgres@127.0.0.1:3306/x${query}`)
        .dump(new AbortController().signal)
        .catch((e) => e);
      expect(err).toMatchObject({ code: "SOURCE" });
      expect(err.message).toMatch(/the server at 127\.0\.0\.1:3306 does not answer as PostgreSQL/);
      expect(err.hint).toMatch(/3306 is MySQL's/);
    }
  });

  it("fails done and the stream with pg_dump's message when pg_dump exits non-zero", async () => {
    const s = source(withPassword(db.url), ["--strict-names", "--table=does_not_exist_xyz"]);
    const dump = await s.dump(new AbortController().signal);
    const [streamed, done] = await Promise.all([drain(dump.stream), dump.done.catch((e) => e)]);
    expect(streamed.error).toBe(done);
    expect(done).toMatchObject({ code: "SOURCE" });
    expect(done.message).toMatch(/pg_dump exited with code 1: .*does_not_exist_xyz/s);
    expect(done.message).not.toMatch(/s3cret|Sup3r/);
    await dump.inventory;
  });

  it("says pg_dump is not installed, with the package to install, when it cannot be found", async () => {
    const path = process.env.PATH;
    // stdbuf, through which pg_dump runs where it works, is there; pg_dump is not.
    const bin = join(tmp, "no-pg-tools");
    await mkdir(bin, { recursive: true });
    for (const tool of ["stdbuf", "true"]) {
      const at = (path ?? "")
        .split(delimiter)
        .map((dir) => join(dir, tool))
        .find((file) => existsSync(file));
      if (at) await symlink(at, join(bin, tool)).catch(() => {});
    }
    process.env.PATH = bin;
    try {
      const dump = await source().dump(new AbortController().signal);
      const [streamed, done] = await Promise.all([drain(dump.stream), dump.done.catch((e) => e)]);
      expect(streamed.error).toBe(done);
      expect(done).toMatchObject({ code: "SOURCE" });
      expect(done.message).toMatch(/start dump: cannot run pg_dump: .*ENOENT/);
      expect(done.hint).toMatch(/postgresql-client/);
    } finally {
      process.env.PATH = path;
    }
  });

  it("fails the stream when pg_dump dies mid-way, after bytes were streamed", async () => {
    const dump = await source().dump(new AbortController().signal);
    await new Promise<void>((resolve) => dump.stream.once("data", () => resolve()));
    dump.stream.pause();
    // Listening before the kill: pg_dump may exit (and the stream fail) before the kill's query returns.
    const outcome = drain(dump.stream);
    // pg_dump is now copying public.big, soon blocked on the full pipe; end its session from outside.
    await eventually("pg_dump copies public.big", () =>
      withAdmin(async (c) => {
        const r = await c.query(
          "select pg_terminate_backend(pid) as killed from pg_stat_activity where datname = $1 and application_name = 'pg_dump' and query ilike 'copy public.big %'",
          [db.name],
        );
        return r.rows.some((row) => row.killed);
      }),
    );
    dump.stream.resume();
    const [streamed, done] = await Promise.all([outcome, dump.done.catch((e) => e)]);
    expect(done).toMatchObject({ code: "SOURCE" });
    expect(done.message).toMatch(/pg_dump exited with code 1: .*(terminat|server closed)/is);
    expect(streamed.error).toBe(done);
  });

  it("ends pg_dump and every session on abort", async () => {
    const ac = new AbortController();
    const dump = await source().dump(ac.signal);
    await new Promise<void>((resolve) => dump.stream.once("data", () => resolve()));
    ac.abort();
    dump.stream.resume();
    await expect(dump.done).rejects.toMatchObject({ code: "ABORTED" });
    await eventually("no sessions left on the test database", async () => (await sessionsOn(db.name)) === 0);
  });

  it("abort does not wait for a count blocked on a lock", async () => {
    const locker = await db.client();
    await locker.query("begin; lock table public.empty in access exclusive mode");
    try {
      const ac = new AbortController();
      const dump = await source().dump(ac.signal);
      dump.stream.resume();
      // Both the count(*) and pg_dump now wait for the lock, which is held until after the abort.
      await eventually("count waits for the lock", () =>
        withAdmin(async (c) => {
          const r = await c.query(
            "select 1 from pg_stat_activity where datname = $1 and wait_event_type = 'Lock' and query ilike 'select count(*)%'",
            [db.name],
          );
          return r.rowCount === 1;
        }),
      );
      ac.abort();
      await expect(within(10_000, "done", dump.done)).rejects.toMatchObject({ code: "ABORTED" });
      await expect(within(10_000, "inventory", dump.inventory)).rejects.toMatchObject({ code: "ABORTED" });
    } finally {
      await locker.query("rollback");
      await locker.end();
    }
    await eventually("no sessions left on the test database", async () => (await sessionsOn(db.name)) === 0);
  });

  it("refuses pgDumpArgs that redirect or reformat the dump, and warns about table filters", async () => {
    expect(() => source(db.url, ["--file=/tmp/x"])).toThrow(ConfigError);
    expect(() => source(db.url, ["-Fd"])).toThrow(ConfigError);
    expect(() => source(db.url, ["--dbname=other"])).toThrow(ConfigError);
    // pg_dump reads a prefix as the option, and a cluster letter by letter.
    expect(() => source(db.url, ["--fil=/tmp/x"])).toThrow(/must not contain --file/);
    expect(() => source(db.url, ["-vf/tmp/x"])).toThrow(/must not contain -f/);
    expect(() => source(db.url, ["-tfoo"])).not.toThrow();
    // Schema left out: no new database could be restored from it.
    expect(() => source(db.url, ["--data-only"])).toThrow(/must not contain --data-only/);
    expect(() => source(db.url, ["-va"])).toThrow(/must not contain -a/);
    for (const filter of ["--exclude-table=public.big", "--no-unlogged-table-data"]) {
      const dump = await source(db.url, [filter]).dump(new AbortController().signal);
      await drain(dump.stream);
      const info = await dump.done;
      expect(info.warnings.join("\n"), filter).toContain(`pgDumpArgs ${filter} leave tables or rows out of the dump`);
    }
  });

  it("is created through the registry", () => {
    expect(createSource({ type: "postgres", url: db.url, boundary: "test", pgDumpArgs: [] })).toBeInstanceOf(PostgresSource);
  });
});

describe("postgres URLs", () => {
  it("turns a URL into libpq environment variables", () => {
    expect(pgEnv("postgres://app:p%40ss%2Bw+rd@db.example.com:6543/my%20db?sslmode=require&application_name=x")).toEqual({
      PGHOST: "db.example.com",
      PGPORT: "6543",
      PGUSER: "app",
      PGPASSWORD: "p@ss+w+rd",
      PGDATABASE: "my db",
      PGSSLMODE: "require",
      PGCONNECT_TIMEOUT: "30",
      PGAPPNAME: "x",
    });
  });

  it("accepts socket directories as host, in the authority or as ?host=", () => {
    expect(parsePostgresUrl("postgres://u@%2Fvar%2Frun%2Fpostgresql/db").host).toBe("/var/run/postgresql");
    expect(parsePostgresUrl("postgresql:///db?host=/tmp&port=5433")).toMatchObject({ host: "/tmp", port: 5433, database: "db" });
    expect(parsePostgresUrl("postgres://[::1]/db").host).toBe("::1");
  });

  it("fills libpq's defaults and keeps the password out of sight", () => {
    const p = parsePostgresUrl("postgres://u:hunter22@h/");
    expect(p).toMatchObject({ host: "h", port: 5432, user: "u", database: "u", sslmode: "prefer" });
    expect(JSON.stringify(p)).not.toContain("hunter22");
  });

  it("refuses what it cannot honour, without echoing the password", () => {
    expect(() => parsePostgresUrl("postgres://u:hunter22@h/db?sslmode=bogus")).toThrow(/sslmode "bogus"/);
    expect(() => parsePostgresUrl("postgres://u:hunter22@h/db?target_session_attrs=any")).toThrow(ConfigError);
    expect(() => parsePostgresUrl("mysql://u@h/db")).toThrow(/scheme/);
    const err = (() => {
      try {
        parsePostgresUrl("postgres://u:hunter22@h1:5432,h2:5432/db");
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err?.message).toMatch(/not a valid URL/);
    expect(err?.message).not.toContain("hunter22");
  });
});

describeSourceContract("postgres", () => source());
