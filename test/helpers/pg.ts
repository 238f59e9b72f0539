import { randomBytes } from "node:crypto";
import pg from "pg";

/** The test server's maintenance database (trust auth on loopback); override with LIFEBOAT_TEST_PG_URL. */
export const adminUrl = process.env.LIFEBOAT_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** A throwaway database that only this test file uses. */
export interface TestDatabase {
  /** Connection URL of the database (no password: trust auth). */
  url: string;
  /** Its random name, lifeboat_test_<hex>. */
  name: string;
  /** A connected client on the database; drop() ends any still open. */
  client(): Promise<pg.Client>;
  /** Ends open clients and drops the database WITH (FORCE). Idempotent. */
  drop(): Promise<void>;
}

/** Runs fn with a client on the maintenance database, then ends it. */
export async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Creates a randomly named empty database (`<prefix>_<random>`) on the test server. Tests touch no other
 * database: drop() removes exactly the one created here, by the name generated here. `options` go after the name in
 * CREATE DATABASE (an encoding, a template).
 */
export async function createTestDatabase(prefix = "lifeboat_test", options = ""): Promise<TestDatabase> {
  if (!/^lifeboat_[a-z0-9_]{0,40}$/.test(prefix)) throw new Error(`test database prefix "${prefix}" must start with lifeboat_`);
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  await withAdmin((c) => c.query(`create database "${name}" ${options}`));
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const open = new Set<pg.Client>();
  return {
    url,
    name,
    async client() {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      open.add(c);
      c.once("end", () => open.delete(c));
      return c;
    },
    async drop() {
      await Promise.all([...open].map((c) => c.end().catch(() => {})));
      await withAdmin((c) => c.query(`drop database if exists "${name}" with (force)`));
    },
  };
}
