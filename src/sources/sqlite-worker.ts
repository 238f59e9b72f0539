import { Worker } from "node:worker_threads";
import { abortedError, code, LifeboatError } from "../errors.ts";

/** One piece of read-only work on a SQLite file, run by runSqlite. */
export type SqliteTask =
  /** Exact count(*) of every user table (see LIST_TABLES), keyed by the table's name as stored. */
  | { kind: "counts" }
  /**
   * `PRAGMA integrity_check(limit)`: ["ok"] for a sound file, else up to `limit` problem descriptions. `quick` runs
   * quick_check: the same checks of every page, without comparing indexes to their tables (much faster).
   */
  | { kind: "integrity"; limit?: number; quick?: boolean }
  /** sqlite_version(), page count, page size and journal mode. */
  | { kind: "facts" }
  /** A user's SQL: up to two rows as arrays, enough to tell "one row" from "more". */
  | { kind: "query"; sql: string };

/** Facts about a SQLite file, for manifests and inventories. */
export interface SqliteFacts {
  sqliteVersion: string;
  pageCount: number;
  pageSize: number;
  journalMode: string;
}

/** What each task yields: a value, or the database's error message (errcode is SQLite's result code). */
export type SqliteOutcome = { ok: true; value: unknown } | { ok: false; message: string; errcode?: number };

/**
 * User tables: internal sqlite_% tables (sequence, stat) are SQLite's bookkeeping, not data. Virtual tables are
 * skipped because counting them needs their module (which a restoring host may lack); their rows live in shadow
 * tables, which are ordinary tables and counted.
 */
export const LIST_TABLES = `
  select name from sqlite_schema
   where type = 'table' and name not like 'sqlite\\_%' escape '\\'
     and coalesce(sql, '') not like 'create virtual table%'
   order by name`;

/** Quotes a SQLite identifier ("select", "Order Items", "we""ird"), so any table name is safe in SQL text. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

// Plain JavaScript so the worker runs the same whether lifeboat runs from .ts sources, a build or a bundle.
// Double-quoted string literals are off in node:sqlite, so a quoted name is always an identifier.
const WORKER = `
const { parentPort, workerData } = process.getBuiltinModule("node:worker_threads");
const { DatabaseSync } = process.getBuiltinModule("node:sqlite");
const { path, tasks, listTables } = workerData;
const fail = (e) => ({ ok: false, message: String((e && e.message) || e), errcode: e && e.errcode });
const quote = (name) => '"' + name.replaceAll('"', '""') + '"'; // as quoteIdent
function run(db, t) {
  switch (t.kind) {
    case "counts": {
      const counts = {};
      for (const { name } of db.prepare(listTables).all()) {
        counts[name] = Number(db.prepare("select count(*) as n from " + quote(name)).get().n);
      }
      return counts;
    }
    case "integrity": {
      const pragma = t.quick ? "quick_check" : "integrity_check";
      const st = db.prepare("pragma " + pragma + "(" + Math.max(1, Math.floor(t.limit || 20)) + ")");
      st.setReturnArrays(true);
      return st.all().map((r) => String(r[0]));
    }
    case "facts": {
      const one = (sql) => Object.values(db.prepare(sql).get())[0];
      return {
        sqliteVersion: String(one("select sqlite_version()")),
        pageCount: Number(one("pragma page_count")),
        pageSize: Number(one("pragma page_size")),
        journalMode: String(one("pragma journal_mode")),
      };
    }
    case "query": {
      const st = db.prepare(t.sql);
      st.setReturnArrays(true);
      const rows = [];
      for (const row of st.iterate()) {
        rows.push(row);
        if (rows.length === 2) break;
      }
      return rows;
    }
    default:
      throw new Error("unknown task " + t.kind);
  }
}
let db;
let opened;
try {
  db = new DatabaseSync(path, { readOnly: true });
} catch (e) {
  opened = fail(e);
}
parentPort.postMessage(tasks.map((t) => {
  if (opened) return opened;
  try {
    return { ok: true, value: run(db, t) };
  } catch (e) {
    return fail(e);
  }
}));
if (db) db.close();
`;

/**
 * Opens a SQLite file read-only in a worker thread and runs the tasks in order, so a count(*) over a big table
 * or an integrity check never blocks the event loop that streams uploads. Each task succeeds or fails on its own
 * (a failed open fails them all with its message). Rejects only if the worker itself fails, or with code ABORTED
 * when the signal fires: the worker is terminated (after the SQLite call in progress returns).
 */
export function runSqlite(path: string, tasks: SqliteTask[], signal?: AbortSignal): Promise<SqliteOutcome[]> {
  const aborted = () => abortedError(`sqlite "${path}"`, signal);
  if (signal?.aborted) return Promise.reject(aborted());
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER, { eval: true, workerData: { path, tasks, listTables: LIST_TABLES } });
    let result: SqliteOutcome[] | undefined;
    let failure: unknown;
    const onAbort = () => {
      failure ??= aborted();
      void worker.terminate();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    worker.once("message", (m: SqliteOutcome[]) => {
      result = m;
    });
    worker.once("error", (err) => {
      failure ??= err;
    });
    // Settles on exit only, so the file is closed (or the worker gone) before a caller deletes it.
    worker.once("exit", (exitCode) => {
      signal?.removeEventListener("abort", onAbort);
      if (failure) reject(failure);
      else if (result) resolve(result);
      else reject(new LifeboatError(code.failed, `sqlite "${path}": worker exited with code ${exitCode} before answering`));
    });
  });
}

/** The value of a successful outcome, or a thrown Error carrying the database's message and errcode. */
export function unwrapOutcome<T>(outcome: SqliteOutcome | undefined): T {
  if (!outcome) throw new Error("no outcome");
  if (outcome.ok) return outcome.value as T;
  throw Object.assign(new Error(outcome.message), { errcode: outcome.errcode });
}
