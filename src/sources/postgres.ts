import { type ChildProcess, execFile, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { PassThrough, pipeline, type Readable } from "node:stream";
import type { ConnectionOptions } from "node:tls";
import pg from "pg";
import type { PostgresSourceConfig } from "../config/schema.ts";
import { ConfigError, code, LifeboatError, messageOf, wrap } from "../errors.ts";
import { redact, Secret, stripPassword } from "../secret.ts";
import type { Dump, DumpInfo, Inventory, Source } from "./source.ts";

/** libpq's sslmode values. */
export type SslMode = "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full";

/** Connection settings read from a postgres:// URL, with libpq's defaults filled in. */
export interface PgParams {
  /** Host name, IP address, or a Unix socket directory (starts with "/"). */
  host: string;
  port: number;
  user: string;
  password?: Secret;
  database: string;
  sslmode: SslMode;
  sslcert?: string;
  sslkey?: string;
  sslrootcert?: string;
  applicationName?: string;
  /** Seconds; 0 waits forever (as libpq). */
  connectTimeout: number;
  /** Server options ("-c search_path=x"). */
  options?: string;
}

const SSL_MODES: readonly SslMode[] = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];
// Query keywords both libpq and node-postgres honour; others are refused rather than honoured by pg_dump only.
const KEYWORDS = new Set(
  "host port user password dbname sslmode sslcert sslkey sslrootcert application_name connect_timeout options".split(" "),
);
// Inherited variables that would make pg_dump connect somewhere the URL does not say; the URL is the only truth.
const CONNECTION_ENV = (
  "PGHOST PGHOSTADDR PGPORT PGUSER PGPASSWORD PGDATABASE PGSERVICE PGSSLMODE PGREQUIRESSL PGSSLCERT PGSSLKEY " +
  "PGSSLROOTCERT PGSSLCRL PGAPPNAME PGCONNECT_TIMEOUT PGOPTIONS PGTARGETSESSIONATTRS"
).split(" ");
const STDERR_LIMIT = 64 * 1024;

/** A connection URL fit for messages: password removed, also from URLs the parser rejects. */
function display(url: string): string {
  return redact(stripPassword(url));
}

/**
 * Parses a postgres:// or postgresql:// URL the way libpq does: percent-decoded user, password and database,
 * a percent-encoded socket directory as host (postgres://u@%2Fvar%2Frun%2Fpostgresql/db), and query keywords
 * (?sslmode=require, ?host=/tmp) overriding the URL's parts. Throws ConfigError for anything else.
 */
export function parsePostgresUrl(url: string): PgParams {
  const bad = (why: string) =>
    new ConfigError(`postgres URL ${display(url)}: ${why}`, { hint: "use postgres://user:password@host:5432/database" });
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw bad("not a valid URL (several hosts in one URL are not supported)");
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") throw bad(`scheme ${u.protocol} is not postgres:`);
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw bad("bad percent-encoding");
    }
  };
  const kw: Record<string, string> = {};
  const host = decode(u.hostname).replace(/^\[(.*)\]$/, "$1");
  if (host) kw.host = host;
  if (u.port) kw.port = u.port;
  if (u.username) kw.user = decode(u.username);
  if (u.password) kw.password = decode(u.password);
  if (u.pathname.length > 1) kw.dbname = decode(u.pathname.slice(1));
  // Split by hand: URLSearchParams turns "+" into a space, libpq does not.
  for (const pair of u.search.slice(1).split("&")) {
    if (!pair) continue;
    const eq = pair.indexOf("=");
    const key = decode(eq < 0 ? pair : pair.slice(0, eq));
    if (!KEYWORDS.has(key)) throw bad(`query parameter "${key}" is not supported`);
    kw[key] = decode(eq < 0 ? "" : pair.slice(eq + 1));
  }
  const port = Number(kw.port ?? 5432);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(`port "${kw.port}" is not a port number`);
  const sslmode = (kw.sslmode ?? "prefer") as SslMode;
  if (!SSL_MODES.includes(sslmode)) throw bad(`sslmode "${kw.sslmode}" is not one of ${SSL_MODES.join(", ")}`);
  const connectTimeout = Number(kw.connect_timeout ?? 30);
  if (!Number.isInteger(connectTimeout) || connectTimeout < 0) throw bad("connect_timeout must be whole seconds");
  const user = kw.user || osUser();
  return {
    host: kw.host || "localhost",
    port,
    user,
    password: kw.password ? new Secret(kw.password) : undefined,
    database: kw.dbname || user,
    sslmode,
    sslcert: kw.sslcert,
    sslkey: kw.sslkey,
    sslrootcert: kw.sslrootcert,
    applicationName: kw.application_name,
    connectTimeout,
    options: kw.options,
  };
}

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? "postgres";
  }
}

/** The libpq environment variables (PGHOST, PGPASSWORD, PGSSLMODE, …) that connect a client tool as the URL says. */
export function pgEnv(url: string | PgParams): Record<string, string> {
  const p = typeof url === "string" ? parsePostgresUrl(url) : url;
  const env: Record<string, string> = {
    PGHOST: p.host,
    PGPORT: String(p.port),
    PGUSER: p.user,
    PGDATABASE: p.database,
    PGSSLMODE: p.sslmode,
    PGCONNECT_TIMEOUT: String(p.connectTimeout),
  };
  if (p.password) env.PGPASSWORD = p.password.reveal();
  if (p.sslcert) env.PGSSLCERT = p.sslcert;
  if (p.sslkey) env.PGSSLKEY = p.sslkey;
  if (p.sslrootcert) env.PGSSLROOTCERT = p.sslrootcert;
  if (p.applicationName) env.PGAPPNAME = p.applicationName;
  if (p.options) env.PGOPTIONS = p.options;
  return env;
}

/** The environment for a child tool: ours without inherited connection variables, plus the URL's. */
function childEnv(p: PgParams): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of CONNECTION_ENV) delete env[k];
  return { ...env, ...pgEnv(p) };
}

/** TLS options for node-postgres with libpq's meaning of sslmode ("require" encrypts without verifying). */
function tlsOptions(p: PgParams): false | ConnectionOptions {
  if (p.sslmode === "disable" || p.sslmode === "allow") return false;
  const read = (file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError(`postgres: cannot read ${file}: ${messageOf(err)}`, { cause: err });
    }
  };
  const verify = p.sslmode.startsWith("verify-") || (p.sslmode === "require" && p.sslrootcert !== undefined);
  return {
    rejectUnauthorized: verify,
    ...(p.sslmode === "verify-full" ? {} : { checkServerIdentity: () => undefined }),
    ...(p.sslrootcert ? { ca: read(p.sslrootcert) } : {}),
    ...(p.sslcert ? { cert: read(p.sslcert) } : {}),
    ...(p.sslkey ? { key: read(p.sslkey) } : {}),
  };
}

/**
 * Opens a node-postgres client as the URL says. "prefer" (libpq's default) tries TLS, then plain, as libpq does.
 * Rejects with a LifeboatError (code SOURCE) telling unreachable server, failed authentication and unknown
 * database apart; the message names the server with the password stripped.
 */
export async function connectPostgres(url: string): Promise<pg.Client> {
  const p = parsePostgresUrl(url);
  const attempt = async (ssl: false | ConnectionOptions) => {
    const client = new pg.Client({
      host: p.host,
      port: p.port,
      user: p.user,
      password: p.password?.reveal(),
      database: p.database,
      ssl,
      options: p.options,
      application_name: p.applicationName ?? "lifeboat",
      connectionTimeoutMillis: p.connectTimeout * 1000,
    });
    try {
      await client.connect();
    } catch (err) {
      client.end().catch(() => {});
      throw err;
    }
    // A lost connection emits 'error' and also fails the running or next query; without a listener it would crash.
    client.on("error", () => {});
    return client;
  };
  try {
    try {
      return await attempt(tlsOptions(p));
    } catch (err) {
      if (p.sslmode !== "prefer" || !/does not support SSL/.test(messageOf(err))) throw err;
      return await attempt(false);
    }
  } catch (err) {
    throw connectError(url, p, err);
  }
}

function connectError(url: string, p: PgParams, err: unknown): LifeboatError {
  if (err instanceof LifeboatError) return err;
  const e = err as { code?: string; errors?: unknown[] };
  // Node reports "localhost" (IPv4 and IPv6 tried) as an AggregateError with an empty message.
  const raw = messageOf(err) || (e.errors?.length ? messageOf(e.errors[0]) : String(e.code ?? "error"));
  const why = redact(raw, p.password ? [p.password.reveal()] : []);
  const where = display(url);
  const network = ["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "EAI_AGAIN", "ENOENT"];
  if ((e.code && network.includes(e.code)) || /timeout|terminated unexpectedly/i.test(raw)) {
    return new LifeboatError(code.source, `postgres ${where}: cannot reach the server at ${p.host}:${p.port}: ${why}`, {
      cause: err,
      hint: "check that the server is running and that host and port in the URL are right",
    });
  }
  if (e.code === "28P01" || e.code === "28000") {
    return new LifeboatError(code.source, `postgres ${where}: authentication failed for user "${p.user}": ${why}`, {
      cause: err,
      hint: "check the user and password in the URL, and that pg_hba.conf lets this user in",
    });
  }
  if (e.code === "3D000") {
    return new LifeboatError(code.source, `postgres ${where}: database "${p.database}" does not exist`, {
      cause: err,
      hint: "check the database name in the URL",
    });
  }
  return new LifeboatError(code.source, `postgres ${where}: connect: ${why}`, { cause: err });
}

// Leaf tables only: partitions are relkind 'r' and hold the rows; their partitioned parents ('p') are skipped, so
// every row is counted once. Temporary schemas of other sessions and TOAST are not data pg_dump dumps.
const LIST_TABLES = `
  select format('%I.%I', n.nspname, c.relname) as name
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where c.relkind = 'r'
     and n.nspname not in ('pg_catalog', 'information_schema')
     and n.nspname !~ '^pg_(toast|temp_)'
   order by n.nspname collate "C", c.relname collate "C"`;

/**
 * Counts the rows of every user table (leaf partitions included, partitioned parents skipped) with exact
 * count(*), keyed by format('%I.%I', schema, table), e.g. public.orders or "Sales"."Order Items". Runs in the
 * client's current transaction, so inside a snapshot the counts describe that instant. Drills call it on the
 * restored database to get comparable keys. Rejects with the server's error; stops between tables when aborted.
 */
export async function countTables(client: pg.ClientBase, signal?: AbortSignal): Promise<Record<string, number>> {
  const names = (await client.query<{ name: string }>(LIST_TABLES)).rows.map((r) => r.name);
  const counts: Record<string, number> = {};
  for (const name of names) {
    signal?.throwIfAborted();
    // name is quoted by format('%I'), so interpolating it is safe.
    const r = await client.query<{ n: string }>(`select count(*)::text as n from ${name}`);
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
const REFUSED_ARGS = "-f --file -F --format --snapshot -j --jobs -d --dbname -h --host -p --port -U --username -W --password".split(" ");
// Options that leave tables (or their rows) out of the dump while the inventory counts every table.
const FILTER_ARG = /^(-[tTnNs]|--(table|exclude-table|schema|exclude-schema|exclude-table-data|schema-only)\b)/;

function checkDumpArgs(args: readonly string[]): void {
  for (const arg of args) {
    const refused = REFUSED_ARGS.find((f) => (f.startsWith("--") ? arg === f || arg.startsWith(`${f}=`) : arg.startsWith(f)));
    if (refused) {
      throw new ConfigError(`postgres source: pgDumpArgs must not contain ${refused} (got "${arg}")`, {
        hint: "lifeboat sets the output, format, snapshot and connection itself; put the connection in the URL",
      });
    }
  }
}

/** Keeps the last bytes a child writes to stderr, bounded. */
function stderrTail(stream: Readable): () => string {
  let buf = Buffer.alloc(0);
  stream.on("data", (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    if (buf.length > STDERR_LIMIT) buf = buf.subarray(buf.length - STDERR_LIMIT);
  });
  return () => buf.toString("utf8").trim();
}

interface Exit {
  status: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/** Resolves once the child is gone; never rejects. */
function exitOf(child: ChildProcess): Promise<Exit> {
  return new Promise((resolve) => {
    child.on("error", (error) => {
      if (child.pid === undefined) resolve({ status: null, signal: null, error });
    });
    child.on("close", (status, signal) => resolve({ status, signal }));
  });
}

function exitWhy(exit: Exit): string {
  if (exit.error) return `could not run (${exit.error.message})`;
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.status}`;
}

/** Kills a child with SIGTERM, then SIGKILL if it lingers. */
function terminate(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"), 5000).unref();
}

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
    const aborted = () => new LifeboatError(code.aborted, `postgres ${where}: dump aborted`);
    if (signal.aborted) throw aborted();

    const version = pgDumpVersion();
    version.catch(() => {});
    const client = await connectPostgres(url);
    let session: { snapshot: string; serverVersion: string; pid: number };
    try {
      await client.query("begin isolation level repeatable read, read only");
      const r = await client.query(
        "select pg_export_snapshot() as snapshot, current_setting('server_version') as version, pg_backend_pid() as pid",
      );
      session = { snapshot: r.rows[0].snapshot, serverVersion: r.rows[0].version, pid: r.rows[0].pid };
      await version;
      if (signal.aborted) throw aborted();
    } catch (err) {
      await client.end().catch(() => {});
      throw wrap(`postgres ${where}: start dump`, err, code.source);
    }

    const args = ["-Fc", "-Z0", `--snapshot=${session.snapshot}`, "--no-password", ...this.#args];
    const child = spawn("pg_dump", args, { env: childEnv(p), stdio: ["ignore", "pipe", "pipe"] });
    const stderr = stderrTail(child.stderr as Readable);
    const exited = exitOf(child);
    // The stream ends only after the exit code is known, so a failed pg_dump never looks like a short, clean dump.
    const stream = new PassThrough({ highWaterMark: 1024 * 1024 });
    // The error is also done's rejection: a consumer that only awaits done must not crash on the stream's error.
    stream.on("error", () => {});
    child.stdout?.pipe(stream, { end: false });
    let consumerGone = false;
    stream.on("close", () => {
      if (child.exitCode === null && child.signalCode === null) {
        consumerGone = true;
        terminate(child);
      }
    });

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

    const failure = exited.then((exit): LifeboatError | undefined => {
      let err: LifeboatError | undefined;
      if (signal.aborted) err = aborted();
      else if (consumerGone) err = new LifeboatError(code.source, `postgres ${where}: the dump stream was closed before pg_dump finished`);
      else if (exit.error || exit.status !== 0) {
        const text = redact(stderr(), secrets);
        err = new LifeboatError(code.source, `postgres ${where}: pg_dump ${exitWhy(exit)}${text ? `: ${text}` : ""}`, {
          cause: exit.error,
          hint: /version mismatch/.test(text) ? "install a pg_dump of the server's major version or newer" : undefined,
        });
      }
      if (err) stream.destroy(err);
      else stream.end();
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
      const filters = this.#args.filter((a) => FILTER_ARG.test(a));
      if (filters.length) {
        warnings.push(
          `pgDumpArgs ${filters.join(" ")} leave tables or rows out of the dump, but the inventory counts every table: an exact row-count drill will report those tables`,
        );
      }
      return {
        tool: await version,
        warnings,
        details: { serverVersion: session.serverVersion, database: p.database, host: p.host, port: p.port },
      };
    })();
    done.catch(() => {});

    return { artifact: "db.pgdump", format: "pg_dump-custom", stream, inventory, done };
  }
}

/** Cancels a running query of another session (a count(*) the abort should not wait for). Best effort. */
async function cancelBackend(url: string, pid: number): Promise<void> {
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
  if (signal?.aborted) throw new LifeboatError(code.aborted, `restore into ${where}: aborted`);
  // A conninfo string, so a database name containing "=" is not taken for one; the rest comes from the environment.
  const dbname = `dbname='${p.database.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
  const args = ["--no-owner", "--no-privileges", "--exit-on-error", "--no-password", `--dbname=${dbname}`];
  if (opts.clean) args.push("--clean", "--if-exists");
  if (opts.file !== undefined) args.push(`--jobs=${opts.jobs ?? 1}`, opts.file);
  const child = spawn("pg_restore", args, { env: childEnv(p), stdio: [opts.input ? "pipe" : "ignore", "ignore", "pipe"] });
  const stderr = stderrTail(child.stderr as Readable);
  const exited = exitOf(child);
  let inputError: unknown;
  if (opts.input && child.stdin) {
    pipeline(opts.input, child.stdin, (err) => {
      // EPIPE and friends only mean pg_restore stopped reading; its exit code says why.
      const errCode = (err as { code?: string } | undefined)?.code;
      if (err && !["EPIPE", "ERR_STREAM_PREMATURE_CLOSE", "ERR_STREAM_DESTROYED"].includes(errCode ?? "")) {
        inputError = err;
        terminate(child);
      }
    });
  }
  const onAbort = () => terminate(child);
  signal?.addEventListener("abort", onAbort, { once: true });
  const exit = await exited;
  signal?.removeEventListener("abort", onAbort);
  if (signal?.aborted) throw new LifeboatError(code.aborted, `restore into ${where}: aborted`);
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
