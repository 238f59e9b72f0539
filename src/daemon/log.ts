import { messageOf } from "../errors.ts";
import { redact } from "../secret.ts";

/** Severity of a log event. */
export type Level = "debug" | "info" | "warn" | "error";

/** Fields of one event. The named ones are the common vocabulary; anything else is allowed and printed too. */
export interface LogFields {
  job?: string;
  drill?: string;
  target?: string;
  runId?: string;
  phase?: string;
  attempt?: number;
  durationMs?: number;
  /** An Error or message; printed as its message, redacted. */
  error?: unknown;
  [field: string]: unknown;
}

/** One event per call: `log.info("run.finished", { job, durationMs })`. */
export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /** A logger that adds these fields to every event (e.g. job and runId for one run). */
  child(fields: LogFields): Logger;
}

/** Where and how a logger writes. */
export interface LoggerOptions {
  /** Receives one complete line (with newline). Default: process.stderr. */
  write?: (line: string) => void;
  /** JSON lines (for journald, Docker, log shippers) or readable text. Default: JSON unless stderr is a terminal. */
  json?: boolean;
  /** Events below this level are dropped. Default "info", or $LIFEBOAT_LOG_LEVEL. */
  level?: Level;
  now?: () => Date;
  /** Extra strings never to print (credentials known to the caller). URL passwords and age keys are always removed. */
  secrets?: readonly string[];
}

const rank: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * Creates the daemon's logger: JSON lines {time, level, event, ...fields} when stderr is not a terminal, readable
 * lines on a terminal. Every string value is redacted on the way out, so a connection URL in an error message never
 * reaches the log with its password.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const json = opts.json ?? process.stderr.isTTY !== true;
  const envLevel = process.env.LIFEBOAT_LOG_LEVEL as Level | undefined;
  const min = rank[opts.level ?? (envLevel && envLevel in rank ? envLevel : "info")];
  const now = opts.now ?? (() => new Date());
  const secrets = opts.secrets ?? [];
  const clean = (v: unknown): unknown => {
    if (typeof v === "string") return redact(v, secrets);
    if (v instanceof Error) return redact(messageOf(v), secrets);
    if (Array.isArray(v)) return v.map(clean);
    return v;
  };
  const emit = (base: LogFields, level: Level, event: string, fields: LogFields = {}) => {
    if (rank[level] < min) return;
    const entries = Object.entries({ ...base, ...fields })
      // time, level and event are the line's own; a field of the same name must not overwrite them.
      .filter(([k, v]) => v !== undefined && k !== "time" && k !== "level" && k !== "event")
      .map(([k, v]) => [k, clean(v)] as const);
    const time = now().toISOString();
    if (json) {
      write(`${JSON.stringify({ time, level, event, ...Object.fromEntries(entries) })}\n`);
      return;
    }
    const rest = entries.map(([k, v]) => `${k}=${typeof v === "string" && !/\s/.test(v) ? v : JSON.stringify(v)}`).join(" ");
    write(`${time.slice(0, 19).replace("T", " ")} ${level.toUpperCase().padEnd(5)} ${event}${rest ? ` ${rest}` : ""}\n`);
  };
  const make = (base: LogFields): Logger => ({
    debug: (e, f) => emit(base, "debug", e, f),
    info: (e, f) => emit(base, "info", e, f),
    warn: (e, f) => emit(base, "warn", e, f),
    error: (e, f) => emit(base, "error", e, f),
    child: (f) => make({ ...base, ...f }),
  });
  return make({});
}

/** A logger that drops everything: the default for library callers that do not pass one. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};
