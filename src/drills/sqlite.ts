import { createWriteStream } from "node:fs";
import { mkdir, realpath, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Drill } from "../config/schema.ts";
import { ConfigError, code, LifeboatError, messageOf, RefusedError, wrap } from "../errors.ts";
import type { Inventory } from "../sources/source.ts";
import { isWithin } from "../sources/sqlite.ts";
import { runSqlite, type SqliteOutcome, type SqliteTask } from "../sources/sqlite-worker.ts";
import type { CheckResult, DrillKind, Scratch, ScratchContext } from "./kind.ts";

/** One user query check of a drill: `{ name, sql, min?, max?, equals? }`. */
export type QueryCheck = Drill["checks"]["queries"][number];

// How many problems integrity_check lists before it stops: enough to diagnose, bounded for the record.
const INTEGRITY_LIMIT = 20;
// Mismatches named in a check's detail line; all of them are in `mismatches`.
const DETAIL_ITEMS = 5;

/**
 * Compares a restore's row counts with the snapshot's inventory, table by table: every differing count, every
 * table missing from the restore (actual null) and every table the inventory does not know (expected null) is a
 * mismatch. ok only if there is none. (The maintainer may move this to src/drills/checks.ts.)
 */
export function compareCounts(expected: Record<string, number>, actual: Record<string, number>): CheckResult {
  const mismatches: { item: string; expected: number | null; actual: number | null }[] = [];
  const names = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort();
  for (const item of names) {
    const e = Object.hasOwn(expected, item) ? (expected[item] as number) : null;
    const a = Object.hasOwn(actual, item) ? (actual[item] as number) : null;
    if (e !== a) mismatches.push({ item, expected: e, actual: a });
  }
  const total = (counts: Record<string, number>) => ({
    tables: Object.keys(counts).length,
    rows: Object.values(counts).reduce((s, n) => s + n, 0),
  });
  const describe = (m: (typeof mismatches)[number]) =>
    m.actual === null
      ? `"${m.item}" missing from the restore`
      : m.expected === null
        ? `"${m.item}" not in the snapshot's inventory`
        : `"${m.item}" expected ${m.expected}, got ${m.actual}`;
  const shown = mismatches.slice(0, DETAIL_ITEMS).map(describe);
  if (mismatches.length > DETAIL_ITEMS) shown.push(`and ${mismatches.length - DETAIL_ITEMS} more`);
  return {
    kind: "rowCounts",
    name: "row counts",
    ok: mismatches.length === 0,
    expected: total(expected),
    actual: total(actual),
    ...(mismatches.length ? { mismatches, detail: `${mismatches.length} of ${names.length} tables differ: ${shown.join("; ")}` } : {}),
  };
}

/** What the check expects of a query's value, in words ("= 5", ">= 1", "between 1 and 10", "any number"). */
function bounds(q: QueryCheck): string {
  const parts: string[] = [];
  if (q.equals !== undefined) parts.push(`= ${q.equals}`);
  if (q.min !== undefined && q.max !== undefined) parts.push(`between ${q.min} and ${q.max}`);
  else if (q.min !== undefined) parts.push(`>= ${q.min}`);
  else if (q.max !== undefined) parts.push(`<= ${q.max}`);
  return parts.length ? parts.join(" and ") : "any number";
}

/**
 * Judges a user query's outcome: its number against equals, min and max (each given bound must hold; with none,
 * any number passes), or its error, which fails the check with the database's message as detail. (The maintainer
 * may move this to src/drills/checks.ts.)
 */
export function evaluateQuery(q: QueryCheck, outcome: number | Error): CheckResult {
  const base = { kind: "query", name: q.name, expected: bounds(q) };
  if (outcome instanceof Error) return { ...base, ok: false, detail: outcome.message };
  const failed: string[] = [];
  if (q.equals !== undefined && outcome !== q.equals) failed.push(`not equal to ${q.equals}`);
  if (q.min !== undefined && outcome < q.min) failed.push(`below the minimum ${q.min}`);
  if (q.max !== undefined && outcome > q.max) failed.push(`above the maximum ${q.max}`);
  return {
    ...base,
    actual: outcome,
    ok: failed.length === 0,
    ...(failed.length ? { detail: `${outcome} is ${failed.join(" and ")}` } : {}),
  };
}

/** A query's rows as the single number a check needs, or an Error saying what it returned instead. */
function singleNumber(outcome: SqliteOutcome | undefined): number | Error {
  if (!outcome) return new Error("the query did not run");
  if (!outcome.ok) return new Error(outcome.message);
  const rows = outcome.value as unknown[][];
  if (rows.length !== 1 || rows[0]?.length !== 1) {
    const shape = rows.length === 0 ? "no rows" : rows.length > 1 ? "more than one row" : `${rows[0]?.length} columns`;
    return new Error(`the query returned ${shape}; a query check must return exactly one number (one row, one column)`);
  }
  const v = rows[0]?.[0];
  if (typeof v === "bigint") return Number(v);
  if (typeof v !== "number" || Number.isNaN(v)) {
    return new Error(`the query returned ${v === null ? "NULL" : typeof v}; a query check must return a number`);
  }
  return v;
}

/** The integrity check's result from `PRAGMA integrity_check` rows, or from the error that stopped it. */
function integrityResult(outcome: SqliteOutcome | undefined): CheckResult {
  const base = { kind: "integrity", name: "integrity_check", expected: "ok" };
  if (!outcome?.ok) return { ...base, ok: false, detail: outcome?.message ?? "the check did not run" };
  const lines = outcome.value as string[];
  const ok = lines.length === 1 && lines[0] === "ok";
  return { ...base, ok, actual: ok ? "ok" : lines, ...(ok ? {} : { detail: lines.slice(0, DETAIL_ITEMS).join("; ") }) };
}

/** The row-count check: counts of the restored file against the inventory. */
function rowCountResult(inventory: Inventory, outcome: SqliteOutcome | undefined): CheckResult {
  const base = { kind: "rowCounts", name: "row counts" };
  if (!inventory.tables) return { ...base, ok: false, detail: "the snapshot's inventory holds no table counts" };
  if (!outcome?.ok) return { ...base, ok: false, detail: `counting the restored tables failed: ${outcome?.message ?? "did not run"}` };
  const result = compareCounts(inventory.tables, outcome.value as Record<string, number>);
  if (!result.ok && inventory.counts !== "exact") {
    result.detail = `${result.detail} (the inventory's counts are approximate)`;
  }
  return result;
}

/** The scratch directory of one drill run, holding db.sqlite. */
class SqliteScratch implements Scratch {
  readonly location: string;
  readonly #file: string;

  constructor(dir: string) {
    this.location = dir;
    this.#file = join(dir, "db.sqlite");
  }

  /** Writes the artifact's plaintext to <dir>/db.sqlite. Rejects with the input's error (code kept) or ABORTED. */
  async restore(input: Parameters<Scratch["restore"]>[0], signal: AbortSignal): Promise<void> {
    const where = `restore into ${this.location}`;
    if (signal.aborted) throw new LifeboatError(code.aborted, `${where}: aborted`);
    try {
      const stream = await input.stream();
      // "wx": a fresh scratch directory holds no db.sqlite; finding one means something else wrote here.
      await pipeline(stream, createWriteStream(this.#file, { flags: "wx", mode: 0o600 }), { signal });
    } catch (err) {
      if (signal.aborted) throw new LifeboatError(code.aborted, `${where}: aborted`, { cause: err });
      throw wrap(where, err);
    }
  }

  /**
   * Runs PRAGMA integrity_check, the exact row counts (unless checks.rowCounts is "off") and the drill's queries
   * on the restored file, opened read-only in a worker thread (so a query cannot change what later checks see).
   * Never rejects for a failing check: each becomes a CheckResult with ok false. Rejects with ABORTED on abort.
   */
  async check(inventory: Inventory, drill: Drill, signal: AbortSignal): Promise<CheckResult[]> {
    const counting = drill.checks.rowCounts !== "off";
    const queries = drill.checks.queries;
    const tasks: SqliteTask[] = [{ kind: "integrity", limit: INTEGRITY_LIMIT }];
    if (counting) tasks.push({ kind: "counts" });
    for (const q of queries) tasks.push({ kind: "query", sql: q.sql });
    let outcomes: SqliteOutcome[];
    try {
      outcomes = await runSqlite(this.#file, tasks, signal);
    } catch (err) {
      if (err instanceof LifeboatError && err.code === code.aborted) throw err;
      throw wrap(`check ${this.location}`, err);
    }
    const results = [integrityResult(outcomes[0])];
    if (counting) results.push(rowCountResult(inventory, outcomes[1]));
    else results.push({ kind: "rowCounts", name: "row counts", ok: true, detail: 'skipped: checks.rowCounts is "off"' });
    const first = counting ? 2 : 1;
    queries.forEach((q, i) => {
      results.push(evaluateQuery(q, singleNumber(outcomes[first + i])));
    });
    return results;
  }

  /** Removes the scratch directory and everything in it; idempotent. */
  async drop(): Promise<void> {
    await rm(this.location, { recursive: true, force: true });
  }
}

/** A path resolved through symlinks where it exists (so a symlinked scratch directory cannot hide where it points). */
async function real(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return resolve(path);
  }
}

/**
 * Drills of sqlite jobs: the snapshot's db.sqlite is restored into a fresh directory
 * `<scratch.directory>/lifeboat_drill_<job>_<runId>` (mode 0700: it holds decrypted data) and checked there.
 * createScratch rejects with ConfigError if scratch.directory is unset and with RefusedError if the new directory
 * would be the source database's directory or inside it.
 */
export const sqliteDrillKind: DrillKind = {
  kind: "sqlite",
  async createScratch(ctx: ScratchContext): Promise<Scratch> {
    const { config, job, runId, signal } = ctx;
    if (signal.aborted) throw new LifeboatError(code.aborted, `drill of job "${job.name}": aborted`);
    if (job.source.type !== "sqlite") {
      throw new ConfigError(`job "${job.name}": a sqlite drill needs a sqlite source, not ${job.source.type}`);
    }
    const parent = config.scratch.directory;
    if (!parent) {
      throw new ConfigError(`job "${job.name}": drills of sqlite jobs restore into scratch.directory, which is not set`, {
        hint: 'set scratch: { directory: "/var/tmp/lifeboat-scratch" } in backup.config.ts (a directory away from the database)',
      });
    }
    // The run id becomes a path component: anything but a plain token could climb out of scratch.directory.
    if (!/^[A-Za-z0-9_-]+$/.test(runId)) throw new LifeboatError(code.failed, `drill run id "${runId}" is not a plain token`);
    const dir = join(await real(parent), `lifeboat_drill_${job.name}_${runId}`);
    const sourceDir = dirname(await real(job.source.path));
    if (isWithin(dir, sourceDir)) {
      throw new RefusedError(`job "${job.name}": scratch directory ${dir} would be inside the database's directory ${sourceDir}`, {
        hint: "point scratch.directory somewhere away from the database, so a drill can never write next to it",
      });
    }
    try {
      await mkdir(dirname(dir), { recursive: true });
      // Not recursive: an existing directory of that name is an error, so the scratch place is always fresh.
      await mkdir(dir, { mode: 0o700 });
    } catch (err) {
      throw new LifeboatError(code.failed, `job "${job.name}": create scratch directory ${dir}: ${messageOf(err)}`, {
        cause: err,
        hint: "check that scratch.directory is writable",
      });
    }
    return new SqliteScratch(dir);
  },
};
