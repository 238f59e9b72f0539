import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Report } from "../../src/catalog/report.ts";
import { readReport } from "../../src/catalog/report-read.ts";
import { makeSnapshotId } from "../../src/catalog/snapshot-id.ts";
import { type LoadedConfig, loadConfig } from "../../src/config/load.ts";
import { runDrill } from "../../src/drills/runner.ts";
import { backupJob } from "../../src/pipeline/job.ts";
import { S3Target } from "../../src/storage/s3.ts";
import { putBuffer } from "../../src/storage/target.ts";
import { makeKey } from "../helpers/age.ts";
import { runCli } from "../helpers/cli.ts";
import { adminUrl, createTestDatabase, type TestDatabase } from "../helpers/pg.ts";
import { writeProject } from "../helpers/project.ts";
import { type S3TestServer, startS3Server } from "../helpers/s3.ts";

// Every report status reached from real snapshots and real drill records on the embedded S3 server.
let db: TestDatabase;
let s3: S3TestServer;
let key: Awaited<ReturnType<typeof makeKey>>;
let project: { dir: string; config: string };
let loaded: LoadedConfig;

const job = (name: string, extra = "") =>
  `import { defineJob } from "lifeboat";\nexport default defineJob({ name: "${name}", source: { type: "postgres", url: "${db.url}", boundary: "test:postgres" }, targets: ["offsite"], rpo: "1h"${extra} });\n`;
const drill = (name: string, jobName: string, queries = "[]") =>
  `import { defineDrill } from "lifeboat";\nexport default defineDrill({ name: "${name}", job: "${jobName}", checks: { rowCounts: "exact", queries: ${queries} } });\n`;

/** The report document of `lifeboat --json report` (a failing report is followed by the CLI's error line). */
const reportOf = (stdout: string): Report => JSON.parse(stdout.slice(0, stdout.lastIndexOf("\n}") + 2));

beforeAll(async () => {
  [db, s3, key] = await Promise.all([createTestDatabase(), startS3Server(), makeKey()]);
  const c = await db.client();
  await c.query(
    "create table accounts (id int primary key, owner text); insert into accounts select g, 'o' || g from generate_series(1, 300) g",
  );
  await c.end();
  project = writeProject({
    "backup.config.ts": `import { defineConfig } from "lifeboat";
export default defineConfig({
  encryption: { recipients: ["${key.recipient}"] },
  targets: { offsite: ${JSON.stringify(s3.config("report"))} },
  scratch: { postgres: "${adminUrl}" },
});
`,
    "jobs/proven.ts": job("proven"),
    "jobs/nodrill.ts": job("nodrill"),
    "jobs/broken-drill.ts": job("broken-drill"),
    "jobs/cut.ts": job("cut"),
    "jobs/empty.ts": job("empty"),
    "restore-drills/proven.ts": drill("proven-drill", "proven"),
    "restore-drills/broken.ts": drill(
      "broken-drill-check",
      "broken-drill",
      `[{ name: "impossible", sql: "select count(*) from accounts", equals: -1 }]`,
    ),
    "restore-drills/cut.ts": drill("cut-drill", "cut"),
    "restore-drills/empty.ts": drill("empty-drill", "empty"),
  });
  loaded = await loadConfig(project.config);
  for (const j of ["proven", "nodrill", "broken-drill", "cut"]) expect((await backupJob(loaded, j)).ok).toBe(true);
  for (const d of ["proven-drill", "broken-drill-check", "cut-drill"]) await runDrill({ loaded, drill: d, identities: [key.identity] });
  // An interrupted run of "cut" after its good one: data stored, no manifest (as when the host dies mid-backup).
  const t = new S3Target("offsite", s3.config("report"));
  await putBuffer(t, `cut/snapshots/${makeSnapshotId(new Date(Date.now() + 1000))}/db.pgdump.zst.age`, "partial");
  await t.close();
});

afterAll(async () => {
  await Promise.allSettled([db?.drop(), s3?.stop()]);
});

describe("lifeboat report", () => {
  it("reaches every status from what the target holds", async () => {
    const report = await readReport(loaded);
    const status = Object.fromEntries(report.rows.map((r) => [r.job, r.status]));
    expect(status).toEqual({ proven: "ok", nodrill: "unproven", "broken-drill": "failing", cut: "failing", empty: "never" });
    const proven = report.rows.find((r) => r.job === "proven");
    expect(proven?.drill?.snapshotId).toBe(proven?.newest?.snapshotId);
    expect(proven?.lastGood).toMatchObject({ snapshotId: proven?.newest?.snapshotId, available: true });
    expect(proven?.drill?.rtoMs).toBeGreaterThan(0);
    expect(report.rows.find((r) => r.job === "cut")?.reasons.join()).toMatch(/last backup failed: snapshot .* has no valid manifest/);
    expect(report.rows.find((r) => r.job === "broken-drill")?.reasons.join()).toMatch(/last drill "broken-drill-check" failed/);
  });

  it("the same snapshots two hours later: the proven job is stale (RPO 1h)", async () => {
    const later = await readReport(loaded, { now: new Date(Date.now() + 2 * 3_600_000), jobs: ["proven"] });
    expect(later.rows[0]).toMatchObject({ job: "proven", status: "stale" });
    expect(later.rows[0]?.reasons[0]).toMatch(/older than the RPO of 1h/);
  });

  it("CLI: exit 1 with JSON and an HTML page when not all jobs are ok; exit 0 for ok jobs only", async () => {
    const html = join(project.dir, "status.html");
    const r = await runCli(["--config", project.config, "--json", "report", "--html", html]);
    expect(r.status, r.stderr).toBe(1);
    const report = reportOf(r.stdout);
    expect(report.ok).toBe(false);
    expect(report.summary).toEqual({ never: 1, failing: 2, stale: 0, unproven: 1, ok: 1 });
    expect(existsSync(html)).toBe(true);
    const page = readFileSync(html, "utf8");
    expect(page).toContain("<style>");
    expect(page).not.toMatch(/<script|<link|src=|href=|url\(/);
    expect(page).toMatch(/class="ev snapshot"/);
    expect(page).toMatch(/class="ev drill-fail"/);

    const ok = await runCli(["--config", project.config, "report", "--job", "proven"]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^JOB\s+TARGET\s+STATUS/);
    expect(ok.stdout).toMatch(/proven\s+offsite\s+OK/);
    expect(ok.stdout).toMatch(/all ok: 1 ok/);
  });
});
