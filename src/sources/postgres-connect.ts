import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import pg from "pg";
import { ConfigError, code, LifeboatError, messageOf } from "../errors.ts";
import { displayUrl, redact, Secret } from "../secret.ts";
import { osUser, parseConnectionUrl } from "./connection-url.ts";

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

/** A PostgreSQL URL fit for messages (see displayUrl). */
export const display = displayUrl;

/**
 * Parses a postgres:// or postgresql:// URL the way libpq does: percent-decoded user, password and database,
 * a percent-encoded socket directory as host (postgres://u@%2Fvar%2Frun%2Fpostgresql/db), and query keywords
 * (?sslmode=require, ?host=/tmp) overriding the URL's parts. Throws ConfigError for anything else.
 */
export function parsePostgresUrl(url: string): PgParams {
  const {
    url: u,
    query,
    decode,
    bad,
  } = parseConnectionUrl(url, {
    kind: "postgres",
    schemes: ["postgres:", "postgresql:"],
    keywords: KEYWORDS,
    invalidNote: "several hosts in one URL are not supported",
    example: "postgres://user:password@host:5432/database",
  });
  const kw: Record<string, string> = {};
  const host = decode(u.hostname).replace(/^\[(.*)\]$/, "$1");
  if (host) kw.host = host;
  if (u.port) kw.port = u.port;
  if (u.username) kw.user = decode(u.username);
  if (u.password) kw.password = decode(u.password);
  if (u.pathname.length > 1) kw.dbname = decode(u.pathname.slice(1));
  // As libpq: query keywords override the URL's parts.
  Object.assign(kw, query);
  const port = Number(kw.port ?? 5432);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(`port "${kw.port}" is not a port number`);
  const sslmode = (kw.sslmode ?? "prefer") as SslMode;
  if (!SSL_MODES.includes(sslmode)) throw bad(`sslmode "${kw.sslmode}" is not one of ${SSL_MODES.join(", ")}`);
  const connectTimeout = Number(kw.connect_timeout ?? 30);
  if (!Number.isInteger(connectTimeout) || connectTimeout < 0) throw bad("connect_timeout must be whole seconds");
  const user = kw.user || osUser("postgres");
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
export function childEnv(p: PgParams): NodeJS.ProcessEnv {
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
  if (/error establishing an SSL connection|unexpected .* message from backend|Received unexpected/i.test(raw)) {
    // What answered does not speak PostgreSQL's protocol: another server on that port.
    return new LifeboatError(code.source, `postgres ${where}: the server at ${p.host}:${p.port} does not answer as PostgreSQL: ${why}`, {
      cause: err,
      hint: `check the port in the URL (PostgreSQL listens on 5432 by default; ${p.port === 3306 ? "3306 is MySQL's" : "is another service there?"})`,
    });
  }
  return new LifeboatError(code.source, `postgres ${where}: connect: ${why}`, { cause: err });
}

// Leaf tables only: partitions are relkind 'r' and hold the rows; their partitioned parents ('p') are skipped, so
// every row is counted once. Temporary schemas of other sessions and TOAST are not data pg_dump dumps.
