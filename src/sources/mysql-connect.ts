import { readFileSync } from "node:fs";
import type mysql from "mysql2/promise";
import { ConfigError, code, LifeboatError, messageOf } from "../errors.ts";
import { displayUrl, redact, Secret } from "../secret.ts";
import { osUser, parseConnectionUrl } from "./connection-url.ts";

/** How a connection uses TLS: not at all (the default), encrypted without checks, or verified (CA, CA and host name). */
export type MysqlTlsMode = "DISABLED" | "REQUIRED" | "VERIFY_CA" | "VERIFY_IDENTITY";

/** Connection settings read from a mysql:// URL. */
export interface MysqlParams {
  host: string;
  port: number;
  /** A Unix socket path (?socket=/run/mysqld/mysqld.sock); when set, host and port are not used. */
  socket?: string;
  user: string;
  password?: Secret;
  /** The URL's database, if it names one. */
  database?: string;
  tls: MysqlTlsMode;
  /** PEM file of the CA that signed the server's certificate (?ssl-ca=…). */
  sslCa?: string;
  /** Seconds. */
  connectTimeout: number;
}

const TLS_MODES: readonly MysqlTlsMode[] = ["DISABLED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"];
const KEYWORDS = new Set(["ssl-mode", "ssl-ca", "socket", "connect-timeout"]);

/** A MySQL URL fit for messages (see displayUrl). */
export const displayMysqlUrl = displayUrl;

/**
 * Parses mysql://user:password@host:3306/database (or mariadb://) with percent-decoded parts and the query keywords
 * ssl-mode (DISABLED, the default, REQUIRED, VERIFY_CA, VERIFY_IDENTITY), ssl-ca, socket and connect-timeout.
 * Throws ConfigError for anything else, so a setting is never honoured by one client and ignored by another.
 */
export function parseMysqlUrl(url: string): MysqlParams {
  const {
    url: u,
    query: kw,
    decode,
    bad,
  } = parseConnectionUrl(url, {
    kind: "mysql",
    schemes: ["mysql:", "mariadb:"],
    keywords: KEYWORDS,
    example: "mysql://user:password@host:3306/database",
  });
  const port = Number(u.port || 3306);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(`port "${u.port}" is not a port number`);
  const tls = (kw["ssl-mode"] ?? "DISABLED").toUpperCase() as MysqlTlsMode;
  if (!TLS_MODES.includes(tls)) throw bad(`ssl-mode "${kw["ssl-mode"]}" is not one of ${TLS_MODES.join(", ")}`);
  const connectTimeout = Number(kw["connect-timeout"] ?? 30);
  if (!Number.isInteger(connectTimeout) || connectTimeout < 1) throw bad("connect-timeout must be whole seconds");
  // A "/" inside a name is written %2F: only a raw one makes a second path segment.
  if (u.pathname.slice(1).includes("/")) throw bad("the path must be a single database name (write a / inside a name as %2F)");
  const database = u.pathname.length > 1 ? decode(u.pathname.slice(1)) : undefined;
  const host = decode(u.hostname).replace(/^\[(.*)\]$/, "$1");
  if (!host && !kw.socket) throw bad("name the host");
  return {
    host: host || "localhost",
    port,
    socket: kw.socket || undefined,
    // As the MySQL clients do: no user in the URL means the operating-system user.
    user: u.username ? decode(u.username) : osUser("root"),
    password: u.password ? new Secret(decode(u.password)) : undefined,
    database,
    tls,
    sslCa: kw["ssl-ca"] || undefined,
    connectTimeout,
  };
}

/** Where the params point, for messages: "host:port" or the socket path. */
export function serverOf(p: MysqlParams): string {
  return p.socket ?? `${p.host}:${p.port}`;
}

/** The secrets to scrub from messages and tool output. */
export function secretsOf(p: MysqlParams): string[] {
  return p.password ? [p.password.reveal()] : [];
}

/** A mysql2 connection with the promise API. */
export type MysqlConnection = mysql.Connection;

/**
 * Opens a mysql2 connection as the params say, on `database` (null: none, undefined: the URL's). Rejects with a
 * LifeboatError (code SOURCE) that tells an unreachable server, failed authentication and an unknown database
 * apart; the message names the server and never the password.
 */
export async function connectMysql(p: MysqlParams, database: string | null | undefined = undefined): Promise<MysqlConnection> {
  const db = database === null ? undefined : (database ?? p.database);
  let ssl: mysql.SslOptions | undefined;
  if (p.tls !== "DISABLED") {
    let ca: Buffer | undefined;
    try {
      ca = p.sslCa ? readFileSync(p.sslCa) : undefined;
    } catch (err) {
      throw new ConfigError(`mysql: cannot read ssl-ca ${p.sslCa}: ${messageOf(err)}`, { cause: err });
    }
    ssl = {
      ca,
      rejectUnauthorized: p.tls !== "REQUIRED",
      ...(p.tls === "VERIFY_CA" ? { checkServerIdentity: () => undefined } : {}),
    } as mysql.SslOptions;
  }
  try {
    // Loaded on first use: the driver is a sizeable share of the CLI's start-up, which most jobs do not need.
    const { default: driver } = await import("mysql2/promise");
    const conn = await driver.createConnection({
      ...(p.socket ? { socketPath: p.socket } : { host: p.host, port: p.port }),
      user: p.user,
      password: p.password?.reveal(),
      database: db,
      ssl,
      connectTimeout: p.connectTimeout * 1000,
      // Counts and checks compare exact numbers: BIGINT and DECIMAL arrive as strings, never as rounded floats.
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
    });
    // A lost connection emits 'error' and also fails the running or next query; without a listener it would crash.
    conn.on("error", () => {});
    return conn;
  } catch (err) {
    throw connectError(p, db, err);
  }
}

function connectError(p: MysqlParams, db: string | undefined, err: unknown): LifeboatError {
  const e = err as { code?: string; errors?: unknown[] };
  const raw = messageOf(err) || (e.errors?.length ? messageOf(e.errors[0]) : String(e.code ?? "error"));
  const why = redact(raw, secretsOf(p));
  const where = `mysql ${p.user}@${serverOf(p)}`;
  const network = ["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "EAI_AGAIN", "ENOENT", "ECONNRESET"];
  if ((e.code && network.includes(e.code)) || e.code === "PROTOCOL_CONNECTION_LOST") {
    return new LifeboatError(code.source, `${where}: cannot reach the server at ${serverOf(p)}: ${why}`, {
      cause: err,
      hint: "check that the server is running and that host and port in the URL are right",
    });
  }
  if (e.code === "ER_ACCESS_DENIED_ERROR" || e.code === "ER_HOST_NOT_PRIVILEGED" || e.code === "ER_ACCESS_DENIED_NO_PASSWORD_ERROR") {
    return new LifeboatError(code.source, `${where}: authentication failed for user "${p.user}": ${why}`, {
      cause: err,
      hint: "check the user and password in the URL, and the host the user may connect from",
    });
  }
  if (e.code === "ER_BAD_DB_ERROR" || e.code === "ER_DBACCESS_DENIED_ERROR") {
    return new LifeboatError(code.source, `${where}: database "${db}" does not exist or user "${p.user}" may not use it`, {
      cause: err,
      hint: "check the database name in the URL and the user's grants",
    });
  }
  return new LifeboatError(code.source, `${where}: connect: ${why}`, { cause: err });
}

/** Quotes an identifier with backticks, doubling any inside: `Order`, `we``ird`. */
export function quoteId(name: string): string {
  return `\`${name.replace(/`/g, "``")}\``;
}

/** Ends a connection without waiting for the server; for cleanup paths. */
export function closeQuietly(conn: MysqlConnection | undefined): void {
  try {
    conn?.destroy();
  } catch {
    // already gone
  }
}

/** Ends the statement running on another session (a count(*) an abort should not wait for). Best effort. */
export async function killQuery(p: MysqlParams, threadId: number): Promise<void> {
  const conn = await connectMysql(p, null);
  try {
    await conn.query(`KILL QUERY ${Number(threadId)}`);
  } finally {
    closeQuietly(conn);
  }
}

/** The MySQL error number of a server error, if it is one. */
export function errnoOf(err: unknown): number | undefined {
  const n = (err as { errno?: unknown } | undefined)?.errno;
  return typeof n === "number" ? n : undefined;
}

const ER_UNKNOWN_COLLATION = 1273;

/**
 * Creates a database with the source's default collation, so its routines compare and new columns sort as they did
 * there (a function's `x = 'abc'` differs between utf8mb4_bin and utf8mb4_general_ci). A collation the server does
 * not know, or none recorded, falls back to the server's default.
 */
export async function createDatabaseLike(
  conn: MysqlConnection,
  name: string,
  collation: unknown,
  opts: { ifNotExists?: boolean } = {},
): Promise<void> {
  const plain = `CREATE DATABASE ${opts.ifNotExists ? "IF NOT EXISTS " : ""}${quoteId(name)}`;
  const c = typeof collation === "string" ? collation : "";
  if (!/^[A-Za-z0-9_]+$/.test(c)) {
    await conn.query(plain);
    return;
  }
  await conn
    .query(`${plain} COLLATE ${c}`)
    .catch((err) => (errnoOf(err) === ER_UNKNOWN_COLLATION ? conn.query(plain) : Promise.reject(err)));
}
