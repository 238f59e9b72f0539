import { availableParallelism } from "node:os";
import type pg from "pg";
import type { Manifest } from "../catalog/manifest.ts";
import { parseDuration } from "../catalog/report.ts";
import { ConfigError, code, LifeboatError, messageOf, RefusedError } from "../errors.ts";
import { stripPassword } from "../secret.ts";
import { cancelBackend, connectPostgres, countTables, parsePostgresUrl, restorePostgres } from "../sources/postgres.ts";
import { compareCounts, evaluateQuery, singleNumber } from "./checks.ts";
import type { CheckResult, Destination, DrillKind, RestoreKind, Scratch, ScratchContext } from "./kind.ts";

/** The same server, as far as a URL can tell: host (case-insensitive, localhost ≈ 127.0.0.1 ≈ ::1) and port. */
export function sameServer(a: string, b: string): boolean {
  const pa = parsePostgresUrl(a);
  const pb = parsePostgresUrl(b);
  const local = (h: string) =>
    ["localhost", "127.0.0.1", "::1", "[::1]"].includes(h.toLowerCase()) || h.startsWith("/") ? "local" : h.toLowerCase();
  return local(pa.host) === local(pb.host) && pa.port === pb.port;
}

/** The URL of another database on the same server. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  u.searchParams.delete("dbname");
  return u.toString();
}

/** A scratch database name: prefixed, random, within PostgreSQL's 63-byte identifier limit. */
export function scratchName(job: string, runId: string): string {
  return `lifeboat_drill_${job.replace(/-/g, "_").slice(0, 30)}_${runId}`.toLowerCase();
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await connectPostgres(url);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/** Restores PostgreSQL snapshots into a fresh database on scratch.postgres, counts and queries it, drops it. */
export const postgresDrillKind: DrillKind & RestoreKind = {
  kind: "postgres",
  openDestination: (to, ctx) => openPostgresDestination(to, sourceEncoding(ctx.manifest)),
  async createScratch(ctx: ScratchContext): Promise<Scratch> {
    const admin = ctx.config.scratch.postgres;
    if (!admin) {
      throw new ConfigError("scratch.postgres is not set: drills need a server to restore into", {
        hint: 'set scratch: { postgres: "postgres://user@scratch-host:5432/postgres" } in backup.config.ts (a role that may CREATE DATABASE)',
      });
    }
    if (ctx.job.source.type !== "postgres") throw new Error("postgres drill for a non-postgres job");
    const source = ctx.job.source.url;
    const name = scratchName(ctx.job.name, ctx.runId);
    const adminDb = parsePostgresUrl(admin).database;
    const sourceDb = parsePostgresUrl(source).database;
    // Drills never touch the source: the scratch connection must not be the source database itself, and the new
    // database must not carry the source's name on the source's server.
    if (sameServer(admin, source) && (adminDb === sourceDb || name === sourceDb)) {
      throw new RefusedError(
        `drill of job "${ctx.job.name}": scratch.postgres (${stripPassword(admin)}) is the job's own source database`,
        {
          hint: "point scratch.postgres at a maintenance database (e.g. /postgres) or, better, at another server",
        },
      );
    }
    const url = withDatabase(admin, name);
    let created = false;
    await withClient(admin, async (c) => {
      await createDatabase(c, name, sourceEncoding(ctx.manifest));
      created = true;
    }).catch((err) => {
      throw new LifeboatError(code.failed, `create scratch database ${name} on ${stripPassword(admin)}: ${messageOf(err)}`, {
        cause: err,
        hint: "the scratch.postgres role needs CREATEDB",
      });
    });
    return {
      location: `${name} on ${stripPassword(withDatabase(admin, name))}`,
      async restore(input, signal) {
        const file = await input.file();
        await restorePostgres({ url, file, jobs: Math.max(1, Math.min(4, availableParallelism())), signal });
      },
      async check(inventory, drill, signal): Promise<CheckResult[]> {
        return withClient(url, async (c) => {
          // A check can run long (a user's query, a count of a huge table): an interrupt cancels it, not waits for it.
          const pid = (c as unknown as { processID?: number }).processID;
          const onAbort = () => void (pid && cancelBackend(admin, pid).catch(() => {}));
          signal.addEventListener("abort", onAbort, { once: true });
          try {
            const out: CheckResult[] = [];
            if (drill.checks.rowCounts !== "off") {
              // The restoring role owns every table: FORCE ROW LEVEL SECURITY would hide rows from its counts (it is
              // the scratch copy's own setting, dropped with it).
              await c.query(NO_FORCED_RLS);
              out.push(compareCounts(inventory.tables ?? {}, await countTables(c, signal), inventory.counts));
            }
            if (drill.checks.queries.length) await c.query(`set statement_timeout = ${parseDuration(drill.checks.queryTimeout)}`);
            for (const q of drill.checks.queries) {
              if (signal.aborted) break;
              try {
                const r = (await c.query({ text: q.sql, rowMode: "array" })) as unknown;
                out.push(evaluateQuery(q, Array.isArray(r) ? SEVERAL_STATEMENTS : singleNumber((r as pg.QueryResult<unknown[]>).rows)));
              } catch (err) {
                out.push(evaluateQuery(q, { error: messageOf(err) }));
              }
            }
            return out;
          } finally {
            signal.removeEventListener("abort", onAbort);
          }
        });
      },
      async drop() {
        if (!created) return;
        await withClient(admin, (c) => c.query(`drop database if exists ${quoteIdent(name)} with (force)`));
        created = false;
      },
    };
  },
};

const SEVERAL_STATEMENTS = { error: "the query holds several statements; a check is one query returning one number" };

/** Turns FORCE ROW LEVEL SECURITY off on every table of the (scratch) database it runs in. */
const NO_FORCED_RLS = `do $$ declare t record; begin
  for t in select c.oid::regclass as name from pg_class c where c.relforcerowsecurity loop
    execute format('alter table %s no force row level security', t.name);
  end loop; end $$`;

const USER_SCHEMA = `n.nspname not in ('pg_catalog','information_schema') and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'`;
const notFromExtension = (catalog: string, oid: string) =>
  `not exists (select 1 from pg_depend d where d.classid = '${catalog}'::regclass and d.objid = ${oid} and d.deptype = 'e')`;
const OTHER_OBJECTS = `select (
    (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where ${USER_SCHEMA} and c.relkind in ('v','m','S','f','p','c') and ${notFromExtension("pg_class", "c.oid")})
  + (select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where ${USER_SCHEMA} and ${notFromExtension("pg_proc", "p.oid")})
  + (select count(*) from pg_type t join pg_namespace n on n.oid = t.typnamespace
      where ${USER_SCHEMA} and t.typtype in ('e','d','r','m') and ${notFromExtension("pg_type", "t.oid")})
  + (select count(*) from pg_namespace n
      where ${USER_SCHEMA} and n.nspname <> 'public' and ${notFromExtension("pg_namespace", "n.oid")})
  + (select count(*) from pg_largeobject_metadata)
  )::int as n`;

/** Tables and rows of a database's user relations, for the overwrite warning; undefined if the database is missing. */
async function describeDatabase(url: string): Promise<{ tables: Record<string, number>; other: number } | undefined> {
  try {
    return await withClient(url, async (c) => {
      const tables = await countTables(c);
      // Views, sequences, functions, types, schemas and large objects count as "not empty" too: a restore would
      // collide with them or replace them. Objects an extension owns come with it and are not counted.
      const r = await c.query(OTHER_OBJECTS);
      return { tables, other: (r.rows[0] as { n: number }).n };
    });
  } catch (err) {
    if (/does not exist/i.test(messageOf(err))) return undefined;
    throw err;
  }
}

/** Opens a PostgreSQL database as a restore destination; a missing database is created on the same server. */
/** The source database's encoding, as the backup recorded it (snapshots from before lifeboat recorded it: unknown). */
function sourceEncoding(manifest: Manifest): string | undefined {
  const e = manifest.source.details?.encoding;
  return typeof e === "string" && /^[A-Za-z0-9_]+$/.test(e) ? e : undefined;
}

/**
 * Creates a database for a restore in the source's encoding where that is not UTF8 (a SQL_ASCII database's bytes
 * would otherwise land unchecked in a UTF8 one, which then fails on them). Such an encoding may not fit the server's
 * locale; the C locale fits every encoding.
 */
async function createDatabase(c: pg.ClientBase, name: string, encoding: string | undefined): Promise<void> {
  if (!encoding || encoding.toUpperCase() === "UTF8") {
    await c.query(`create database ${quoteIdent(name)}`);
    return;
  }
  const base = `create database ${quoteIdent(name)} template template0 encoding '${encoding}'`;
  try {
    await c.query(base);
  } catch (err) {
    if (!/does not match locale|incompatible with the (collation|ctype|locale)/i.test(messageOf(err))) throw err;
    await c.query(`${base} lc_collate 'C' lc_ctype 'C'`);
  }
}

export async function openPostgresDestination(to: string, encoding?: string): Promise<Destination> {
  const p = parsePostgresUrl(to);
  // Without one, the connection's default (the user's name, often the shared "postgres" database) would receive
  // the whole snapshot.
  if (new URL(to).pathname.length <= 1) {
    throw new LifeboatError(code.usage, `restore: --to ${stripPassword(to)} names no database`, {
      hint: "give the database to restore into: postgres://user@host:5432/<database> (a new name is created)",
    });
  }
  const display = `${p.database} on ${stripPassword(withDatabase(to, p.database))}`;
  let exists = true;
  return {
    confirmName: p.database,
    display,
    async inspect() {
      const d = await describeDatabase(to);
      if (!d) {
        exists = false;
        return { empty: true, lines: [`database ${display} does not exist; it will be created`] };
      }
      const rows = Object.values(d.tables).reduce((a, b) => a + b, 0);
      const n = Object.keys(d.tables).length;
      if (n === 0 && d.other === 0) return { empty: true, lines: [`database ${display} exists and is empty`] };
      const top = Object.entries(d.tables)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 10)
        .map(([t, c]) => `    ${t}: ${c} rows`);
      return {
        empty: false,
        lines: [
          `database ${display} HOLDS DATA: ${n} tables, ${rows} rows, ${d.other} other objects`,
          ...top,
          "  objects in the snapshot will be dropped and recreated (pg_restore --clean)",
        ],
      };
    },
    async restore(input, opts, signal) {
      // Downloaded (and checked) first: a damaged or unreachable snapshot then leaves no new, empty database behind.
      const file = await input.file();
      if (exists) {
        await restorePostgres({ url: to, file, jobs: Math.max(1, Math.min(4, availableParallelism())), clean: opts.overwrite, signal });
        return;
      }
      const admin = withDatabase(to, "postgres");
      await withClient(admin, (c) => createDatabase(c, p.database, encoding));
      try {
        await restorePostgres({ url: to, file, jobs: Math.max(1, Math.min(4, availableParallelism())), clean: false, signal });
      } catch (err) {
        // The database is lifeboat's own, made a moment ago: a half-restored copy of it is nobody's data.
        await withClient(admin, (c) => c.query(`drop database if exists ${quoteIdent(p.database)} with (force)`)).catch(() => {});
        throw err;
      }
    },
  };
}
