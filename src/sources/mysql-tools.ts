import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { code, LifeboatError } from "../errors.ts";
import type { MysqlParams } from "./mysql-connect.ts";

/** Which family a client tool belongs to: their options differ (TLS, GTIDs, progress reports). */
export type ToolFlavor = "mariadb" | "mysql";

/** A client program found on the PATH. */
export interface MysqlTool {
  /** The command run, e.g. "mariadb-dump". */
  command: string;
  /** The first line of `<command> --version`. */
  version: string;
  flavor: ToolFlavor;
}

const CANDIDATES = {
  dump: { mariadb: "mariadb-dump", mysql: "mysqldump" },
  client: { mariadb: "mariadb", mysql: "mysql" },
} as const;

// Inherited variables that would make a tool connect elsewhere than the URL says, or with another password.
const CONNECTION_ENV = ["MYSQL_PWD", "MYSQL_HOST", "MYSQL_TCP_PORT", "MYSQL_UNIX_PORT", "MYSQL_GROUP_SUFFIX", "MYSQL_HOME"];

/**
 * Finds the dump tool (mariadb-dump or mysqldump) or the client (mariadb or mysql), preferring the server's own
 * family, and reads its version. Rejects (code SOURCE) with an install hint when neither runs.
 */
export async function findTool(kind: "dump" | "client", prefer: ToolFlavor = "mariadb"): Promise<MysqlTool> {
  const names = CANDIDATES[kind];
  const order = prefer === "mariadb" ? [names.mariadb, names.mysql] : [names.mysql, names.mariadb];
  const failures: string[] = [];
  for (const command of order) {
    try {
      const version = await versionOf(command);
      return { command, version, flavor: /mariadb/i.test(version) ? "mariadb" : "mysql" };
    } catch (err) {
      failures.push(`${command}: ${(err as Error).message}`);
    }
  }
  throw new LifeboatError(code.source, `cannot run ${order.join(" or ")} (${failures.join("; ")})`, {
    hint: "install the MariaDB or MySQL client tools (mariadb-client or mysql-client), the server's version or newer",
  });
}

function versionOf(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, ["--version"], { timeout: 10_000, env: toolEnv() }, (err, stdout) => {
      if (err) reject(err);
      else resolve(stdout.split("\n")[0]?.trim() ?? command);
    });
  });
}

/** Our environment without the variables the MySQL tools would take connection settings from. */
export function toolEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of CONNECTION_ENV) delete env[k];
  // MySQL's tools read ~/.mylogin.cnf even with --defaults-file; point them at a file that does not exist.
  env.MYSQL_TEST_LOGIN_FILE = "/nonexistent/lifeboat/.mylogin.cnf";
  return env;
}

/** Quotes a value for a MySQL option file: double quotes, with the escapes the option parser undoes. */
function optionValue(v: string): string {
  const escaped = v.replace(/[\\"'\n\r\t\b]/g, (c) => ({ "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b" })[c] ?? `\\${c}`);
  return `"${escaped}"`;
}

/** Where a tool connects: the server as the params say, or a local socket lifeboat relays through. */
export type ToolTarget = { server: MysqlParams } | { relaySocket: string; params: MysqlParams };

/**
 * Writes the one option file a tool reads (--defaults-file, mode 0600 inside a private directory): user, password,
 * host or socket and TLS settings. The password never appears in argv, where other local users could read it.
 * Returns the argument that must come first on the tool's command line.
 */
export async function writeDefaultsFile(dir: string, name: string, target: ToolTarget, flavor: ToolFlavor): Promise<string> {
  const p = "server" in target ? target.server : target.params;
  const lines = ["[client]", `user=${optionValue(p.user)}`];
  if (p.password) lines.push(`password=${optionValue(p.password.reveal())}`);
  if ("relaySocket" in target) {
    // The relay is a socket in our private directory; the relay itself talks to the server.
    lines.push("protocol=SOCKET", `socket=${optionValue(target.relaySocket)}`, flavor === "mariadb" ? "skip-ssl" : "ssl-mode=DISABLED");
  } else {
    if (p.socket) lines.push("protocol=SOCKET", `socket=${optionValue(p.socket)}`);
    else lines.push("protocol=TCP", `host=${optionValue(p.host)}`, `port=${p.port}`);
    lines.push(...tlsOptions(p, flavor));
  }
  const file = join(dir, name);
  await writeFile(file, `${lines.join("\n")}\n`, { mode: 0o600, flag: "wx" });
  return `--defaults-file=${file}`;
}

function tlsOptions(p: MysqlParams, flavor: ToolFlavor): string[] {
  const ca = p.sslCa ? [`ssl-ca=${optionValue(p.sslCa)}`] : [];
  if (flavor === "mysql") return [`ssl-mode=${p.tls}`, ...ca];
  if (p.tls === "DISABLED") return ["skip-ssl"];
  // MariaDB's clients have no separate CA-only mode: verification checks the host name too.
  return ["ssl", ...ca, p.tls === "REQUIRED" ? "skip-ssl-verify-server-cert" : "ssl-verify-server-cert"];
}

export { exitOf, exitWhy, stderrTail, terminate } from "./process.ts";
