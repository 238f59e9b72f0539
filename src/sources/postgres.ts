import { execFile, spawn } from "node:child_process";
import type { Readable } from "node:stream";
import type pg from "pg";
import type { PostgresSourceConfig } from "../config/schema.ts";
import { abortedError, ConfigError, code, LifeboatError, wrap } from "../errors.ts";
import { redact, Secret } from "../secret.ts";
import { childEnv, connectPostgres, display, type PgParams, parsePostgresUrl } from "./postgres-connect.ts";
import { blockBufferPrefix, exitOf, exitWhy, feedTool, stderrTail, ToolOutput, terminate } from "./process.ts";
import type { Dump, DumpInfo, Inventory, Source } from "./source.ts";
import { selectsOption } from "./tool-options.ts";

export { connectPostgres, type PgParams, parsePostgresUrl, pgEnv, type SslMode } from "./postgres-connect.ts";

const LIST_TABLES = `
  select format('%I.%I', n.nspname, c.relname) as name
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where c.relkind = 'r'
     and n.nspname not in ('pg_catalog', 'information_schema')
     and n.nspname !~ '^pg_(toast|temp_)'
   order by n.nspname collate "C", c.relname collate "C"`;

/**
 * Counts the rows of every user table (leaf partitions included, partitioned parents skipped) with exact
 * count(*) of the table's own rows (ONLY: an inheritance parent's children count as tables of their own), keyed by
 * format('%I.%I', schema, table), e.g. public.orders or "Sales"."Order Items". Runs in the client's current
 * transaction, so inside a snapshot the counts describe that instant. Drills call it on the restored database to
 * get comparable keys. Rejects with the server's error; stops between tables when aborted.
 */
export async function countTables(client: pg.ClientBase, signal?: AbortSignal): Promise<Record<string, number>> {
  const names = (await client.query<{ name: string }>(LIST_TABLES)).rows.map((r) => r.name);
  const counts: Record<string, number> = {};
  for (const name of names) {
    signal?.throwIfAborted();
    // name is quoted by format('%I'), so interpolating it is safe.
    // ONLY: an inheritance parent's own rows; its children are counted as tables of their own (and a foreign child
    // would read data outside the snapshot).
    const r = await client.query<{ n: string }>(`select count(*)::text as n from only ${name}`);
    counts[name] = Number(r.rows[0]?.n);
  }
  return counts;
}

/** The first line of `pg_dump --version`, e.g. "pg_dump (PostgreSQL) 15.20". Rejects (code SOURCE) if it cannot run. */
export function pgDumpVersion(): Promise<string> {
  return toolVersion("pg_dump");
}

function toolVersion(tool: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(tool, ["--version"], { timeout: 10_000 }, (err, stdout) => {
      if (err) {
        reject(
          new LifeboatError(code.source, `cannot run ${tool}: ${err.message}`, {
            cause: err,
            hint: "install the PostgreSQL client tools (postgresql-client), the server's major version or newer",
          }),
        );
      } else resolve(stdout.split("\n")[0]?.trim() ?? "");
    });
  });
}

// Options that would send the dump elsewhere, change its format, or connect elsewhere than the URL says.
const REFUSED_LONG = ["file", "format", "snapshot", "jobs", "dbname", "host", "port", "username", "password"];
const REFUSED_SHORT = "fFjdhpUW";
// pg_dump's short options that take a value: the rest of a cluster ("-tfoo") is that value.
const PG_RULES = { shortWithValue: "dEefFhjnNpStTUZ" };
// Options that leave tables (or their rows) out of the dump while the inventory counts every table.
const FILTER_LONG = [
  "table",
  "exclude-table",
  "schema",
  "exclude-schema",
  "exclude-table-data",
  "schema-only",
  "table-and-children",
  "exclude-table-and-children",
  "exclude-table-data-and-children",
  "no-unlogged-table-data",
  "no-data",
];
const isFilter = (a: string) => selectsOption(a, FILTER_LONG, "tTnNs", PG_RULES) !== undefined;

function checkDumpArgs(args: readonly string[]): void {
  for (const arg of args) {
    const dataOnly = selectsOption(arg, ["data-only"], "a", PG_RULES);
    if (dataOnly) {
      throw new ConfigError(`postgres source: pgDumpArgs must not contain ${dataOnly} (got "${arg}")`, {
        hint: "a dump without the schema cannot be restored into a new database, which is what drills and restores do: remove it",
      });
    }
    // Read as pg_dump reads it: "--fil=x" is --file, "-vf x" is -v -f.
    const refused = selectsOption(arg, REFUSED_LONG, REFUSED_SHORT, PG_RULES);
    if (refused) {
      throw new ConfigError(`postgres source: pgDumpArgs must not contain ${refused} (got "${arg}")`, {
        hint: "lifeboat sets the output, format, snapshot and connection itself; put the connection in the URL",
      });
    }
  }
}

/** Keeps the last bytes a child writes to stderr, bounded. */
/**
 * A PostgreSQL database, dumped with pg_dump's custom format (uncompressed; the pipeline compresses) and counted
 * table by table in the same exported snapshot, so the inventory is exact for that dump.
 */
export class PostgresSource implements Source {
  readonly kind = "postgres";
  readonly #url: Secret;
  readonly #params: PgParams;
  readonly #args: readonly string[];

  /** Checks the URL and pgDumpArgs; throws ConfigError for either. Connects only when dump() is called. */
  constructor(config: PostgresSourceConfig) {
    this.#url = new Secret(config.url);
    this.#params = parsePostgresUrl(config.url);
    checkDumpArgs(config.pgDumpArgs);
    this.#args = config.pgDumpArgs;
  }

  /**
   * Connects, opens a REPEATABLE READ, READ ONLY transaction, exports its snapshot, starts pg_dump on that snapshot
   * and counts every table in it. Rejects (code SOURCE) if the server cannot be reached or pg_dump cannot run.
   * The stream ends only after pg_dump exited with 0, and is destroyed with done's error otherwise. The session
   * is held until pg_dump and the counts are finished, then rolled back and closed, also on abort.
   */
  async dump(signal: AbortSignal): Promise<Dump> {
    const url = this.#url.reveal();
    const p = this.#params;
    const where = display(url);
    const secrets = p.password ? [p.password.reveal()] : [];
    const aborted = () => abortedError(`postgres ${where}: dump`, signal);
    if (signal.aborted) throw aborted();

    const version = pgDumpVersion();
    version.catch(() => {});
    const prefix = blockBufferPrefix();
    const client = await connectPostgres(url);
    let session: { snapshot: string; serverVersion: string; pid: number; encoding: string };
    try {
      await client.query("begin isolation level repeatable read, read only");
      const r = await client.query(
        "select pg_export_snapshot() as snapshot, current_setting('server_version') as version, pg_backend_pid() as pid, current_setting('server_encoding') as encoding",
      );
      const row = r.rows[0];
      session = { snapshot: row.snapshot, serverVersion: row.version, pid: row.pid, encoding: row.encoding };
      if (signal.aborted) throw aborted();
    } catch (err) {
      await client.end().catch(() => {});
      throw wrap(`postgres ${where}: start dump`, err, code.source);
    }

    const args = ["-Fc", "-Z0", `--snapshot=${session.snapshot}`, "--no-password", ...this.#args];
    const [command = "pg_dump", ...rest] = [...(await prefix), "pg_dump", ...args];
    const child = spawn(command, rest, { env: childEnv(p), stdio: ["ignore", "pipe", "pipe"] });
    const stderr = stderrTail(child.stderr as Readable);
    const exited = exitOf(child);
    // The stream ends only after the exit code is known, so a failed pg_dump never looks like a short, clean dump.
    const output = new ToolOutput(child);
    let counting = true;
    const onAbort = () => {
      terminate(child);
      // Only while counting: afterwards the session may be gone and its pid reused by someone else's backend.
      if (counting) cancelBackend(url, session.pid).catch(() => {});
    };
    signal.addEventListener("abort", onAbort, { once: true });

    const inventory: Promise<Inventory> = countTables(client, signal).then(
      (tables) => ({ kind: "postgres", counts: "exact", tables, database: p.database, serverVersion: session.serverVersion }),
      (err) => {
        throw signal.aborted ? aborted() : wrap(`postgres ${where}: count rows`, err, code.source);
      },
    );
    inventory
      .finally(() => {
        counting = false;
      })
      .catch(() => {});

    const failure = exited.then(async (exit): Promise<LifeboatError | undefined> => {
      let err: LifeboatError | undefined;
      // pg_dump --version runs beside the dump rather than before it (Debian's pg_dump is a Perl wrapper: tens of ms
      // of start-up nothing overlaps); when pg_dump could not start, its error carries the install hint. Through
      // stdbuf, a missing pg_dump is stdbuf's exit code 127 rather than a spawn error.
      const failed = exit.error !== undefined || exit.status !== 0;
      const notRunnable = failed
        ? await version.then(
            () => undefined,
            (e: unknown) => e,
          )
        : undefined;
      if (signal.aborted) err = aborted();
      else if (notRunnable) err = wrap(`postgres ${where}: start dump`, notRunnable, code.source);
      else if (output.consumerGone)
        err = new LifeboatError(code.source, `postgres ${where}: the dump stream was closed before pg_dump finished`);
      else if (failed) {
        const text = redact(stderr(), secrets);
        err = new LifeboatError(code.source, `postgres ${where}: pg_dump ${exitWhy(exit)}${text ? `: ${text}` : ""}`, {
          cause: exit.error,
          hint: /version mismatch/.test(text) ? "install a pg_dump of the server's major version or newer" : undefined,
        });
      }
      output.settle(err);
      return err;
    });

    const done = (async (): Promise<DumpInfo> => {
      const err = await failure;
      // The exporting transaction must outlive the counts (and pg_dump's import of the snapshot): end it last.
      await inventory.catch(() => {});
      await client.query("rollback").catch(() => {});
      await client.end().catch(() => {});
      signal.removeEventListener("abort", onAbort);
      if (err) throw err;
      const warnings = redact(stderr(), secrets).split("\n").filter(Boolean);
      if (this.#args.some((a) => selectsOption(a, ["enable-row-security"], "", PG_RULES))) {
        warnings.push(
          "pgDumpArgs --enable-row-security: the dump and the counts hold only the rows the backup role's row-level security policies let it see; rows hidden from it are in neither (back up as a role with BYPASSRLS for every row)",
        );
      }
      const filters = this.#args.filter(isFilter);
      if (filters.length) {
        warnings.push(
          `pgDumpArgs ${filters.join(" ")} leave tables or rows out of the dump, but the inventory counts every table: an exact row-count drill will report those tables`,
        );
      }
      return {
        tool: await version,
        warnings,
        details: { serverVersion: session.serverVersion, database: p.database, host: p.host, port: p.port, encoding: session.encoding },
      };
    })();
    done.catch(() => {});

    return {
      artifact: "db.pgdump",
      format: "pg_dump-custom",
      get stream() {
        return output.stream;
      },
      handOff: () => output.handOff(),
      inventory,
      done,
    };
  }
}

/** Cancels a running query of another session (a count(*) the abort should not wait for). Best effort. */
export async function cancelBackend(url: string, pid: number): Promise<void> {
  const c = await connectPostgres(url);
  try {
    await c.query("select pg_cancel_backend($1)", [pid]);
  } finally {
    await c.end();
  }
}

/** Where restorePostgres reads the dump: a stream (one job), or a file (seekable, so pg_restore can run jobs). */
export type RestoreInput = { input: Readable; file?: undefined; jobs?: undefined } | { file: string; jobs?: number; input?: undefined };

/** Options of restorePostgres. */
export type RestorePostgresOptions = RestoreInput & {
  /** The database to restore into; it must exist. */
  url: string;
  /** Drop the dump's objects before recreating them (--clean --if-exists): for a confirmed overwrite only. */
  clean?: boolean;
  signal?: AbortSignal;
};

/**
 * Restores a pg_dump custom-format dump into an existing database with pg_restore (--no-owner --no-privileges
 * --exit-on-error). It does not check that the database is empty or safe to write: callers guard that. Resolves
 * with pg_restore's warnings; rejects with the input stream's error (wrapped, code kept) if reading failed, with
 * code SOURCE and pg_restore's stderr (redacted) if it failed, with code ABORTED on abort.
 */
export async function restorePostgres(opts: RestorePostgresOptions): Promise<{ warnings: string[] }> {
  const p = parsePostgresUrl(opts.url);
  const where = display(opts.url);
  const secrets = p.password ? [p.password.reveal()] : [];
  const signal = opts.signal;
  if (signal?.aborted) throw abortedError(`restore into ${where}`, signal);
  // A conninfo string, so a database name containing "=" is not taken for one; the rest comes from the environment.
  const dbname = `dbname='${p.database.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
  const args = ["--no-owner", "--no-privileges", "--exit-on-error", "--no-password", `--dbname=${dbname}`];
  if (opts.clean) args.push("--clean", "--if-exists");
  if (opts.file !== undefined) args.push(`--jobs=${opts.jobs ?? 1}`, opts.file);
  const child = spawn("pg_restore", args, { env: childEnv(p), stdio: [opts.input ? "pipe" : "ignore", "ignore", "pipe"] });
  const stderr = stderrTail(child.stderr as Readable);
  const { exit, inputError, aborted } = await feedTool(child, opts.input ? [opts.input] : [], signal);
  if (aborted) throw abortedError(`restore into ${where}`, signal);
  if (inputError) throw wrap(`restore into ${where}: read the dump`, inputError, code.source);
  const text = redact(stderr(), secrets);
  if (exit.error || exit.status !== 0) {
    throw new LifeboatError(code.source, `restore into ${where}: pg_restore ${exitWhy(exit)}${text ? `: ${text}` : ""}`, {
      cause: exit.error,
      hint: "pg_restore stopped at the first error; the database holds a partial restore",
    });
  }
  return { warnings: text.split("\n").filter(Boolean) };
}
