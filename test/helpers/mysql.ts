import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import mysql from "mysql2/promise";
import type { Manifest } from "../../src/catalog/manifest.ts";
import { type Config, configSchema, type Drill, drillSchema, type Job, jobSchema } from "../../src/config/schema.ts";
import type { ArtifactInput, ScratchContext } from "../../src/drills/kind.ts";

/** The test server's admin URL (root, no password, loopback); override with LIFEBOAT_TEST_MYSQL_URL. */
export const adminUrl = process.env.LIFEBOAT_TEST_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/";

/** A mysql2 connection that accepts several statements per query (fixtures). */
export async function connect(url: string = adminUrl, database?: string): Promise<mysql.Connection> {
  const u = new URL(url);
  const conn = await mysql.createConnection({
    host: u.hostname,
    port: Number(u.port || 3306),
    user: decodeURIComponent(u.username),
    password: u.password ? decodeURIComponent(u.password) : undefined,
    database: database ?? (u.pathname.length > 1 ? decodeURIComponent(u.pathname.slice(1)) : undefined),
    multipleStatements: true,
  });
  conn.on("error", () => {});
  return conn;
}

/** Runs fn with an admin connection, then ends it. */
export async function withAdmin<T>(fn: (conn: mysql.Connection) => Promise<T>): Promise<T> {
  const conn = await connect();
  try {
    return await fn(conn);
  } finally {
    conn.destroy();
  }
}

/** A throwaway database that only this test file uses. */
export interface TestDatabase {
  /** Its random name, lifeboat_test_<hex>. */
  name: string;
  /** Admin URL with the database as path. */
  url: string;
  /** A connection on the database (several statements per query allowed); drop() ends any still open. */
  connection(): Promise<mysql.Connection>;
  /** Runs SQL (several statements allowed) on a short-lived connection. */
  run(sql: string): Promise<void>;
  /** Ends open connections and drops the database. Idempotent. */
  drop(): Promise<void>;
}

function withPath(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/**
 * Creates a randomly named empty database (`<prefix>_<random>`) on the test server. Tests touch no other database:
 * drop() removes exactly the one created here, by the name generated here.
 */
export async function createTestDatabase(prefix = "lifeboat_test"): Promise<TestDatabase> {
  if (!/^lifeboat_test[a-z0-9_]{0,20}$/.test(prefix)) throw new Error(`test database prefix "${prefix}" must start with lifeboat_test`);
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  await withAdmin((c) => c.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`));
  const url = withPath(adminUrl, name);
  const open = new Set<mysql.Connection>();
  return {
    name,
    url,
    async connection() {
      const c = await connect(adminUrl, name);
      open.add(c);
      return c;
    },
    async run(sql: string) {
      const c = await connect(adminUrl, name);
      try {
        await c.query(sql);
      } finally {
        c.destroy();
      }
    },
    async drop() {
      for (const c of open) c.destroy();
      open.clear();
      await withAdmin((c) => c.query(`DROP DATABASE IF EXISTS \`${name}\``));
    },
  };
}

/** A throwaway account, lifeboat_test_<hex>@'%'. */
export interface TestUser {
  name: string;
  password: string;
  /** mysql://name:password@host:port/<database> on the test server. */
  url(database?: string): string;
  /** Drops the account. Idempotent. */
  drop(): Promise<void>;
}

/**
 * Creates an account with the given password and runs the given GRANT statements for it ("{user}" stands for the
 * account). Only the account created here is ever dropped.
 */
export async function createTestUser(password: string, grants: string[]): Promise<TestUser> {
  const name = `lifeboat_test_${randomBytes(5).toString("hex")}`;
  const account = `'${name}'@'%'`;
  await withAdmin(async (c) => {
    await c.query(`CREATE USER ${account} IDENTIFIED BY ${c.escape(password)}`);
    for (const g of grants) await c.query(g.replaceAll("{user}", account));
  });
  return {
    name,
    password,
    url(database?: string) {
      const u = new URL(adminUrl);
      u.username = name;
      u.password = encodeURIComponent(password);
      u.pathname = database ? `/${encodeURIComponent(database)}` : "/";
      return u.toString();
    },
    async drop() {
      await withAdmin((c) => c.query(`DROP USER IF EXISTS ${account}`));
    },
  };
}

/** Whether a database of that name exists on the test server. */
export function databaseExists(name: string): Promise<boolean> {
  return withAdmin(async (c) => {
    const [rows] = await c.query("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", [name]);
    return (rows as unknown[]).length === 1;
  });
}

/** An ArtifactInput over a readable stream or a file. */
export function artifactFrom(source: Readable | string): ArtifactInput {
  return {
    stream: async () => (typeof source === "string" ? createReadStream(source) : source),
    file: async () => {
      if (typeof source !== "string") throw new Error("this test input is a stream");
      return source;
    },
  };
}

/** What a drill of a mysql job needs, with the manifest details a backup would have recorded. */
export function drillContext(opts: {
  sourceUrl: string;
  details: Record<string, unknown>;
  scratchUrl?: string;
  runId?: string;
  job?: string;
  databases?: string[];
}): { ctx: ScratchContext; drill: (checks?: Partial<Drill["checks"]>) => Drill } {
  const jobName = opts.job ?? "shop-db";
  const config: Config = configSchema.parse({
    encryption: { recipients: ["age1testrecipient"] },
    targets: { nas: { type: "filesystem", path: "/tmp/lifeboat-test-unused", boundary: "test-nas" } },
    scratch: opts.scratchUrl === undefined ? {} : { mysql: opts.scratchUrl },
  });
  const job: Job = jobSchema.parse({
    name: jobName,
    source: { type: "mysql", url: opts.sourceUrl, boundary: "test-db", ...(opts.databases ? { databases: opts.databases } : {}) },
    targets: ["nas"],
  });
  const manifest = {
    format: "lifeboat-snapshot",
    version: 1,
    job: jobName,
    snapshotId: "20260101T000000Z-test",
    target: "nas",
    startedAt: new Date(0).toISOString(),
    finishedAt: new Date(0).toISOString(),
    source: { kind: "mysql", boundary: "test-db", details: opts.details },
  } as unknown as Manifest;
  const ctx: ScratchContext = {
    config,
    job,
    manifest,
    runId: opts.runId ?? randomBytes(4).toString("hex"),
    signal: new AbortController().signal,
  };
  const drill = (checks: Partial<Drill["checks"]> = {}) =>
    drillSchema.parse({ name: `${jobName}-drill`, job: jobName, checks: { rowCounts: "exact", queries: [], ...checks } });
  return { ctx, drill };
}
