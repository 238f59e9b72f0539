import { describe, expect, it } from "vitest";
import { writeDrillRecord } from "../../src/catalog/drill-record.ts";
import type { LoadedConfig } from "../../src/config/load.ts";
import { DaemonMetrics } from "../../src/daemon/metrics.ts";
import { type Notification, Notifier } from "../../src/daemon/notify.ts";
import { StatusWatch } from "../../src/daemon/watch.ts";
import { MemoryTarget } from "../../src/storage/memory.ts";
import { putBuffer } from "../../src/storage/target.ts";
import { manifest, NOW, record } from "../report/fixtures.ts";
import { ManualClock, memoryLogger } from "./fakes.ts";

const H = 3_600_000;

/** A fetch that answers every webhook with 200 and keeps what was sent. */
function webhookInbox(): { sent: Notification[]; fetchFake: typeof fetch } {
  const sent: Notification[] = [];
  const fetchFake = (async (_url: string, init: RequestInit) => {
    sent.push(JSON.parse(String(init.body)) as Notification);
    return new Response("ok");
  }) as typeof fetch;
  return { sent, fetchFake };
}

describe("StatusWatch", () => {
  it("notifies when a job turns stale, once, and when it is ok again; updates the gauges from the targets", async () => {
    const target = new MemoryTarget("offsite");
    const m = manifest("db", "offsite", 1);
    await putBuffer(target, `db/snapshots/${m.snapshotId}/manifest.json`, JSON.stringify(m));
    await writeDrillRecord(target, record("db", "offsite", "db-drill", 0.5, "pass"));
    const loaded = {
      file: "/p/backup.config.ts",
      config: { targets: {} },
      jobs: new Map([["db", { name: "db", targets: ["offsite"], rpo: "6h", file: "/p/jobs/db.ts" }]]),
      drills: new Map([["db-drill", { name: "db-drill", job: "db", maxAge: "8d", file: "/p/restore-drills/db.ts" }]]),
    } as unknown as LoadedConfig;
    const clock = new ManualClock(NOW.getTime());
    const { sent, fetchFake } = webhookInbox();
    const { log } = memoryLogger();
    const metrics = new DaemonMetrics();
    const watch = new StatusWatch({
      loaded,
      clock,
      log,
      metrics,
      notifier: new Notifier({ webhooks: ["http://hooks.invalid/x"], log, clock, fetch: fetchFake }),
      intervalMs: 5 * 60_000,
      makeTarget: () => target,
    });

    expect((await watch.check())?.rows[0]?.status).toBe("ok");
    expect(sent).toEqual([]);
    const text = await metrics.text();
    expect(text).toContain(`lifeboat_backup_last_success_timestamp_seconds{job="db",target="offsite"} ${Date.parse(m.finishedAt) / 1000}`);
    expect(text).toContain('lifeboat_job_status{job="db",target="offsite",status="ok"} 1');

    clock.advance(6 * H);
    expect((await watch.check())?.rows[0]?.status).toBe("stale");
    expect(sent.map((n) => [n.event, n.job, n.targets])).toEqual([["job.stale", "db", ["offsite"]]]);
    expect(sent[0]?.text).toMatch(/job db is stale on offsite: offsite: newest snapshot is 7\.0 h old, older than the RPO of 6h/);

    clock.advance(H);
    await watch.check();
    expect(sent).toHaveLength(1);

    const fresh = manifest("db", "offsite", -7);
    await putBuffer(target, `db/snapshots/${fresh.snapshotId}/manifest.json`, JSON.stringify(fresh));
    await watch.check();
    expect(sent.map((n) => n.event)).toEqual(["job.stale", "job.ok"]);
  });

  it("a target that cannot be read is failing, as in the report, and never announced as unproven (no drill declared)", async () => {
    const loaded = {
      file: "/p/backup.config.ts",
      config: { targets: {} },
      jobs: new Map([["files", { name: "files", targets: ["shm"], file: "/p/jobs/files.ts" }]]),
      drills: new Map(),
    } as unknown as LoadedConfig;
    const clock = new ManualClock(NOW.getTime());
    const { sent, fetchFake } = webhookInbox();
    const { log } = memoryLogger();
    let readable = false;
    const target = new MemoryTarget("shm");
    const watch = new StatusWatch({
      loaded,
      clock,
      log,
      metrics: new DaemonMetrics(),
      notifier: new Notifier({ webhooks: ["http://hooks.invalid/x"], log, clock, fetch: fetchFake }),
      intervalMs: 5 * 60_000,
      makeTarget: () => {
        if (!readable) throw new Error("ENOENT: no such file or directory, scandir '/mnt/missing'");
        return target;
      },
    });

    const first = await watch.check();
    expect(first?.rows[0]?.status).toBe("failing");
    expect(first?.rows[0]?.reasons[0]).toMatch(/cannot read target "shm"/);
    expect(sent).toEqual([]);

    // Once there are snapshots, no drill proves them: that is news, and announced.
    readable = true;
    const m = manifest("files", "shm", 1);
    await putBuffer(target, `files/snapshots/${m.snapshotId}/manifest.json`, JSON.stringify(m));
    expect((await watch.check())?.rows[0]?.status).toBe("unproven");
    expect(sent.map((n) => [n.event, n.reasons])).toEqual([["job.unproven", ['shm: no drill declared for job "files"']]]);
  });
});
