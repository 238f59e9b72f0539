import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DrillRecord, listDrillRecords, writeDrillRecord } from "../../src/catalog/drill-record.ts";
import { pruneJob } from "../../src/catalog/prune.ts";
import { writeTombstone } from "../../src/catalog/tombstones.ts";
import { loadConfig } from "../../src/config/load.ts";
import type { RetentionDecision } from "../../src/safety/retention.ts";
import { S3Target } from "../../src/storage/s3.ts";
import { listAll, putBuffer, type Target } from "../../src/storage/target.ts";
import { makeKey } from "../helpers/age.ts";
import { type CliResult, runCli } from "../helpers/cli.ts";
import { adminUrl, createTestDatabase, type TestDatabase } from "../helpers/pg.ts";
import { writeProject } from "../helpers/project.ts";
import { type S3TestServer, startS3Server } from "../helpers/s3.ts";

// Two-phase pruning end to end: real backups of a small PostgreSQL database through the CLI, a real drill, and a fixed
// clock (LIFEBOAT_NOW, honoured by prune only) to stand for "days later".
let db: TestDatabase;
let s3: S3TestServer;
let key: Awaited<ReturnType<typeof makeKey>>;
let project: { dir: string; config: string };
const job = "shop";
const DAY = 86_400_000;
const start = Date.now();
const at = (days: number) => new Date(start + days * DAY).toISOString();
const ids: string[] = []; // oldest first

beforeAll(async () => {
  [db, s3, key] = await Promise.all([createTestDatabase(), startS3Server(), makeKey()]);
  const c = await db.client();
  await c.query("create table orders (id int primary key, total int); insert into orders select g, g % 7 from generate_series(1, 500) g;");
  await c.end();
  const role = (name: string) => ({ accessKeyId: "S3RVER", secretAccessKey: `${name}-secret-key` });
  const t = { ...s3.config("prune"), roles: { writer: role("writer"), reader: role("reader"), pruner: role("pruner") } };
  project = writeProject({
    "backup.config.ts": `import { defineConfig } from "lifeboat";
export default defineConfig({ encryption: { recipients: ["${key.recipient}"] }, targets: { offsite: ${JSON.stringify(t)} }, scratch: { postgres: "${adminUrl}" } });
`,
    [`jobs/${job}.ts`]: `import { defineJob } from "lifeboat";
export default defineJob({ name: "${job}", source: { type: "postgres", url: "${db.url}", boundary: "test:postgres" }, targets: ["offsite"],
  retention: { keepLast: 1, minAge: "1h", graceDays: 7 } });
`,
    "restore-drills/shop.ts": `import { defineDrill } from "lifeboat";
export default defineDrill({ name: "shop", job: "${job}", checks: { rowCounts: "exact" } });
`,
  });
});
afterAll(async () => {
  await Promise.allSettled([db?.drop(), s3?.stop()]);
});

const cli = (args: string[], env: Record<string, string> = {}) =>
  runCli(["--config", project.config, ...args], { LIFEBOAT_IDENTITY_FILE: key.identityFile, ...env });
const prune = (days: number, ...args: string[]) => cli(["prune", job, ...args], { LIFEBOAT_NOW: at(days) });
const target = () => new S3Target("offsite", s3.config("prune"));
const keys = async (prefix: string) => (await listAll(target(), prefix)).map((o) => o.key);
const decisions = (r: CliResult) =>
  (r.json as { targets: { plan: { decisions: RetentionDecision[] } }[] }).targets[0]?.plan.decisions ?? [];
const actions = (r: CliResult) => Object.fromEntries(decisions(r).map((d) => [d.snapshotId, d.action]));

describe("prune through the CLI, in two phases", () => {
  it("takes four snapshots; the backup says it uses the writer role", async () => {
    for (let i = 0; i < 4; i++) {
      // Snapshot ids have a resolution of one second (then a random suffix); later tests rely on them sorting in the
      // order taken, and a backup can now start and finish within the previous one's second.
      if (i > 0) await new Promise((r) => setTimeout(r, 1005 - (Date.now() % 1000)));
      const r = await cli(i === 0 ? ["backup", job] : ["--json", "backup", job]);
      expect(r.status, r.stderr).toBe(0);
      if (i === 0) {
        expect(r.stderr).toContain('using target "offsite" as writer (credentials: roles.writer)');
        ids.push(/snapshot (\S+) of shop/.exec(r.stdout)?.[1] as string);
      } else {
        const out = r.json as { snapshotId: string; role: string; credentials: Record<string, string> };
        expect(out.role).toBe("writer");
        expect(out.credentials).toEqual({ offsite: "roles.writer" });
        ids.push(out.snapshotId);
      }
    }
    expect([...ids].sort()).toEqual(ids);
  });

  it("drills the second snapshot with the reader role, which proves it", async () => {
    const d = await cli(["drill", "shop", "--snapshot", ids[1] as string]);
    expect(d.status, d.stderr).toBe(0);
    expect(d.stderr).toContain('using target "offsite" as reader (credentials: roles.reader)');
  });

  it("a dry run shows the plan and its reasons and changes nothing", async () => {
    const r = await prune(2, "--dry-run", "--json");
    expect(r.status, r.stderr).toBe(0);
    expect((r.json as { role: string }).role).toBe("pruner");
    expect(actions(r)).toEqual({
      [ids[3] as string]: "keep",
      [ids[2] as string]: "mark",
      [ids[1] as string]: "keep",
      [ids[0] as string]: "mark",
    });
    const reasons = Object.fromEntries(decisions(r).map((d) => [d.snapshotId, d.reasons]));
    expect(reasons[ids[3] as string]).toEqual(["keep: last 1"]);
    expect(reasons[ids[1] as string]).toEqual(["keep: newest proven by drill"]);
    expect(await keys(`${job}/tombstones/`)).toEqual([]);
  });

  it("nothing younger than minAge is marked, whatever the policy", async () => {
    const r = await prune(0, "--dry-run", "--json");
    expect(Object.values(actions(r))).toEqual(["keep", "keep", "keep", "keep"]);
    expect(decisions(r)[1]?.reasons).toEqual(["keep: younger than minAge (1h)"]);
  });

  it("the first prune marks, writing tombstones with the pruner credential", async () => {
    const r = await prune(2);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('using target "offsite" as pruner (credentials: roles.pruner)');
    // The reason says why and what happens next, not a bare "mark".
    expect(r.stdout).toContain(
      `${ids[2]}  mark    mark: kept by no rule (keepLast 1) and older than minAge 1h; deleted after graceDays 7 unless undeleted`,
    );
    expect(r.stdout).toMatch(/marked 2, deleted 0, unmarked 0/);
    expect(await keys(`${job}/tombstones/`)).toEqual([`${job}/tombstones/${ids[0]}.json`, `${job}/tombstones/${ids[2]}.json`]);
    // The report shows the pending deletions, read from the target alone, and says which credential read them.
    const report = await cli(["--json", "report"]);
    const out = report.json as { rows: { pendingDeletions: { snapshotId: string }[] }[]; role: string; credentials: object };
    expect(out.rows[0]?.pendingDeletions.map((p) => p.snapshotId)).toEqual([ids[0], ids[2]]);
    expect(out).toMatchObject({ role: "reader", credentials: { offsite: "roles.reader" } });
    const text = await cli(["report"]);
    expect(text.stderr).toContain('using target "offsite" as reader (credentials: roles.reader)');
  });

  it("within the grace period the marks wait", async () => {
    const r = await prune(5, "--json");
    expect(r.status, r.stderr).toBe(0);
    expect(actions(r)[ids[0] as string]).toBe("pending");
    expect(decisions(r).find((d) => d.snapshotId === ids[0])?.reasons[0]).toMatch(/^pending: marked 3 days ago, deleted after /);
    expect(await keys(`${job}/snapshots/${ids[0]}/`)).toHaveLength(3);
  });

  it("undelete removes a mark; a second undelete says there is none (exit 1)", async () => {
    const r = await cli(["undelete", job, ids[2] as string]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/mark removed/);
    expect(await keys(`${job}/tombstones/`)).toEqual([`${job}/tombstones/${ids[0]}.json`]);
    const again = await cli(["--json", "undelete", job, ids[2] as string]);
    expect(again.status).toBe(1);
    expect(again.stdout).toMatch(/"status": "not-marked"/);
  });

  it("after the grace period the marked snapshot is deleted whole; the undeleted one is marked afresh", async () => {
    const r = await prune(10, "--json");
    expect(r.status, r.stderr).toBe(0);
    expect(actions(r)).toEqual({
      [ids[3] as string]: "keep",
      [ids[2] as string]: "mark",
      [ids[1] as string]: "keep",
      [ids[0] as string]: "delete",
    });
    expect(decisions(r).find((d) => d.snapshotId === ids[0])?.reasons).toEqual(["delete: marked 8 days ago"]);
    expect(await keys(`${job}/snapshots/${ids[0]}/`)).toEqual([]);
    expect(await keys(`${job}/tombstones/`)).toEqual([`${job}/tombstones/${ids[2]}.json`]);
    const list = await cli(["--json", "snapshots", job]);
    expect((list.json as { snapshots: { snapshotId: string }[] }).snapshots.map((s) => s.snapshotId)).toEqual([ids[3], ids[2], ids[1]]);
    const gone = await cli(["undelete", job, ids[0] as string]);
    expect(gone.status).toBe(1);
    expect(gone.stdout).toMatch(/no such snapshot here \(never taken, or already deleted by a prune: too late to undelete\)/);
    expect(gone.stderr).toContain(`error: no snapshot ${ids[0]} of job ${job} on target offsite`);
  });

  it("a snapshot id without the id format is a usage error (exit 2) naming the format, before any target is touched", async () => {
    for (const args of [
      ["undelete", job, "bogus-id"],
      ["undelete", job, "../../../x", "--target", "offsite"],
      ["verify", job, "--snapshot", "../x"],
    ]) {
      const r = await cli(args);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/is not a snapshot id \(format YYYYMMDDTHHMMSSZ-xxxx, e\.g\. 20261124T215300Z-3fa9\)/);
      expect(r.stderr).not.toMatch(/invalid key|bug in the caller|target "offsite": target/);
    }
    const never = await cli(["--json", "undelete", job, "20200101T000000Z-0000"]);
    expect(never.status).toBe(1);
    expect(never.stderr).toContain(`error: no snapshot 20200101T000000Z-0000 of job ${job} on target offsite`);
  });

  it("the newest proven snapshot survives any later prune", async () => {
    const r = await prune(400, "--json");
    expect(r.status, r.stderr).toBe(0);
    expect(actions(r)[ids[1] as string]).toBe("keep");
    expect(actions(r)[ids[2] as string]).toBe("delete");
    expect(await keys(`${job}/snapshots/${ids[1]}/`)).toHaveLength(3);
  });

  it("a snapshot whose later drill failed is no longer the proven one prune keeps", async () => {
    const { records } = await listDrillRecords(target(), job);
    const pass = records.find((r) => r.snapshotId === ids[1]) as DrillRecord;
    expect(pass.verdict).toBe("pass");
    // The same snapshot drilled again a second later, and failed (its object rotted, say).
    const failed: DrillRecord = {
      ...pass,
      runId: pass.runId.replace(/-[0-9a-f]{4}$/, "-fa11"),
      finishedAt: new Date(Date.parse(pass.finishedAt) + 1000).toISOString(),
      verdict: "fail",
      error: "sha256 does not match the manifest",
    };
    await writeDrillRecord(target(), failed);
    try {
      const r = await prune(400, "--dry-run", "--json");
      expect(r.status, r.stderr).toBe(0);
      expect((r.json as { proven: string[] }).proven).not.toContain(ids[1]);
      expect(actions(r)[ids[1] as string]).toBe("mark");
    } finally {
      await target().remove(`${job}/drills/${failed.runId}.json`);
    }
  });

  it("a drill record that cannot be read stops prune and shows in the report", async () => {
    const broken = `${job}/drills/20260101T000000Z-dead.json`;
    await putBuffer(target(), broken, '{"format":"lifeboat-drill-record", "trunc');
    try {
      const before = await keys(`${job}/snapshots/`);
      const r = await prune(800, "--json");
      expect(r.status).toBe(1);
      expect(JSON.stringify(r.json)).toMatch(/drill record .*20260101T000000Z-dead\.json.* cannot be read/);
      expect(JSON.stringify(r.json)).toMatch(/nothing pruned/);
      expect(await keys(`${job}/snapshots/`)).toEqual(before);
      const report = await cli(["report"]);
      expect(report.status).toBe(1);
      expect(report.stdout).toMatch(/drill record .*20260101T000000Z-dead\.json cannot be read/);
    } finally {
      await target().remove(broken);
    }
  });
});

describe("pruneJob, the library function the daemon calls", () => {
  it("deletes the manifest first, then the data, then the tombstone", async () => {
    const b = await cli(["--json", "backup", job]);
    expect(b.status, b.stderr).toBe(0);
    const loaded = await loadConfig(project.config);
    const removed: string[] = [];
    const recording = (t: Target): Target => ({
      name: t.name,
      kind: t.kind,
      put: (k, b, o) => t.put(k, b, o),
      get: (k, o) => t.get(k, o),
      list: (p) => t.list(p),
      head: (k) => t.head(k),
      close: () => t.close?.() ?? Promise.resolve(),
      remove: async (k) => {
        removed.push(k);
        await t.remove(k);
      },
    });
    const make = () => recording(new S3Target("offsite", s3.config("prune")));
    const later = new Date(start + 420 * DAY);
    const marked = await pruneJob(loaded, job, { now: later, makeTarget: make });
    expect(marked.ok).toBe(true);
    const victim = marked.targets[0]?.applied.marked[0] as string;
    expect(victim).toBe(ids[3]); // no longer the newest (keepLast 1 now keeps the new one); ids[1] stays proven
    const result = await pruneJob(loaded, job, { now: new Date(later.getTime() + 8 * DAY), makeTarget: make });
    expect(result.targets[0]?.applied.deleted).toEqual([victim]);
    const mine = removed.filter((k) => k.includes(victim));
    expect(mine[0]).toBe(`${job}/snapshots/${victim}/manifest.json`);
    expect(mine.at(-1)).toBe(`${job}/tombstones/${victim}.json`);
    expect(mine).toHaveLength(4);
  });

  it("undelete of a snapshot whose deletion was interrupted after its manifest says it is too late, and keeps the mark", async () => {
    const b = await cli(["--json", "backup", job]);
    expect(b.status, b.stderr).toBe(0);
    const id = (b.json as { snapshotId: string }).snapshotId;
    await writeTombstone(target(), { job, snapshotId: id, markedAt: new Date().toISOString(), graceDays: 0, reasons: ["test"] });
    await target().remove(`${job}/snapshots/${id}/manifest.json`); // a prune stopped right after its first delete
    const r = await cli(["undelete", job, id]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(
      `${id} on offsite: a prune already deleted its manifest (the deletion was interrupted): too late to undelete`,
    );
    expect(r.stderr).toMatch(/is being deleted on target offsite: its manifest is gone, too late to undelete/);
    expect(await keys(`${job}/tombstones/${id}.json`)).toEqual([`${job}/tombstones/${id}.json`]);
  });
});
