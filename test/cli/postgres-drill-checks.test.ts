import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeKey } from "../helpers/age.ts";
import { interruptWhenSeen, runCli } from "../helpers/cli.ts";
import { adminUrl, createTestDatabase, type TestDatabase, withAdmin } from "../helpers/pg.ts";
import { writeProject } from "../helpers/project.ts";
import { type S3TestServer, startS3Server } from "../helpers/s3.ts";

// What a PostgreSQL drill counts and checks: inheritance, forced row-level security under a non-superuser scratch
// role, user queries of every odd shape, and an interrupt while a check runs.
let db: TestDatabase;
let s3: S3TestServer;
let key: Awaited<ReturnType<typeof makeKey>>;
let project: { config: string };
const role = `lifeboat_test_scratch_${randomBytes(4).toString("hex")}`;
const job = "rls-db";
const cli = (...args: string[]) => runCli(["--config", project.config, ...args], { LIFEBOAT_IDENTITY_FILE: key.identityFile });

beforeAll(async () => {
  [db, s3, key] = await Promise.all([createTestDatabase(), startS3Server(), makeKey()]);
  const c = await db.client();
  await c.query(`
    create table vehicles (id int, name text);
    create table cars (doors int) inherits (vehicles);
    insert into vehicles values (1, 'a'), (2, 'b');
    insert into cars values (3, 'c', 4), (4, 'd', 2), (5, 'e', 5);
    create table secrets (id int, owner text default current_user);
    insert into secrets (id, owner) values (1, 'someone'), (2, 'someone'), (3, 'else');
    alter table secrets enable row level security, force row level security;
    create policy mine on secrets using (owner = current_user);`);
  await c.end();
  await withAdmin((a) => a.query(`create role ${role} login createdb`));
  const scratch = adminUrl.replace("postgres://postgres@", `postgres://${role}@`);
  project = writeProject({
    "backup.config.ts": `import { defineConfig } from "lifeboat";
export default defineConfig({ encryption: { recipients: ["${key.recipient}"] }, targets: { offsite: ${JSON.stringify(s3.config("rls"))} }, scratch: { postgres: "${scratch}" } });
`,
    [`jobs/${job}.ts`]: `import { defineJob } from "lifeboat";
export default defineJob({ name: "${job}", source: { type: "postgres", url: "${db.url}", boundary: "pg" }, targets: ["offsite"] });
`,
    "restore-drills/counts.ts": `import { defineDrill } from "lifeboat";
export default defineDrill({ name: "counts", job: "${job}", checks: { rowCounts: "exact", queries: [
  { name: "every vehicle", sql: "select count(*) from vehicles", equals: 5 },
  { name: "two statements", sql: "select 1; select 2", equals: 1 },
  { name: "same-named columns", sql: "select 1, 99", equals: 1 },
  { name: "hex text", sql: "select '0x10'::text", equals: 16 },
  { name: "decimal text", sql: "select '12.5'::text", equals: 12.5 },
] } });
`,
    "restore-drills/timeout.ts": `import { defineDrill } from "lifeboat";
export default defineDrill({ name: "timeout", job: "${job}", checks: { rowCounts: "off", queryTimeout: "1s", queries: [{ name: "slow", sql: "select count(*) from pg_sleep(5)", equals: 1 }] } });
`,
    "restore-drills/stuck.ts": `import { defineDrill } from "lifeboat";
export default defineDrill({ name: "stuck", job: "${job}", checks: { rowCounts: "off", queries: [{ name: "sleeps", sql: "select pg_sleep(600)::text", equals: 0 }] } });
`,
  });
  const b = await cli("backup", job);
  if (b.status !== 0) throw new Error(b.stderr);
});

afterAll(async () => {
  await Promise.allSettled([db?.drop(), s3?.stop()]);
  await withAdmin(async (a) => {
    for (const { datname } of (await a.query("select datname from pg_database where datname like 'lifeboat_drill_rls_db_%'")).rows)
      await a.query(`drop database "${datname}" with (force)`);
    await a.query(`drop role if exists ${role}`);
  });
});

describe("postgres drill checks", () => {
  it("counts each table's own rows, also under forced row-level security, and judges every query shape", async () => {
    const d = await cli("--json", "drill", "counts");
    const rec = (
      d.json as { drills: { record: { checks: { kind: string; name: string; ok: boolean; actual?: unknown; detail?: string }[] } }[] }
    ).drills[0]?.record;
    const byName = Object.fromEntries((rec?.checks ?? []).map((c) => [c.name, c]));
    // Counted as owner of the restored tables, which FORCE would have filtered down to none.
    expect(
      rec?.checks.find((c) => c.kind === "rowCounts"),
      d.stdout + d.stderr,
    ).toMatchObject({ ok: true, actual: { tables: 3, rows: 8 } });
    expect(byName["every vehicle"]).toMatchObject({ ok: true, actual: 5 });
    expect(byName["two statements"]).toMatchObject({ ok: false, detail: expect.stringMatching(/several statements/) });
    expect(byName["same-named columns"]).toMatchObject({ ok: false, detail: expect.stringMatching(/2 columns/) });
    expect(byName["hex text"]).toMatchObject({ ok: false, detail: expect.stringMatching(/"0x10", not a number/) });
    expect(byName["decimal text"]).toMatchObject({ ok: true, actual: 12.5 });
    expect(d.status).toBe(1);
  });

  it("a check query running past queryTimeout fails its check instead of holding the drill", async () => {
    const started = Date.now();
    const d = await cli("--json", "drill", "timeout");
    expect(d.status).toBe(1);
    const check = (d.json as { drills: { record: { checks: { name: string; ok: boolean; detail?: string }[] } }[] }).drills[0]?.record
      .checks[0];
    expect(check).toMatchObject({ name: "slow", ok: false, detail: expect.stringMatching(/statement timeout/) });
    expect(Date.now() - started).toBeLessThan(60_000);
  });

  it("an interrupt during a check query stops the drill at once: ABORTED, exit 1, no record", async () => {
    const before = await cli("--json", "report");
    const started = Date.now();
    const sleeping = async () =>
      withAdmin(async (a) => (await a.query("select 1 from pg_stat_activity where query like 'select pg_sleep(600)%'")).rowCount ?? 0);
    const { seen, result: r } = await interruptWhenSeen(
      ["--config", project.config, "drill", "stuck"],
      { LIFEBOAT_IDENTITY_FILE: key.identityFile },
      sleeping,
      { waitMs: 60_000, pollMs: 100 },
    );
    expect(seen).toBe(1);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/aborted \(interrupted by SIGTERM\)/);
    expect(Date.now() - started).toBeLessThan(90_000);
    expect(await sleeping()).toBe(0);
    // No drill record: the report's drill records are as before.
    const after = await cli("--json", "report");
    type Rows = { rows: { counts: { drillRecords: number }; lastDrill?: { runId: string } }[] };
    const records = (r: unknown) => (r as Rows).rows.map((row) => [row.counts.drillRecords, row.lastDrill?.runId]);
    expect(records(after.json)).toEqual(records(before.json));
  });
});
