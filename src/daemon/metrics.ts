import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Report } from "../catalog/report.ts";

/**
 * The daemon's Prometheus metrics, in a Registry of its own (never prom-client's global one, so two daemons in one
 * process, or a host application's own metrics, do not collide). Names are listed in docs/DAEMON.md.
 */
export class DaemonMetrics {
  /** The registry /metrics serves. */
  readonly registry = new Registry();
  /** Unix time of the newest complete snapshot per job and target: alert when time() - this > RPO. */
  readonly lastSuccess = new Gauge({
    name: "lifeboat_backup_last_success_timestamp_seconds",
    help: "Finish time of the newest complete snapshot, per job and target (Unix seconds)",
    labelNames: ["job", "target"],
    registers: [this.registry],
  });
  /** Stored (encrypted) size of the newest complete snapshot per job and target. */
  readonly storedBytes = new Gauge({
    name: "lifeboat_backup_stored_bytes",
    help: "Stored size of the newest complete snapshot, per job and target (bytes)",
    labelNames: ["job", "target"],
    registers: [this.registry],
  });
  /** Unix time of the newest passing drill per job and target. */
  readonly lastDrillPass = new Gauge({
    name: "lifeboat_drill_last_pass_timestamp_seconds",
    help: "Finish time of the newest passing restore drill, per job and target (Unix seconds)",
    labelNames: ["job", "target"],
    registers: [this.registry],
  });
  /** Measured recovery time (fetch + restore) of the newest passing drill. */
  readonly rto = new Gauge({
    name: "lifeboat_drill_rto_seconds",
    help: "Measured restore time (fetch + restore) of the newest passing drill, per job and target",
    labelNames: ["job", "target"],
    registers: [this.registry],
  });
  /** Runs (all attempts together) by outcome. */
  readonly runs = new Counter({
    name: "lifeboat_runs_total",
    help: "Finished runs by kind (job or drill), name and outcome (ok, failed, aborted)",
    labelNames: ["kind", "name", "outcome"],
    registers: [this.registry],
  });
  /** Failed runs per job (or drill) and target, after retries. */
  readonly failures = new Counter({
    name: "lifeboat_run_failures_total",
    help: "Runs that failed after all retries, per kind, name and target",
    labelNames: ["kind", "name", "target"],
    registers: [this.registry],
  });
  /** Triggers not acted on. */
  readonly skipped = new Counter({
    name: "lifeboat_runs_skipped_total",
    help: "Scheduled runs skipped: overlap (previous run still going), stopping, no-identity (drills without --identity)",
    labelNames: ["kind", "name", "reason"],
    registers: [this.registry],
  });
  /** How long runs take, retries included. */
  readonly duration = new Histogram({
    name: "lifeboat_run_duration_seconds",
    help: "Duration of runs, retries included, by kind, name and outcome",
    labelNames: ["kind", "name", "outcome"],
    buckets: [1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400, 43200],
    registers: [this.registry],
  });
  /** 1 for the status each job copy has in the last report, 0 for the others. */
  readonly status = new Gauge({
    name: "lifeboat_job_status",
    help: "1 for the current status (ok, stale, unproven, failing, never) of each job and target, 0 otherwise",
    labelNames: ["job", "target", "status"],
    registers: [this.registry],
  });
  /** When the report was last read from the targets. */
  readonly lastReport = new Gauge({
    name: "lifeboat_report_last_check_timestamp_seconds",
    help: "When the daemon last read the targets to compute the report (Unix seconds)",
    registers: [this.registry],
  });

  /** inFlight is read at scrape time. */
  constructor(inFlight: () => number = () => 0) {
    new Gauge({
      name: "lifeboat_runs_in_flight",
      help: "Runs holding a concurrency slot right now",
      registers: [this.registry],
      collect() {
        this.set(inFlight());
      },
    });
    collectDefaultMetrics({ register: this.registry });
  }

  /** Sets the per-target gauges from a report: what the targets say, so values survive daemon restarts. */
  applyReport(report: Report): void {
    this.lastReport.set(Date.parse(report.generatedAt) / 1000);
    for (const row of report.rows) {
      const l = { job: row.job, target: row.target };
      if (row.newest) {
        this.lastSuccess.set(l, Date.parse(row.newest.finishedAt) / 1000);
        this.storedBytes.set(l, row.newest.storedBytes);
      }
      if (row.drill) {
        this.lastDrillPass.set(l, Date.parse(row.drill.finishedAt) / 1000);
        this.rto.set(l, row.drill.rtoMs / 1000);
      }
      for (const s of ["ok", "stale", "unproven", "failing", "never"] as const)
        this.status.set({ ...l, status: s }, row.status === s ? 1 : 0);
    }
  }

  /** The exposition text for /metrics. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Content-Type of text(). */
  get contentType(): string {
    return this.registry.contentType;
  }
}
