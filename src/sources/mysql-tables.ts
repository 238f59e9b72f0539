import type { MysqlConnection } from "./mysql-connect.ts";
import { quoteId } from "./mysql-connect.ts";

/** Databases that belong to the server, never to an application. */
export const SYSTEM_DATABASES = new Set(["mysql", "information_schema", "performance_schema", "sys"]);

/** Prefix of drill scratch databases: never part of `all: true`, never dropped unless they carry it. */
export const SCRATCH_PREFIX = "lifeboat_drill_";

// Engines whose reads honour START TRANSACTION WITH CONSISTENT SNAPSHOT; every other engine reads live rows.
const TRANSACTIONAL_ENGINES = new Set(["innodb", "rocksdb", "tokudb"]);

/** A table whose rows are counted. */
export interface TableInfo {
  database: string;
  name: string;
  /** Storage engine as the server names it ("InnoDB", "MyISAM", "Aria"). */
  engine: string;
  /** Whether its reads see the snapshot (InnoDB) or live rows (MyISAM, Aria, MEMORY, …). */
  transactional: boolean;
  /** A MariaDB system-versioned table: its history rows are dumped only with --dump-history. */
  versioned: boolean;
  /** Inventory key: `db`.`table`, backticks doubled inside. */
  key: string;
}

/** The inventory key of a table: `db`.`table` with backticks doubled inside, e.g. `shop`.`Order`. */
export function tableKey(database: string, table: string): string {
  return `${quoteId(database)}.${quoteId(table)}`;
}

/** Sorts by UTF-16 code units: the same order whatever the server's collation. */
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Lists the tables whose rows a dump holds in the given databases: base tables and system-versioned tables
 * (their current rows), not views or sequences, sorted by database and name. Rejects with the server's error.
 */
export async function listTables(conn: MysqlConnection, databases: readonly string[]): Promise<TableInfo[]> {
  if (databases.length === 0) return [];
  const [rows] = await conn.query({
    sql: `SELECT TABLE_SCHEMA, TABLE_NAME, COALESCE(ENGINE, ''), TABLE_TYPE FROM information_schema.TABLES
           WHERE TABLE_SCHEMA IN (?) AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')`,
    values: [databases],
    rowsAsArray: true,
  });
  return (rows as [string, string, string, string][])
    .map(([database, name, engine, type]) => ({
      database,
      name,
      engine,
      versioned: type === "SYSTEM VERSIONED",
      transactional: TRANSACTIONAL_ENGINES.has(engine.toLowerCase()),
      key: tableKey(database, name),
    }))
    .sort((a, b) => byCodeUnits(a.database, b.database) || byCodeUnits(a.name, b.name));
}

/**
 * Counts the rows of each table with exact count(*), keyed by tableKey. Runs in the connection's current
 * transaction, so inside a consistent snapshot the counts of InnoDB tables describe that instant. Stops between
 * tables when aborted; rejects with the server's error.
 */
export async function countRows(
  conn: MysqlConnection,
  tables: readonly TableInfo[],
  signal?: AbortSignal,
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const t of tables) {
    signal?.throwIfAborted();
    // Both names are quoted by tableKey, so interpolating the key is safe.
    const [rows] = await conn.query({ sql: `SELECT CAST(COUNT(*) AS CHAR) FROM ${t.key}`, rowsAsArray: true });
    counts[t.key] = Number((rows as [string][])[0]?.[0]);
  }
  return counts;
}

/** The non-system databases of the server, scratch databases of drills left out, sorted. */
export async function listDatabases(conn: MysqlConnection): Promise<string[]> {
  const [rows] = await conn.query({ sql: "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA", rowsAsArray: true });
  return (rows as [string][])
    .map(([name]) => name)
    .filter((name) => !SYSTEM_DATABASES.has(name.toLowerCase()) && !name.startsWith(SCRATCH_PREFIX))
    .sort(byCodeUnits);
}

/** Default collation of each named database that exists; the missing ones are absent from the result. */
export async function databaseCollations(conn: MysqlConnection, databases: readonly string[]): Promise<Record<string, string>> {
  if (databases.length === 0) return {};
  const [rows] = await conn.query({
    sql: "SELECT SCHEMA_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN (?)",
    values: [databases],
    rowsAsArray: true,
  });
  return Object.fromEntries(rows as [string, string][]);
}

// Every kind of name a dump writes into its SQL text, where it may sit at the start of a line of its own.
const NAMED = [
  ["TABLES", "TABLE_SCHEMA", "TABLE_NAME", "table or view"],
  ["COLUMNS", "TABLE_SCHEMA", "COLUMN_NAME", "column"],
  ["STATISTICS", "TABLE_SCHEMA", "INDEX_NAME", "index"],
  ["TABLE_CONSTRAINTS", "CONSTRAINT_SCHEMA", "CONSTRAINT_NAME", "constraint"],
  ["ROUTINES", "ROUTINE_SCHEMA", "ROUTINE_NAME", "routine"],
  ["TRIGGERS", "TRIGGER_SCHEMA", "TRIGGER_NAME", "trigger"],
  ["EVENTS", "EVENT_SCHEMA", "EVENT_NAME", "event"],
] as const;

/**
 * Names in the databases that hold a line break: a restore reads the dump line by line, and a name's second line
 * ("DELIMITER ;;", "USE `prod`;") would be read as a statement of its own. Each as "kind db.name".
 */
export async function namesWithLineBreaks(conn: MysqlConnection, databases: readonly string[]): Promise<string[]> {
  if (databases.length === 0) return [];
  const sql = NAMED.map(
    ([table, schema, name, kind]) =>
      `SELECT '${kind}', ${schema}, ${name} FROM information_schema.${table} WHERE ${schema} IN (?) AND (${name} LIKE '%\\n%' OR ${name} LIKE '%\\r%')`,
  ).join(" UNION ALL ");
  const [rows] = await conn.query({ sql, values: NAMED.map(() => databases), rowsAsArray: true });
  return (rows as [string, string, string][]).map(([kind, db, name]) => `${kind} ${JSON.stringify(`${db}.${name}`)}`);
}
