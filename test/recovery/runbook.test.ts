// Follows docs/RECOVERY.md with stock tools only. The set-up takes real backups with the lifeboat CLI; the recovery
// itself runs the runbook's `# step` blocks verbatim in bash (curl, age, zstd, sha256sum, pg_restore, psql), with the
// runbook's variables given through the environment and no lifeboat code or project tool on PATH.
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeKey } from "../helpers/age.ts";
import { adminUrl, createTestDatabase, type TestDatabase, withAdmin } from "../helpers/pg.ts";
import { writeProject } from "../helpers/project.ts";
import { type S3TestServer, startS3Server } from "../helpers/s3.ts";
import { readRunbook, runBash, runCommand, STORAGE_VARIANTS, scriptFor, stepsFor, stockPath, writeAwsShim } from "./runbook.ts";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const JOB = "orders-db";
const PREFIX = "prod/eu";
// An interrupted run newer than any complete snapshot: objects, no manifest. The runbook must skip it.
const INCOMPLETE = "29991231T235959Z-ffff";

let source: TestDatabase;
let s3: S3TestServer;
let fsRoot: string;
let identityFile: string;
let awsShim: string;
const scratch: string[] = [];
const restored: string[] = [];
let newest: { snapshotId: string; counts: Record<string, number> };

/** Row counts of every user table, keyed like the inventory; the independent check of a restored database. */
async function countRows(url: string): Promise<Record<string, number>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const names = await c.query<{ name: string }>(
      `select format('%I.%I', n.nspname, c.relname) as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_(toast|temp_)'`,
    );
    const out: Record<string, number> = {};
    for (const { name } of names.rows) out[name] = Number((await c.query(`select count(*)::int as n from ${name}`)).rows[0].n);
    return out;
  } finally {
    await c.end();
  }
}

/** `lifeboat --json backup <job>` as a child process (asynchronous: the S3 server runs in this process). */
async function backup(config: string): Promise<{ snapshotId: string; ok: boolean }> {
  const r = await runCommand(process.execPath, [join(repo, "bin", "lifeboat.js"), "--config", config, "--json", "backup", JOB], {
    cwd: repo,
    env: process.env,
  });
  if (r.code !== 0) throw new Error(`backup exited with ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout) as { snapshotId: string; ok: boolean };
}

beforeAll(async () => {
  source = await createTestDatabase("lifeboat_test_runbook");
  const c = await source.client();
  await c.query(`
    create table public.orders (id bigserial primary key, total numeric(10, 2), note text);
    insert into public.orders (total, note) select g * 1.5, md5(g::text) from generate_series(1, 500) g;
    create schema "Sales";
    create table "Sales"."Order Items" (id int primary key, sku text);
    insert into "Sales"."Order Items" select g, 'sku-' || g from generate_series(1, 40) g;
    create table "Sales"."Quote""d" (x int);
    insert into "Sales"."Quote""d" values (1), (2), (3);
    create table public.empty_table (x int);
    create table public.events (id int, at date not null) partition by range (at);
    create table public.events_2025 partition of public.events for values from ('2025-01-01') to ('2026-01-01');
    create table public.events_2026 partition of public.events for values from ('2026-01-01') to ('2027-01-01');
    insert into public.events select g, date '2025-06-01' + g from generate_series(1, 300) g;`);

  s3 = await startS3Server();
  fsRoot = mkdtempSync(join(tmpdir(), "lifeboat-nas-"));
  const key = await makeKey();
  identityFile = key.identityFile;
  awsShim = writeAwsShim();
  const offsite = { ...s3.config(PREFIX), boundary: "test:s3" };
  const project = writeProject({
    "backup.config.ts": `import { defineConfig } from "lifeboat";
export default defineConfig({
  encryption: { recipients: [${JSON.stringify(key.recipient)}] },
  targets: {
    offsite: ${JSON.stringify(offsite)},
    nas: { type: "filesystem", path: ${JSON.stringify(fsRoot)}, boundary: "test:nas" },
  },
});
`,
    [`jobs/${JOB}.ts`]: `import { defineJob } from "lifeboat";
export default defineJob({
  name: ${JSON.stringify(JOB)},
  source: { type: "postgres", url: ${JSON.stringify(source.url)}, boundary: "test:pg" },
  targets: ["offsite", "nas"],
});
`,
  });
  scratch.push(project.dir, fsRoot, awsShim);

  // Two snapshots with different data: the runbook must restore the newer one.
  const first = await backup(project.config);
  expect(first.ok).toBe(true);
  await c.query("insert into public.orders (total, note) select g, 'second' from generate_series(1, 25) g");
  await c.query(`insert into "Sales"."Order Items" values (1000, 'late')`);
  await new Promise((r) => setTimeout(r, 1100)); // ids sort by the second they were taken in
  const second = await backup(project.config);
  expect(second.ok).toBe(true);
  expect(second.snapshotId > first.snapshotId).toBe(true);
  newest = { snapshotId: second.snapshotId, counts: await countRows(source.url) };
  await c.end();

  // The interrupted run, on both targets.
  for (const name of ["db.pgdump.zst.age", "inventory.json.age"]) {
    const url = `${s3.endpoint}/${s3.bucket}/${PREFIX}/${JOB}/snapshots/${INCOMPLETE}/${name}`;
    const put = await fetch(url, { method: "PUT", body: "not a snapshot" });
    expect(put.ok).toBe(true);
    mkdirSync(join(fsRoot, JOB, "snapshots", INCOMPLETE), { recursive: true });
    writeFileSync(join(fsRoot, JOB, "snapshots", INCOMPLETE, name), "not a snapshot");
  }
});

afterAll(async () => {
  await s3?.stop();
  for (const name of restored) await withAdmin((c) => c.query(`drop database if exists "${name}" with (force)`));
  await source?.drop();
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

/** The runbook's variables for this test's bucket, filesystem target and PostgreSQL server. */
function runbookEnv(work: string, newdb: string): Record<string, string> {
  const pgUrl = new URL(adminUrl);
  const env: Record<string, string> = {
    PATH: stockPath(),
    HOME: work,
    LANG: "C.UTF-8",
    JOB,
    IDENTITY: identityFile,
    WORK: join(work, "recovery"),
    NEWDB: newdb,
    PGHOST: pgUrl.hostname,
    PGPORT: pgUrl.port || "5432",
    PGUSER: decodeURIComponent(pgUrl.username) || "postgres",
    // The other kinds' variables (test/recovery/runbook-kinds.test.ts uses them); unused by the PostgreSQL steps.
    MYSQL_HOST: "127.0.0.1",
    MYSQL_TCP_PORT: "3306",
    MYSQL_USER: "root",
    NEWFILE: join(work, "not-used.db"),
    NEWDIR: join(work, "not-used"),
    BUCKET: s3.bucket,
    PREFIX,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "S3RVER",
    AWS_SECRET_ACCESS_KEY: "S3RVER",
    AWS_ENDPOINT_URL: s3.endpoint,
    S3_URL: `${s3.endpoint}/${s3.bucket}`,
    FS_PATH: fsRoot,
  };
  if (pgUrl.password) env.PGPASSWORD = decodeURIComponent(pgUrl.password);
  return env;
}

describe("docs/RECOVERY.md", () => {
  const runbook = readRunbook();

  it("marks its variables and PostgreSQL steps 1 to 7 for each way of reading a target", () => {
    const env = runbookEnv("/nonexistent", "x");
    for (const v of runbook.variables) expect(Object.keys(env), `variable ${v} of the runbook`).toContain(v);
    expect(runbook.variables).toEqual(expect.arrayContaining(["JOB", "IDENTITY", "BUCKET", "PREFIX", "S3_URL", "FS_PATH", "NEWDB"]));
    for (const variant of STORAGE_VARIANTS) {
      expect(stepsFor(runbook, variant, "postgres").map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    }
  });

  it.each(["curl", "aws", "fs"])("restores the newest complete snapshot with stock tools (%s)", async (variant) => {
    const work = mkdtempSync(join(tmpdir(), `lifeboat-recovery-${variant}-`));
    scratch.push(work);
    const newdb = `lifeboat_test_restored_${randomBytes(4).toString("hex")}`;
    restored.push(newdb);
    const env = runbookEnv(work, newdb);
    if (variant === "aws") env.PATH = `${awsShim}:${env.PATH}`;

    const r = await runBash(scriptFor(runbook, variant, "postgres"), { cwd: work, env });
    // SHOW_RUNBOOK=1 prints the transcript of a passing run too.
    if (process.env.SHOW_RUNBOOK) console.log(r.stdout, r.stderr);
    const shown = `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
    expect(r.code, shown).toBe(0);
    expect(r.stdout, shown).toContain(`newest complete snapshot: ${newest.snapshotId}`);
    expect(r.stdout, shown).toMatch(/db\.pgdump\.zst\.age: OK/);
    expect(r.stdout, shown).toMatch(/inventory\.json\.age: OK/);
    expect(r.stdout, shown).toContain("OK: every table has the row count of the inventory");
    expect(readdirSync(join(work, "recovery"))).toEqual(expect.arrayContaining(["manifest.json", "db.pgdump", "inventory.json"]));

    // Independently of the runbook's own check: the restored database holds exactly the source's rows.
    const u = new URL(adminUrl);
    u.pathname = `/${newdb}`;
    const counts = await countRows(u.toString());
    expect(counts).toEqual(newest.counts);
    expect(counts['"Sales"."Order Items"']).toBe(41);
    expect(counts["public.orders"]).toBe(525);
  });

  it("step 7 says the check did not run when psql fails, and takes an inventory too large for a command-line argument", async () => {
    const work = mkdtempSync(join(tmpdir(), "lifeboat-recovery-step7-"));
    scratch.push(work);
    // 4,000 tables: a ~200 KB inventory, past Linux's 128 KiB limit on one argument.
    const tables = Object.fromEntries(Array.from({ length: 4000 }, (_, i) => [`tenant_${i}.orders_with_a_long_name`, i]));
    mkdirSync(join(work, "recovery"));
    writeFileSync(join(work, "recovery", "inventory.json"), JSON.stringify({ kind: "postgres", counts: "exact", tables }));
    const step7 = stepsFor(runbook, "fs", "postgres").find((s) => s.step === 7)?.code as string;
    const run = (newdb: string) => runBash(`cd "$WORK"\n${step7}`, { cwd: work, env: runbookEnv(work, newdb) });

    const missing = await run(`lifeboat_test_missing_${randomBytes(4).toString("hex")}`);
    expect(missing.stdout).toMatch(/^CHECK DID NOT RUN: psql exited with 2/m);
    expect(missing.stderr).toMatch(/does not exist/);
    expect(missing.stdout).not.toContain("OK:");

    const source_ = new URL(source.url).pathname.slice(1);
    const differ = await run(source_);
    expect(differ.stderr).not.toMatch(/Argument list too long/);
    expect(differ.stdout).toMatch(/^ROW COUNTS DIFFER:$/m);
    expect(differ.stdout).toContain("tenant_3999.orders_with_a_long_name: inventory 3999, restored no table");
    expect(differ.stdout).toContain('"Sales"."Order Items": inventory no table, restored 41');
  });
});
