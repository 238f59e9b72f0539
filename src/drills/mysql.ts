import { parseDuration } from "../catalog/report.ts";
import type { Drill, MysqlSourceConfig } from "../config/schema.ts";
import { ConfigError, code, LifeboatError, messageOf, RefusedError, wrap } from "../errors.ts";
import {
  closeQuietly,
  connectMysql,
  createDatabaseLike,
  killQuery,
  type MysqlConnection,
  type MysqlParams,
  parseMysqlUrl,
  quoteId,
  serverOf,
} from "../sources/mysql-connect.ts";
import { restoreMysql } from "../sources/mysql-restore.ts";
import { countRows, listTables, SCRATCH_PREFIX, tableKey } from "../sources/mysql-tables.ts";
import type { Inventory } from "../sources/source.ts";
import { evaluateQuery, singleNumber } from "./checks.ts";
import type { ArtifactInput, CheckResult, DrillKind, RestoreKind, Scratch, ScratchContext } from "./kind.ts";
import { openMysqlDestination } from "./mysql-destination.ts";

const MAX_NAME = 64;
const LOOPBACK = new Set(["localhost", "127.0.0.1", "::1", "0.0.0.0", "::"]);

/**
 * The scratch database names of a drill: lifeboat_drill_<job, dashes → underscores>_<runId>, and for a dump of n
 * databases one per database with the suffix _1 … _n. The job part is shortened to fit MySQL's 64 characters.
 */
export function scratchNames(job: string, runId: string, databases: number): string[] {
  const id = runId.toLowerCase().replace(/[^a-z0-9]/g, "_");
  const suffix = databases > 0 ? `_${databases}`.length : 0;
  const room = MAX_NAME - SCRATCH_PREFIX.length - 1 - id.length - suffix;
  const base = `${SCRATCH_PREFIX}${job.replace(/-/g, "_").slice(0, Math.max(0, room))}_${id}`;
  if (databases === 0) return [base];
  return Array.from({ length: databases }, (_, i) => `${base}_${i + 1}`);
}

/** Whether two URLs point at the same server endpoint (loopback names count as one host). */
function sameEndpoint(a: MysqlParams, b: MysqlParams): boolean {
  if (a.socket || b.socket) return a.socket === b.socket;
  const host = (h: string) => (LOOPBACK.has(h.toLowerCase()) ? "loopback" : h.toLowerCase());
  return host(a.host) === host(b.host) && a.port === b.port;
}

/** The databases a snapshot holds and how the dump lays them out, from the manifest (the job's config as fallback). */
function sourceDatabases(ctx: ScratchContext, source: MysqlSourceConfig, params: MysqlParams): { names: string[]; multi: boolean } {
  const d = ctx.manifest.source.details;
  const names = Array.isArray(d.databases) ? d.databases.map(String) : (source.databases ?? (params.database ? [params.database] : []));
  if (names.length === 0) throw new ConfigError(`drill of job "${ctx.job.name}": the snapshot does not say which databases it holds`);
  const multi = d.layout === undefined ? source.all || names.length > 1 : d.layout === "multi";
  return { names, multi };
}

/**
 * Restores and checks MySQL/MariaDB snapshots in fresh scratch databases on config.scratch.mysql. Each source
 * database gets its own scratch database; the dump's USE / CREATE / ALTER DATABASE statements are rewritten to them
 * (restoreMysql refuses any database it was not given), DEFINER clauses are dropped so the scratch user owns every
 * object, and events are created disabled so nothing scheduled runs while the drill checks.
 */
export const mysqlDrillKind: DrillKind & RestoreKind = {
  kind: "mysql",
  openDestination: openMysqlDestination,
  async createScratch(ctx: ScratchContext): Promise<Scratch> {
    const url = ctx.config.scratch.mysql;
    if (!url) {
      throw new ConfigError(`drill of job "${ctx.job.name}": no scratch MySQL server is configured`, {
        hint: 'set scratch: { mysql: "mysql://user:password@host:3306/" } in backup.config.ts: a server where lifeboat may create and drop lifeboat_drill_* databases',
      });
    }
    const source = ctx.job.source;
    if (source.type !== "mysql") throw new ConfigError(`drill of job "${ctx.job.name}": its source is ${source.type}, not mysql`);
    ctx.signal.throwIfAborted();
    const scratch = parseMysqlUrl(url);
    const sourceParams = parseMysqlUrl(source.url);
    const { names: sourceDbs, multi } = sourceDatabases(ctx, source, sourceParams);
    const names = scratchNames(ctx.job.name, ctx.runId, multi ? sourceDbs.length : 0);
    const details = ctx.manifest.source.details;
    const conn = await connectMysql(scratch, null);
    const created: string[] = [];
    try {
      const [rows] = await conn.query({ sql: "SELECT @@hostname, @@port", rowsAsArray: true });
      const [hostname, port] = (rows as [string, string][])[0] ?? ["", ""];
      const uuid = await conn
        .query({ sql: "SELECT @@server_uuid", rowsAsArray: true })
        .then(([r]) => String((r as [string][])[0]?.[0]))
        .catch(() => undefined);
      const sameServer =
        sameEndpoint(scratch, sourceParams) ||
        (uuid !== undefined && uuid === details.serverUuid) ||
        (hostname === details.serverHostname && Number(port) === Number(details.serverPort));
      const clash = names.filter((n) => sourceDbs.includes(n));
      if (sameServer && clash.length) {
        throw new RefusedError(
          `drill of job "${ctx.job.name}": scratch database ${clash.join(", ")} is a source database on the source server`,
          {
            hint: "the scratch name must never be a database the job backs up; rename the source database or use another scratch server",
          },
        );
      }
      const [existing] = await conn.query({
        sql: "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN (?)",
        values: [names],
        rowsAsArray: true,
      });
      if ((existing as unknown[]).length) {
        throw new RefusedError(
          `drill of job "${ctx.job.name}": scratch database ${names.join(", ")} already exists on ${serverOf(scratch)}`,
          {
            hint: "scratch databases are always created fresh; run the drill again for a new name",
          },
        );
      }
      const collations = (details.collations ?? {}) as Record<string, unknown>;
      for (const [i, name] of names.entries()) {
        await createDatabaseLike(conn, name, collations[sourceDbs[i] as string]);
        created.push(name);
      }
    } catch (err) {
      await dropAll(conn, created).catch(() => {});
      closeQuietly(conn);
      throw err instanceof LifeboatError ? err : wrap(`drill of job "${ctx.job.name}": create scratch database`, err, code.source);
    }
    closeQuietly(conn);
    return new MysqlScratch(url, scratch, names, Object.fromEntries(sourceDbs.map((d, i) => [d, names[multi ? i : 0] as string])));
  },
};

async function dropAll(conn: MysqlConnection, names: readonly string[]): Promise<void> {
  for (const name of names) {
    // Generated names only: a guard against ever dropping anything else through this path.
    if (!name.startsWith(SCRATCH_PREFIX)) throw new RefusedError(`refusing to drop ${name}: not a scratch database`);
    await conn.query(`DROP DATABASE IF EXISTS ${quoteId(name)}`);
  }
}

/** One drill's scratch databases. */
class MysqlScratch implements Scratch {
  readonly location: string;
  readonly #url: string;
  readonly #params: MysqlParams;
  readonly #names: string[];
  /** Source database → scratch database. */
  readonly #map: Record<string, string>;

  constructor(url: string, params: MysqlParams, names: string[], map: Record<string, string>) {
    this.#url = url;
    this.#params = params;
    this.#names = names;
    this.#map = map;
    this.location = `${serverOf(params)}/${names.join(",")}`;
  }

  async restore(input: ArtifactInput, signal: AbortSignal): Promise<void> {
    const u = new URL(this.#url);
    // A single-database dump has no USE: it goes to the URL's database.
    u.pathname = this.#names.length === 1 ? `/${encodeURIComponent(this.#names[0] as string)}` : "/";
    const stream = await input.stream();
    try {
      await restoreMysql({ url: u.toString(), input: stream, databases: this.#map, stripDefiners: true, disableEvents: true, signal });
    } catch (err) {
      stream.destroy();
      throw wrap(`drill restore into ${this.location}`, err, code.source);
    }
  }

  async check(inventory: Inventory, drill: Drill, signal: AbortSignal): Promise<CheckResult[]> {
    const conn = await connectMysql(this.#params, this.#names[0]);
    const onAbort = () => killQuery(this.#params, conn.threadId).catch(() => {});
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      const results: CheckResult[] = [];
      if (drill.checks.rowCounts === "exact") results.push(await this.#rowCounts(conn, inventory, signal));
      if (drill.checks.queries.length) await limitStatements(conn, parseDuration(drill.checks.queryTimeout));
      for (const q of drill.checks.queries) {
        signal.throwIfAborted();
        results.push(await queryCheck(conn, q));
      }
      return results;
    } finally {
      signal.removeEventListener("abort", onAbort);
      closeQuietly(conn);
    }
  }

  async #rowCounts(conn: MysqlConnection, inventory: Inventory, signal: AbortSignal): Promise<CheckResult> {
    const name = "row counts";
    if (inventory.kind !== "mysql") return { kind: "rowCounts", name, ok: false, detail: `the inventory is of a ${inventory.kind} source` };
    const back = Object.fromEntries(Object.entries(this.#map).map(([src, scratch]) => [scratch, src]));
    const tables = await listTables(conn, this.#names);
    const counted = await countRows(conn, tables, signal);
    const actual: Record<string, number> = {};
    for (const t of tables) actual[tableKey(back[t.database] ?? t.database, t.name)] = counted[t.key] as number;
    return compareCounts(inventory, actual);
  }

  async drop(): Promise<void> {
    const conn = await connectMysql(this.#params, null);
    try {
      await dropAll(conn, this.#names);
    } catch (err) {
      throw wrap(`drill: drop scratch ${this.location}`, err, code.source);
    } finally {
      closeQuietly(conn);
    }
  }
}

/**
 * Compares restored row counts with the inventory: every table present on both sides, counts equal when the
 * inventory's counts are exact, within the recorded range otherwise (inventory.ranges: non-transactional tables,
 * or every table when the backup could not pause writes). Without a recorded range, approximate counts allow
 * ±1% (at least one row). Each missing, extra or differing table is one mismatch.
 */
export function compareCounts(inventory: Inventory, actual: Record<string, number>): CheckResult {
  const expected = inventory.tables ?? {};
  const ranges = (inventory.ranges ?? {}) as Record<string, [number, number]>;
  // Created while the dump ran: in the dump, never counted (docs/FORMAT.md).
  const uncounted = new Set(Array.isArray(inventory.uncounted) ? inventory.uncounted.map(String) : []);
  const mismatches: NonNullable<CheckResult["mismatches"]> = [];
  const keys = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].filter((k) => !uncounted.has(k)).sort();
  for (const item of keys) {
    const want = expected[item];
    const got = actual[item];
    if (want === undefined || got === undefined) {
      mismatches.push({ item, expected: want ?? null, actual: got ?? null });
      continue;
    }
    const slack = inventory.counts === "exact" ? 0 : Math.max(1, Math.ceil(want / 100));
    const [lo, hi] = ranges[item] ?? [want - slack, want + slack];
    if (got < lo || got > hi) mismatches.push({ item, expected: lo === hi ? lo : `${lo}..${hi}`, actual: got });
  }
  const missing = mismatches.filter((m) => m.actual === null).length;
  const extra = mismatches.filter((m) => m.expected === null).length;
  const differ = mismatches.length - missing - extra;
  const how = inventory.counts === "exact" ? "equal" : "within the recorded range";
  return {
    kind: "rowCounts",
    name: "row counts",
    ok: mismatches.length === 0,
    expected: Object.keys(expected).length,
    actual: Object.keys(actual).length,
    ...(mismatches.length ? { mismatches } : {}),
    detail: mismatches.length
      ? `${differ} table(s) differ, ${missing} missing, ${extra} not in the snapshot`
      : `${keys.length} table(s), counts ${how}${Object.keys(ranges).length ? ` (${Object.keys(ranges).length} checked against a range)` : ""}${uncounted.size ? `; ${uncounted.size} created during the dump, not counted` : ""}`,
  };
}

type Query = Drill["checks"]["queries"][number];

/** Runs one check query; judged as every kind's are (checks.ts): exactly one number, within min/max/equals. */
async function queryCheck(conn: MysqlConnection, q: Query): Promise<CheckResult> {
  let rows: unknown;
  try {
    [rows] = await conn.query({ sql: q.sql, rowsAsArray: true });
  } catch (err) {
    return evaluateQuery(q, { error: `the query failed: ${(err as { sqlMessage?: string }).sqlMessage ?? messageOf(err)}` });
  }
  // A statement without rows (UPDATE, SET) answers with a result header, not a list of rows.
  if (!Array.isArray(rows))
    return evaluateQuery(q, { error: "the query returned no result set; it must return exactly one row with one number" });
  return evaluateQuery(q, singleNumber(rows as unknown[][]));
}

/** Caps each statement of the session at ms: MariaDB's max_statement_time (seconds), else MySQL's (SELECTs, ms). */
async function limitStatements(conn: MysqlConnection, ms: number): Promise<void> {
  await conn.query(`SET SESSION max_statement_time = ${ms / 1000}`).catch(() => conn.query(`SET SESSION max_execution_time = ${ms}`));
}
