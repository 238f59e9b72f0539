import { ConfigError } from "../errors.ts";

/** A calendar period kind retention keeps the newest snapshot of. */
export type PeriodKind = "hourly" | "daily" | "weekly" | "monthly" | "yearly";

/** The period kinds, shortest first. */
export const PERIOD_KINDS: readonly PeriodKind[] = ["hourly", "daily", "weekly", "monthly", "yearly"];

const formatters = new Map<string, Intl.DateTimeFormat>();

/** One Intl formatter per time zone; building them is slow and a plan asks thousands of times. */
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat("en-US", {
        timeZone,
        year: "numeric",
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        hourCycle: "h23",
        timeZoneName: "longOffset",
      });
    } catch (err) {
      throw new ConfigError(`retention.timezone: "${timeZone}" is not a time zone this Node.js knows`, {
        cause: err,
        hint: 'use an IANA name such as "UTC" or "Europe/Berlin"',
      });
    }
    formatters.set(timeZone, f);
  }
  return f;
}

/** The wall-clock fields of an instant in a time zone. */
export interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  /** The zone's offset at that instant, "+01:00". */
  offset: string;
}

/** Reads an instant's wall-clock date, hour and UTC offset in a time zone. Throws ConfigError for an unknown zone. */
export function localTime(at: Date, timeZone: string): LocalTime {
  const parts: Record<string, string> = {};
  for (const p of formatter(timeZone).formatToParts(at)) parts[p.type] = p.value;
  // longOffset prints "GMT" for a zero offset and "GMT+01:00" otherwise.
  const offset = (parts.timeZoneName ?? "GMT").replace(/^GMT/, "") || "+00:00";
  return { year: Number(parts.year), month: Number(parts.month), day: Number(parts.day), hour: Number(parts.hour), offset };
}

/** The ISO 8601 week (weeks start on Monday; week 1 holds the year's first Thursday) of a calendar date. */
export function isoWeek(year: number, month: number, day: number): { year: number; week: number } {
  const date = Date.UTC(year, month - 1, day);
  const weekday = (new Date(date).getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  const thursday = new Date(date + (3 - weekday) * 86_400_000);
  const isoYear = thursday.getUTCFullYear();
  const week = 1 + Math.floor((thursday.getTime() - Date.UTC(isoYear, 0, 1)) / (7 * 86_400_000));
  return { year: isoYear, week };
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/**
 * Names the calendar period an instant falls in, in a time zone: "2026-11-24T21:00+01:00" (hourly), "2026-11-24"
 * (daily), "2026-W48" (weekly, ISO), "2026-11" (monthly), "2026" (yearly). Snapshots with the same name share the
 * period. Hours carry the offset, so the hour repeated when clocks go back is two periods, as it is two real hours.
 */
export function periodOf(at: Date, kind: PeriodKind, timeZone: string): string {
  const t = localTime(at, timeZone);
  switch (kind) {
    case "hourly":
      return `${t.year}-${pad(t.month)}-${pad(t.day)}T${pad(t.hour)}:00${t.offset}`;
    case "daily":
      return `${t.year}-${pad(t.month)}-${pad(t.day)}`;
    case "weekly": {
      const w = isoWeek(t.year, t.month, t.day);
      return `${w.year}-W${pad(w.week)}`;
    }
    case "monthly":
      return `${t.year}-${pad(t.month)}`;
    case "yearly":
      return String(t.year);
    default: {
      const never: never = kind;
      return never;
    }
  }
}

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/** Parses a duration like "30m", "6h", "7d", "2w" (durationSchema) into milliseconds. Throws ConfigError otherwise. */
export function durationMs(text: string): number {
  const m = /^(\d+)(s|m|h|d|w)$/.exec(text);
  if (!m) throw new ConfigError(`"${text}" is not a duration`, { hint: 'use a duration like "30m", "6h" or "7d"' });
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/** Formats an age for plan reasons: "9 days", "1 day", "5 hours", "12 minutes". */
export function ageText(ms: number): string {
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"}`;
  if (ms >= 86_400_000) return plural(Math.floor(ms / 86_400_000), "day");
  if (ms >= 3_600_000) return plural(Math.floor(ms / 3_600_000), "hour");
  return plural(Math.max(0, Math.floor(ms / 60_000)), "minute");
}
