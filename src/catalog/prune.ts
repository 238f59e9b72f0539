import { getJob, type LoadedConfig } from "../config/load.ts";
import type { Retention } from "../config/schema.ts";
import { ConfigError, code, LifeboatError, messageOf, NotFoundError } from "../errors.ts";
import { planRetention, type RetentionPlan, type RetentionSnapshot } from "../safety/retention.ts";
import { MANIFEST, snapshotPrefix, tombstoneKey } from "../storage/layout.ts";
import { credentialFor, openTargetAs, type Role } from "../storage/roles.ts";
import { listAll, type Target } from "../storage/target.ts";
import { currentVerdicts, listDrillRecords } from "./drill-record.ts";
import { isSnapshotId, snapshotTime } from "./snapshot-id.ts";
import { listSnapshots } from "./snapshots.ts";
import { listTombstones, readTombstone, removeTombstone, writeTombstone } from "./tombstones.ts";

export { listTombstones, type Tombstone } from "./tombstones.ts";

/** Options for pruneJob. */
export interface PruneOptions {
  /** Plan and report only; nothing is written or deleted. */
  dryRun?: boolean;
  /** The clock: when "now" is (tests and the daemon fix it). Default: the current time. */
  now?: Date;
  /** Prune only this target of the job (default: every target of the job). */
  target?: string;
  /** Builds targets; tests substitute their own. Default: the target opened with the role's credential. */
  makeTarget?: (name: string, role: Role) => Target;
}

/** What pruning did (or, in a dry run, would do) on one target. */
export interface TargetPrune {
  target: string;
  role: "pruner";
  /** Which credential the pruner used ("roles.pruner", "credentials", "default chain", "local user"). */
  credentials: string;
  plan?: RetentionPlan;
  /** Snapshot ids changed by this run (empty in a dry run). */
  applied: { marked: string[]; unmarked: string[]; deleted: string[]; tombstonesRemoved: string[] };
  /** Everything that went wrong; the rest of the plan was still carried out. */
  errors: string[];
  ok: boolean;
}

/** The outcome of pruning one job. */
export interface PruneResult {
  job: string;
  dryRun: boolean;
  now: string;
  policy?: Retention;
  /** Set when nothing was planned at all, with the reason (no retention policy). */
  skipped?: string;
  /** Snapshot ids that passed a drill, on any of the job's targets. */
  proven: string[];
  targets: TargetPrune[];
  ok: boolean;
}

/**
 * Applies a job's retention policy on its targets with the pruner credential: plans (src/safety/retention.ts), then
 * marks snapshots with tombstones, deletes those marked longer than the grace period (manifest first, so the snapshot
 * stops being complete before its data goes, then its other objects, then the tombstone), and removes marks from
 * snapshots kept again. Drill evidence is read from every target of the job, and if any of it cannot be read nothing
 * is pruned: the newest proven snapshot must be known before anything is deleted. A job without `retention` is
 * skipped. Rejects only for bad usage (unknown job or target, bad time zone); target failures are in the result.
 */
export async function pruneJob(loaded: LoadedConfig, jobName: string, opts: PruneOptions = {}): Promise<PruneResult> {
  const job = getJob(loaded, jobName);
  const now = opts.now ?? new Date();
  const dryRun = opts.dryRun ?? false;
  const base = { job: job.name, dryRun, now: now.toISOString(), proven: [] as string[] };
  if (!job.retention) {
    return { ...base, skipped: `job "${job.name}" declares no retention policy; nothing is pruned`, targets: [], ok: true };
  }
  const policy = job.retention;
  if (opts.target !== undefined && !job.targets.includes(opts.target)) {
    throw new ConfigError(`job "${job.name}" does not ship to target "${opts.target}"`, { hint: `use one of: ${job.targets.join(", ")}` });
  }
  const make =
    opts.makeTarget ??
    ((name: string, role: Role) => {
      const cfg = loaded.config.targets[name];
      if (!cfg) throw new ConfigError(`target "${name}" is not declared`);
      return openTargetAs(name, cfg, role);
    });
  const targets = job.targets.map((name) => ({ name, target: make(name, "pruner") }));
  try {
    const results: TargetPrune[] = targets
      .filter((t) => opts.target === undefined || t.name === opts.target)
      .map((t) => {
        const cfg = loaded.config.targets[t.name];
        return {
          target: t.name,
          role: "pruner",
          credentials: cfg ? credentialFor(cfg, "pruner").label : "custom",
          applied: { marked: [], unmarked: [], deleted: [], tombstonesRemoved: [] },
          errors: [],
          ok: false,
        };
      });
    const proven = new Set<string>();
    // A snapshot whose last drill on some target failed is not proven, whatever passed before: keep an older one too.
    const disproven = new Set<string>();
    const unreadable: string[] = [];
    for (const t of targets) {
      try {
        const { records, broken } = await listDrillRecords(t.target, job.name);
        for (const [id, verdict] of currentVerdicts(records)) (verdict === "pass" ? proven : disproven).add(id);
        // A record that cannot be read may be the one that proves a snapshot: pruning without it could delete it.
        for (const b of broken)
          unreadable.push(`drill record ${b.key} on target "${t.name}" cannot be read (${b.error}); move it aside or delete it`);
      } catch (err) {
        unreadable.push(`cannot read drill records on target "${t.name}": ${messageOf(err)}`);
      }
    }
    for (const id of disproven) proven.delete(id);
    if (unreadable.length) {
      for (const r of results) r.errors.push(...unreadable, "nothing pruned: the newest proven snapshot is not known");
      return { ...base, policy, proven: [...proven].sort(), targets: results, ok: false };
    }
    for (const r of results) {
      const target = targets.find((t) => t.name === r.target)?.target as Target;
      try {
        r.plan = await planFor(target, job.name, policy, proven, now);
        if (!dryRun) await apply(target, job.name, policy, r, now);
      } catch (err) {
        if (err instanceof ConfigError) throw err; // a bad time zone is the user's to fix, not a target's failure
        r.errors.push(messageOf(err));
      }
      r.ok = r.plan !== undefined && r.errors.length === 0;
    }
    return { ...base, policy, proven: [...proven].sort(), targets: results, ok: results.every((r) => r.ok) };
  } finally {
    await Promise.allSettled(targets.map((t) => t.target.close?.()));
  }
}

/** Reads what one target holds for the job and plans its retention. */
async function planFor(target: Target, job: string, policy: Retention, proven: Set<string>, now: Date): Promise<RetentionPlan> {
  const [listing, tombstones] = await Promise.all([listSnapshots(target, job), listTombstones(target, job)]);
  const snapshots: RetentionSnapshot[] = [
    ...listing.complete.map((m) => ({
      id: m.snapshotId,
      time: new Date(m.startedAt),
      state: "complete" as const,
      lockedUntil: m.lock ? new Date(m.lock.retainUntil) : undefined,
    })),
    ...listing.incomplete.map((id) => ({ id, time: snapshotTime(id), state: "incomplete" as const })),
    ...listing.broken.map((b) => ({ id: b.snapshotId, time: snapshotTime(b.snapshotId), state: "broken" as const })),
    // Directories that are not lifeboat snapshot ids are not lifeboat's to judge; they are left alone.
  ].filter((s) => isSnapshotId(s.id) && !Number.isNaN(s.time.getTime()));
  return planRetention({
    policy,
    snapshots,
    proven,
    tombstones: tombstones.map((t) => ({ snapshotId: t.snapshotId, markedAt: new Date(t.markedAt), graceDays: t.graceDays })),
    now,
  });
}

/** Carries out a plan on one target, one snapshot at a time; a failure is recorded and the rest goes on. */
async function apply(target: Target, job: string, policy: Retention, r: TargetPrune, now: Date): Promise<void> {
  const plan = r.plan as RetentionPlan;
  const attempt = async (id: string, what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      r.errors.push(`${what} ${id}: ${messageOf(err)}`);
    }
  };
  for (const d of plan.decisions) {
    const id = d.snapshotId;
    if (d.action === "mark") {
      await attempt(id, "mark", async () => {
        await writeTombstone(target, { job, snapshotId: id, markedAt: now.toISOString(), graceDays: policy.graceDays, reasons: d.reasons });
        r.applied.marked.push(id);
      });
    } else if (d.action === "unmark") {
      await attempt(id, "unmark", async () => {
        await removeTombstone(target, job, id);
        r.applied.unmarked.push(id);
      });
    } else if (d.action === "delete") {
      await attempt(id, "delete", async () => {
        if (await deleteSnapshot(target, job, id)) r.applied.deleted.push(id);
      });
    }
  }
  for (const id of plan.orphanTombstones) {
    await attempt(id, "remove tombstone of", async () => {
      await removeTombstone(target, job, id);
      r.applied.tombstonesRemoved.push(id);
    });
  }
}

/**
 * Deletes one marked snapshot: manifest first (from then on it is incomplete, never restored as good), then every
 * other object, then the tombstone. Returns false, deleting nothing, when the mark was removed since the plan was
 * made (an undelete wins). A deletion that stops half-way leaves an incomplete snapshot with its tombstone, which the
 * next prune finishes.
 */
async function deleteSnapshot(target: Target, job: string, id: string): Promise<boolean> {
  if (!(await target.head(tombstoneKey(job, id)))) return false;
  const prefix = snapshotPrefix(job, id);
  const objects = await listAll(target, prefix);
  const manifest = objects.find((o) => o.key === `${prefix}${MANIFEST}`);
  if (manifest) await target.remove(manifest.key);
  for (const o of objects) if (o !== manifest) await target.remove(o.key);
  const left = await listAll(target, prefix);
  if (left.length > 0) {
    throw new LifeboatError(code.storage, `${left.length} object(s) remain after deleting (${left[0]?.key})`, {
      hint: "the pruner credential may lack delete permission on part of the prefix; the tombstone stays and the next prune retries",
    });
  }
  await removeTombstone(target, job, id);
  return true;
}

/** What undelete found and did on one target. */
export interface UndeleteOutcome {
  target: string;
  role: "pruner";
  credentials: string;
  /**
   * unmarked: the tombstone was removed; not-marked: there was none; gone: the snapshot is already deleted;
   * deleting: a prune deleted its manifest but not yet the rest (too late: the mark stays so the next prune finishes);
   * error.
   */
  status: "unmarked" | "not-marked" | "gone" | "deleting" | "error";
  /** When it had been marked (for unmarked). */
  markedAt?: string;
  error?: string;
}

/**
 * Takes back a pruning mark: removes the snapshot's tombstone on every target of the job (or the given one) with
 * the pruner credential, so the pending deletion does not happen. The next prune marks it again if the policy still
 * does not keep it (with a fresh grace period). Rejects with ConfigError for an unknown job or target.
 */
export async function undeleteSnapshot(
  loaded: LoadedConfig,
  jobName: string,
  snapshotId: string,
  opts: Pick<PruneOptions, "target" | "makeTarget"> = {},
): Promise<UndeleteOutcome[]> {
  const job = getJob(loaded, jobName);
  if (opts.target !== undefined && !job.targets.includes(opts.target)) {
    throw new ConfigError(`job "${job.name}" does not ship to target "${opts.target}"`, { hint: `use one of: ${job.targets.join(", ")}` });
  }
  const out: UndeleteOutcome[] = [];
  for (const name of job.targets.filter((t) => opts.target === undefined || t === opts.target)) {
    const cfg = loaded.config.targets[name];
    const base = { target: name, role: "pruner" as const, credentials: cfg ? credentialFor(cfg, "pruner").label : "custom" };
    const target = opts.makeTarget ? opts.makeTarget(name, "pruner") : cfg ? openTargetAs(name, cfg, "pruner") : undefined;
    if (!target) continue;
    try {
      const mark = await readTombstone(target, job.name, snapshotId);
      // Prune deletes the manifest first: without it the snapshot is no longer complete, and removing the mark would
      // only leave its objects for the next prune to misread as a failed run.
      if (!(await target.head(`${snapshotPrefix(job.name, snapshotId)}${MANIFEST}`))) {
        out.push({ ...base, status: "deleting", markedAt: mark.markedAt });
        continue;
      }
      await removeTombstone(target, job.name, snapshotId);
      out.push({ ...base, status: "unmarked", markedAt: mark.markedAt });
    } catch (err) {
      if (!(err instanceof NotFoundError)) {
        out.push({ ...base, status: "error", error: messageOf(err) });
      } else {
        // No mark: either the snapshot is still there (nothing to undo) or it is already deleted (too late).
        const left = await listAll(target, snapshotPrefix(job.name, snapshotId)).then(
          (objects) => objects.length,
          (e: unknown) => e,
        );
        if (typeof left !== "number") out.push({ ...base, status: "error", error: messageOf(left) });
        else out.push({ ...base, status: left === 0 ? "gone" : "not-marked" });
      }
    } finally {
      await target.close?.();
    }
  }
  return out;
}
