import type { Clock } from "../../src/daemon/clock.ts";
import type { CronEngine, CronHandle } from "../../src/daemon/cron.ts";
import { nodeCronEngine } from "../../src/daemon/cron.ts";
import { createLogger, type Logger } from "../../src/daemon/log.ts";

/** A clock whose sleeps wait until the test advances time. */
export class ManualClock implements Clock {
  t: number;
  readonly #sleeps: { until: number; ms: number; resolve: () => void }[] = [];
  constructor(start = Date.parse("2026-11-24T12:00:00Z")) {
    this.t = start;
  }
  now(): Date {
    return new Date(this.t);
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const entry = {
        until: this.t + ms,
        ms,
        resolve: () => {
          const i = this.#sleeps.indexOf(entry);
          if (i >= 0) this.#sleeps.splice(i, 1);
          resolve();
        },
      };
      this.#sleeps.push(entry);
      signal?.addEventListener("abort", entry.resolve, { once: true });
    });
  }
  /** Durations of the sleeps in progress. */
  get sleeping(): number[] {
    return this.#sleeps.map((s) => s.ms);
  }
  /** Moves time forward and wakes every sleep that is due. */
  advance(ms: number): void {
    this.t += ms;
    for (const s of [...this.#sleeps]) if (s.until <= this.t) s.resolve();
  }
}

/** A clock whose sleeps return at once and are recorded: retries and backoff without waiting. */
export class InstantClock implements Clock {
  readonly slept: number[] = [];
  t = Date.parse("2026-11-24T12:00:00Z");
  now(): Date {
    return new Date(this.t);
  }
  async sleep(ms: number): Promise<void> {
    this.slept.push(ms);
    this.t += ms;
  }
}

/** A cron engine the test fires by hand; expressions are checked by the real one. */
export class FakeCron implements CronEngine {
  readonly real = nodeCronEngine();
  readonly scheduled = new Map<string, { expression: string; timezone: string; onTick: () => void; stopped: boolean }>();
  check(expression: string): string | undefined {
    return this.real.check(expression);
  }
  schedule(expression: string, timezone: string, onTick: () => void, name: string): CronHandle {
    const entry = { expression, timezone, onTick, stopped: false };
    this.scheduled.set(name, entry);
    return {
      stop: () => {
        entry.stopped = true;
      },
      nextRun: () => undefined,
    };
  }
  fire(name: string): void {
    const e = this.scheduled.get(name);
    if (!e) throw new Error(`no cron "${name}"`);
    if (!e.stopped) e.onTick();
  }
}

/** A JSON logger that keeps its events for assertions. */
export function memoryLogger(): {
  log: Logger;
  events: Record<string, unknown>[];
  waitFor(pred: (e: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
} {
  const events: Record<string, unknown>[] = [];
  const log = createLogger({
    json: true,
    level: "debug",
    write: (line) => {
      events.push(JSON.parse(line) as Record<string, unknown>);
      if (process.env.LIFEBOAT_TEST_LOG) process.stderr.write(line);
    },
  });
  return {
    log,
    events,
    async waitFor(pred, ms = 30_000) {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        const hit = events.find(pred);
        if (hit) return hit;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`no matching log event within ${ms} ms; events: ${events.map((e) => e.event).join(", ")}`);
    },
  };
}

/** A promise with its resolve and reject. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets pending promise callbacks run. */
export const flush = () => new Promise((r) => setImmediate(r));
