import { describe, expect, it } from "vitest";
import {
  computeReport,
  formatAge,
  parseDuration,
  type ReportDrill,
  type ReportJob,
  type Status,
  type TargetReading,
} from "../../src/catalog/report.ts";
import { renderReportHtml } from "../../src/catalog/report-html.ts";
import { idAgo, manifest, NOW, record } from "./fixtures.ts";

const job: ReportJob = { name: "db", targets: ["offsite"], rpo: "6h" };
const drill: ReportDrill = { name: "db-drill", job: "db", target: "offsite", maxAge: "8d" };

interface Case {
  name: string;
  status: Status;
  /** Conditions that hold besides the status. */
  also?: string[];
  reason: RegExp;
  reading: Omit<TargetReading, "job" | "target">;
  job?: ReportJob;
  drills?: ReportDrill[];
}

const listing = (complete: number[], incomplete: string[] = []) => ({
  complete: complete.map((h) => manifest("db", "offsite", h)),
  incomplete,
  broken: [],
});

const cases: Case[] = [
  {
    name: "fresh snapshot, recent passing drill",
    status: "ok",
    reason: /^$/,
    reading: { listing: listing([1]), records: [record("db", "offsite", "db-drill", 20, "pass")] },
  },
  {
    name: "no RPO: an old snapshot is never stale",
    status: "ok",
    job: { name: "db", targets: ["offsite"] },
    reason: /^$/,
    reading: { listing: listing([500]), records: [record("db", "offsite", "db-drill", 20, "pass")] },
  },
  {
    name: "no snapshot at all",
    status: "never",
    also: ["unproven"],
    reason: /no complete snapshot/,
    reading: { listing: listing([]), records: [] },
  },
  {
    name: "only an interrupted run: never beats failing",
    status: "never",
    also: ["failing", "unproven"],
    reason: /no complete snapshot/,
    reading: { listing: listing([], [idAgo(1)]), records: [] },
  },
  {
    name: "newest snapshot older than the RPO",
    status: "stale",
    reason: /7\.0 h old, older than the RPO of 6h/,
    reading: { listing: listing([7, 13]), records: [record("db", "offsite", "db-drill", 20, "pass")] },
  },
  {
    name: "stale beats unproven",
    status: "stale",
    also: ["unproven"],
    reason: /RPO/,
    reading: { listing: listing([7]), records: [] },
  },
  {
    name: "the last drill failed (an earlier one passed)",
    status: "failing",
    reason: /last drill "db-drill" failed at .*: row counts differ/,
    reading: {
      listing: listing([1]),
      records: [record("db", "offsite", "db-drill", 30, "pass"), record("db", "offsite", "db-drill", 5, "fail")],
    },
  },
  {
    name: "a failed drill followed by a passing one is not failing",
    status: "ok",
    reason: /^$/,
    reading: {
      listing: listing([1]),
      records: [record("db", "offsite", "db-drill", 30, "fail"), record("db", "offsite", "db-drill", 5, "pass")],
    },
  },
  {
    name: "a snapshot without manifest newer than the newest complete one is a failed last run",
    status: "failing",
    reason: /last backup failed: snapshot .* has no valid manifest/,
    reading: { listing: listing([3], [idAgo(1)]), records: [record("db", "offsite", "db-drill", 20, "pass")] },
  },
  {
    name: "an older interrupted run does not count",
    status: "ok",
    reason: /^$/,
    reading: { listing: listing([1], [idAgo(3)]), records: [record("db", "offsite", "db-drill", 20, "pass")] },
  },
  {
    name: "failing beats stale",
    status: "failing",
    also: ["stale"],
    reason: /failed/,
    reading: { listing: listing([10], [idAgo(1)]), records: [record("db", "offsite", "db-drill", 20, "pass")] },
  },
  {
    name: "a snapshot dated in the future (the backup host's clock is ahead)",
    status: "failing",
    reason: /finished 24\.0 h in the future: the backup host's clock is ahead/,
    reading: { listing: listing([-24]), records: [record("db", "offsite", "db-drill", 20, "pass")] },
  },
  {
    name: "a snapshot a few seconds ahead is within the clocks' drift",
    status: "ok",
    reason: /^$/,
    reading: { listing: listing([-0.01]), records: [record("db", "offsite", "db-drill", 20, "pass")] },
  },
  {
    name: "passing drill older than maxAge",
    status: "unproven",
    reason: /newest passing drill is 9\.0 d old \(maxAge 8d\)/,
    reading: { listing: listing([1]), records: [record("db", "offsite", "db-drill", 216, "pass")] },
  },
  { name: "drill declared but never run", status: "unproven", reason: /no passing drill/, reading: { listing: listing([1]), records: [] } },
  {
    name: "no drill declared for the job",
    status: "unproven",
    drills: [],
    reason: /no drill declared for job "db"/,
    reading: { listing: listing([1]), records: [record("db", "offsite", "db-drill", 5, "pass")] },
  },
  {
    name: "the job's drill restores from another target",
    status: "unproven",
    drills: [{ ...drill, target: "nas" }],
    reason: /no drill restores from "offsite"/,
    reading: { listing: listing([1]), records: [] },
  },
  {
    name: "one of two drills failing is failing, whatever the other says",
    status: "failing",
    drills: [drill, { ...drill, name: "db-queries" }],
    reason: /last drill "db-queries" failed/,
    reading: {
      listing: listing([1]),
      records: [record("db", "offsite", "db-queries", 10, "fail"), record("db", "offsite", "db-drill", 2, "pass")],
    },
  },
  {
    name: "a drill record dated in the future proves nothing and does not hide the failure before it",
    status: "failing",
    also: ["unproven"],
    reason:
      /drill record .* \("db-drill"\) finished 24\.0 h in the future: the drill host's clock is ahead[\s\S]*last drill "db-drill" failed/,
    reading: {
      listing: listing([1]),
      records: [record("db", "offsite", "db-drill", -24, "pass", 2), record("db", "offsite", "db-drill", 0.5, "fail", 1)],
    },
  },
  {
    name: "a failed drill of the newest snapshot is not cleared by a later pass of an older one",
    status: "failing",
    reason: /drill "db-drill" failed on snapshot \S+ at .*, newer than any it has passed since: sha256 mismatch/,
    reading: {
      listing: listing([1, 30]),
      records: [
        record("db", "offsite", "db-drill", 0.2, "pass", 30),
        { ...record("db", "offsite", "db-drill", 0.5, "fail", 1), error: "sha256 mismatch" },
      ],
    },
  },
  {
    name: "that failure no longer counts once its snapshot is gone from the target",
    status: "ok",
    reason: /^$/,
    reading: {
      listing: listing([30]),
      records: [record("db", "offsite", "db-drill", 0.2, "pass", 30), record("db", "offsite", "db-drill", 0.5, "fail", 1)],
    },
    job: { name: "db", targets: ["offsite"] },
  },
  {
    name: "a snapshot whose later drill failed is proven no more",
    status: "unproven",
    reason: /no passing drill stands: a later drill failed each snapshot that had passed/,
    reading: {
      listing: listing([1]),
      records: [record("db", "offsite", "db-drill", 0.2, "pass", 1), record("db", "offsite", "other-drill", 0.1, "fail", 1)],
    },
  },
  {
    name: "a newer snapshot whose manifest a newer lifeboat wrote says so, not that the backup failed",
    status: "failing",
    reason: /snapshot \S+, newer than the newest complete one, has a manifest that cannot be read: .*newer than this lifeboat reads/,
    reading: {
      listing: {
        ...listing([5]),
        broken: [{ snapshotId: idAgo(1), error: "manifest.json has format version 2, newer than this lifeboat reads (1)" }],
      },
      records: [record("db", "offsite", "db-drill", 2, "pass", 5)],
    },
  },
  {
    name: "the target cannot be read",
    status: "failing",
    also: ["unproven"],
    reason: /cannot read target "offsite": connection refused/,
    reading: { error: "connection refused" },
  },
];

describe("computeReport statuses (fixed clock)", () => {
  it.each(cases)("$name → $status", (c) => {
    const report = computeReport({
      jobs: [c.job ?? job],
      drills: c.drills ?? [drill],
      readings: [{ job: "db", target: "offsite", ...c.reading }],
      now: NOW,
    });
    const row = report.rows[0];
    expect(row?.status).toBe(c.status);
    expect(Object.keys(row?.problems ?? {}).sort()).toEqual([...(c.status === "ok" ? [] : [c.status]), ...(c.also ?? [])].sort());
    expect(row?.reasons.join("\n") ?? "").toMatch(c.reason);
    expect(report.ok).toBe(c.status === "ok");
  });
});

describe("computeReport details", () => {
  it("fills newest snapshot, newest passing drill, last good and the timeline", () => {
    const report = computeReport({
      jobs: [job],
      drills: [drill],
      readings: [
        {
          job: "db",
          target: "offsite",
          listing: {
            complete: [manifest("db", "offsite", 1, 5000), manifest("db", "offsite", 30), manifest("db", "offsite", 2000)],
            incomplete: [idAgo(10)],
            broken: [],
          },
          records: [record("db", "offsite", "db-drill", 20, "pass", 30), record("db", "offsite", "db-drill", 100, "pass", 120)],
        },
      ],
      now: NOW,
    });
    const row = report.rows[0]!;
    expect(row.newest).toMatchObject({ snapshotId: idAgo(1), ageMs: 3_600_000, storedBytes: 5100, rawBytes: 15000 });
    expect(row.drill).toMatchObject({ drill: "db-drill", snapshotId: idAgo(30), rtoMs: 3000, ageMs: 20 * 3_600_000 });
    expect(row.lastGood).toEqual({
      snapshotId: idAgo(30),
      finishedAt: manifest("db", "offsite", 30).finishedAt,
      ageMs: 30 * 3_600_000,
      available: true,
    });
    expect(row.counts).toEqual({ complete: 3, incomplete: 1, broken: 0, drillRecords: 2 });
    // 30 days: the 2000-hour-old snapshot is outside the timeline; the rest is in time order.
    expect(row.timeline.map((e) => e.kind)).toEqual(["drill-pass", "snapshot", "drill-pass", "failed-backup", "snapshot"]);
  });

  it("says when the last proven snapshot is no longer on the target", () => {
    const report = computeReport({
      jobs: [job],
      drills: [drill],
      readings: [{ job: "db", target: "offsite", listing: listing([1]), records: [record("db", "offsite", "db-drill", 2, "pass", 50)] }],
      now: NOW,
    });
    expect(report.rows[0]?.lastGood?.available).toBe(false);
  });

  it("has one row per job and target, a summary, and a missing reading is failing", () => {
    const report = computeReport({
      jobs: [job, { name: "files", targets: ["offsite", "nas"] }],
      drills: [drill],
      readings: [
        { job: "db", target: "offsite", listing: listing([1]), records: [record("db", "offsite", "db-drill", 2, "pass")] },
        {
          job: "files",
          target: "offsite",
          listing: { complete: [manifest("files", "offsite", 1)], incomplete: [], broken: [] },
          records: [],
        },
      ],
      now: NOW,
    });
    expect(report.rows.map((r) => `${r.job}@${r.target}:${r.status}`)).toEqual([
      "db@offsite:ok",
      "files@offsite:unproven",
      "files@nas:failing",
    ]);
    expect(report.summary).toEqual({ never: 0, failing: 1, stale: 0, unproven: 1, ok: 1 });
    expect(report.generatedAt).toBe(NOW.toISOString());
  });

  it("is not ok without any job: nothing is backed up", () => {
    const report = computeReport({ jobs: [], drills: [], readings: [], now: NOW });
    expect(report.rows).toEqual([]);
    expect(report.ok).toBe(false);
  });

  it("formats ages, with under half a second as <1 s rather than 0", () => {
    expect([
      formatAge(120),
      formatAge(499),
      formatAge(500),
      formatAge(90_000),
      formatAge(3 * 3_600_000),
      formatAge(3 * 86_400_000),
    ]).toEqual(["<1 s", "<1 s", "1 s", "90 s", "3.0 h", "3.0 d"]);
  });

  it("parses durations", () => {
    expect(parseDuration("90s")).toBe(90_000);
    expect(parseDuration("6h")).toBe(21_600_000);
    expect(parseDuration("2w")).toBe(1_209_600_000);
    expect(() => parseDuration("6 hours")).toThrow(/not a duration/);
  });

  it("renders a self-contained HTML page that escapes what it shows", () => {
    const report = computeReport({
      jobs: [job],
      drills: [drill],
      readings: [{ job: "db", target: "offsite", error: "<script>alert(1)</script>" }],
      now: NOW,
    });
    const html = renderReportHtml(report);
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toContain("<script");
    expect(html).toContain("&lt;script&gt;");
    expect(html).not.toMatch(/(src|href)=|@import|url\(/);
  });
});
