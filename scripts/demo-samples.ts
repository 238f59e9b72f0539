// Sample data for the demo, one entry per source kind. Each prepares its data and returns the job and drill
// declarations, or undefined (with a plain explanation) when what it needs is not on this machine.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import pg from "pg";

/** What a prepared sample contributes to the generated project. */
export interface Prepared {
  /** The object literal passed to defineJob. */
  job: string;
  /** The object literal passed to defineDrill. */
  drill: string;
  /** Scratch settings the sample's drill needs. */
  scratch?: Record<string, string>;
}

/** One demo sample. */
export interface Sample {
  job: string;
  label: string;
  prepare(dir: string): Promise<Prepared | undefined>;
}

const pgAdmin = process.env.DEMO_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

const sqlite: Sample = {
  job: "demo-sqlite",
  label: "SQLite (no server needed)",
  async prepare(dir) {
    mkdirSync(join(dir, "app"), { recursive: true });
    const path = join(dir, "app", "app.db");
    const db = new DatabaseSync(path);
    db.exec(`pragma journal_mode = wal;
      create table users (id integer primary key, email text not null, created_at text default current_timestamp);
      create table "Order Items" (id integer primary key, user_id int references users, sku text, qty int);
      with recursive g(n) as (select 1 union all select n + 1 from g where n < 2000)
        insert into users (email) select 'user' || n || '@example.com' from g;
      with recursive g(n) as (select 1 union all select n + 1 from g where n < 20000)
        insert into "Order Items" (user_id, sku, qty) select 1 + n % 2000, 'sku-' || (n * 7919 % 1000), n % 5 from g;`);
    db.close();
    return {
      job: `{ name: "demo-sqlite", source: { type: "sqlite", path: ${JSON.stringify(path)}, boundary: "app-host" }, targets: ["offsite"], rpo: "1d" }`,
      drill: `{ name: "demo-sqlite-drill", job: "demo-sqlite", checks: { rowCounts: "exact", queries: [{ name: "users exist", sql: "select count(*) from users", min: 1 }] } }`,
    };
  },
};

const postgres: Sample = {
  job: "demo-postgres",
  label: "PostgreSQL",
  async prepare() {
    const admin = new pg.Client({ connectionString: pgAdmin, connectionTimeoutMillis: 3000 });
    try {
      await admin.connect();
    } catch (err) {
      process.stdout.write(
        `No PostgreSQL reachable at ${pgAdmin.replace(/:[^:@/]+@/, ":***@")} (${(err as Error).message}); skipping this sample.\n` +
          "Point the demo at one with DEMO_PG_URL=postgres://user:pass@host:5432/postgres npm run demo\n",
      );
      return undefined;
    }
    try {
      await admin.query("drop database if exists lifeboat_demo with (force)");
      await admin.query("create database lifeboat_demo");
    } finally {
      await admin.end();
    }
    const url = new URL(pgAdmin);
    url.pathname = "/lifeboat_demo";
    const db = new pg.Client({ connectionString: url.toString() });
    await db.connect();
    await db.query(`
      create table customers (id serial primary key, name text not null, created_at timestamptz default now());
      create table orders (id bigserial primary key, customer_id int references customers, total numeric(10,2), items jsonb, created_at timestamptz default now());
      insert into customers (name) select 'customer ' || g from generate_series(1, 1000) g;
      insert into orders (customer_id, total, items)
        select 1 + (g % 1000), (random() * 500)::numeric(10,2), jsonb_build_object('sku', md5(g::text), 'qty', g % 7)
        from generate_series(1, 50000) g;`);
    await db.end();
    return {
      job: `{ name: "demo-postgres", source: { type: "postgres", url: ${JSON.stringify(url.toString())}, boundary: "local-postgres" }, targets: ["offsite"], rpo: "6h" }`,
      drill: `{ name: "demo-postgres-drill", job: "demo-postgres", checks: { rowCounts: "exact", queries: [{ name: "orders exist", sql: "select count(*) from orders", min: 1 }] } }`,
      scratch: { postgres: pgAdmin },
    };
  },
};

/** Every sample, in the order the demo runs them. */
export const samples: Sample[] = [sqlite, postgres];
