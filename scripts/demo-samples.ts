// Sample data for the demo, one entry per source kind. Each prepares its data and returns the job and drill
// declarations, or undefined (with a plain explanation) when what it needs is not on this machine.
import { randomBytes } from "node:crypto";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
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

const volume: Sample = {
  job: "demo-files",
  label: "a directory of uploads (no server needed)",
  async prepare(dir) {
    const root = join(dir, "app", "uploads");
    for (let d = 0; d < 20; d++) {
      mkdirSync(join(root, `2026-${String(d + 1).padStart(2, "0")}`), { recursive: true });
      for (let f = 0; f < 25; f++)
        writeFileSync(join(root, `2026-${String(d + 1).padStart(2, "0")}`, `upload-${f}.bin`), randomBytes(2048 + f * 97));
    }
    writeFileSync(join(root, "README.txt"), "files users uploaded\n");
    symlinkSync("README.txt", join(root, "LATEST"));
    return {
      job: `{ name: "demo-files", source: { type: "volume", path: ${JSON.stringify(root)}, boundary: "app-disk", exclude: ["*.tmp"] }, targets: ["offsite"], rpo: "1d" }`,
      drill: `{ name: "demo-files-drill", job: "demo-files", checks: { files: "exact" } }`,
    };
  },
};

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

const mysqlAdmin = process.env.DEMO_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/";

const mysql: Sample = {
  job: "demo-mysql",
  label: "MySQL/MariaDB",
  async prepare() {
    const { default: mysql2 } = await import("mysql2/promise");
    const u = new URL(mysqlAdmin);
    let conn: Awaited<ReturnType<typeof mysql2.createConnection>>;
    try {
      conn = await mysql2.createConnection({
        host: u.hostname,
        port: Number(u.port || 3306),
        user: decodeURIComponent(u.username || "root"),
        password: decodeURIComponent(u.password),
        multipleStatements: true,
        connectTimeout: 3000,
      });
    } catch (err) {
      process.stdout.write(
        `No MySQL/MariaDB reachable at ${mysqlAdmin.replace(/:[^:@/]+@/, ":***@")} (${(err as Error).message}); skipping this sample.\n` +
          "Point the demo at one with DEMO_MYSQL_URL=mysql://user:pass@host:3306/ npm run demo\n",
      );
      return undefined;
    }
    try {
      await conn.query(`DROP DATABASE IF EXISTS lifeboat_demo; CREATE DATABASE lifeboat_demo;
        CREATE TABLE lifeboat_demo.products (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100), price DECIMAL(10,2)) ENGINE=InnoDB;
        INSERT INTO lifeboat_demo.products (name, price) SELECT CONCAT('product ', seq), seq * 1.5 FROM seq_1_to_5000;`);
    } catch {
      // seq_* tables are MariaDB's; MySQL gets a smaller sample through a recursive CTE.
      await conn.query(`INSERT INTO lifeboat_demo.products (name, price)
        WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 1000) SELECT CONCAT('product ', n), n * 1.5 FROM g;`);
    } finally {
      await conn.end();
    }
    const url = new URL(mysqlAdmin);
    url.pathname = "/lifeboat_demo";
    return {
      job: `{ name: "demo-mysql", source: { type: "mysql", url: ${JSON.stringify(url.toString())}, boundary: "local-mysql" }, targets: ["offsite"], rpo: "6h" }`,
      drill: `{ name: "demo-mysql-drill", job: "demo-mysql", checks: { rowCounts: "exact", queries: [{ name: "products exist", sql: "select count(*) from products", min: 1 }] } }`,
      scratch: { mysql: mysqlAdmin },
    };
  },
};

/** Every sample, in the order the demo runs them. */
export const samples: Sample[] = [sqlite, volume, postgres, mysql];
