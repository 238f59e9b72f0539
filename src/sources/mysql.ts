import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import type { MysqlSourceConfig } from "../config/schema.ts";
import { abortedError, ConfigError, code, LifeboatError, wrap } from "../errors.ts";
import { redact } from "../secret.ts";
import {
  closeQuietly,
  connectMysql,
  displayMysqlUrl,
  killQuery,
  type MysqlConnection,
  type MysqlParams,
  parseMysqlUrl,
  secretsOf,
  serverOf,
} from "./mysql-connect.ts";
import { DumpTables } from "./mysql-dump-tables.ts";
import { type DumpRelay, openDumpRelay } from "./mysql-relay.ts";
import { countSnapshots, type Handshake, openSnapshots } from "./mysql-snapshot.ts";
import { databaseCollations, listDatabases, listTables, namesWithLineBreaks, type TableInfo } from "./mysql-tables.ts";
import { exitOf, exitWhy, findTool, type MysqlTool, stderrTail, terminate, toolEnv, writeDefaultsFile } from "./mysql-tools.ts";
import { ToolOutput } from "./process.ts";
import type { Dump, DumpInfo, Inventory, Source } from "./source.ts";
import { selectsOption } from "./tool-options.ts";

/** Artifact name of a MySQL dump inside a snapshot. */
export const MYSQL_ARTIFACT = "db.sql";
/** Artifact format: plain SQL as mariadb-dump/mysqldump write it (docs/FORMAT.md). */
export const MYSQL_FORMAT = "mysql-dump-sql";

// Options that would send the dump elsewhere, change its shape or its consistency, or connect elsewhere.
const REFUSED_LONG = (
  "result-file tab xml databases all-databases tables master-data source-data dump-slave dump-replica " +
  "flush-logs lock-all-tables lock-tables add-drop-database delete-master-logs host port user password " +
  "socket protocol defaults-file defaults-extra-file no-defaults defaults-group-suffix compress ssl " +
  "skip-ssl init-command verbose skip-single-transaction skip-add-locks"
).split(" ");
// Every --ssl-… option (--ssl-mode, --ssl-ca, …): the URL's ssl-mode and ssl-ca say how to connect.
const REFUSED_FAMILIES = ["ssl"];
const REFUSED_SHORT = "rTXBAFxlhPupSCv";
const MYSQL_RULES = { mysql: true };
// Options that leave tables or rows out of the dump while the inventory counts every table.
const FILTER_LONG = ["no-data", "where", "ignore-table", "ignore-table-data", "ignore-database"];
const isFilter = (a: string) => selectsOption(a, FILTER_LONG, "dw", MYSQL_RULES) !== undefined;
const dumpsHistory = (a: string) => selectsOption(a, ["dump-history"], "H", MYSQL_RULES) !== undefined;
// Without comments the tool writes no "-- Dump completed" line, which otherwise proves the output is whole.
const dropsComments = (a: string) => selectsOption(a, ["skip-comments", "compact"], "", MYSQL_RULES) !== undefined;

// Unquoted (or ANSI-quoted) names: a restore could no longer map the dump's USE and CREATE DATABASE lines.
const UNQUOTED_LONG = ["skip-quote-names", "compatible"];

function checkDumpArgs(args: readonly string[]): void {
  for (const arg of args) {
    const unquoted = selectsOption(arg, UNQUOTED_LONG, "", MYSQL_RULES);
    if (unquoted) {
      throw new ConfigError(`mysql source: dumpArgs must not contain "${arg}" (read by the dump tool as ${unquoted})`, {
        hint: "restores and drills map the databases a dump names, which needs names quoted with backticks, the dump tool's default: remove the option",
      });
    }
    // Read as the tool reads it: "--por=3399", "--result_file=…" and "--loose-host=…" are the refused options too.
    const refused = selectsOption(arg, REFUSED_LONG, REFUSED_SHORT, MYSQL_RULES, REFUSED_FAMILIES);
    if (refused) {
      throw new ConfigError(`mysql source: dumpArgs must not contain "${arg}" (read by the dump tool as ${refused})`, {
        hint: "lifeboat sets the output, databases, snapshot and connection itself; put the connection in the URL and the databases in databases/all",
      });
    }
    // A word on its own could be a database or table name the tool would dump on top of lifeboat's selection.
    if (!arg.startsWith("-")) {
      throw new ConfigError(`mysql source: dumpArgs must be options, got "${arg}"`, { hint: "write options with values as --name=value" });
    }
  }
}

/** Facts about the server for the manifest, and to tell servers apart when a drill picks its scratch database. */
interface ServerInfo {
  version: string;
  hostname: string;
  port: number;
  serverId: number;
  uuid?: string;
  flavor: "mariadb" | "mysql";
}

async function serverInfo(conn: MysqlConnection): Promise<ServerInfo> {
  const [rows] = await conn.query({ sql: "SELECT VERSION(), @@hostname, @@port, @@server_id", rowsAsArray: true });
  const [version, hostname, port, serverId] = (rows as [string, string, string, string][])[0] ?? ["", "", "0", "0"];
  // MySQL has a server UUID; MariaDB does not.
  const uuid = await conn
    .query({ sql: "SELECT @@server_uuid", rowsAsArray: true })
    .then(([r]) => String((r as [string][])[0]?.[0]))
    .catch(() => undefined);
  return {
    version,
    hostname,
    port: Number(port),
    serverId: Number(serverId),
    uuid,
    flavor: /mariadb/i.test(version) ? "mariadb" : "mysql",
  };
}

/** What dump() learns before it starts the tool. */
interface Setup {
  server: ServerInfo;
  databases: string[];
  /** Default collation per database: drills create their scratch databases alike. */
  collations: Record<string, string>;
  tables: TableInfo[];
  tool: MysqlTool;
}

function dumpOptions(tool: MysqlTool, server: ServerInfo): string[] {
  const args = [
    "--single-transaction",
    "--routines",
    "--triggers",
    "--events",
    "--hex-blob",
    // Tablespaces are NDB's; listing them needs PROCESS on MySQL 8 and tells a restore nothing.
    "--no-tablespaces",
    "--default-character-set=utf8mb4",
    // The most the protocol allows, so a large row never fails the dump.
    "--max-allowed-packet=1073741824",
  ];
  if (tool.flavor === "mysql") {
    // GTID_PURGED in the dump would make every restore into a server with GTIDs fail.
    args.push("--set-gtid-purged=OFF");
    if (server.flavor === "mariadb") args.push("--column-statistics=0");
  }
  return args;
}

/**
 * A MySQL or MariaDB database (or several), dumped with the server's own tool (mariadb-dump or mysqldump) as plain
 * SQL, with row counts taken in a snapshot opened at the same instant as the dump's (see openSnapshots), so a drill
 * can demand exact equality.
 */
export class MysqlSource implements Source {
  readonly kind = "mysql";
  readonly #params: MysqlParams;
  readonly #config: MysqlSourceConfig;
  readonly #where: string;

  /** Checks the URL, the database selection and dumpArgs; throws ConfigError for any. Connects only in dump(). */
  constructor(config: MysqlSourceConfig) {
    this.#params = parseMysqlUrl(config.url);
    this.#config = config;
    this.#where = `mysql ${displayMysqlUrl(config.url)}`;
    const p = this.#params;
    const hint = "name one database in the URL (mysql://user@host:3306/db), or several with databases: [...], or all: true";
    if (config.all && config.databases) throw new ConfigError(`${this.#where}: give databases or all: true, not both`, { hint });
    if ((config.all || config.databases) && p.database) {
      throw new ConfigError(`${this.#where}: the URL names database "${p.database}" and databases/all name more`, { hint });
    }
    if (!config.all && !config.databases && !p.database) throw new ConfigError(`${this.#where}: no database to back up`, { hint });
    if (config.databases && new Set(config.databases).size !== config.databases.length) {
      throw new ConfigError(`${this.#where}: databases lists a database twice`);
    }
    checkDumpArgs(config.dumpArgs);
  }

  /** Reads the server, checks every database exists, lists the tables and finds the dump tool. */
  async #prepare(conn: MysqlConnection): Promise<Setup> {
    const where = this.#where;
    const server = await serverInfo(conn);
    const databases = this.#config.all ? await listDatabases(conn) : (this.#config.databases ?? [this.#params.database as string]);
    if (databases.length === 0) throw new LifeboatError(code.source, `${where}: the server holds no databases to back up`);
    const collations = await databaseCollations(conn, databases);
    const missing = databases.filter((d) => !(d in collations));
    if (missing.length) {
      throw new LifeboatError(
        code.source,
        `${where}: database "${missing.join('", "')}" does not exist or user "${this.#params.user}" may not see it`,
        {
          hint: "check the database names and the user's grants",
        },
      );
    }
    const broken = [
      ...databases.filter((d) => /[\r\n]/.test(d)).map((d) => `database ${JSON.stringify(d)}`),
      ...(await namesWithLineBreaks(conn, databases)),
    ];
    if (broken.length) {
      throw new LifeboatError(
        code.source,
        `${where}: ${broken.slice(0, 5).join(", ")}${broken.length > 5 ? ` and ${broken.length - 5} more` : ""} ha${broken.length > 1 ? "ve" : "s"} a line break in the name`,
        {
          hint: "restores read a dump line by line and cannot restore such a name safely (a drill could write outside its scratch databases): rename it, or leave its database out of databases",
        },
      );
    }
    const tables = await listTables(conn, databases);
    const tool = await findTool("dump", server.flavor);
    return { server, databases, collations, tables, tool };
  }

  /**
   * Connects, starts the dump tool through a local relay and opens both snapshots (openSnapshots), then streams
   * the dump while counting. Rejects (code SOURCE) if the server cannot be reached, a database does not exist, the
   * tool cannot run or fails before its snapshot exists. The stream ends only after the tool exited with 0 and wrote
   * its completion line; otherwise it is destroyed with done's error. Abort kills the tool and ends every session.
   */
  async dump(signal: AbortSignal): Promise<Dump> {
    const p = this.#params;
    const where = this.#where;
    const secrets = secretsOf(p);
    const aborted = () => abortedError(`${where}: dump`, signal);
    if (signal.aborted) throw aborted();
    const single = !this.#config.all && (this.#config.databases?.length ?? 1) === 1;

    const conn = await connectMysql(p, single && p.database ? p.database : null);
    const sessions: MysqlConnection[] = [conn];
    let dir: string | undefined;
    let relay: DumpRelay | undefined;
    let child: ChildProcess | undefined;
    const cleanup = async () => {
      relay?.close();
      for (const s of sessions) closeQuietly(s);
      if (dir) await rm(dir, { recursive: true, force: true }).catch(() => {});
    };

    // The stream ends only after the tool's exit is judged, so a failed dump never looks like a short, clean one.
    let output: ToolOutput | undefined;
    let stderr = () => "";
    let tail = "";
    let dumped = new DumpTables();
    let exited: Promise<Awaited<ReturnType<typeof exitOf>>> = new Promise(() => {});
    let toolGone!: (err: Error) => void;
    const gone = new Promise<Error>((resolve) => {
      toolGone = resolve;
    });
    const toolError = (why: string) => {
      const text = redact(stderr(), secrets);
      return new LifeboatError(code.source, `${where}: ${why}${text ? `: ${text}` : ""}`);
    };

    let setup: Setup;
    let hs: Handshake;
    try {
      setup = await this.#prepare(conn);
      const { server, databases, tool } = setup;
      dumped = new DumpTables(single ? databases[0] : undefined);
      dir = await mkdtemp(join(tmpdir(), "lifeboat-mysql-"));
      // Plaintext sessions run through the relay, which sees the tool's START TRANSACTION; TLS ones cannot.
      if (p.tls === "DISABLED") relay = await openDumpRelay(join(dir, "relay.sock"), p);
      const defaults = await writeDefaultsFile(
        dir,
        "dump.cnf",
        relay ? { relaySocket: relay.socketPath, params: p } : { server: p },
        tool.flavor,
      );
      // Names after "--", so a database called "-x" is not taken for an option. One database is dumped without
      // USE/CREATE DATABASE statements, so it restores under any name; several carry them (see restoreMysql).
      const args = [
        defaults,
        ...dumpOptions(tool, server),
        ...this.#config.dumpArgs,
        ...(single ? [] : ["--databases"]),
        "--",
        ...databases,
      ];
      const start = () => {
        const c = spawn(tool.command, args, { env: toolEnv(), stdio: ["ignore", "pipe", "pipe"] });
        child = c;
        stderr = stderrTail(c.stderr as Readable);
        exited = exitOf(c);
        exited.then((exit) => toolGone(toolError(`${tool.command} ${exitWhy(exit)} before its snapshot opened`)));
        output = new ToolOutput(c, (chunk) => {
          tail = (tail + chunk.toString("latin1")).slice(-256);
          dumped.push(chunk);
        });
      };
      hs = await openSnapshots({ params: p, conn, tables: setup.tables, relay, start, toolGone: gone, signal });
      if (hs.after) sessions.push(hs.after);
      // The tool read its options long ago (it is inside its transaction): the password file need not wait.
      if (relay) await rm(join(dir, "dump.cnf"), { force: true });
    } catch (err) {
      if (child) terminate(child);
      await cleanup();
      if (signal.aborted) throw aborted();
      throw wrap(`${where}: start dump`, err, code.source);
    }
    const { tool, tables } = setup;
    const proc = child as unknown as ChildProcess;
    const out = output as unknown as ToolOutput;
    let counting = true;
    const onAbort = () => {
      terminate(proc);
      // Only while counting: afterwards the sessions are gone and their ids may belong to someone else.
      if (counting) for (const s of sessions) killQuery(p, s.threadId).catch(() => {});
    };
    signal.addEventListener("abort", onAbort, { once: true });

    const failure = exited.then((exit): LifeboatError | undefined => {
      let err: LifeboatError | undefined;
      if (signal.aborted) err = aborted();
      else if (out.consumerGone)
        err = new LifeboatError(code.source, `${where}: the dump stream was closed before ${tool.command} finished`);
      else if (exit.error || exit.status !== 0) err = toolError(`${tool.command} ${exitWhy(exit)}`);
      else if (!this.#config.dumpArgs.some(dropsComments) && !tail.includes("-- Dump completed")) {
        err = toolError(`${tool.command} exited with 0 but its output lacks the "-- Dump completed" line`);
      }
      out.settle(err);
      return err;
    });

    const inventory: Promise<Inventory> = countSnapshots({ params: p, conn, tables, signal }, hs, failure).then(
      ({ tables: counts, ranges }) => ({
        kind: "mysql",
        counts: hs.counts,
        tables: counts,
        ...(Object.keys(ranges).length ? { ranges } : {}),
        databases: setup.databases,
        layout: single ? "single" : "multi",
        serverVersion: setup.server.version,
      }),
      (err) => {
        throw signal.aborted ? aborted() : wrap(`${where}: count rows`, err, code.source);
      },
    );
    inventory
      .finally(() => {
        counting = false;
      })
      .catch(() => {});

    const done = (async (): Promise<DumpInfo> => {
      const err = await failure;
      // Lifeboat's snapshot must outlive the counts: end the sessions last.
      await inventory.catch(() => {});
      await cleanup();
      signal.removeEventListener("abort", onAbort);
      if (err) throw err;
      const warnings = [...hs.warnings, ...redact(stderr(), secrets).split("\n").filter(Boolean)];
      const uncounted = await recordUncounted(inventory, dumped);
      if (uncounted.length) {
        warnings.push(
          `tables created while the dump ran are in the dump but were not counted: ${uncounted.join(", ")}; drills do not check their rows`,
        );
      }
      const nonTx = tables.filter((t) => !t.transactional);
      if (nonTx.length) {
        warnings.push(
          `non-transactional tables are read live, not in the snapshot, so their counts are a range: ${nonTx
            .map((t) => `${t.key} (${t.engine})`)
            .join(", ")}; convert them to InnoDB for exact counts`,
        );
      }
      const versioned = tables.filter((t) => t.versioned);
      if (versioned.length && !this.#config.dumpArgs.some(dumpsHistory)) {
        warnings.push(
          `system-versioned tables are dumped with their current rows only, not their history: ${versioned.map((t) => t.key).join(", ")}; add "--dump-history" to dumpArgs to keep it`,
        );
      }
      const filters = this.#config.dumpArgs.filter(isFilter);
      if (filters.length) {
        warnings.push(
          `dumpArgs ${filters.join(" ")} leave tables or rows out of the dump, but the inventory counts every table: an exact row-count drill will report those tables`,
        );
      }
      return {
        tool: tool.version,
        warnings,
        details: {
          tool: tool.command,
          server: serverOf(p),
          host: p.socket ? undefined : p.host,
          port: p.socket ? undefined : p.port,
          serverVersion: setup.server.version,
          serverHostname: setup.server.hostname,
          serverPort: setup.server.port,
          serverId: setup.server.serverId,
          ...(setup.server.uuid ? { serverUuid: setup.server.uuid } : {}),
          databases: setup.databases,
          layout: single ? "single" : "multi",
          collations: setup.collations,
          counts: hs.counts,
          writePauseMs: hs.writePauseMs === undefined ? undefined : Math.round(hs.writePauseMs * 100) / 100,
          lockWaitMs: hs.lockWaitMs === undefined ? undefined : Math.round(hs.lockWaitMs * 100) / 100,
        },
      };
    })();
    done.catch(() => {});

    return { artifact: MYSQL_ARTIFACT, format: MYSQL_FORMAT, stream: out.stream, inventory, done };
  }
}

/**
 * Tables the dump holds that the inventory does not: created after lifeboat listed the tables and before the tool
 * listed them. Recorded in the inventory as `uncounted` (read only after `done`, which waits for this), so a drill
 * neither counts them nor fails on them.
 */
async function recordUncounted(inventory: Promise<Inventory>, dumped: DumpTables): Promise<string[]> {
  const inv = await inventory;
  const counted = inv.tables ?? {};
  const uncounted = [...dumped.keys].filter((k) => !(k in counted)).sort();
  if (uncounted.length) inv.uncounted = uncounted;
  return uncounted;
}
