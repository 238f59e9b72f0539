import { type Logger as CronLogger, createTask, validateDetailed } from "node-cron";
import type { LoadedConfig } from "../config/load.ts";
import { isTimeZone, TIME_ZONE_HINT } from "../config/timezone.ts";
import { ConfigError } from "../errors.ts";
import type { Logger } from "./log.ts";

/** A running cron trigger. */
export interface CronHandle {
  /** Stops the trigger for good; idempotent. */
  stop(): void;
  /** The next time it fires, or undefined when stopped. */
  nextRun(): Date | undefined;
}

/**
 * The narrow face of a cron library: check an expression, and call a function at the times it names. The Scheduler
 * sees only this, so tests drive it with a hand-fired fake instead of waiting for wall-clock time.
 */
export interface CronEngine {
  /** Why the expression is invalid, or undefined when it is valid. */
  check(expression: string): string | undefined;
  /** Starts calling onTick at the expression's times in the time zone. onTick must return quickly. */
  schedule(expression: string, timezone: string, onTick: () => void, name: string): CronHandle;
}

/** node-cron 4 behind CronEngine: 5 fields (minute first) or 6 (seconds first), with IANA time zones. */
export function nodeCronEngine(log?: Logger): CronEngine {
  // node-cron warns on its own (e.g. "missed execution" after a blocked event loop); route that into our log.
  const logger: CronLogger = {
    info: (m) => log?.debug("cron.info", { message: m }),
    warn: (m) => log?.warn("cron.warning", { message: m }),
    error: (m, e) => log?.error("cron.error", { error: e ?? m }),
    debug: () => {},
  };
  return {
    check(expression) {
      const r = validateDetailed(expression);
      return r.valid ? undefined : r.errors.map((e) => (e.field === "expression" ? e.message : `${e.field}: ${e.message}`)).join("; ");
    },
    schedule(expression, timezone, onTick, name) {
      const task = createTask(expression, () => onTick(), { timezone, name, logger });
      void task.start();
      let stopped = false;
      return {
        stop() {
          if (stopped) return;
          stopped = true;
          void task.destroy();
        },
        nextRun: () => (stopped ? undefined : (task.getNextRun() ?? undefined)),
      };
    },
  };
}

/**
 * Checks daemon.timezone and every job's and drill's schedule before anything starts, so a typo is a config error
 * (exit 2) naming the file and the field rather than a job that silently never runs.
 */
export function validateSchedules(loaded: LoadedConfig, engine: CronEngine): void {
  const problems: string[] = [];
  const hints: string[] = [];
  const tz = loaded.config.daemon.timezone;
  if (!isTimeZone(tz)) {
    problems.push(`${loaded.file}: daemon.timezone: "${tz}" is not an IANA time zone (e.g. "UTC", "Europe/Berlin")`);
    hints.push(`daemon.timezone: ${TIME_ZONE_HINT}`);
  }
  const items = [...loaded.jobs.values(), ...loaded.drills.values()];
  let badSchedule = false;
  for (const item of items) {
    if (item.schedule === undefined) continue;
    const why = engine.check(item.schedule);
    if (why) problems.push(`${item.file}: schedule: "${item.schedule}" is not a valid cron expression (${why})`);
    badSchedule ||= why !== undefined;
  }
  if (badSchedule)
    hints.push('schedule: use 5 fields "minute hour day-of-month month day-of-week" (e.g. "0 */6 * * *"), or 6 with seconds first');
  if (problems.length) throw new ConfigError(problems.join("\n"), { hint: hints.join("; ") });
}
