import { currentVerdicts, type DrillRecord } from "./drill-record.ts";
import { snapshotTime } from "./snapshot-id.ts";
import { newestFirst, type SnapshotListing } from "./snapshots.ts";

/**
 * The status of one job's copy on one target, worst first: never (no complete snapshot), failing (the last run or
 * drill failed), stale (newest snapshot older than the RPO), unproven (no passing drill within maxAge), ok.
 */
export type Status = "never" | "failing" | "stale" | "unproven" | "ok";

/** Statuses in precedence order: when several conditions hold, the first one listed here is the status. */
export const STATUSES: readonly Status[] = ["never", "failing", "stale", "unproven", "ok"];

/** A job as the report needs it. */
export interface ReportJob {
  name: string;
  targets: readonly string[];
  /** Recovery point objective ("6h"); without one a job is never stale. */
  rpo?: string;
}

/** A declared drill as the report needs it. */
export interface ReportDrill {
  name: string;
  job: string;
  /** The target it restores from (drill.from, else the job's first target). */
  target: string;
  /** A passing drill older than this does not prove the job ("8d"). */
  maxAge: string;
}

/** What was read from one target for one job; error when the target could not be read. */
export interface TargetReading {
  job: string;
  target: string;
  listing?: SnapshotListing;
  /** Drill records, any order. */
  records?: readonly DrillRecord[];
  /** Drill records that could not be read or parsed. */
  brokenRecords?: readonly { key: string; error: string }[];
  /** Snapshots marked for deletion by prune (tombstones), with the time after which a prune deletes them. */
  pending?: readonly { snapshotId: string; deleteAfter: string }[];
  error?: string;
}

/** Everything computeReport needs: no I/O happens inside it. */
export interface ReportInput {
  jobs: readonly ReportJob[];
  drills: readonly ReportDrill[];
  readings: readonly TargetReading[];
  now: Date;
  /** Timeline events older than this many days are left out. Default 30. */
  timelineDays?: number;
}

/** One point on a row's timeline. */
export interface TimelineEvent {
  at: string;
  kind: "snapshot" | "failed-backup" | "drill-pass" | "drill-fail";
  /** Snapshot id or drill run id. */
  id: string;
  /** Drill name, for drill events. */
  drill?: string;
}

/** Reasons per condition that holds. */
export type Problems = Partial<Record<Exclude<Status, "ok">, string[]>>;

/** The report for one job on one target. */
export interface ReportRow {
  job: string;
  target: string;
  status: Status;
  /** Every condition that holds, in words, worst first (the status is the worst of them). */
  reasons: string[];
  /** The same reasons by condition; a condition holds when its key is present, whatever the precedence. */
  problems: Problems;
  rpo?: string;
  /** Newest complete snapshot. */
  newest?: { snapshotId: string; finishedAt: string; ageMs: number; storedBytes: number; rawBytes: number };
  /** Newest passing drill: when, which snapshot it proved, and the measured restore time. */
  drill?: { drill: string; runId: string; finishedAt: string; ageMs: number; snapshotId: string; rtoMs: number };
  /** Newest drill of any verdict. */
  lastDrill?: { drill: string; runId: string; finishedAt: string; verdict: "pass" | "fail"; error?: string };
  /** "Last good": the newest snapshot a passing drill proved, and whether it is still on the target. */
  lastGood?: { snapshotId: string; finishedAt: string; ageMs: number; available: boolean };
  counts: { complete: number; incomplete: number; broken: number; drillRecords: number };
  /** Snapshots marked for deletion (two-phase prune); `lifeboat undelete` keeps one. */
  pendingDeletions: { snapshotId: string; deleteAfter: string }[];
  /** Snapshots, failed backups and drills, oldest first, within timelineDays. */
  timeline: TimelineEvent[];
}

/** The last-good-backup report: one row per job and target. */
export interface Report {
  generatedAt: string;
  /** True only when every row is ok. */
  ok: boolean;
  summary: Record<Status, number>;
  rows: ReportRow[];
}

const unitMs = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/** Milliseconds in a duration like "30m", "6h", "8d" (the config's duration syntax). Throws on anything else. */
export function parseDuration(text: string): number {
  const m = /^(\d+)(s|m|h|d|w)$/.exec(text);
  if (!m) throw new RangeError(`not a duration: "${text}" (use e.g. "30m", "6h", "7d")`);
  return Number(m[1]) * unitMs[m[2] as keyof typeof unitMs];
}

/** A short age for people: "45 s", "12 min", "5.2 h", "9.0 d". */
export function formatAge(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  // "0 s" would read as "not measured" (an RTO of a small restore, say).
  if (s < 0.5) return "<1 s";
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86_400).toFixed(1)} d`;
}

/**
 * Computes the report from what the targets hold, as of `now`. Pure: the same input gives the same report, so the
 * CLI, the daemon and tests with a fixed clock agree. A drill proves the target it restores from, and another target
 * only through a byte-identical copy of the snapshot it proved.
 */
export function computeReport(input: ReportInput): Report {
  const rows: ReportRow[] = [];
  for (const job of input.jobs) {
    for (const target of job.targets) {
      const reading = input.readings.find((r) => r.job === job.name && r.target === target) ?? {
        job: job.name,
        target,
        error: "not read",
      };
      const drills = input.drills.filter((d) => d.job === job.name && d.target === target);
      rows.push(computeRow(job, target, reading, drills, input));
    }
  }
  const summary = Object.fromEntries(STATUSES.map((s) => [s, rows.filter((r) => r.status === s).length])) as Record<Status, number>;
  // No job at all is not "all ok": nothing is being backed up (jobs never deployed, the wrong config).
  return { generatedAt: input.now.toISOString(), ok: rows.length > 0 && rows.every((r) => r.status === "ok"), summary, rows };
}

/**
 * Whether a recent passing drill on another target of the job proved a snapshot that this target holds byte for byte
 * (the same sha256 for every artifact): one stream fans out to every target, so a drill of one copy proves the bytes
 * of all. Storage rot on this target is what `lifeboat verify --target` catches; a drill per target proves both.
 */
function provenElsewhere(job: ReportJob, target: string, listing: SnapshotListing, input: ReportInput): boolean {
  const now = input.now.getTime();
  const hashes = (m: { artifacts: readonly { sha256: string }[] }) => m.artifacts.map((a) => a.sha256).join(",");
  for (const other of input.readings) {
    if (other.job !== job.name || other.target === target) continue;
    for (const d of input.drills.filter((x) => x.job === job.name && x.target === other.target)) {
      for (const r of other.records ?? []) {
        if (r.drill !== d.name || r.verdict !== "pass" || now - Date.parse(r.finishedAt) > parseDuration(d.maxAge)) continue;
        const there = other.listing?.complete.find((m) => m.snapshotId === r.snapshotId);
        const here = listing.complete.find((m) => m.snapshotId === r.snapshotId);
        if (there && here && hashes(there) === hashes(here)) return true;
      }
    }
  }
  return false;
}

/** How far in the future a snapshot may be dated before the report distrusts the clocks (hosts drift a little). */
const CLOCK_SKEW_MS = 5 * 60_000;

function computeRow(job: ReportJob, target: string, reading: TargetReading, drills: readonly ReportDrill[], input: ReportInput): ReportRow {
  const now = input.now.getTime();
  const listing = reading.listing ?? { complete: [], incomplete: [], broken: [] };
  const problems: Problems = {};
  const add = (cond: keyof Problems, reason: string) => {
    problems[cond] = [...(problems[cond] ?? []), reason];
  };
  // A record from the future (a drill host whose clock runs ahead) would stay "last" and fresh for as long as the
  // skew lasts, hiding every real drill after it: it is no evidence, and says so.
  const records: DrillRecord[] = [];
  for (const r of [...(reading.records ?? [])].sort((a, b) => b.finishedAt.localeCompare(a.finishedAt))) {
    const ahead = Date.parse(r.finishedAt) - now;
    if (ahead > CLOCK_SKEW_MS) {
      add(
        "failing",
        `drill record ${r.runId} ("${r.drill}") finished ${formatAge(ahead)} in the future: the drill host's clock is ahead, so it proves nothing`,
      );
    } else records.push(r);
  }

  if (reading.error !== undefined) {
    add("failing", `cannot read target "${target}": ${reading.error}`);
  }
  // Evidence that cannot be read proves nothing, and stops prune: someone must look at it.
  for (const b of reading.brokenRecords ?? []) add("failing", `drill record ${b.key} cannot be read: ${b.error}`);

  const complete = [...listing.complete].sort(newestFirst);
  const newestManifest = complete[0];
  const newest = newestManifest && {
    snapshotId: newestManifest.snapshotId,
    finishedAt: newestManifest.finishedAt,
    ageMs: now - Date.parse(newestManifest.finishedAt),
    storedBytes: newestManifest.artifacts.reduce((s, a) => s + a.size, 0) + newestManifest.inventory.size,
    rawBytes: newestManifest.artifacts.reduce((s, a) => s + a.rawBytes, 0),
  };
  if (!newest && reading.error === undefined) {
    add("never", `no complete snapshot on "${target}"`);
  }

  // A run that left objects but no (readable) manifest, after the newest good one, is a failed last backup.
  const failedRuns = [...listing.incomplete, ...listing.broken.map((b) => b.snapshotId)].sort().reverse();
  const newerFailure = failedRuns.find((id) => !newest || id > newest.snapshotId);
  if (newerFailure) {
    const unreadable = listing.broken.find((b) => b.snapshotId === newerFailure);
    add(
      "failing",
      unreadable
        ? `snapshot ${newerFailure}, newer than the newest complete one, has a manifest that cannot be read: ${unreadable.error}`
        : `last backup failed: snapshot ${newerFailure} has no valid manifest`,
    );
  }

  // A snapshot from the future (a backup host whose clock runs ahead) would look fresh for as long as the skew lasts.
  if (newest && newest.ageMs < -CLOCK_SKEW_MS) {
    add(
      "failing",
      `newest snapshot ${newest.snapshotId} finished ${formatAge(-newest.ageMs)} in the future: the backup host's clock is ahead, so its age (and the RPO) cannot be judged`,
    );
  }

  if (newest && job.rpo) {
    const rpoMs = parseDuration(job.rpo);
    if (newest.ageMs > rpoMs) {
      add("stale", `newest snapshot is ${formatAge(newest.ageMs)} old, older than the RPO of ${job.rpo}`);
    }
  }

  // The last record of each declared drill decides whether that drill is failing now; so does a failure on a
  // snapshot newer than any the drill has proven since (a pass on an older snapshot does not clear it).
  for (const d of drills) {
    const mine = records.filter((r) => r.drill === d.name);
    const last = mine[0];
    if (last?.verdict === "fail") {
      add("failing", `last drill "${d.name}" failed at ${last.finishedAt}${last.error ? `: ${last.error}` : ""}`);
      continue;
    }
    const verdicts = currentVerdicts(mine);
    // Snapshot ids sort by the time they were taken.
    const newestGood =
      [...verdicts]
        .filter(([, v]) => v === "pass")
        .map(([id]) => id)
        .sort()
        .at(-1) ?? "";
    const failedSince = [...verdicts].filter(([id, v]) => v === "fail" && id > newestGood && complete.some((m) => m.snapshotId === id));
    for (const [id] of failedSince) {
      const r = mine.find((x) => x.snapshotId === id) as DrillRecord;
      add(
        "failing",
        `drill "${d.name}" failed on snapshot ${id} at ${r.finishedAt}, newer than any it has passed since${r.error ? `: ${r.error}` : ""}`,
      );
    }
  }

  // A pass counts only while it is its snapshot's last verdict: a later failed drill of the same snapshot undoes it.
  const current = currentVerdicts(records);
  const passing = records.filter((r) => r.verdict === "pass" && current.get(r.snapshotId) === "pass");
  const newestPass = passing[0];
  const proven =
    drills.some((d) => passing.some((r) => r.drill === d.name && now - Date.parse(r.finishedAt) <= parseDuration(d.maxAge))) ||
    (drills.length === 0 && provenElsewhere(job, target, listing, input));
  if (!proven) {
    if (drills.length === 0) {
      const anyDrill = input.drills.some((d) => d.job === job.name);
      add("unproven", anyDrill ? `no drill restores from "${target}"` : `no drill declared for job "${job.name}"`);
    } else if (!newestPass) {
      const undone = records.some((r) => r.verdict === "pass");
      add("unproven", undone ? "no passing drill stands: a later drill failed each snapshot that had passed" : "no passing drill");
    } else {
      const maxAge = drills.map((d) => d.maxAge).join("/");
      add("unproven", `newest passing drill is ${formatAge(now - Date.parse(newestPass.finishedAt))} old (maxAge ${maxAge})`);
    }
  }

  const provenSnapshot = [...passing].sort((a, b) => b.snapshotId.localeCompare(a.snapshotId))[0];
  const lastRecord = records[0];
  const status = STATUSES.find((s) => s === "ok" || problems[s]) ?? "ok";
  return {
    job: job.name,
    target,
    status,
    reasons: STATUSES.flatMap((s) => (s === "ok" ? [] : (problems[s] ?? []))),
    problems,
    ...(job.rpo ? { rpo: job.rpo } : {}),
    ...(newest ? { newest } : {}),
    ...(newestPass
      ? {
          drill: {
            drill: newestPass.drill,
            runId: newestPass.runId,
            finishedAt: newestPass.finishedAt,
            ageMs: now - Date.parse(newestPass.finishedAt),
            snapshotId: newestPass.snapshotId,
            rtoMs: newestPass.rtoMs,
          },
        }
      : {}),
    ...(lastRecord
      ? {
          lastDrill: {
            drill: lastRecord.drill,
            runId: lastRecord.runId,
            finishedAt: lastRecord.finishedAt,
            verdict: lastRecord.verdict,
            ...(lastRecord.error ? { error: lastRecord.error } : {}),
          },
        }
      : {}),
    ...(provenSnapshot
      ? {
          lastGood: {
            snapshotId: provenSnapshot.snapshotId,
            finishedAt: provenSnapshot.snapshotFinishedAt,
            ageMs: now - Date.parse(provenSnapshot.snapshotFinishedAt),
            available: complete.some((m) => m.snapshotId === provenSnapshot.snapshotId),
          },
        }
      : {}),
    counts: {
      complete: complete.length,
      incomplete: listing.incomplete.length,
      broken: listing.broken.length,
      drillRecords: records.length,
    },
    pendingDeletions: [...(reading.pending ?? [])].sort((a, b) => a.snapshotId.localeCompare(b.snapshotId)),
    timeline: timeline(complete, failedRuns, records, now - (input.timelineDays ?? 30) * unitMs.d),
  };
}

function timeline(
  complete: readonly { snapshotId: string; finishedAt: string }[],
  failed: readonly string[],
  records: readonly DrillRecord[],
  from: number,
): TimelineEvent[] {
  const events: TimelineEvent[] = [
    ...complete.map((m) => ({ at: m.finishedAt, kind: "snapshot" as const, id: m.snapshotId })),
    ...failed.flatMap((id) => {
      const t = snapshotTime(id);
      return Number.isNaN(t.getTime()) ? [] : [{ at: t.toISOString(), kind: "failed-backup" as const, id }];
    }),
    ...records.map((r) => ({
      at: r.finishedAt,
      kind: r.verdict === "pass" ? ("drill-pass" as const) : ("drill-fail" as const),
      id: r.runId,
      drill: r.drill,
    })),
  ];
  return events.filter((e) => Date.parse(e.at) >= from).sort((a, b) => a.at.localeCompare(b.at));
}
