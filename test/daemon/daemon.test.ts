import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listSnapshots } from "../../src/catalog/snapshots.ts";
import { loadConfig } from "../../src/config/load.ts";
import { type DaemonHandle, type DaemonResult, runDaemon } from "../../src/daemon/daemon.ts";
import { backupJob } from "../../src/pipeline/job.ts";
import { S3Target } from "../../src/storage/s3.ts";
import { makeKey } from "../helpers/age.ts";
import { adminUrl, createTestDatabase, type TestDatabase } from "../helpers/pg.ts";
import { daemonProject, freePort, restartableS3, startReceiver, until } from "./env.ts";
import { memoryLogger } from "./fakes.ts";

// The daemon in-process, on real node-cron with every-second schedules, against real PostgreSQL and the embedded S3
// server (which shares this event loop: everything here waits asynchronously).
let db: TestDatabase;
let s3: Awaited<ReturnType<typeof restartableS3>>;
let key: Awaited<ReturnType<typeof makeKey>>;
let hooks: Awaited<ReturnType<typeof startReceiver>>;

const pgJob = (name: string, url: string, extra = "") =>
  `{ name: "${name}", source: { type: "postgres", url: "${url}", boundary: "test:postgres" }, targets: ["offsite"], schedule: "* * * * * *"${extra} }`;

async function startDaemon(project: { config: string }, port = 0, identities?: string[]) {
  const loaded = await loadConfig(project.config);
  const mem = memoryLogger();
  const ac = new AbortController();
  let handle: DaemonHandle | undefined;
  const done: Promise<DaemonResult> = runDaemon({
    loaded,
    signal: ac.signal,
    identities,
    log: mem.log,
    metrics: { host: "127.0.0.1", port },
    notifyBackoffMs: 100,
    onReady: (h) => {
      handle = h;
    },
  });
  await until(() => handle, "daemon ready");
  const stop = () => {
    ac.abort(new Error("test stop"));
    return done;
  };
  return { ...mem, ac, done, handle: handle as DaemonHandle, stop };
}

const snapshots = async (prefix: string, job: string) => {
  const t = new S3Target("offsite", s3.config(prefix));
  try {
    return await listSnapshots(t, job);
  } finally {
    await t.close();
  }
};

beforeAll(async () => {
  [db, s3, key, hooks] = await Promise.all([createTestDatabase(), restartableS3(), makeKey(), startReceiver()]);
  const c = await db.client();
  await c.query(
    "create table items (id int primary key, name text); insert into items select g, md5(g::text) from generate_series(1, 500) g",
  );
  await c.end();
});

afterAll(async () => {
  await Promise.allSettled([db?.drop(), s3?.destroy(), hooks?.close()]);
});

describe("lifeboat daemon (in-process)", () => {
  it("runs jobs on an every-second schedule, pings, serves metrics and health, notifies a failure, stops cleanly", async () => {
    const missing = db.url.replace(db.name, `${db.name}_missing`);
    const project = daemonProject({
      recipient: key.recipient,
      target: s3.config("sched"),
      daemon: { retry: { attempts: 1, backoffSeconds: 0.2 } },
      webhooks: [`${hooks.url}/hook`],
      jobs: {
        good: pgJob("good", db.url, `, ping: "${hooks.url}/ping/good"`),
        broken: pgJob("broken", missing, `, ping: "${hooks.url}/ping/broken"`),
      },
    });
    const port = await freePort();
    const d = await startDaemon(project, port);
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    await d.waitFor((e) => e.event === "backup.snapshot" && e.job === "good");
    const webhook = (event: string) => hooks.got.filter((g) => g.path === "/hook").find((g) => JSON.parse(g.body).event === event);
    await until(() => webhook("backup.failed"), "the failure webhook", 60_000);
    await until(() => hooks.got.some((g) => g.path === "/ping/good"), "the success ping");

    const failure = JSON.parse(webhook("backup.failed")?.body as string);
    expect(failure).toMatchObject({ event: "backup.failed", severity: "error", job: "broken", attempts: 2, targets: ["offsite"] });
    expect(failure.text).toMatch(/backup of job broken failed after 2 attempts: .*does not exist/);
    const paths = hooks.got.map((g) => g.path);
    expect(paths).toContain("/ping/good/start");
    expect(paths).toContain("/ping/broken/start");
    expect(paths).toContain("/ping/broken/fail");

    const metrics = await (await fetch(`${base}/metrics`)).text();
    const m = /lifeboat_backup_last_success_timestamp_seconds\{job="good",target="offsite"\} (\d+(\.\d+)?)/.exec(metrics);
    expect(m, metrics.slice(0, 2000)).not.toBeNull();
    expect(Math.abs(Number(m?.[1]) - Date.now() / 1000)).toBeLessThan(60);
    expect(metrics).toMatch(/lifeboat_run_failures_total\{kind="job",name="broken",target="offsite"\} [1-9]/);
    expect(metrics).toMatch(/lifeboat_runs_total\{kind="job",name="good",outcome="ok"\} [1-9]/);

    const result = await d.stop();
    expect(result.aborted).toEqual([]);
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
    expect(d.events.at(-1)).toMatchObject({ event: "daemon.stopped", clean: true });
    // Every line is one JSON event with the common fields; no password-bearing URL leaks.
    for (const e of d.events) expect(typeof e.time === "string" && typeof e.event === "string").toBe(true);
    expect((await snapshots("sched", "good")).complete.length).toBeGreaterThanOrEqual(1);
    expect((await snapshots("sched", "broken")).complete).toEqual([]);
  });

  it("never overlaps a slow run: triggers during it are skipped and logged", async () => {
    const project = daemonProject({ recipient: key.recipient, target: s3.config("slow"), jobs: { slow: pgJob("slow", db.url) } });
    // A real slow source: the dump waits for a table lock this session holds.
    const locker = await db.client();
    await locker.query("begin; lock table items in access exclusive mode");
    const d = await startDaemon(project);
    try {
      await d.waitFor((e) => e.event === "run.started" && e.job === "slow");
      await until(() => d.events.filter((e) => e.event === "run.skipped" && e.job === "slow").length >= 2, "two skipped triggers", 10_000);
      expect(d.events.filter((e) => e.event === "run.started" && e.job === "slow")).toHaveLength(1);
      expect(d.events.find((e) => e.event === "run.skipped")).toMatchObject({ level: "warn", reason: "overlap", job: "slow" });
    } finally {
      await locker.query("commit");
      await locker.end();
    }
    await d.waitFor((e) => e.event === "run.finished" && e.job === "slow");
    await d.stop();
    // Each run finished before the next one started.
    const order = d.events.filter((e) => e.job === "slow" && (e.event === "run.started" || e.event === "run.finished")).map((e) => e.event);
    expect(order).toEqual(order.map((_, i) => (i % 2 === 0 ? "run.started" : "run.finished")));
  });

  it("recovers from a transient S3 outage by retrying", async () => {
    const project = daemonProject({
      recipient: key.recipient,
      target: s3.config("flaky"),
      daemon: { retry: { attempts: 3, backoffSeconds: 1 } },
      jobs: { flaky: pgJob("flaky", db.url) },
    });
    await s3.stop();
    let d: Awaited<ReturnType<typeof startDaemon>> | undefined;
    try {
      d = await startDaemon(project);
      const failed = await d.waitFor((e) => e.event === "run.failed" && e.job === "flaky");
      expect(failed).toMatchObject({ attempt: 1, error: expect.stringMatching(/target "offsite".*cannot reach/) });
    } finally {
      await s3.start();
    }
    const ok = await d.waitFor((e) => e.event === "run.finished" && e.job === "flaky");
    expect(ok.attempt).toBeGreaterThanOrEqual(2);
    expect(ok.runId).toBe(d.events.find((e) => e.event === "run.failed")?.runId);
    await d.stop();
    expect((await snapshots("flaky", "flaky")).complete.length).toBeGreaterThanOrEqual(1);
  });
  it("runs a scheduled drill with the given identity; its pass reaches the metrics", async () => {
    const project = daemonProject({
      recipient: key.recipient,
      target: s3.config("drilled"),
      scratchPostgres: adminUrl,
      jobs: { kept: `{ name: "kept", source: { type: "postgres", url: "${db.url}", boundary: "test:postgres" }, targets: ["offsite"] }` },
      drills: { "kept-drill": `{ name: "kept-drill", job: "kept", schedule: "* * * * * *" }` },
    });
    expect((await backupJob(await loadConfig(project.config), "kept")).ok).toBe(true);
    const d = await startDaemon(project, 0, [key.identity]);
    const rec = await d.waitFor((e) => e.event === "drill.record");
    expect(rec).toMatchObject({ drill: "kept-drill", job: "kept", verdict: "pass" });
    await d.stop();
    expect(await d.handle.metrics.text()).toMatch(/lifeboat_drill_last_pass_timestamp_seconds\{job="kept",target="offsite"\} \d+/);
  });
});
