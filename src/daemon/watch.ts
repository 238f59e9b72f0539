import type { Report, ReportRow } from "../catalog/report.ts";
import { readReport } from "../catalog/report-read.ts";
import type { LoadedConfig } from "../config/load.ts";
import type { Target } from "../storage/target.ts";
import type { Clock } from "./clock.ts";
import type { Logger } from "./log.ts";
import type { DaemonMetrics } from "./metrics.ts";
import type { NotificationInput, Notifier } from "./notify.ts";

/** What the watch needs. */
export interface StatusWatchOptions {
  loaded: LoadedConfig;
  clock: Clock;
  log: Logger;
  notifier: Notifier;
  metrics: DaemonMetrics;
  /** Between periodic checks. */
  intervalMs: number;
  makeTarget?: (loaded: LoadedConfig, name: string) => Target;
}

/** What is remembered per job and target between checks. */
type Flags = { stale: boolean; unproven: boolean; ok: boolean };

/**
 * Reads the report from the targets every intervalMs and whenever poked (after each run), updates the per-target
 * gauges, and notifies when a job turns stale or unproven, and when it is ok again: on transitions only, so a job that
 * stays stale is announced once. The first check compares against "nothing known", so problems that exist when the
 * daemon starts are announced once at start.
 */
export class StatusWatch {
  readonly #o: StatusWatchOptions;
  readonly #known = new Map<string, Flags>();
  readonly #stop = new AbortController();
  #wake = new AbortController();
  #loop?: Promise<void>;
  #last?: Report;

  constructor(opts: StatusWatchOptions) {
    this.#o = opts;
  }

  /** The newest report, once the first check is done. */
  get last(): Report | undefined {
    return this.#last;
  }

  /** Starts the periodic checks (the first one at once). */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** Asks for a check soon (coalesced: a burst of pokes gives one check). */
  poke(): void {
    this.#wake.abort();
  }

  /** Stops checking; waits for a check in progress. */
  async stop(): Promise<void> {
    this.#stop.abort();
    this.#wake.abort();
    await this.#loop;
  }

  /** Reads the report once and acts on transitions; never rejects. */
  async check(): Promise<Report | undefined> {
    const { loaded, clock, log, metrics, makeTarget } = this.#o;
    const t0 = clock.now().getTime();
    let report: Report;
    try {
      report = await readReport(loaded, { now: clock.now(), makeTarget });
    } catch (err) {
      log.error("report.failed", { error: err });
      return undefined;
    }
    this.#last = report;
    metrics.applyReport(report);
    log.info("report.checked", { durationMs: clock.now().getTime() - t0, ok: report.ok, summary: report.summary });
    await Promise.all(this.#transitions(report).map((n) => this.#o.notifier.send(n)));
    return report;
  }

  async #run(): Promise<void> {
    while (!this.#stop.signal.aborted) {
      this.#wake = new AbortController();
      await this.check();
      if (this.#stop.signal.aborted) break;
      await this.#o.clock.sleep(this.#o.intervalMs, AbortSignal.any([this.#wake.signal, this.#stop.signal]));
    }
  }

  /** One notification per job and event, naming the targets, for conditions that turned on (or all cleared). */
  #transitions(report: Report): NotificationInput[] {
    const byJob = new Map<string, { stale: ReportRow[]; unproven: ReportRow[]; ok: ReportRow[] }>();
    for (const row of report.rows) {
      const key = `${row.job}\u0000${row.target}`;
      const before = this.#known.get(key);
      // Unproven means "has snapshots, but no drill proves them" (docs/DAEMON.md). Without a known snapshot there is
      // nothing to prove: the job is "never" (its failed backups are announced) or the target could not be read (the
      // report calls it failing), and "no drill declared" would send the reader looking in the wrong place.
      const unproven = !!row.problems.unproven && row.newest !== undefined;
      const now: Flags = { stale: !!row.problems.stale, unproven, ok: row.status === "ok" };
      this.#known.set(key, now);
      const entry = byJob.get(row.job) ?? { stale: [], unproven: [], ok: [] };
      byJob.set(row.job, entry);
      if (now.stale && !before?.stale) entry.stale.push(row);
      if (now.unproven && !before?.unproven) entry.unproven.push(row);
      if (now.ok && before && !before.ok) entry.ok.push(row);
    }
    const out: NotificationInput[] = [];
    for (const [job, e] of byJob) {
      const targets = (rows: ReportRow[]) => rows.map((r) => r.target);
      const reasons = (rows: ReportRow[], cond: "stale" | "unproven") =>
        rows.flatMap((r) => (r.problems[cond] ?? []).map((x) => `${r.target}: ${x}`));
      for (const cond of ["stale", "unproven"] as const) {
        const rows = e[cond];
        if (!rows.length) continue;
        out.push({
          event: `job.${cond}`,
          severity: "warning",
          job,
          targets: targets(rows),
          status: cond,
          reasons: reasons(rows, cond),
          text: `:warning: lifeboat: job ${job} is ${cond} on ${targets(rows).join(", ")}: ${reasons(rows, cond).join("; ")}`,
        });
      }
      if (e.ok.length)
        out.push({
          event: "job.ok",
          severity: "info",
          job,
          targets: targets(e.ok),
          status: "ok",
          text: `:white_check_mark: lifeboat: job ${job} is ok again on ${targets(e.ok).join(", ")}`,
        });
    }
    return out;
  }
}
