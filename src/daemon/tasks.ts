import { pruneJob } from "../catalog/prune.ts";
import type { LoadedConfig } from "../config/load.ts";
import { runDrill } from "../drills/runner.ts";
import { code, LifeboatError, messageOf } from "../errors.ts";
import { backupJob } from "../pipeline/job.ts";
import type { Target } from "../storage/target.ts";
import type { Clock } from "./clock.ts";
import type { Logger } from "./log.ts";
import type { DaemonMetrics } from "./metrics.ts";
import type { RunFn, Task } from "./scheduler.ts";

/** A failed run's error, with the targets it failed on (for per-target failure metrics and notifications). */
export class RunError extends LifeboatError {
  /** Targets the run failed on. */
  readonly targets: string[];
  /** False for failures that repeat the same way when retried (a drill whose checks failed). */
  readonly retryable: boolean;
  constructor(
    errCode: LifeboatError["code"],
    message: string,
    opts: { targets: string[]; retryable?: boolean; hint?: string; cause?: unknown },
  ) {
    super(errCode, message, { hint: opts.hint, cause: opts.cause });
    this.name = "RunError";
    this.targets = opts.targets;
    this.retryable = opts.retryable ?? true;
  }
}

/**
 * Runs retention after a successful backup when config.daemon.prune is on (pruner credential). A failed prune is
 * logged, never fatal: the backup it follows succeeded, and keeping a snapshot too long harms nothing.
 */
async function pruneAfterBackup(loaded: LoadedConfig, job: string, now: Date, log: Logger): Promise<void> {
  try {
    const r = await pruneJob(loaded, job, { now });
    if (r.skipped) return;
    for (const t of r.targets) {
      const { marked, deleted } = t.applied;
      log.info("prune.applied", { job, target: t.target, marked: marked.length, deleted: deleted.length, ok: t.ok, errors: t.errors });
    }
  } catch (err) {
    log.warn("prune.failed", { job, error: messageOf(err) });
  }
}

/** The scheduler's tasks: every job and every drill (drills only with identities; see daemon.ts for the others). */
export function buildTasks(loaded: LoadedConfig, withDrills: boolean): Task[] {
  const jobs: Task[] = [...loaded.jobs.values()].map((j) => ({ key: `job:${j.name}`, kind: "job", name: j.name, schedule: j.schedule }));
  const drills: Task[] = withDrills
    ? [...loaded.drills.values()].map((d) => ({ key: `drill:${d.name}`, kind: "drill", name: d.name, schedule: d.schedule }))
    : [];
  return [...jobs, ...drills];
}

/** The target a drill restores from. */
export function drillTarget(loaded: LoadedConfig, drill: string): string {
  const d = loaded.drills.get(drill);
  const job = d && loaded.jobs.get(d.job);
  return d?.from ?? job?.targets[0] ?? "";
}

/** What the run function needs. */
export interface RunnerDeps {
  loaded: LoadedConfig;
  /** age identities for drills; drills are not scheduled without them. */
  identities?: readonly string[];
  metrics: DaemonMetrics;
  clock: Clock;
  makeTarget?: (loaded: LoadedConfig, name: string) => Target;
}

/**
 * The scheduler's RunFn: one attempt of a backup (backupJob, the same function `lifeboat backup` runs) or a drill
 * (runDrill). Resolves only when every target holds the snapshot, or the drill passed and its record is stored.
 */
export function makeRunner(deps: RunnerDeps): RunFn {
  const { loaded, metrics, clock } = deps;
  const now = () => clock.now();
  return async (task, { signal, log }) => {
    if (task.kind === "job") {
      let phase = "";
      const result = await backupJob(loaded, task.name, {
        signal,
        now,
        makeTarget: deps.makeTarget,
        onProgress: (p) => {
          if (p.phase === phase) return;
          phase = p.phase;
          log.debug("backup.phase", { phase });
        },
      }).catch((err: unknown) => {
        if (signal.aborted) throw err;
        const known = err instanceof LifeboatError ? err : undefined;
        throw new RunError(known?.code ?? code.failed, messageOf(err), {
          targets: loaded.jobs.get(task.name)?.targets ?? [],
          hint: known?.hint,
          cause: err,
        });
      });
      for (const t of result.targets) {
        if (!t.ok || !t.manifest) continue;
        metrics.lastSuccess.set({ job: task.name, target: t.target }, Date.parse(t.manifest.finishedAt) / 1000);
        metrics.storedBytes.set({ job: task.name, target: t.target }, result.storedBytes + t.manifest.inventory.size);
      }
      log.info("backup.snapshot", {
        snapshotId: result.snapshotId,
        rawBytes: result.rawBytes,
        storedBytes: result.storedBytes,
        durationMs: result.durationMs,
        ok: result.targets.filter((t) => t.ok).map((t) => t.target),
        failed: result.targets.filter((t) => !t.ok).map((t) => t.target),
      });
      if (!result.ok) {
        const failed = result.targets.filter((t) => !t.ok);
        throw new RunError(
          code.storage,
          `snapshot ${result.snapshotId} is missing on target(s) ${failed.map((t) => `${t.target} (${t.error})`).join(", ")}`,
          { targets: failed.map((t) => t.target) },
        );
      }
      if (loaded.config.daemon.prune) await pruneAfterBackup(loaded, task.name, clock.now(), log);
      return;
    }
    const identities = deps.identities;
    if (!identities?.length)
      throw new LifeboatError(code.usage, `drill "${task.name}": no age identity given`, { hint: "start the daemon with --identity FILE" });
    const target = drillTarget(loaded, task.name);
    const outcome = await runDrill({
      loaded,
      drill: task.name,
      identities,
      signal,
      now,
      makeTarget: deps.makeTarget,
      onPhase: (phase, detail) => log.debug("drill.phase", { phase, detail }),
    });
    const r = outcome.record;
    log.info("drill.record", {
      job: r.job,
      target: r.target,
      snapshotId: r.snapshotId,
      verdict: r.verdict,
      rtoMs: r.rtoMs,
      durationMs: r.timings.totalMs,
      failedChecks: r.checks.filter((c) => !c.ok).map((c) => `${c.kind}: ${c.name}`),
      error: r.error,
    });
    if (r.verdict !== "pass") {
      const failed = r.checks.filter((c) => !c.ok).map((c) => `${c.kind} "${c.name}"`);
      throw new RunError(
        code.failed,
        `drill "${r.drill}" failed on snapshot ${r.snapshotId}: ${r.error ?? `failed checks: ${failed.join(", ")}`}`,
        {
          targets: [target],
          // The record is stored evidence of a real failure; running it again would only repeat it.
          retryable: false,
        },
      );
    }
    metrics.lastDrillPass.set({ job: r.job, target: r.target }, Date.parse(r.finishedAt) / 1000);
    metrics.rto.set({ job: r.job, target: r.target }, r.rtoMs / 1000);
    if (outcome.recordError) throw new RunError(code.storage, outcome.recordError, { targets: [target] });
  };
}
