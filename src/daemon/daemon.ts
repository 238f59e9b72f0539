import type { LoadedConfig } from "../config/load.ts";
import { messageOf } from "../errors.ts";
import { openTarget } from "../pipeline/job.ts";
import type { Target } from "../storage/target.ts";
import { type Clock, systemClock } from "./clock.ts";
import { type CronEngine, type CronHandle, nodeCronEngine, validateSchedules } from "./cron.ts";
import { startHttp } from "./http.ts";
import { createLogger, type Logger } from "./log.ts";
import { DaemonMetrics } from "./metrics.ts";
import { Notifier } from "./notify.ts";
import { ping } from "./ping.ts";
import { type RunSummary, Scheduler, type Task } from "./scheduler.ts";
import { buildTasks, drillTarget, makeRunner, RunError } from "./tasks.ts";
import { StatusWatch } from "./watch.ts";

/** What runDaemon needs; everything but loaded and signal has a production default. */
export interface DaemonOptions {
  loaded: LoadedConfig;
  /** age identities for drills. Without them drills are skipped (loudly) and backups still run. */
  identities?: readonly string[];
  /** Aborting it starts the shutdown (the CLI wires SIGTERM and SIGINT to it). */
  signal: AbortSignal;
  clock?: Clock;
  log?: Logger;
  cron?: CronEngine;
  /** For webhooks and pings. */
  fetch?: typeof fetch;
  makeTarget?: (loaded: LoadedConfig, name: string) => Target;
  /** Between periodic report checks. Default 5 minutes. */
  reportIntervalMs?: number;
  /** Overrides config.daemon.metrics (tests pick a free port). */
  metrics?: { host: string; port: number };
  /** Webhook retry backoff (default 2000 ms). */
  notifyBackoffMs?: number;
  /** Called once everything is started. */
  onReady?(info: DaemonHandle): void;
}

/** A running daemon, for onReady. */
export interface DaemonHandle {
  scheduler: Scheduler;
  metrics: DaemonMetrics;
  watch: StatusWatch;
  /** Where /metrics and /healthz are served, when on. */
  metricsUrl?: string;
}

/** How the daemon ended. */
export interface DaemonResult {
  /** Runs still going when the grace period ended, aborted (the CLI exits 1 when there are any). */
  aborted: string[];
  /** Aborted runs that did not stop within the wait after the abort. */
  stuck: string[];
}

/**
 * Runs lifeboat as a service until signal aborts: every job and drill on its cron schedule (daemon.timezone), never
 * two runs of one task at once, at most daemon.concurrency at once, retries with backoff, /metrics and /healthz,
 * webhooks on failures and on jobs turning stale or unproven, dead-man's-switch pings. The config is read once: a
 * change needs a restart (docs/DAEMON.md). Rejects with a ConfigError before starting anything when a schedule or
 * the time zone is invalid. Every resource it acquires is released in reverse order, also when startup fails.
 */
export async function runDaemon(opts: DaemonOptions): Promise<DaemonResult> {
  const { loaded } = opts;
  const d = loaded.config.daemon;
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? createLogger();
  const cron = opts.cron ?? nodeCronEngine(log);
  validateSchedules(loaded, cron);

  const releases: { what: string; release: () => Promise<void> | void }[] = [];
  const release = async () => {
    for (const r of releases.reverse()) {
      try {
        await r.release();
      } catch (err) {
        log.error("daemon.release-failed", { what: r.what, error: err });
      }
    }
  };
  try {
    const hasIdentity = (opts.identities?.length ?? 0) > 0;
    const tasks = buildTasks(loaded, hasIdentity);
    let scheduler: Scheduler | undefined;
    const metrics = new DaemonMetrics(() => scheduler?.inFlight ?? 0);
    const notifier = new Notifier({
      webhooks: loaded.config.notifications.webhooks,
      log,
      clock,
      fetch: opts.fetch,
      backoffMs: opts.notifyBackoffMs,
    });
    releases.push({ what: "notifications", release: () => notifier.drain(10_000) });
    const watch = new StatusWatch({
      loaded,
      clock,
      log,
      notifier,
      metrics,
      intervalMs: opts.reportIntervalMs ?? 5 * 60_000,
      // Reading the report needs no more than the reader credential (openTarget's default role).
      makeTarget: opts.makeTarget ?? ((l, name) => openTarget(l, name)),
    });
    scheduler = new Scheduler({
      tasks,
      run: makeRunner({ loaded, identities: opts.identities, metrics, clock, makeTarget: opts.makeTarget }),
      cron,
      clock,
      log,
      timezone: d.timezone,
      concurrency: d.concurrency,
      retry: { attempts: d.retry.attempts, backoffMs: d.retry.backoffSeconds * 1000 },
      hooks: {
        onStart: (task) => startPing(loaded, task, log, opts.fetch),
        onFinish: async (s) => {
          await finished(s, { loaded, metrics, notifier, log, fetch: opts.fetch });
          watch.poke();
        },
        onSkip: (task, reason) => metrics.skipped.inc({ kind: task.kind, name: task.name, reason }),
      },
    });
    const sched = scheduler;

    const endpoint = opts.metrics ?? d.metrics;
    let metricsUrl: string | undefined;
    if (endpoint.port !== 0) {
      const http = await startHttp({ ...endpoint, metrics, healthy: () => sched.state === "running", log, configFile: loaded.file });
      metricsUrl = http.url;
      releases.push({ what: "metrics endpoint", release: () => http.close() });
    }

    log.info("daemon.started", {
      jobs: tasks.filter((t) => t.kind === "job" && t.schedule).map((t) => `${t.name} (${t.schedule})`),
      drills: tasks.filter((t) => t.kind === "drill" && t.schedule).map((t) => `${t.name} (${t.schedule})`),
      unscheduled: tasks.filter((t) => !t.schedule).map((t) => t.key),
      timezone: d.timezone,
      concurrency: d.concurrency,
      metrics: metricsUrl ?? "off",
      webhooks: loaded.config.notifications.webhooks.length,
    });
    if (!tasks.some((t) => t.schedule)) log.warn("daemon.idle", { error: "no job or drill has a schedule: nothing will run" });
    const noIdentity = hasIdentity ? [] : skipDrillsLoudly(loaded, cron, d.timezone, log, metrics);
    releases.push({
      what: "drill reminders",
      release: () => {
        for (const h of noIdentity) h.stop();
      },
    });

    sched.start();
    log.info("daemon.schedule", { next: Object.fromEntries(sched.nextRuns().map((r) => [r.key, r.next?.toISOString()])) });
    watch.start();
    releases.push({ what: "report checks", release: () => watch.stop() });
    opts.onReady?.({ scheduler: sched, metrics, watch, metricsUrl });

    await new Promise<void>((resolve) => {
      if (opts.signal.aborted) resolve();
      else opts.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    log.info("daemon.stopping", { active: sched.active(), graceSeconds: d.shutdownGraceSeconds, reason: messageOf(opts.signal.reason) });
    // Health turns 503 here (state "stopping"); the scheduler drops waiting runs and gives in-flight ones the grace.
    const result = await sched.stop(d.shutdownGraceSeconds * 1000);
    await release();
    releases.length = 0;
    log.info("daemon.stopped", { aborted: result.aborted, clean: result.aborted.length === 0 });
    return result;
  } finally {
    await release();
  }
}

/** Drills without an identity cannot decrypt anything: at each of their scheduled times, say so loudly. */
function skipDrillsLoudly(loaded: LoadedConfig, cron: CronEngine, tz: string, log: Logger, metrics: DaemonMetrics): CronHandle[] {
  const drills = [...loaded.drills.values()];
  if (drills.length === 0) return [];
  const hint = "start the daemon with --identity FILE or LIFEBOAT_IDENTITY_FILE; jobs will turn unproven without drills";
  log.warn("daemon.no-identity", { drills: drills.map((x) => x.name), error: "no age identity given: restore drills will NOT run", hint });
  return drills
    .filter((x) => x.schedule)
    .map((x) =>
      cron.schedule(
        x.schedule as string,
        tz,
        () => {
          log.warn("run.skipped", { drill: x.name, reason: "no-identity", hint });
          metrics.skipped.inc({ kind: "drill", name: x.name, reason: "no-identity" });
        },
        `drill:${x.name}:no-identity`,
      ),
    );
}

async function startPing(loaded: LoadedConfig, task: Task, log: Logger, fetchFn?: typeof fetch): Promise<void> {
  const url = task.kind === "job" ? loaded.jobs.get(task.name)?.ping : undefined;
  if (url) await ping(url, "start", { log: log.child({ job: task.name }), fetch: fetchFn });
}

/** After a run: metrics, the job's ping, and a notification for a failure. */
async function finished(
  s: RunSummary,
  ctx: { loaded: LoadedConfig; metrics: DaemonMetrics; notifier: Notifier; log: Logger; fetch?: typeof fetch },
): Promise<void> {
  const { task } = s;
  const { metrics, loaded } = ctx;
  const labels = { kind: task.kind, name: task.name, outcome: s.outcome };
  metrics.runs.inc(labels);
  metrics.duration.observe(labels, s.durationMs / 1000);
  const error = s.error === undefined ? undefined : messageOf(s.error);
  const targets =
    s.error instanceof RunError
      ? s.error.targets
      : task.kind === "job"
        ? [...(loaded.jobs.get(task.name)?.targets ?? [])]
        : [drillTarget(loaded, task.name)];
  if (s.outcome === "failed") for (const t of targets) metrics.failures.inc({ kind: task.kind, name: task.name, target: t });

  const pingUrl = task.kind === "job" ? loaded.jobs.get(task.name)?.ping : undefined;
  const log = ctx.log.child({ [task.kind]: task.name, runId: s.runId });
  const pinging = pingUrl
    ? ping(pingUrl, s.outcome === "ok" ? "success" : "fail", {
        log,
        fetch: ctx.fetch,
        message: s.outcome === "ok" ? "" : `${s.outcome}: ${error ?? ""}`,
      })
    : Promise.resolve();
  if (s.outcome !== "failed") {
    if (s.outcome === "aborted") log.warn("run.aborted-by-shutdown", { durationMs: s.durationMs });
    await pinging;
    return;
  }
  const job = task.kind === "job" ? task.name : (loaded.drills.get(task.name)?.job ?? "");
  const what = task.kind === "job" ? `backup of job ${task.name}` : `restore drill ${task.name} (job ${job})`;
  await Promise.all([
    pinging,
    ctx.notifier.send({
      event: task.kind === "job" ? "backup.failed" : "drill.failed",
      severity: "error",
      job,
      ...(task.kind === "drill" ? { drill: task.name } : {}),
      targets,
      runId: s.runId,
      attempts: s.attempts,
      error,
      text: `:x: lifeboat: ${what} failed after ${s.attempts} attempt${s.attempts === 1 ? "" : "s"}: ${error ?? "unknown error"}`,
    }),
  ]);
}
