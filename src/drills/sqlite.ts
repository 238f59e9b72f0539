import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Drill } from "../config/schema.ts";
import { abortedError, code, IntegrityError, LifeboatError, wrap } from "../errors.ts";
import type { Inventory } from "../sources/source.ts";
import { isWithin, sqliteHeaderOf } from "../sources/sqlite.ts";
import { runSqlite, type SqliteOutcome, type SqliteTask } from "../sources/sqlite-worker.ts";
import { compareCounts, evaluateQuery } from "./checks.ts";
import { fileDestination } from "./file-destination.ts";
import type { ArtifactInput, CheckResult, DrillKind, RestoreKind, Scratch, ScratchContext } from "./kind.ts";
import { createScratchDir, realPath } from "./scratch-dir.ts";

// How many problems integrity_check lists before it stops: enough to diagnose, bounded for the record.
const INTEGRITY_LIMIT = 20;
// Mismatches named in a check's detail line; all of them are in `mismatches`.
const DETAIL_ITEMS = 5;

/**
 * A query's outcome as the single number a check needs, or the database's error, or what it returned instead.
 * Stricter than singleNumber in checks.ts: SQLite values are typed, so text that looks like a number is refused.
 */
function queryValue(outcome: SqliteOutcome | undefined): { value: number } | { error: string } {
  if (!outcome) return { error: "the query did not run" };
  if (!outcome.ok) return { error: outcome.message };
  const rows = outcome.value as unknown[][];
  if (rows.length !== 1 || rows[0]?.length !== 1) {
    const shape = rows.length === 0 ? "no rows" : rows.length > 1 ? "more than one row" : `${rows[0]?.length} columns`;
    return { error: `the query returned ${shape}; it must return exactly one row with one number` };
  }
  const v = rows[0]?.[0];
  if (typeof v === "bigint") return { value: Number(v) };
  if (typeof v !== "number" || Number.isNaN(v)) {
    return { error: `the query returned ${v === null ? "NULL" : typeof v}, not a number` };
  }
  return { value: v };
}

/**
 * Refuses a restored file that is not a SQLite database (an artifact that is not what its manifest says) before it
 * replaces anything. An empty file is a valid, empty database.
 */
async function checkSqliteHeader(file: string, to: string): Promise<void> {
  const { isSqlite, head } = await sqliteHeaderOf(file);
  if (head.length === 0 || isSqlite) return;
  throw new IntegrityError(
    `restore into ${to}: the snapshot's artifact is not a SQLite database (it starts ${JSON.stringify(head.toString("latin1"))}); nothing was replaced`,
    {
      hint: "the snapshot does not hold what its manifest says: restore another snapshot (--snapshot) or from another target (--from)",
    },
  );
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
  const base = { kind: "rowCounts", name: "row counts equal the backup's snapshot" };
  if (!inventory.tables) return { ...base, ok: false, detail: "the snapshot's inventory holds no table counts" };
  if (!outcome?.ok) return { ...base, ok: false, detail: `counting the restored tables failed: ${outcome?.message ?? "did not run"}` };
  const result = compareCounts(inventory.tables, outcome.value as Record<string, number>, inventory.counts);
  const mismatches = result.mismatches ?? [];
  if (mismatches.length) {
    // A one-line summary for people reading the record; every mismatch stays in `mismatches`.
    const shown = mismatches.slice(0, DETAIL_ITEMS).map((m) => `"${m.item}" expected ${m.expected}, got ${m.actual}`);
    if (mismatches.length > DETAIL_ITEMS) shown.push(`and ${mismatches.length - DETAIL_ITEMS} more`);
    const n = mismatches.length;
    result.detail = `${n} ${n === 1 ? "table differs" : "tables differ"}: ${shown.join("; ")}`;
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
  async restore(input: ArtifactInput, signal: AbortSignal): Promise<void> {
    const where = `restore into ${this.location}`;
    if (signal.aborted) throw abortedError(where, signal);
    try {
      const stream = await input.stream();
      // "wx": a fresh scratch directory holds no db.sqlite; finding one means something else wrote here.
      await pipeline(stream, createWriteStream(this.#file, { flags: "wx", mode: 0o600 }), { signal });
    } catch (err) {
      if (signal.aborted) throw abortedError(where, signal);
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
    const first = counting ? 2 : 1;
    queries.forEach((q, i) => {
      results.push(evaluateQuery(q, queryValue(outcomes[first + i])));
    });
    return results;
  }

  /** Removes the scratch directory and everything in it; idempotent. */
  async drop(): Promise<void> {
    await rm(this.location, { recursive: true, force: true });
  }
}

/** A path resolved through symlinks where it exists (so a symlinked scratch directory cannot hide where it points). */
/**
 * Drills of sqlite jobs: the snapshot's db.sqlite is restored into a fresh directory
 * `<scratch.directory>/lifeboat_drill_<job>_<runId>` (mode 0700: it holds decrypted data) and checked there.
 * createScratch rejects with ConfigError if scratch.directory is unset and with RefusedError if the new directory
 * would be the source database's directory or inside it.
 */
export const sqliteDrillKind: DrillKind & RestoreKind = {
  kind: "sqlite",
  // A stale -wal or -shm of the replaced file would be replayed into the restored one.
  openDestination: async (to) => fileDestination(to, ["-wal", "-shm", "-journal"], (file) => checkSqliteHeader(file, to)),
  async createScratch(ctx: ScratchContext): Promise<Scratch> {
    const dir = await createScratchDir(ctx, {
      kind: "sqlite",
      placeHint: "a directory away from the database",
      async overlap(dir) {
        const sourceDir = dirname(await realPath((ctx.job.source as { path: string }).path));
        return isWithin(dir, sourceDir) ? `scratch directory ${dir} would be inside the database's directory ${sourceDir}` : undefined;
      },
      overlapHint: "point scratch.directory somewhere away from the database, so a drill can never write next to it",
    });
    return new SqliteScratch(dir);
  },
};
