// The demo: an embedded S3 server in a temporary folder, a throwaway key, a sample database, one backup, the listing.
// It drives the real CLI (bin/lifeboat.js) with a generated backup.config.ts, exactly as a user would.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { createBucket, EMBEDDED_S3_CREDENTIALS, startEmbeddedS3 } from "../src/storage/embedded-s3.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = join(root, "bin", "lifeboat.js");
const pgAdmin = process.env.DEMO_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const say = (s: string) => process.stdout.write(`\n\x1b[1m==> ${s}\x1b[0m\n`);

/** Runs the CLI as a user would. Asynchronously: the embedded S3 server lives in this process and must keep serving. */
async function lifeboat(dir: string, ...args: string[]): Promise<number> {
  process.stdout.write(`$ lifeboat ${args.join(" ")}\n`);
  const child = spawn(process.execPath, [bin, "--config", join(dir, "backup.config.ts"), ...args], {
    stdio: "inherit",
    cwd: dir,
    env: { ...process.env, LIFEBOAT_IDENTITY_FILE: join(dir, "identity.txt") },
  });
  const [status] = (await once(child, "close")) as [number | null];
  return status ?? 1;
}

async function samplePostgres(): Promise<string | undefined> {
  const admin = new pg.Client({ connectionString: pgAdmin, connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
  } catch (err) {
    process.stdout.write(
      `No PostgreSQL reachable at ${pgAdmin.replace(/:[^:@/]+@/, ":***@")} (${(err as Error).message}).\n` +
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
  return url.toString();
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "lifeboat-demo-"));
  say(`Demo folder: ${dir}`);
  const s3 = await startEmbeddedS3({ directory: join(dir, "s3-data") });
  try {
    await createBucket(s3.endpoint, "demo-backups");
    say(`Embedded S3 server on ${s3.endpoint}, bucket demo-backups`);

    say("Generating a throwaway age key");
    if ((await lifeboat(dir, "keygen", "--out", join(dir, "identity.txt"))) !== 0) return 1;
    const recipient = /public key: (age1[0-9a-z]+)/.exec(readFileSync(join(dir, "identity.txt"), "utf8"))?.[1];

    say("Creating the sample PostgreSQL database lifeboat_demo");
    const pgUrl = await samplePostgres();
    if (!pgUrl) return 0;

    mkdirSync(join(dir, "jobs"));
    mkdirSync(join(dir, "restore-drills"));
    writeFileSync(
      join(dir, "backup.config.ts"),
      `import { defineConfig } from "lifeboat";
export default defineConfig({
  encryption: { recipients: ["${recipient}"] },
  targets: {
    offsite: {
      type: "s3", bucket: "demo-backups", prefix: "demo", endpoint: "${s3.endpoint}", forcePathStyle: true,
      credentials: { accessKeyId: "${EMBEDDED_S3_CREDENTIALS.accessKeyId}", secretAccessKey: "${EMBEDDED_S3_CREDENTIALS.secretAccessKey}" },
      boundary: "demo-s3",
    },
  },
  scratch: { postgres: "${pgAdmin}", directory: "${join(dir, "scratch")}" },
});
`,
    );
    writeFileSync(
      join(dir, "jobs", "demo-db.ts"),
      `import { defineJob } from "lifeboat";
export default defineJob({
  name: "demo-db",
  source: { type: "postgres", url: "${pgUrl}", boundary: "local-postgres" },
  targets: ["offsite"],
  schedule: "0 */6 * * *",
  rpo: "6h",
});
`,
    );
    writeFileSync(
      join(dir, "restore-drills", "demo-db.ts"),
      `import { defineDrill } from "lifeboat";
export default defineDrill({
  name: "demo-db-drill",
  job: "demo-db",
  checks: { rowCounts: "exact", queries: [{ name: "orders exist", sql: "select count(*) from orders", min: 1 }] },
});
`,
    );
    say("Backing up demo-db");
    if ((await lifeboat(dir, "backup", "demo-db")) !== 0) return 1;
    say("Listing its snapshots, read from the bucket alone");
    if ((await lifeboat(dir, "snapshots", "demo-db")) !== 0) return 1;
    say("Drilling it: restore into a fresh scratch database, compare every table's row count, run a query, drop it");
    if ((await lifeboat(dir, "drill", "demo-db-drill")) !== 0) return 1;
    say(`Done. The config, the key and the bucket's files are in ${dir}`);
    return 0;
  } finally {
    await s3.stop();
  }
}

process.exitCode = await main();
