import { randomBytes } from "node:crypto";
import { code, LifeboatError } from "../errors.ts";
import type { Clock } from "./clock.ts";
import type { CronEngine, CronHandle } from "./cron.ts";
import type { Logger } from "./log.ts";
import { Slots } from "./slots.ts";

/** Something the daemon runs on a schedule: a backup job or a restore drill. */
export interface Task {
  /** Unique among tasks: "job:<name>" or "drill:<name>". */
  key: string;
  kind: "job" | "drill";
  name: string;
  /** Cron expression; a task without one runs only when triggered by hand. */
  schedule?: string;
}

/** What one attempt of a run gets. */
export interface RunContext {
  runId: string;
  /** 1 for the first try, 2 for the first retry, … */
  attempt: number;
  /** Aborts when shutdown's grace period is over: stop and clean up (multipart uploads, scratch databases). */
  signal: AbortSignal;
  log: Logger;
}

/** One attempt; resolves on success, rejects on failure (see isRetryable for which failures are tried again). */
export type RunFn = (task: Task, ctx: RunContext) => Promise<void>;

/** How a run (all its attempts) ended. cancelled: it never started, or a retry was dropped, because of shutdown. */
export type Outcome = "ok" | "failed" | "aborted" | "cancelled";

/** The end of one run, for hooks (pings, notifications, metrics). */
export interface RunSummary {
  task: Task;
  runId: string;
  outcome: Outcome;
  attempts: number;
  /** The last attempt's error, when it did not succeed. */
  error?: unknown;
  startedAt: Date;
  durationMs: number;
}

/** What the scheduler tells its owner. Hooks may be async; their errors are logged and otherwise ignored. */
export interface SchedulerHooks {
  /** Before the first attempt, once a slot is held (awaited, so a "start" ping precedes the outcome's ping). */
  onStart?(task: Task, runId: string): void | Promise<void>;
  /** After the run ended, whatever the outcome. Not awaited by the run; stop() waits for it. */
  onFinish?(summary: RunSummary): void | Promise<void>;
  /** A trigger that was not acted on: the previous run of the task is still going, or the scheduler is stopping. */
  onSkip?(task: Task, reason: "overlap" | "stopping"): void;
}

/** Scheduler settings; the daemon fills them from config.daemon. */
export interface SchedulerOptions {
  tasks: readonly Task[];
  run: RunFn;
  cron: CronEngine;
  clock: Clock;
  log: Logger;
  timezone: string;
  /** Most runs at once. */
  concurrency: number;
  /** Retries after a failed attempt, waiting backoffMs, then twice that, and so on. */
  retry: { attempts: number; backoffMs: number };
  hooks?: SchedulerHooks;
  /** Whether a failure is worth another attempt. Default: isRetryable. */
  retryable?: (err: unknown) => boolean;
  /** How long to wait for aborted runs to clean up before giving up on them. Default 30 s. */
  abortWaitMs?: number;
}

/** What stop() found. */
export interface StopResult {
  /** Keys of runs that were still going when the grace period ended and were aborted. */
  aborted: string[];
  /** Keys of aborted runs that did not settle within abortWaitMs (they ignored the signal). */
  stuck: string[];
}

/**
 * Whether another attempt might succeed: not for config, usage, refusals, wrong keys or aborts (the same again would
 * fail the same way), nor for errors marked `retryable: false` (a drill whose checks failed is evidence, not a blip).
 */
export function isRetryable(err: unknown): boolean {
  if ((err as { retryable?: unknown } | null)?.retryable === false) return false;
  if (err instanceof LifeboatError) {
    return !([code.config, code.usage, code.refused, code.crypto, code.aborted] as string[]).includes(err.code);
  }
  return true;
}

interface Active {
  runId: string;
  done: Promise<Outcome>;
  /** Set once the first attempt holds a slot. */
  started: boolean;
}

/**
 * Runs tasks on their cron schedules: never two runs of one task at once (a trigger during a run is skipped and
 * logged), at most `concurrency` runs at once (the rest wait in order), failed attempts retried with exponential
 * backoff, and a stop that lets runs finish within a grace period before aborting them through their AbortSignal.
 * Everything time-related goes through the injected Clock and CronEngine, so tests need no real waiting.
 */
export class Scheduler {
  readonly #opts: SchedulerOptions;
  readonly #tasks = new Map<string, Task>();
  readonly #active = new Map<string, Active>();
  readonly #slots: Slots;
  readonly #handles: CronHandle[] = [];
  /** Fires at shutdown: no new runs, waiting runs and backoffs are dropped. */
  readonly #stopping = new AbortController();
  /** Fires when the grace period is over: in-flight attempts abort. */
  readonly #abort = new AbortController();
  readonly #tails = new Set<Promise<void>>();
  #state: "new" | "running" | "stopping" | "stopped" = "new";

  constructor(opts: SchedulerOptions) {
    this.#opts = opts;
    for (const t of opts.tasks) {
      if (this.#tasks.has(t.key)) throw new Error(`scheduler: task "${t.key}" declared twice`);
      this.#tasks.set(t.key, t);
    }
    this.#slots = new Slots(opts.concurrency);
  }

  /** "running" between start() and stop(): what /healthz reports. */
  get state(): "new" | "running" | "stopping" | "stopped" {
    return this.#state;
  }

  /** Keys of runs in progress (holding a slot, waiting for one, or between retries). */
  active(): string[] {
    return [...this.#active.keys()];
  }

  /** Runs holding a slot right now. */
  get inFlight(): number {
    return this.#slots.held;
  }

  /** The next scheduled time of each scheduled task. */
  nextRuns(): { key: string; next?: Date }[] {
    return [...this.#tasks.values()].filter((t) => t.schedule).map((t, i) => ({ key: t.key, next: this.#handles[i]?.nextRun() }));
  }

  /** Starts every task's cron trigger. */
  start(): void {
    if (this.#state !== "new") throw new Error(`scheduler: start() in state ${this.#state}`);
    this.#state = "running";
    for (const t of this.#tasks.values()) {
      if (!t.schedule) continue;
      this.#handles.push(this.#opts.cron.schedule(t.schedule, this.#opts.timezone, () => this.trigger(t.key), t.key));
    }
  }

  /**
   * Starts a run of the task now, unless one is already going ("overlap") or the scheduler is not running
   * ("stopping"); both are logged and reported to onSkip. What the cron triggers call; tests and tools call it too.
   */
  trigger(key: string): "started" | "overlap" | "stopping" {
    const task = this.#tasks.get(key);
    if (!task) throw new Error(`scheduler: no task "${key}"`);
    if (this.#state !== "running") return this.#skip(task, "stopping");
    if (this.#active.has(key)) return this.#skip(task, "overlap");
    const runId = randomBytes(4).toString("hex");
    const entry: Active = { runId, started: false, done: Promise.resolve("cancelled") };
    this.#active.set(key, entry);
    entry.done = this.#execute(task, entry).finally(() => this.#active.delete(key));
    return "started";
  }

  /** Resolves when no run is active (for tests and tools; runs triggered meanwhile are waited for too). */
  async idle(): Promise<void> {
    while (this.#active.size) await Promise.allSettled([...this.#active.values()].map((a) => a.done));
    await Promise.allSettled([...this.#tails]);
  }

  /**
   * Stops: no new runs, waiting runs and pending retries dropped, in-flight runs given graceMs to finish, then
   * aborted through their signal and given abortWaitMs to clean up. Safe to call twice (the second waits too).
   */
  async stop(graceMs: number): Promise<StopResult> {
    if (this.#state === "stopping" || this.#state === "stopped") {
      await this.idle();
      return { aborted: [], stuck: [] };
    }
    this.#state = "stopping";
    for (const h of this.#handles) h.stop();
    this.#stopping.abort(new LifeboatError(code.aborted, "daemon is shutting down"));
    const { clock, log } = this.#opts;
    const running = () => [...this.#active.entries()];
    const settled = async (ms: number) => {
      const timer = new AbortController();
      const all = Promise.allSettled(running().map(([, a]) => a.done)).then(() => true);
      const late = clock.sleep(ms, timer.signal).then(() => false);
      const ok = await Promise.race([all, late]);
      timer.abort();
      return ok;
    };
    let aborted: string[] = [];
    let stuck: string[] = [];
    if (running().length && !(await settled(graceMs))) {
      aborted = running().map(([k]) => k);
      log.warn("daemon.abort", { runs: aborted, graceMs });
      this.#abort.abort(new LifeboatError(code.aborted, `shutdown grace period (${graceMs} ms) is over`));
      if (!(await settled(this.#opts.abortWaitMs ?? 30_000))) {
        stuck = running().map(([k]) => k);
        log.error("daemon.stuck", { runs: stuck, error: "runs did not stop after abort; their cleanup may be incomplete" });
      }
    }
    // Hooks (pings, webhooks) get a little longer; the timer is cancelled so it never holds the process open.
    const hooksTimer = new AbortController();
    await Promise.race([Promise.allSettled([...this.#tails]), clock.sleep(10_000, hooksTimer.signal)]);
    hooksTimer.abort();
    this.#state = "stopped";
    return { aborted, stuck };
  }

  #skip(task: Task, reason: "overlap" | "stopping"): "overlap" | "stopping" {
    const running = this.#active.get(task.key);
    this.#opts.log.warn("run.skipped", { [task.kind]: task.name, reason, runningRunId: running?.runId });
    this.#safe(() => this.#opts.hooks?.onSkip?.(task, reason));
    return reason;
  }

  async #execute(task: Task, entry: Active): Promise<Outcome> {
    const { clock, retry, hooks } = this.#opts;
    const log = this.#opts.log.child({ [task.kind]: task.name, runId: entry.runId });
    const retryable = this.#opts.retryable ?? isRetryable;
    const startedAt = clock.now();
    let attempt = 0;
    let outcome: Outcome = "cancelled";
    let error: unknown;
    while (true) {
      attempt++;
      if (!(await this.#slots.acquire(this.#stopping.signal))) {
        if (attempt === 1) log.info("run.cancelled", { reason: "shutdown while it waited for a slot" });
        break;
      }
      const t0 = clock.now().getTime();
      try {
        if (!entry.started) {
          entry.started = true;
          await this.#hook(log, () => hooks?.onStart?.(task, entry.runId));
        }
        // A stop that came while the start hook ran still means "no new runs": nothing has been touched yet.
        if (this.#stopping.signal.aborted) {
          log.info("run.cancelled", { reason: "shutdown before it started" });
          break;
        }
        log.info("run.started", { attempt });
        await this.#opts.run(task, { runId: entry.runId, attempt, signal: this.#abort.signal, log });
        outcome = "ok";
        log.info("run.finished", { attempt, durationMs: clock.now().getTime() - t0 });
      } catch (err) {
        error = err;
        outcome = this.#abort.signal.aborted ? "aborted" : "failed";
        log.error(outcome === "aborted" ? "run.aborted" : "run.failed", { attempt, durationMs: clock.now().getTime() - t0, error: err });
      } finally {
        this.#slots.release();
      }
      if (outcome !== "failed" || attempt > retry.attempts || !retryable(error) || this.#stopping.signal.aborted) break;
      const wait = retry.backoffMs * 2 ** (attempt - 1);
      log.info("run.retry", { attempt: attempt + 1, waitMs: wait });
      await clock.sleep(wait, this.#stopping.signal);
      if (this.#stopping.signal.aborted) break;
    }
    const summary: RunSummary = {
      task,
      runId: entry.runId,
      outcome,
      attempts: attempt,
      error,
      startedAt,
      durationMs: clock.now().getTime() - startedAt.getTime(),
    };
    // Hooks run after the task's key is free again, so a slow webhook never makes the next run look like an overlap.
    if (entry.started) {
      const tail = this.#hook(log, () => hooks?.onFinish?.(summary));
      this.#tails.add(tail);
      void tail.finally(() => this.#tails.delete(tail));
    }
    return outcome;
  }

  async #hook(log: Logger, fn: () => void | Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      log.error("hook.failed", { error: err });
    }
  }

  #safe(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#opts.log.error("hook.failed", { error: err });
    }
  }
}
