import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3Target } from "../../src/storage/s3.ts";
import { listAll } from "../../src/storage/target.ts";
import { makeKey } from "../helpers/age.ts";
import { runCli, startCli } from "../helpers/cli.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/pg.ts";
import { multipartLeftovers, type S3TestServer, startS3Server } from "../helpers/s3.ts";
import { daemonProject, freePort, until } from "./env.ts";

// `lifeboat daemon` as a service manager runs it: the real CLI in a child process, stopped with SIGTERM.
let db: TestDatabase;
let s3: S3TestServer;
let key: Awaited<ReturnType<typeof makeKey>>;

const pgJob = (name: string, schedule: string) =>
  `{ name: "${name}", source: { type: "postgres", url: "${db.url}", boundary: "test:postgres" }, targets: ["offsite"], schedule: "${schedule}" }`;
const drill = (name: string, job: string) => `{ name: "${name}", job: "${job}", schedule: "0 4 * * 0" }`;

/** stderr's JSON events (stderr is not a terminal here). */
const events = (stderr: string) =>
  stderr
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

beforeAll(async () => {
  [db, s3, key] = await Promise.all([createTestDatabase(), startS3Server(), makeKey()]);
  const c = await db.client();
  // Poorly compressible rows, enough for a multi-part upload (5 MiB parts) that takes a moment.
  await c.query(
    "create table big (id int, a text); insert into big select g, md5(random()::text)||md5(random()::text)||md5(random()::text)||md5(random()::text) from generate_series(1, 300000) g",
  );
  await c.end();
});

afterAll(async () => {
  await Promise.allSettled([db?.drop(), s3?.stop()]);
});

describe("lifeboat daemon (CLI)", () => {
  it("an invalid cron expression is a config error naming the file and field: exit 2, nothing started", async () => {
    const p = daemonProject({ recipient: key.recipient, target: s3.config("bad"), jobs: { nightly: pgJob("nightly", "0 25 * * *") } });
    const r = await runCli(["--config", p.config, "daemon"]);
    expect(r.status).toBe(2);
    // stderr is not a terminal: even a start-up error is one JSON event, and nothing else is written.
    expect(r.stderr.split("\n").filter((l) => l !== "" && !l.startsWith("{"))).toEqual([]);
    expect(events(r.stderr).at(-1)).toMatchObject({
      event: "daemon.failed",
      level: "error",
      error: expect.stringMatching(/jobs\/nightly\.ts: schedule: "0 25 \* \* \*" is not a valid cron expression/),
      code: "CONFIG",
      exitCode: 2,
    });
  });

  it("serves /healthz, warns loudly that drills are skipped without an identity, and exits 0 on SIGTERM when idle", async () => {
    const port = await freePort();
    const p = daemonProject({
      recipient: key.recipient,
      target: s3.config("idle"),
      daemon: { metrics: { host: "127.0.0.1", port } },
      jobs: { yearly: pgJob("yearly", "0 0 1 1 *") },
      drills: { "yearly-drill": drill("yearly-drill", "yearly") },
    });
    const { child, result } = startCli(["--config", p.config, "daemon"], { LIFEBOAT_IDENTITY_FILE: "" });
    await until(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.status === 200, "healthz", 60_000);
    child.kill("SIGTERM");
    const r = await result;
    expect(r.status, r.stderr).toBe(0);
    const ev = events(r.stderr);
    expect(ev.find((e) => e.event === "daemon.no-identity")).toMatchObject({ level: "warn", drills: ["yearly-drill"] });
    expect(ev.at(-1)).toMatchObject({ event: "daemon.stopped", clean: true });
  });

  it("SIGTERM during an upload, with no grace left, aborts it: exit 1, no partial snapshot, no multipart leftovers", async () => {
    const cfg = s3.config("term");
    const p = daemonProject({
      recipient: key.recipient,
      target: cfg,
      daemon: { shutdownGraceSeconds: 0, retry: { attempts: 0, backoffSeconds: 0 } },
      jobs: { big: pgJob("big", "* * * * * *") },
    });
    const { child, result } = startCli(["--config", p.config, "daemon"]);
    await until(async () => (await multipartLeftovers(cfg)).length > 0, "a multipart upload in progress", 60_000);
    child.kill("SIGTERM");
    const r = await result;
    expect(r.status, r.stderr).toBe(1);
    const ev = events(r.stderr);
    expect(ev.find((e) => e.event === "daemon.abort")).toMatchObject({ runs: ["job:big"] });
    expect(ev.find((e) => e.event === "run.aborted")).toMatchObject({ job: "big", level: "error" });
    // The final error is a log line too: a log shipper reading JSON lines gets nothing else.
    expect(r.stderr.split("\n").filter((l) => l !== "" && !l.startsWith("{"))).toEqual([]);
    expect(ev.at(-1)).toMatchObject({
      event: "daemon.failed",
      level: "error",
      error: "shutdown aborted run(s) still going after the grace period: job:big",
      hint: expect.stringMatching(/shutdownGraceSeconds/),
      exitCode: 1,
    });
    const t = new S3Target("offsite", cfg);
    const keys = (await listAll(t, "big/")).map((o) => o.key);
    await t.close();
    // Snapshot directories with objects but no manifest would be partial snapshots. (A run that finished before the
    // signal, on a fast machine, may have left a complete one; that is fine.)
    const dirs = new Set(keys.map((k) => k.split("/").slice(0, 3).join("/")));
    const partial = [...dirs].filter((d) => !keys.includes(`${d}/manifest.json`));
    expect(partial).toEqual([]);
    expect(await multipartLeftovers(cfg)).toEqual([]);
  });
});
