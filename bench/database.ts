// The benchmark's database: lifeboat_bench, about BENCH_MB MiB of poorly compressible rows, generated server-side.
// Only the database named here is ever created, filled or dropped.
import pg from "pg";

/** The one database the benchmark owns. */
export const BENCH_DB = "lifeboat_bench";

// Bump when the generator changes, so an old database is rebuilt instead of measured.
const GENERATOR_VERSION = 1;
const BATCH_ROWS = 50_000;
const WORKERS = 2;

/** What the benchmark knows about its database. */
export interface BenchDatabase {
  /** Connection URL of lifeboat_bench. */
  url: string;
  /** pg_database_size, bytes. */
  bytes: number;
  rows: number;
  /** Whether this run created it (false: reused from an earlier run). */
  created: boolean;
  /** Seconds spent creating it (0 when reused). */
  createSeconds: number;
}

function dbUrl(adminUrl: string): string {
  const u = new URL(adminUrl);
  u.pathname = `/${BENCH_DB}`;
  return u.toString();
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** The size and generator settings of an existing lifeboat_bench, or undefined if it is missing or not ours. */
async function inspect(adminUrl: string, mb: number): Promise<{ bytes: number; rows: number } | undefined> {
  const exists = await withClient(adminUrl, (c) => c.query("select 1 from pg_database where datname = $1", [BENCH_DB]));
  if (exists.rowCount === 0) return undefined;
  return withClient(dbUrl(adminUrl), async (c) => {
    const meta = await c.query("select to_regclass('public.bench_meta') is not null as ok");
    if (!meta.rows[0]?.ok) return undefined;
    const r = await c.query<{ mb: number; version: number; rows: string; complete: boolean }>(
      "select mb, version, rows::text, complete from bench_meta",
    );
    const m = r.rows[0];
    if (!m?.complete || m.mb !== mb || m.version !== GENERATOR_VERSION) return undefined;
    const size = await c.query<{ bytes: string }>("select pg_database_size(current_database())::text as bytes");
    return { bytes: Number(size.rows[0]?.bytes), rows: Number(m.rows) };
  });
}

/** Drops lifeboat_bench (and nothing else) if it exists. */
export async function dropBenchDatabase(adminUrl: string): Promise<void> {
  await withClient(adminUrl, (c) => c.query(`drop database if exists ${BENCH_DB} with (force)`));
}

// Random bytes from pgcrypto when the server has it (fast, OpenSSL's generator), else from md5 of random().
const RAND_PGCRYPTO = "select public.gen_random_bytes(n)";
const RAND_MD5 = `select substring(decode(string_agg(md5(random()::text), ''), 'hex') from 1 for n)
  from generate_series(1, (n + 15) / 16)`;

const SCHEMA = `
  create table bench_meta (mb int not null, version int not null, rows bigint not null, complete boolean not null);
  create table customers (
    id integer primary key,
    email text not null,
    name text not null,
    country char(2) not null,
    balance numeric(14, 2) not null,
    profile jsonb not null,
    created_at timestamptz not null
  );
  create table orders (
    id bigint not null,
    customer_id integer not null,
    status text not null,
    amount numeric(14, 2) not null,
    fx_rate numeric not null,
    reference text not null,
    note text not null,
    payload jsonb not null,
    created_at timestamptz not null,
    updated_at timestamptz
  );`;

// Random values everywhere: hex and base64 of random bytes, random numerics, jsonb of random values, timestamps
// spread over three years. zstd -1 shrinks the dump only to about 60 %; gzip (pg_dump's default) works hard on it.
const CUSTOMERS = `
  insert into customers
  select g,
         encode(bench_rand(6), 'hex') || '@' || encode(bench_rand(4), 'hex') || '.example',
         initcap(encode(bench_rand(5), 'hex')) || ' ' || initcap(encode(bench_rand(7), 'hex')),
         (array['DE','FR','US','GB','NL','SE','PL','ES','IT','JP'])[1 + floor(random() * 10)::int],
         round((random() * 20000 - 5000)::numeric, 2),
         jsonb_build_object('plan', (array['free','pro','team','enterprise'])[1 + floor(random() * 4)::int],
                            'seats', floor(random() * 500)::int, 'token', encode(bench_rand(18), 'base64')),
         now() - random() * interval '5 years'
    from generate_series(1, 100000) g`;

const ORDERS = `
  insert into orders
  select g,
         1 + floor(random() * 100000)::int,
         (array['new','paid','shipped','delivered','refunded','cancelled'])[1 + floor(random() * 6)::int],
         round((random() * 100000)::numeric, 2),
         random()::numeric,
         encode(bench_rand(16), 'hex'),
         translate(encode(bench_rand(120 + floor(random() * 120)::int), 'base64'), E'\\n', ''),
         jsonb_build_object(
           'sku', encode(bench_rand(6), 'hex'),
           'qty', 1 + floor(random() * 50)::int,
           'price', round((random() * 500)::numeric, 2),
           'discount', round(random()::numeric, 4),
           'tags', jsonb_build_array(encode(bench_rand(4), 'hex'), encode(bench_rand(4), 'hex'), encode(bench_rand(3), 'hex')),
           'client', jsonb_build_object('ip', concat_ws('.', floor(random() * 256)::int, floor(random() * 256)::int,
                                                         floor(random() * 256)::int, floor(random() * 256)::int),
                                        'session', encode(bench_rand(24), 'base64'))),
         ts,
         case when random() < 0.7 then ts + random() * interval '30 days' end
    from generate_series($1::bigint, $2::bigint) g,
         lateral (select now() - random() * interval '3 years' as ts) t`;

/**
 * Returns lifeboat_bench, creating it first when it is missing, was built for another size or generator, or
 * rebuild is set. Filling runs in batches on two connections until the orders table reaches the size; then
 * VACUUM FREEZE and a CHECKPOINT, so the first measured dump does not pay for hint bits and dirty pages.
 */
export async function ensureBenchDatabase(
  adminUrl: string,
  mb: number,
  rebuild: boolean,
  log: (s: string) => void,
): Promise<BenchDatabase> {
  const url = dbUrl(adminUrl);
  if (!rebuild) {
    const found = await inspect(adminUrl, mb);
    if (found) return { url, ...found, created: false, createSeconds: 0 };
  }
  const t0 = performance.now();
  await dropBenchDatabase(adminUrl);
  await withClient(adminUrl, (c) => c.query(`create database ${BENCH_DB}`));
  const target = mb * 1024 * 1024;
  await withClient(url, async (c) => {
    const hasPgcrypto = (await c.query("select 1 from pg_available_extensions where name = 'pgcrypto'")).rowCount === 1;
    if (hasPgcrypto) await c.query("create extension if not exists pgcrypto");
    await c.query(
      `create function bench_rand(n int) returns bytea language sql volatile as $$ ${hasPgcrypto ? RAND_PGCRYPTO : RAND_MD5} $$`,
    );
    await c.query(SCHEMA);
    await c.query("set synchronous_commit = off");
    await c.query(CUSTOMERS);
    log(`  random bytes from ${hasPgcrypto ? "pgcrypto gen_random_bytes" : "md5(random())"}`);
  });
  // What is there already (catalog, customers) and the primary key added afterwards (~4 % of 600-byte rows) count too.
  const base = await withClient(url, async (c) =>
    Number((await c.query<{ bytes: string }>("select pg_database_size(current_database())::text as bytes")).rows[0]?.bytes),
  );
  const heapTarget = Math.max(target - base, BATCH_ROWS * 600) / 1.04;
  let next = 1;
  let done = false;
  let lastLog = 0;
  const worker = () =>
    withClient(url, async (c) => {
      await c.query("set synchronous_commit = off");
      while (!done) {
        const from = next;
        next += BATCH_ROWS;
        await c.query(ORDERS, [from, from + BATCH_ROWS - 1]);
        const r = await c.query<{ bytes: string }>("select pg_relation_size('orders')::text as bytes");
        const bytes = Number(r.rows[0]?.bytes);
        if (bytes >= heapTarget) done = true;
        if (performance.now() - lastLog > 5000) {
          lastLog = performance.now();
          log(`  ${(bytes / 1048576).toFixed(0)} of ~${(heapTarget / 1048576).toFixed(0)} MiB in orders`);
        }
      }
    });
  await Promise.all(Array.from({ length: WORKERS }, worker));
  return withClient(url, async (c) => {
    log("  primary key, vacuum freeze, checkpoint");
    await c.query("alter table orders add primary key (id)");
    await c.query("vacuum (freeze, analyze)");
    await c.query("checkpoint");
    const rows = Number((await c.query<{ n: string }>("select count(*)::text as n from orders")).rows[0]?.n);
    await c.query("insert into bench_meta values ($1, $2, $3, true)", [mb, GENERATOR_VERSION, rows]);
    const size = await c.query<{ bytes: string }>("select pg_database_size(current_database())::text as bytes");
    return { url, bytes: Number(size.rows[0]?.bytes), rows, created: true, createSeconds: (performance.now() - t0) / 1000 };
  });
}
