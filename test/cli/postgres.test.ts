import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { manifestSchema } from "../../src/catalog/manifest.ts";
import { encryptBuffer } from "../../src/pipeline/age.ts";
import { S3Target } from "../../src/storage/s3.ts";
import { getBuffer, putBuffer } from "../../src/storage/target.ts";
import { makeKey } from "../helpers/age.ts";
import { interruptWhenSeen, runCli } from "../helpers/cli.ts";
import { adminUrl, createTestDatabase, type TestDatabase, withAdmin } from "../helpers/pg.ts";
import { writeProject } from "../helpers/project.ts";
import { type S3TestServer, startS3Server } from "../helpers/s3.ts";

// End to end through the real CLI: a PostgreSQL database, an embedded S3 server, a generated project.
let db: TestDatabase;
let s3: S3TestServer;
let key: Awaited<ReturnType<typeof makeKey>>;
let project: { dir: string; config: string };
const job = "shop-db";

function projectFiles(sourceUrl: string, extra: Record<string, string> = {}) {
  const t = s3.config("e2e");
  return {
    "backup.config.ts": `import { defineConfig } from "lifeboat";
export default defineConfig({
  encryption: { recipients: ["${key.recipient}"] },
  targets: { offsite: ${JSON.stringify(t)} },
  scratch: { postgres: "${adminUrl}" },
});
`,
    [`jobs/${job}.ts`]: `import { defineJob } from "lifeboat";
export default defineJob({ name: "${job}", source: { type: "postgres", url: "${sourceUrl}", boundary: "test:postgres" }, targets: ["offsite"] });
`,
    "restore-drills/shop.ts": `import { defineDrill } from "lifeboat";
export default defineDrill({ name: "shop", job: "${job}", checks: { rowCounts: "exact", queries: [
  { name: "orders exist", sql: "select count(*) from \\"Sales\\".orders", min: 1 },
  { name: "no negative totals", sql: "select count(*) from \\"Sales\\".orders where total < 0", equals: 0 },
] } });
`,
    ...extra,
  };
}

const cli = (...args: string[]) => runCli(["--config", project.config, ...args], { LIFEBOAT_IDENTITY_FILE: key.identityFile });
const target = () => new S3Target("offsite", s3.config("e2e"));

async function scratchDatabases(): Promise<string[]> {
  return withAdmin(async (c) =>
    (await c.query("select datname from pg_database where datname like 'lifeboat_drill_shop_db_%'")).rows.map((r) => r.datname as string),
  );
}

beforeAll(async () => {
  [db, s3, key] = await Promise.all([createTestDatabase(), startS3Server(), makeKey()]);
  const c = await db.client();
  await c.query(`
    create schema "Sales";
    create table "Sales".orders (id bigserial primary key, total numeric(10,2), note text);
    insert into "Sales".orders (total, note) select g % 500, md5(g::text) from generate_series(1, 20000) g;
    create table public."select" (x int);
    insert into public."select" values (1), (2), (3);
    create table public.empty_one (id int);`);
  await c.end();
  project = writeProject(projectFiles(db.url));
});

afterAll(async () => {
  await Promise.allSettled([db?.drop(), s3?.stop()]);
});

describe("backup, snapshots, drill and verify through the CLI", () => {
  let snapshotId = "";

  it("backs up and lists the snapshot from the bucket", async () => {
    const r = await cli("--json", "backup", job);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const out = r.json as { snapshotId: string; ok: boolean; rawBytes: number; targets: { ok: boolean }[] };
    expect(out.ok).toBe(true);
    expect(out.rawBytes).toBeGreaterThan(100_000);
    snapshotId = out.snapshotId;
    const list = await cli("--json", "snapshots", job);
    expect(list.status).toBe(0);
    expect((list.json as { snapshots: { snapshotId: string }[] }).snapshots.map((s) => s.snapshotId)).toEqual([snapshotId]);
  });

  it("drills the snapshot: restores into a scratch database, counts match, queries pass, scratch dropped, evidence stored", async () => {
    const r = await cli("--json", "drill", "shop");
    expect(r.status, r.stderr).toBe(0);
    const out = r.json as { drills: { record: { verdict: string; snapshotId: string; checks: { kind: string; ok: boolean }[] } }[] };
    const rec = out.drills[0]!.record;
    expect(rec.verdict).toBe("pass");
    expect(rec.snapshotId).toBe(snapshotId);
    expect(rec.checks.map((c) => c.kind)).toEqual(["rowCounts", "query", "query"]);
    expect(await scratchDatabases()).toEqual([]);
    const t = target();
    const records: string[] = [];
    for await (const o of t.list(`${job}/drills/`)) records.push(o.key);
    expect(records).toHaveLength(1);
  });

  it("verify passes on an intact snapshot", async () => {
    const r = await cli("verify", job);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/OK/);
  });

  it("a wrong identity fails clearly, with exit 1 and no record", async () => {
    const other = await makeKey();
    const r = await runCli(["--config", project.config, "drill", "shop", "--identity", other.identityFile]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/none of the given identities can decrypt it \(wrong key\?\)/);
    expect(await scratchDatabases()).toEqual([]);
  });

  it("catches an inventory whose counts no longer match what was dumped", async () => {
    const t = target();
    const base = `${job}/snapshots/${snapshotId}`;
    const manifest = manifestSchema.parse(JSON.parse((await getBuffer(t, `${base}/manifest.json`)).toString()));
    // Re-encrypt an inventory that claims one more order, and point the manifest at it, as a lying backup would.
    const { Decrypter } = await import("age-encryption");
    const d = new Decrypter();
    d.addIdentity(key.identity);
    const inv = JSON.parse(await d.decrypt(new Uint8Array(await getBuffer(t, `${base}/inventory.json.age`)), "text"));
    inv.tables['"Sales".orders'] += 1;
    const sealed = await encryptBuffer([key.recipient], JSON.stringify(inv));
    await putBuffer(t, `${base}/inventory.json.age`, sealed);
    manifest.inventory.size = sealed.length;
    manifest.inventory.sha256 = createHash("sha256").update(sealed).digest("hex");
    await putBuffer(t, `${base}/manifest.json`, JSON.stringify(manifest));
    const r = await cli("drill", "shop");
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/FAIL/);
    expect(r.stdout).toMatch(/"Sales"\.orders: expected 20001, found 20000/);
    expect(await scratchDatabases()).toEqual([]);
  });

  it("a flipped bit in the stored dump fails verify and drill with exit 1, naming the object", async () => {
    await cli("backup", job);
    const t = target();
    const list = await cli("--json", "snapshots", job);
    const newest = (list.json as { snapshots: { snapshotId: string }[] }).snapshots[0]!.snapshotId;
    const k = `${job}/snapshots/${newest}/db.pgdump.zst.age`;
    const bytes = await getBuffer(t, k);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x10;
    await putBuffer(t, k, bytes);
    const v = await cli("verify", job);
    expect(v.status).toBe(1);
    expect(v.stdout + v.stderr).toContain("db.pgdump.zst.age");
    const d = await cli("drill", "shop", "--snapshot", newest);
    expect(d.status).toBe(1);
    expect(d.stdout).toContain("db.pgdump.zst.age");
    // It says the restore broke off, not that something was restored.
    expect(d.stdout).toMatch(
      /the restore into .* did not finish \(scratch dropped\); it failed after fetch [0-9.]+ (ms|s|min), restore [0-9.]+ (ms|s|min)$/m,
    );
    expect(d.stdout).not.toMatch(/restored into/);
    expect(await scratchDatabases()).toEqual([]);
  });

  it("drops the scratch database when the drill is interrupted with SIGTERM", async () => {
    const { seen, result: r } = await interruptWhenSeen(
      ["--config", project.config, "drill", "shop", "--snapshot", snapshotId],
      { LIFEBOAT_IDENTITY_FILE: key.identityFile },
      async () => (await scratchDatabases()).length,
    );
    expect(seen).toBe(1);
    expect(r.status).not.toBe(0);
    expect(await scratchDatabases()).toEqual([]);
  });
});

describe("failures a user can cause", () => {
  it("pg_dump failing (unknown database) exits 1 and writes no manifest", async () => {
    const badUrl = db.url.replace(db.name, `${db.name}_missing`);
    const p = writeProject(projectFiles(badUrl));
    const r = await runCli(["--config", p.config, "backup", job]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/does not exist/);
    const t = new S3Target("offsite", s3.config("e2e"));
    const manifests: string[] = [];
    for await (const o of t.list(`${job}/snapshots/`)) if (o.key.endsWith("manifest.json")) manifests.push(o.key);
    // Only the snapshots the earlier tests took; nothing new.
    expect(manifests.length).toBeLessThanOrEqual(2);
  });

  it("an unreachable S3 endpoint gives a clear error and exit 1", async () => {
    const cfg = { ...s3.config("x"), endpoint: "http://127.0.0.1:1" };
    const p = writeProject({
      ...projectFiles(db.url),
      "backup.config.ts": `import { defineConfig } from "lifeboat";\nexport default defineConfig({ encryption: { recipients: ["${key.recipient}"] }, targets: { offsite: ${JSON.stringify(cfg)} } });\n`,
    });
    const r = await runCli(["--config", p.config, "backup", job]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/target "offsite".*cannot reach http:\/\/127\.0\.0\.1:1/);
  });

  it("refuses (exit 3) a drill whose scratch server is the source database itself", async () => {
    const files = projectFiles(db.url);
    const p = writeProject({
      ...files,
      "backup.config.ts": files["backup.config.ts"].replace(`postgres: "${adminUrl}"`, `postgres: "${db.url}"`),
    });
    const r = await runCli(["--config", p.config, "drill", "shop"], { LIFEBOAT_IDENTITY_FILE: key.identityFile });
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/scratch\.postgres .* is the job's own source database/);
  });

  it("invalid config and a same-boundary job exit 2", async () => {
    const bad = writeProject({
      ...projectFiles(db.url),
      [`jobs/${job}.ts`]: `import { defineJob } from "lifeboat";\nexport default defineJob({ name: "${job}", source: { type: "postgres", url: "x", boundary: "test:s3rver" }, targets: ["offsite"] });\n`,
    });
    const r = await runCli(["--config", bad.config, "backup", job]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/ships to target "offsite" in its own boundary "test:s3rver"/);
    const invalid = writeProject({ ...projectFiles(db.url), [`jobs/${job}.ts`]: `export default { name: "Bad Name" };\n` });
    const r2 = await runCli(["--config", invalid.config, "backup", job]);
    expect(r2.status).toBe(2);
    expect(r2.stderr).toMatch(/jobs\/shop-db\.ts: name: /);
    const usage = await runCli(["--config", invalid.config, "no-such-command"]);
    expect(usage.status).toBe(2);
  });
});
