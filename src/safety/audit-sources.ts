import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import type { LoadedJob } from "../config/load.ts";
import type { SourceConfig } from "../config/schema.ts";
import { messageOf } from "../errors.ts";
import { redact, stripPassword } from "../secret.ts";
import { closeQuietly, connectMysql, parseMysqlUrl, serverOf } from "../sources/mysql-connect.ts";
import { databaseCollations } from "../sources/mysql-tables.ts";
import { connectPostgres, parsePostgresUrl } from "../sources/postgres.ts";
import { sqliteHeaderOf } from "../sources/sqlite.ts";

/** What doctor found out about one job's source. */
export interface SourceCheck {
  job: string;
  kind: SourceConfig["type"];
  /** ok: reachable; failed: not; skipped: no cheap check exists. */
  status: "ok" | "failed" | "skipped";
  /** What was checked and what came back, with passwords removed. */
  detail: string;
}

/** The passwords in a source's config, for redaction. */
export function sourceSecrets(source: SourceConfig): string[] {
  if (source.type !== "postgres" && source.type !== "mysql") return [];
  try {
    const p = new URL(source.url).password;
    return p ? [p, decodeURIComponent(p)] : [];
  } catch {
    return [];
  }
}

/**
 * Checks that a job's source can be reached, cheaply and without changing anything: PostgreSQL connects and runs
 * `select 1`; MySQL logs in and checks that the job's databases exist; SQLite checks the file is there, readable
 * and a SQLite database; volumes that the directory is there and readable. Never rejects: failures are in the result.
 */
export async function checkSource(job: LoadedJob): Promise<SourceCheck> {
  const source = job.source;
  const base = { job: job.name, kind: source.type };
  const secrets = sourceSecrets(source);
  try {
    const detail = await probe(source);
    return {
      ...base,
      status: detail === undefined ? "skipped" : "ok",
      detail: redact(detail ?? "no cheap check for this source", secrets),
    };
  } catch (err) {
    return { ...base, status: "failed", detail: redact(messageOf(err), secrets) };
  }
}

async function probe(source: SourceConfig): Promise<string | undefined> {
  switch (source.type) {
    case "postgres": {
      const p = parsePostgresUrl(source.url);
      const client = await connectPostgres(source.url);
      try {
        await client.query("select 1");
      } finally {
        await client.end().catch(() => {});
      }
      return `connected to ${p.host}:${p.port}/${p.database} as ${p.user}, select 1 ok`;
    }
    case "mysql": {
      const p = parseMysqlUrl(source.url);
      // Logging in and naming each database catches a wrong password or database name before the first backup.
      const conn = await connectMysql(p, null).catch((err: unknown) => {
        throw new Error(`mysql ${stripPassword(source.url)}: ${messageOf(err)}`, { cause: err });
      });
      try {
        const wanted = source.databases ?? (p.database ? [p.database] : []);
        // The backup's own test of which databases exist (those the user can see).
        const found = await databaseCollations(conn, wanted);
        const missing = wanted.filter((d) => !(d in found));
        if (missing.length)
          throw new Error(`database(s) ${missing.join(", ")} do not exist on ${serverOf(p)} (or ${p.user} cannot see them)`);
        return `logged in to ${serverOf(p)} as ${p.user}${wanted.length ? `; ${wanted.join(", ")} found` : ""}`;
      } finally {
        closeQuietly(conn);
      }
    }
    case "sqlite": {
      const s = await stat(source.path);
      if (!s.isFile()) throw new Error(`${source.path} is not a file`);
      await access(source.path, constants.R_OK);
      if (s.size > 0 && !(await sqliteHeaderOf(source.path)).isSqlite) {
        throw new Error(`${source.path} is not a SQLite database (its first bytes are not "SQLite format 3")`);
      }
      return `${source.path} exists, is readable and is a SQLite database`;
    }
    case "volume": {
      const s = await stat(source.path);
      if (!s.isDirectory()) throw new Error(`${source.path} is not a directory`);
      await access(source.path, constants.R_OK | constants.X_OK);
      return `${source.path} exists and is readable`;
    }
    default: {
      const never: never = source;
      return never;
    }
  }
}
