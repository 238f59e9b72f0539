import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Readable, Transform, type TransformCallback } from "node:stream";
import { abortedError, ConfigError, code, LifeboatError, RefusedError, wrap } from "../errors.ts";
import { redact } from "../secret.ts";
import { displayMysqlUrl, parseMysqlUrl, quoteId, secretsOf } from "./mysql-connect.ts";
import { exitWhy, findTool, stderrTail, toolEnv, writeDefaultsFile } from "./mysql-tools.ts";
import { feedTool } from "./process.ts";

/** How DumpRewriter changes a dump on its way into the client. */
export interface RewriteOptions {
  /** Source database → database to write instead, for USE, CREATE/ALTER/DROP DATABASE. Unlisted names are refused. */
  databases: Readonly<Record<string, string>>;
  /** The database statements go to before the dump names one: the target of a single-database dump. */
  current?: string;
  /** Removes DEFINER=user@host clauses, so views, triggers, routines and events belong to the restoring user. */
  stripDefiners?: boolean;
  /** Creates events DISABLEd, so none runs against anything while the restore is being checked. */
  disableEvents?: boolean;
}

// Only short statement lines are rewritten; data (INSERT) lines pass untouched and unbuffered, whatever their size.
const CANDIDATE = /^(USE\s|CREATE\s|ALTER\s|DROP\s|DELIMITER\s|\/\*!)/i;
const DELIMITER_LINE = /^DELIMITER\s+(\S+)/;
const FIRST_BYTES = new Set([..."UCADucad/"].map((c) => c.charCodeAt(0)));
const MAX_LINE = 4 * 1024 * 1024;
// Names are matched on latin1 text (one char per byte), so rewriting never re-encodes the bytes around them.
const NAME = "(`(?:[^`]|``)*`)";
const USE = new RegExp(`^USE ${NAME};`);
const CREATE_DB = new RegExp(`^(CREATE DATABASE (?:/\\*!32312 IF NOT EXISTS\\*/ )?)${NAME}`);
const ALTER_DB = new RegExp(`^((?:/\\*!\\d+ )?ALTER DATABASE )${NAME}`);
const DROP_DB = new RegExp(`^((?:/\\*!40000 )?DROP DATABASE (?:IF EXISTS)?(?:\\*/)? ?)${NAME}`);
const ACCOUNT_PART = "(?:`(?:[^`]|``)*`|'(?:[^'\\\\]|\\\\.)*'|[\\w.$%:-]+)";
const DEFINER = new RegExp(`DEFINER=${ACCOUNT_PART}(?:@${ACCOUNT_PART})?\\s*`, "g");
const EVENT_ENABLE = /( PRESERVE) ENABLE(?= )/;
const VIEW = /^\/\*!50001 (?:CREATE .*)?VIEW `/;
// Any statement that picks, creates, alters or drops a database. One the patterns above did not read (a name
// without backticks, a name with a line break in it) is refused: passed on, it would run against the real database.
const DATABASE_STATEMENT = /^(?:\/\*!\d*\s*)?(?:USE\s|(?:CREATE|ALTER|DROP)\s+(?:DATABASE|SCHEMA)\b)/i;

const latin1 = (utf8: string) => Buffer.from(utf8, "utf8").toString("latin1");
const unquote = (q: string) => Buffer.from(q.slice(1, -1).replace(/``/g, "`"), "latin1").toString("utf8");

/**
 * Rewrites a mysqldump/mariadb-dump SQL stream line by line: database names in USE, CREATE/ALTER/DROP DATABASE
 * are mapped (a name not in the map fails the stream with RefusedError, so a restore never writes a database it was
 * not given), and optionally DEFINER clauses are removed and events disabled. Data lines pass through unbuffered;
 * memory stays bounded whatever the dump's size.
 */
export class DumpRewriter extends Transform {
  readonly #map: Map<string, string>;
  readonly #opts: RewriteOptions;
  #current?: string;
  /** The client's statement delimiter: mysqldump switches to ";;" around routine, trigger and event definitions. */
  #delimiter = ";";
  /** Under another delimiter: whether the next line starts a statement (else it is inside a routine's body). */
  #head = true;
  #line: Buffer[] = [];
  #lineLength = 0;
  #mode: "start" | "pass" | "collect" = "start";

  constructor(opts: RewriteOptions) {
    super();
    this.#opts = opts;
    this.#map = new Map(Object.entries(opts.databases).map(([from, to]) => [latin1(from), latin1(to)]));
    this.#current = opts.current === undefined ? undefined : latin1(opts.current);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      // Bytes from `from` on that pass unchanged are pushed as one slice, not line by line: dumps of the MariaDB
      // tools put every row of an INSERT on its own line, so a dump has millions of short lines.
      let from = 0;
      let pos = 0;
      while (pos < chunk.length) {
        if (this.#mode === "start") {
          // Under another delimiter every line is looked at: short definitions, and where each statement ends.
          this.#mode = this.#delimiter !== ";" || FIRST_BYTES.has(chunk[pos] as number) ? "collect" : "pass";
          if (this.#mode === "collect") {
            if (pos > from) this.push(chunk.subarray(from, pos));
            from = pos;
          }
        }
        const nl = chunk.indexOf(10, pos);
        const end = nl < 0 ? chunk.length : nl + 1;
        if (this.#mode === "collect") {
          this.#line.push(chunk.subarray(pos, end));
          this.#lineLength += end - pos;
          if (nl >= 0 || this.#lineLength > MAX_LINE) this.#flushLine(nl >= 0);
          from = end;
        }
        pos = end;
        if (nl >= 0) this.#mode = "start";
      }
      if (from < chunk.length) this.push(chunk.subarray(from));
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      // A last line without a newline is still a statement the client runs: rewritten like any other.
      if (this.#lineLength) this.#flushLine(true);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  /** Pushes the buffered line, rewritten if whole (a line longer than MAX_LINE is no statement we rewrite). */
  #flushLine(whole: boolean): void {
    const buf = Buffer.concat(this.#line);
    this.#line = [];
    this.#lineLength = 0;
    if (!whole) {
      this.#mode = "pass";
      this.push(buf);
      return;
    }
    const text = buf.toString("latin1");
    const out = this.#inBody(text) || !CANDIDATE.test(text) ? text : this.#rewrite(text);
    this.push(out === text ? buf : Buffer.from(out, "latin1"));
  }

  /**
   * Whether a line lies inside a routine, trigger or event body, which must reach the server exactly as dumped: a
   * procedure may itself run `DROP DATABASE x`, and a function's string may hold a line `USE x;`. Only under
   * another delimiter than ";" does a statement span lines this way; a DELIMITER line always counts, and going back
   * to ";" means every statement line is checked again (refusing, never passing, what is not mapped).
   */
  #inBody(text: string): boolean {
    const d = DELIMITER_LINE.exec(text);
    if (d) {
      this.#delimiter = d[1] as string;
      this.#head = true;
      return false;
    }
    if (this.#delimiter === ";") return false;
    const body = !this.#head;
    this.#head = text.trimEnd().endsWith(this.#delimiter);
    return body;
  }

  #target(quoted: string, what: string): string {
    const name = quoted.slice(1, -1).replace(/``/g, "`");
    const to = this.#map.get(name);
    if (to === undefined) {
      const known = [...this.#map.keys()].map((k) => Buffer.from(k, "latin1").toString("utf8"));
      throw new RefusedError(`the dump ${what} database ${quoteId(unquote(quoted))}, which this restore was not told to write`, {
        hint: `map it to a target database (databases: { "${unquote(quoted)}": "<target>" }); mapped: ${known.join(", ") || "none"}`,
      });
    }
    return to;
  }

  /**
   * A view over a table of another database in the dump names it `db`.`table`: restored under new names (a drill's
   * scratch databases), the view must read the restored table, not the source's live one.
   */
  #mapQualifiers(line: string): string {
    let out = line;
    for (const [from, to] of this.#map) {
      if (from !== to) out = out.split(`${quoteId(from)}.`).join(`${quoteId(to)}.`);
    }
    return out;
  }

  #rewrite(line: string): string {
    let m = USE.exec(line);
    if (m) {
      this.#current = this.#target(m[1] as string, "switches to");
      return `USE ${quoteId(this.#current)};${line.slice(m[0].length)}`;
    }
    m = CREATE_DB.exec(line);
    if (m) return `${m[1]}${quoteId(this.#target(m[2] as string, "creates"))}${line.slice(m[0].length)}`;
    m = DROP_DB.exec(line);
    if (m) return `${m[1]}${quoteId(this.#target(m[2] as string, "drops"))}${line.slice(m[0].length)}`;
    m = ALTER_DB.exec(line);
    if (m) {
      // mysqldump emits ALTER DATABASE only for the database it is dumping (around routines of another collation).
      const name = (m[2] as string).slice(1, -1).replace(/``/g, "`");
      const to = this.#map.get(name) ?? this.#current ?? this.#target(m[2] as string, "alters");
      return `${m[1]}${quoteId(to)}${line.slice(m[0].length)}`;
    }
    if (DATABASE_STATEMENT.test(line)) {
      const shown = Buffer.from(line.trimEnd().slice(0, 200), "latin1").toString("utf8");
      throw new RefusedError(`the dump holds a database statement lifeboat cannot map, so it was not run: ${shown}`, {
        hint: "lifeboat restores dumps whose database names are quoted with backticks (the dump tools' default): do not put --skip-quote-names or --compatible in dumpArgs; a database name with a line break cannot be restored safely",
      });
    }
    let out = line;
    if (VIEW.test(out)) out = this.#mapQualifiers(out);
    if (this.#opts.stripDefiners && out.includes("DEFINER=")) out = out.replace(DEFINER, "");
    if (this.#opts.disableEvents && out.startsWith("/*!50106 CREATE*/") && out.includes(" EVENT ")) {
      out = out.replace(EVENT_ENABLE, "$1 DISABLE");
    }
    return out;
  }
}

/**
 * The client's stderr, fit for a message: its ERROR lines when there are any (around an error the client echoes
 * the whole failing statement, which may be megabytes of a row), else its last 2,000 characters.
 */
export function clientError(stderr: string): string {
  const errors = stderr.split("\n").filter((l) => /^ERROR \d+/.test(l));
  if (errors.length) return errors.join("\n");
  return stderr.length > 2000 ? `…${stderr.slice(-2000)}` : stderr;
}

/** Options of restoreMysql. */
export interface RestoreMysqlOptions {
  /** The server to restore into; its database (in the path) receives a single-database dump and must exist. */
  url: string;
  /** The plain SQL dump (format mysql-dump-sql). */
  input: Readable;
  /** For a dump of several databases: source name → target name. Every database the dump names must be mapped. */
  databases?: Record<string, string>;
  /** Removes DEFINER clauses (drills: objects then belong to the restoring user, who needs no SUPER). */
  stripDefiners?: boolean;
  /** Creates events disabled (drills: nothing scheduled runs in a scratch database). */
  disableEvents?: boolean;
  signal?: AbortSignal;
}

/**
 * Restores a mysql-dump-sql dump with the mariadb or mysql client (password in a 0600 option file, never argv),
 * through DumpRewriter so it writes only the URL's database or the mapped ones. It does not check that the targets
 * are empty or safe to write: callers guard that. Resolves with the client's warnings; rejects with RefusedError if
 * the dump names an unmapped database, with code SOURCE and the client's stderr (redacted) if the client failed,
 * with the input's error (wrapped) if reading failed, with code ABORTED on abort.
 */
export async function restoreMysql(opts: RestoreMysqlOptions): Promise<{ warnings: string[] }> {
  const p = parseMysqlUrl(opts.url);
  const where = displayMysqlUrl(opts.url);
  const signal = opts.signal;
  const databases = { ...(opts.databases ?? {}) };
  if (!p.database && Object.keys(databases).length === 0) {
    throw new ConfigError(`restore into ${where}: name the target database in the URL`, { hint: "mysql://user@host:3306/<database>" });
  }
  if (signal?.aborted) throw abortedError(`restore into ${where}`, signal);
  const tool = await findTool("client");
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-mysql-"));
  try {
    const args = [
      await writeDefaultsFile(dir, "client.cnf", { server: p }, tool.flavor),
      "--batch",
      "--default-character-set=utf8mb4",
      "--max-allowed-packet=1073741824",
      `--connect-timeout=${p.connectTimeout}`,
      ...(tool.flavor === "mariadb" ? ["--skip-progress-reports"] : []),
      ...(p.database ? [`--database=${p.database}`] : []),
    ];
    const child = spawn(tool.command, args, { env: toolEnv(), stdio: ["pipe", "ignore", "pipe"] });
    const stderr = stderrTail(child.stderr as Readable);
    const rewriter = new DumpRewriter({
      databases,
      current: p.database,
      stripDefiners: opts.stripDefiners,
      disableEvents: opts.disableEvents,
    });
    // Killed before the pipeline closes its stdin: at end of input the client would run the statement it holds,
    // and a dump cut short (or refused) must not commit its last half.
    const stopClient = () => child.kill("SIGKILL");
    opts.input.once("error", stopClient);
    rewriter.once("error", stopClient);
    const { exit, inputError, aborted } = await feedTool(child, [opts.input, rewriter], signal);
    if (aborted) throw abortedError(`restore into ${where}`, signal);
    if (inputError instanceof RefusedError) throw wrap(`restore into ${where}`, inputError);
    if (inputError) throw wrap(`restore into ${where}: read the dump`, inputError, code.source);
    const text = redact(stderr(), secretsOf(p));
    if (exit.error || exit.status !== 0) {
      const shown = clientError(text);
      const packet = /max_allowed_packet/i.test(text);
      // A statement over the limit often gets no ERROR 1153 at all: the server just drops the connection.
      const dropped = /ERROR (2006|2013)\b|server has gone away|lost connection to/i.test(text);
      throw new LifeboatError(code.source, `restore into ${where}: ${tool.command} ${exitWhy(exit)}${shown ? `: ${shown}` : ""}`, {
        cause: exit.error,
        hint: packet
          ? `a statement of the dump (a row with large BLOBs, dumped as hex at twice their size) is larger than the server's max_allowed_packet: raise it on ${where} (SET GLOBAL max_allowed_packet = 1073741824, or max_allowed_packet = 1G under [mysqld]) and run again; the database holds a partial restore`
          : dropped
            ? `the server dropped the connection, most often because a statement of the dump (a row with large BLOBs, dumped as hex at twice their size) is larger than its max_allowed_packet: raise it on ${where} (SET GLOBAL max_allowed_packet = 1073741824) and run again, else see the server's error log; the database holds a partial restore`
            : `${tool.command} stopped at the first error; the database holds a partial restore`,
      });
    }
    return { warnings: text.split("\n").filter(Boolean) };
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}
