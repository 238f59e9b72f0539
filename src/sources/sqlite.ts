import { createReadStream } from "node:fs";
import { mkdtemp, open, realpath, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { backup, DatabaseSync } from "node:sqlite";
import type { SqliteSourceConfig } from "../config/schema.ts";
import { abortedError, ConfigError, code, LifeboatError, messageOf, wrap } from "../errors.ts";
import type { Dump, DumpInfo, Inventory, Source } from "./source.ts";
import { runSqlite, type SqliteFacts, type SqliteOutcome, unwrapOutcome } from "./sqlite-worker.ts";

// More pages than any database has: the whole copy is one backup step. Smaller steps release the read lock in
// between, and every write by another connection then restarts the copy from page 1; a busy writer starves it.
const ONE_STEP = 2 ** 31 - 1;
// Above this, a copy of a rollback-journal database is worth a warning: writers could not commit meanwhile.
const SLOW_COPY_MS = 1000;
// How long one attempt to get the read lock may block the thread before lifeboat sleeps and tries again.
const RETRY_MS = 50;

// SQLite primary result codes (errcode & 0xff) that get their own message.
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_CORRUPT = 11;
const SQLITE_CANTOPEN = 14;
const SQLITE_NOTADB = 26;

/** Options of SqliteSource that are not part of the job's config. */
export interface SqliteSourceOptions {
  /** Directory for the temporary copy (a fresh subdirectory is made in it). Defaults to os.tmpdir() (TMPDIR). */
  tempDir?: string;
}

/** Facts about the source database gathered while its read transaction was open. */
interface CopyFacts {
  sqliteVersion: string;
  journalMode: string;
  copyMs: number;
}

const SQLITE_HEADER = Buffer.from("SQLite format 3\0", "latin1");

/** A file's first 16 bytes (fewer for a shorter file), and whether they are SQLite's header. */
export async function sqliteHeaderOf(path: string): Promise<{ isSqlite: boolean; head: Buffer }> {
  const fh = await open(path, "r");
  try {
    const { bytesRead, buffer } = await fh.read(Buffer.alloc(16), 0, 16, 0);
    const head = buffer.subarray(0, bytesRead);
    return { isSqlite: head.equals(SQLITE_HEADER), head };
  } finally {
    await fh.close();
  }
}

/** A path that exists resolved through symlinks; otherwise just made absolute. */
async function real(path: string): Promise<string> {
  return realpath(path).catch(() => resolve(path));
}

/** True if `inner` is `outer` or lies inside it. */
export function isWithin(inner: string, outer: string): boolean {
  const rel = relative(outer, inner);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** A LifeboatError (code SOURCE) naming the path, with a hint fitting SQLite's result code. */
export function sqliteError(path: string, doing: string, err: unknown, lockTimeoutMs?: number): LifeboatError {
  if (err instanceof LifeboatError) return err;
  const where = `sqlite "${path}"`;
  const primary = ((err as { errcode?: number }).errcode ?? -1) & 0xff;
  const why = messageOf(err);
  switch (primary) {
    case SQLITE_NOTADB:
      return new LifeboatError(code.source, `${where}: not a SQLite database (${why})`, {
        cause: err,
        hint: "point the source's path at the database file itself, not at its -wal, -shm or journal file or a SQL dump",
      });
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return new LifeboatError(code.source, `${where}: still locked by another connection after ${lockTimeoutMs ?? 0} ms (${why})`, {
        cause: err,
        hint: "a writer held its lock longer than lockTimeoutMs: raise the source's lockTimeoutMs, or switch the database to WAL mode (PRAGMA journal_mode=WAL) so readers never wait for writers",
      });
    case SQLITE_CORRUPT:
      return new LifeboatError(code.source, `${where}: ${doing}: the database is corrupt (${why})`, {
        cause: err,
        hint: "run `sqlite3 <file> 'PRAGMA integrity_check'` and repair it (.recover) before backing it up",
      });
    case SQLITE_CANTOPEN:
      return new LifeboatError(code.source, `${where}: cannot open (${why})`, {
        cause: err,
        hint: "check that lifeboat may read the file and write its directory (SQLite keeps -wal, -shm and journal files beside it)",
      });
    default:
      return new LifeboatError(code.source, `${where}: ${doing}: ${why}`, { cause: err });
  }
}

/** Rejects (code SOURCE) unless the path is an existing regular file; SQLite would silently create a missing one. */
async function checkFile(path: string): Promise<void> {
  const where = `sqlite "${path}"`;
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(path);
  } catch (err) {
    const missing = (err as { code?: string }).code === "ENOENT";
    throw new LifeboatError(code.source, `${where}: ${missing ? "no such file" : messageOf(err)}`, {
      cause: err,
      hint: missing ? "check the source's path; lifeboat backs up an existing database and never creates one" : undefined,
    });
  }
  if (!st.isFile()) {
    throw new LifeboatError(code.source, `${where}: not a regular file`, { hint: "point the source's path at the database file" });
  }
}

/**
 * Opens a read transaction and reads the schema, retrying while a writer holds the lock, until lockTimeoutMs
 * has passed. Each attempt waits at most RETRY_MS inside SQLite: the busy handler sleeps on the calling thread,
 * and a 30 s wait there would stall every upload and timer of the process.
 */
async function beginRead(db: DatabaseSync, path: string, lockTimeoutMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + lockTimeoutMs;
  db.exec(`pragma busy_timeout = ${Math.min(RETRY_MS, lockTimeoutMs)}`);
  for (;;) {
    try {
      db.exec("begin");
      // The first read takes the shared lock (or a WAL read mark), validates the header and reads the schema.
      db.prepare("select count(*) from sqlite_schema").get();
      return;
    } catch (err) {
      if (db.isTransaction) db.exec("rollback");
      const primary = ((err as { errcode?: number }).errcode ?? -1) & 0xff;
      const busy = primary === SQLITE_BUSY || primary === SQLITE_LOCKED;
      if (!busy || Date.now() >= deadline) throw sqliteError(path, "read", err, lockTimeoutMs);
    }
    if (signal.aborted) throw abortedError(`sqlite "${path}": dump`, signal);
    await new Promise((r) => setTimeout(r, RETRY_MS));
  }
}

/**
 * Copies a live database into `dest` with SQLite's online backup API. A read transaction is opened first (see
 * beginRead), and the copy is one backup step inside it, so the copy is exactly that transaction's snapshot. In
 * WAL mode the snapshot includes committed frames still in the -wal file, and writers carry on meanwhile; in
 * rollback-journal mode they wait for the copy (a sequential file copy, on a worker thread) before committing.
 */
async function copyDatabase(path: string, dest: string, lockTimeoutMs: number, signal: AbortSignal): Promise<CopyFacts> {
  let db: DatabaseSync;
  try {
    // Read-write, like the sqlite3 shell: a reader that may write can roll back a hot journal left by a crash.
    db = new DatabaseSync(path);
  } catch (err) {
    throw sqliteError(path, "open", err, lockTimeoutMs);
  }
  try {
    await beginRead(db, path, lockTimeoutMs, signal);
    let facts: Omit<CopyFacts, "copyMs">;
    try {
      const one = (sql: string) => String(Object.values(db.prepare(sql).get() ?? {})[0]);
      facts = { sqliteVersion: one("select sqlite_version()"), journalMode: one("pragma journal_mode") };
    } catch (err) {
      throw sqliteError(path, "read", err, lockTimeoutMs);
    }
    const started = Date.now();
    try {
      await backup(db, dest, { rate: ONE_STEP });
    } catch (err) {
      throw new LifeboatError(code.source, `sqlite "${path}": copy to ${dest}: ${messageOf(err)}`, {
        cause: err,
        hint: "the copy needs free space as large as the database in the temporary directory (set TMPDIR to move it)",
      });
    }
    return { ...facts, copyMs: Date.now() - started };
  } finally {
    try {
      if (db.isTransaction) db.exec("rollback");
    } catch {
      // Closing ends the transaction anyway.
    }
    db.close();
  }
}

/** What quick_check found wrong, in one line, or undefined for a sound file. */
function damageOf(outcome: SqliteOutcome | undefined): string | undefined {
  if (!outcome) return undefined;
  if (!outcome.ok) return outcome.message;
  const lines = (outcome.value as string[]).flatMap((l) => l.split("\n")).filter((l) => l && !l.startsWith("***"));
  return lines.length === 1 && lines[0] === "ok" ? undefined : lines.join("; ");
}

/**
 * A SQLite database file, copied with the online backup API into a private temporary directory outside the
 * database's directory, counted table by table in that copy (so the counts are exact for the bytes shipped),
 * and streamed as the artifact "db.sqlite" (format "sqlite3"). The copy is deleted once streamed, on failure
 * and on abort. Inventory keys are table names exactly as stored (SQLite has one schema, so nothing to qualify;
 * quoting is applied only inside SQL): `select`, `Order Items`.
 */
export class SqliteSource implements Source {
  readonly kind = "sqlite";
  readonly #path: string;
  readonly #lockTimeoutMs: number;
  readonly #tempDir: string;

  /** Takes the job's source block; touches nothing until dump() is called. */
  constructor(config: SqliteSourceConfig, opts: SqliteSourceOptions = {}) {
    this.#path = resolve(config.path);
    this.#lockTimeoutMs = config.lockTimeoutMs ?? 30_000;
    this.#tempDir = opts.tempDir ?? tmpdir();
  }

  /**
   * Copies the database (see copyDatabase) and returns a stream of the copy; the inventory is counted in a
   * worker thread while it streams. Rejects (code SOURCE, the message naming the path) for a missing file, a
   * file that is not a SQLite database, or a lock held past lockTimeoutMs; with ConfigError if the temporary
   * directory lies inside the database's directory; with code ABORTED if aborted before the copy was made.
   * Aborting later destroys the stream and rejects done and the inventory with code ABORTED.
   */
  async dump(signal: AbortSignal): Promise<Dump> {
    const path = this.#path;
    const where = `sqlite "${path}"`;
    const aborted = () => abortedError(`${where}: dump`, signal);
    if (signal.aborted) throw aborted();
    await checkFile(path);

    const tempParent = await real(this.#tempDir);
    const sourceDir = dirname(await real(path));
    // The copy is as large as the database: staged beside it, it could fill the disk the application writes to.
    if (isWithin(tempParent, sourceDir)) {
      throw new ConfigError(`${where}: the temporary directory ${tempParent} is inside the database's directory ${sourceDir}`, {
        hint: "set TMPDIR to a directory on another disk than the database (the copy is as large as the database)",
      });
    }
    const copyDir = await mkdtemp(join(tempParent, "lifeboat-sqlite-")).catch((err: unknown) => {
      throw wrap(`${where}: create a temporary directory in ${tempParent}`, err, code.source);
    });
    const removeCopy = () => rm(copyDir, { recursive: true, force: true }).catch(() => {});
    const copy = join(copyDir, "db.sqlite");

    let facts: CopyFacts;
    try {
      facts = await copyDatabase(path, copy, this.#lockTimeoutMs, signal);
      // The backup step cannot be interrupted; an abort that came meanwhile is honoured here.
      if (signal.aborted) throw aborted();
    } catch (err) {
      await removeCopy();
      throw err;
    }

    const stream = createReadStream(copy, { highWaterMark: 1024 * 1024 });
    // The error is also done's rejection: a consumer that only awaits done must not crash on the stream's error.
    stream.on("error", () => {});
    let ended = false;
    let readError: unknown;
    stream.once("end", () => {
      ended = true;
    });
    stream.once("error", (err) => {
      readError ??= err;
    });
    const counting = new AbortController();
    const closed = new Promise<void>((r) =>
      stream.once("close", () => {
        // A consumer that stopped reading failed the dump: counts of it are no use, so stop counting too.
        if (!ended) counting.abort();
        r();
      }),
    );
    const onAbort = () => {
      counting.abort();
      stream.destroy(aborted());
    };
    signal.addEventListener("abort", onAbort, { once: true });

    // quick_check reads every page of the copy (not the live file), beside the upload: a damaged source is still
    // backed up as it is (it may be all there is), but its snapshot says so.
    const measured = runSqlite(
      copy,
      [{ kind: "counts" }, { kind: "facts" }, { kind: "integrity", quick: true, limit: 5 }],
      counting.signal,
    );
    const damage: Promise<string | undefined> = measured.then(
      (outcomes) => damageOf(outcomes[2]),
      () => undefined,
    );
    const inventory: Promise<Inventory> = measured.then(
      (outcomes) => {
        try {
          const tables = unwrapOutcome<Record<string, number>>(outcomes[0]);
          const copyFacts = unwrapOutcome<SqliteFacts>(outcomes[1]);
          return {
            kind: "sqlite",
            counts: "exact",
            tables,
            sqliteVersion: facts.sqliteVersion,
            pageCount: copyFacts.pageCount,
            pageSize: copyFacts.pageSize,
            journalMode: facts.journalMode,
          };
        } catch (err) {
          throw sqliteError(path, "count rows in the copy", err);
        }
      },
      (err: unknown) => {
        throw signal.aborted ? aborted() : sqliteError(path, "count rows in the copy", err);
      },
    );
    inventory.catch(() => {});

    const done = (async (): Promise<DumpInfo> => {
      await closed;
      const inv = await inventory.then(
        (v) => v,
        () => undefined,
      );
      // Only now is nobody reading the copy: the stream is closed and the counting worker has exited.
      await removeCopy();
      signal.removeEventListener("abort", onAbort);
      if (signal.aborted) throw aborted();
      if (readError) throw wrap(`${where}: read the copy`, readError, code.source);
      if (!ended) throw new LifeboatError(code.source, `${where}: the dump stream was closed before the copy was read to its end`);
      const warnings: string[] = [];
      if (facts.journalMode !== "wal" && facts.copyMs > SLOW_COPY_MS) {
        warnings.push(
          `journal_mode=${facts.journalMode}: writers could not commit for ${facts.copyMs} ms while the database was copied; WAL mode (PRAGMA journal_mode=WAL) lets them carry on`,
        );
      }
      if (inv?.tables && Object.keys(inv.tables).length === 0) warnings.push(`${where}: the database has no tables`);
      const damaged = await damage;
      if (damaged) {
        warnings.push(
          `${where}: PRAGMA quick_check found damage in the database (${damaged}); the snapshot holds it as it is, and a drill of it will fail: repair the source (sqlite3 <file> ".recover") and back it up again`,
        );
      }
      return {
        tool: `node:sqlite (SQLite ${facts.sqliteVersion})`,
        warnings,
        details: {
          path,
          sqliteVersion: facts.sqliteVersion,
          journalMode: facts.journalMode,
          pageCount: inv?.pageCount,
          pageSize: inv?.pageSize,
          copyMs: facts.copyMs,
        },
      };
    })();
    done.catch(() => {});

    return { artifact: "db.sqlite", format: "sqlite3", stream, inventory, done };
  }
}
