import type { LoadedConfig } from "../config/load.ts";
import { messageOf } from "../errors.ts";
import { openTargetAs } from "../storage/roles.ts";
import type { Target } from "../storage/target.ts";
import { listDrillRecords } from "./drill-record.ts";
import { computeReport, type Report, type ReportDrill, type ReportJob, type TargetReading } from "./report.ts";
import { listSnapshots } from "./snapshots.ts";
import { listTombstones } from "./tombstones.ts";

/** Options for reading the report from the targets. */
export interface ReadReportOptions {
  /** The moment the report describes. Default: now. */
  now?: Date;
  /** Builds targets; tests and wrappers substitute their own. */
  makeTarget?: (loaded: LoadedConfig, name: string) => Target;
  /** Only these jobs (default: all). */
  jobs?: readonly string[];
  timelineDays?: number;
}

/** The jobs and drills of a config in the shape computeReport takes. */
export function reportSubjects(loaded: LoadedConfig, only?: readonly string[]): { jobs: ReportJob[]; drills: ReportDrill[] } {
  const jobs = [...loaded.jobs.values()]
    .filter((j) => !only || only.includes(j.name))
    .map((j) => ({ name: j.name, targets: j.targets, ...(j.rpo ? { rpo: j.rpo } : {}) }));
  const drills = [...loaded.drills.values()].map((d) => ({
    name: d.name,
    job: d.job,
    target: d.from ?? (loaded.jobs.get(d.job)?.targets[0] as string),
    maxAge: d.maxAge,
  }));
  return { jobs, drills };
}

/** Opens a target with the reader credential: the report only lists and reads. */
function openForReading(loaded: LoadedConfig, name: string): Target {
  const cfg = loaded.config.targets[name];
  if (!cfg) throw new Error(`target "${name}" is not declared`);
  return openTargetAs(name, cfg, "reader");
}

/** Reads one job's snapshots and drill records from one target; a failure is returned, not thrown. */
export async function readTarget(target: Target, job: string): Promise<TargetReading> {
  try {
    const [listing, drills, tombstones] = await Promise.all([
      listSnapshots(target, job),
      listDrillRecords(target, job),
      listTombstones(target, job),
    ]);
    const pending = tombstones.map((t) => ({ snapshotId: t.snapshotId, deleteAfter: t.deleteAfter }));
    return { job, target: target.name, listing, records: drills.records, brokenRecords: drills.broken, pending };
  } catch (err) {
    return { job, target: target.name, error: messageOf(err) };
  }
}

/**
 * Reads every job's listing and drill records from every target (nothing local) and computes the report. A target
 * that cannot be read makes its rows "failing" with the reason, never a thrown error: the report must still appear.
 */
export async function readReport(loaded: LoadedConfig, opts: ReadReportOptions = {}): Promise<Report> {
  const { jobs, drills } = reportSubjects(loaded, opts.jobs);
  const make = opts.makeTarget ?? openForReading;
  const names = [...new Set(jobs.flatMap((j) => j.targets))];
  const targets = new Map<string, Target>();
  const readings: TargetReading[] = [];
  try {
    for (const n of names) {
      try {
        targets.set(n, make(loaded, n));
      } catch (err) {
        for (const j of jobs.filter((j) => j.targets.includes(n))) readings.push({ job: j.name, target: n, error: messageOf(err) });
      }
    }
    const pairs = jobs.flatMap((j) => j.targets.filter((t) => targets.has(t)).map((t) => [j.name, t] as const));
    // A few at a time: each reading already batches its own requests.
    for (let i = 0; i < pairs.length; i += 4) {
      const batch = pairs.slice(i, i + 4);
      readings.push(...(await Promise.all(batch.map(([job, t]) => readTarget(targets.get(t) as Target, job)))));
    }
  } finally {
    await Promise.allSettled([...targets.values()].map((t) => t.close?.()));
  }
  return computeReport({ jobs, drills, readings, now: opts.now ?? new Date(), timelineDays: opts.timelineDays });
}
