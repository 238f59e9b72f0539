import { code, LifeboatError } from "../errors.ts";
import { closeQuietly, connectMysql, errnoOf, type MysqlConnection, type MysqlParams } from "./mysql-connect.ts";
import type { DumpRelay } from "./mysql-relay.ts";
import { countRows, type TableInfo } from "./mysql-tables.ts";

/** How long FLUSH TABLES WITH READ LOCK may wait for running statements; writers queue behind it meanwhile. */
export const LOCK_WAIT_SECONDS = 5;
/** The longest lifeboat holds the global read lock while the dump tool opens its snapshot. */
export const MAX_HOLD_MS = 10_000;
/** How long the dump tool may take to connect and reach its START TRANSACTION. */
const START_TIMEOUT_MS = 60_000;

const ER_SPECIFIC_ACCESS_DENIED = 1227;
const ER_LOCK_WAIT_TIMEOUT = 1205;

/** What the handshake needs. */
export interface HandshakeOptions {
  params: MysqlParams;
  /** Lifeboat's session; it ends up inside a consistent snapshot (REPEATABLE READ, READ ONLY). */
  conn: MysqlConnection;
  tables: readonly TableInfo[];
  /** The relay the dump tool's session runs through; absent when it cannot be watched (TLS). */
  relay?: DumpRelay;
  /** Starts the dump tool. */
  start(): void;
  /** Settles with the tool's error if it exits before its snapshot exists. */
  toolGone: Promise<Error>;
  signal: AbortSignal;
}

/** Where the handshake left things. */
export interface Handshake {
  /** "exact": lifeboat's snapshot and the dump's opened under one global read lock, so they see the same rows. */
  counts: "exact" | "approximate";
  warnings: string[];
  /** How long writes were paused: from FLUSH TABLES WITH READ LOCK until UNLOCK TABLES returned. */
  writePauseMs?: number;
  /** How long FLUSH TABLES WITH READ LOCK took to get the lock (part of the pause). */
  lockWaitMs?: number;
  /** Counts of non-transactional tables taken just before the dump's snapshot opened (under the lock if held). */
  early: Record<string, number>;
  /** Approximate only: a second snapshot opened right after the dump's, for a range per table. */
  after?: MysqlConnection;
  /** Approximate only, without a relay: the second snapshot must wait until the dump tool has finished. */
  afterExit: boolean;
}

const SNAPSHOT = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY";

async function beginSnapshot(conn: MysqlConnection): Promise<void> {
  await conn.query("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ");
  await conn.query(SNAPSHOT);
}

/**
 * Waits for `what`; resolves false if `ms` pass first. Rejects with code ABORTED on abort, or with the tool's error
 * if it exits first.
 */
function within(what: Promise<unknown>, opts: HandshakeOptions, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stop = new Promise<boolean>((resolve, reject) => {
    timer = setTimeout(() => resolve(false), ms);
    onAbort = () => reject(new LifeboatError(code.aborted, "aborted"));
    if (opts.signal.aborted) onAbort();
    opts.signal.addEventListener("abort", onAbort, { once: true });
    opts.toolGone.then(reject);
  });
  return Promise.race([what.then(() => true), stop]).finally(() => {
    clearTimeout(timer);
    if (onAbort) opts.signal.removeEventListener("abort", onAbort);
  });
}

/**
 * Opens lifeboat's snapshot and the dump tool's so that the counts describe the dump. With a relay: the tool
 * connects and sends START TRANSACTION WITH CONSISTENT SNAPSHOT, which the relay holds; lifeboat takes
 * FLUSH TABLES WITH READ LOCK (no commit can happen now), opens its own snapshot, counts the non-transactional
 * tables, lets the tool's START TRANSACTION through, and UNLOCKs as soon as the server acknowledged it. Both
 * snapshots then hold the same committed rows. UNLOCK TABLES does not end lifeboat's transaction (it was a global
 * read lock, not LOCK TABLES), and starting the transaction does not release the lock.
 *
 * Without RELOAD (or if the lock is not granted within LOCK_WAIT_SECONDS) the same steps run without the lock and a
 * second snapshot opens right after the tool's: the counts are "approximate", a range per table. Without a relay
 * (TLS), the second snapshot opens once the dump has finished. Rejects with the server's error, code ABORTED on
 * abort, or the tool's error if it exits first.
 */
export async function openSnapshots(opts: HandshakeOptions): Promise<Handshake> {
  const { conn, relay, tables } = opts;
  const nonTx = tables.filter((t) => !t.transactional);
  const warnings: string[] = [];
  if (!relay) {
    await beginSnapshot(conn);
    const early = await countRows(conn, nonTx, opts.signal);
    opts.start();
    warnings.push(
      "the dump tool's session uses TLS, so lifeboat cannot see when its snapshot opens: row counts are approximate " +
        "(a range between a snapshot before the dump and one after it)",
    );
    return { counts: "approximate", warnings, early, afterExit: true };
  }

  opts.start();
  if (!(await within(relay.held, opts, START_TIMEOUT_MS))) {
    throw new LifeboatError(code.source, `the dump tool did not reach START TRANSACTION within ${START_TIMEOUT_MS / 1000} s`);
  }
  // The tool now waits for the answer to its START TRANSACTION: nothing of the pause below is spent on its start-up.
  await conn.query("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ");
  await conn.query(`SET SESSION lock_wait_timeout = ${LOCK_WAIT_SECONDS}`);
  // As mysqldump does: closing tables before the lock leaves FLUSH TABLES WITH READ LOCK little to do while writes
  // wait. A refusal here (no RELOAD) shows again, and is handled, at the lock itself.
  await conn.query("FLUSH LOCAL TABLES").catch(() => {});
  let locked = false;
  const t0 = performance.now();
  try {
    await conn.query("FLUSH TABLES WITH READ LOCK");
    locked = true;
  } catch (err) {
    const n = errnoOf(err);
    if (n === ER_SPECIFIC_ACCESS_DENIED) {
      warnings.push(
        `user "${opts.params.user}" lacks the RELOAD privilege, so lifeboat cannot pause writes for the few milliseconds ` +
          "the two snapshots take to open: row counts are approximate (a range per table); GRANT RELOAD for exact counts",
      );
    } else if (n === ER_LOCK_WAIT_TIMEOUT) {
      warnings.push(
        `FLUSH TABLES WITH READ LOCK waited ${LOCK_WAIT_SECONDS} s for running statements and gave up: row counts are approximate`,
      );
    } else throw err;
  }
  const lockWaitMs = locked ? performance.now() - t0 : undefined;
  let after: MysqlConnection | undefined;
  try {
    // Connected before the tool's snapshot opens, so the second snapshot can follow it within a millisecond.
    if (!locked) after = await connectMysql(opts.params, null);
    await conn.query(SNAPSHOT);
    const early = await countRows(conn, nonTx, opts.signal);
    const answered = relay.release();
    answered.catch(() => {});
    let writePauseMs: number | undefined;
    let inTime = true;
    if (locked) {
      inTime = await within(answered, opts, MAX_HOLD_MS);
      await conn.query("UNLOCK TABLES");
      writePauseMs = performance.now() - t0;
      if (!inTime) {
        warnings.push(`the dump tool's snapshot did not open within ${MAX_HOLD_MS / 1000} s of the lock: row counts are approximate`);
        after = await connectMysql(opts.params, null);
      }
    }
    if (!(await within(answered, opts, START_TIMEOUT_MS))) {
      throw new LifeboatError(code.source, "the server did not answer the dump tool's START TRANSACTION");
    }
    if (after) await beginSnapshot(after);
    const exact = locked && inTime;
    return { counts: exact ? "exact" : "approximate", warnings, writePauseMs, lockWaitMs, early, after, afterExit: false };
  } catch (err) {
    closeQuietly(after);
    if (locked) await conn.query("UNLOCK TABLES").catch(() => {});
    throw err;
  }
}

/** The counts for the inventory, and a range for each table whose count may differ from the dump's. */
export interface Counted {
  tables: Record<string, number>;
  ranges: Record<string, [number, number]>;
}

/**
 * Counts every table after the handshake: transactional tables in lifeboat's snapshot (and in the second one when
 * approximate), non-transactional tables once more after the dump has finished (`dumpFinished`), since the dump read
 * their live rows at some moment in between. Rejects with the server's error or on abort.
 */
export async function countSnapshots(
  opts: { params: MysqlParams; conn: MysqlConnection; tables: readonly TableInfo[]; signal: AbortSignal },
  hs: Handshake,
  dumpFinished: Promise<unknown>,
): Promise<Counted> {
  const tx = opts.tables.filter((t) => t.transactional);
  const nonTx = opts.tables.filter((t) => !t.transactional);
  const first = countRows(opts.conn, tx, opts.signal);
  const second = hs.after ? countRows(hs.after, tx, opts.signal) : undefined;
  second?.catch(() => {});
  const tables = { ...(await first), ...hs.early };
  const ranges: Record<string, [number, number]> = {};
  const widen = (key: string, n: number | undefined) => {
    const base = tables[key] as number;
    if (n !== undefined && n !== base) ranges[key] = [Math.min(base, n), Math.max(base, n)];
  };
  if (second) for (const [key, n] of Object.entries(await second)) widen(key, n);
  if (nonTx.length > 0 || hs.afterExit) {
    await dumpFinished.catch(() => {});
    opts.signal.throwIfAborted();
    const late = await connectMysql(opts.params, null);
    try {
      if (hs.afterExit) {
        await beginSnapshot(late);
        for (const [key, n] of Object.entries(await countRows(late, tx, opts.signal))) widen(key, n);
        await late.query("COMMIT");
      }
      for (const [key, n] of Object.entries(await countRows(late, nonTx, opts.signal))) widen(key, n);
    } finally {
      closeQuietly(late);
    }
  }
  // A range that collapsed to one value still marks a table whose count is not guaranteed: keep it explicit.
  for (const t of nonTx) ranges[t.key] ??= [tables[t.key] as number, tables[t.key] as number];
  if (hs.counts === "approximate") for (const t of tx) ranges[t.key] ??= [tables[t.key] as number, tables[t.key] as number];
  return { tables, ranges };
}
