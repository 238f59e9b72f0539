import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { connect } from "node:net";
import type { LoadedJob } from "../config/load.ts";
import type { SourceConfig } from "../config/schema.ts";
import { messageOf } from "../errors.ts";
import { redact, stripPassword } from "../secret.ts";
import { connectPostgres, parsePostgresUrl } from "../sources/postgres.ts";

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
 * `select 1`; MySQL opens a TCP connection to the server (credentials are checked by the first backup); SQLite and
 * volumes check that the file or directory is there and readable. Never rejects: failures are in the result.
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
      const u = new URL(source.url);
      if (u.searchParams.has("socket")) return undefined;
      const host = u.hostname.replace(/^\[(.*)\]$/, "$1") || "localhost";
      const port = Number(u.port || 3306);
      await tcpConnect(host, port, 10_000).catch((err: unknown) => {
        throw new Error(`mysql ${stripPassword(source.url)}: cannot reach ${host}:${port}: ${messageOf(err)}`, { cause: err });
      });
      return `TCP connection to ${host}:${port} ok (credentials are checked by the first backup)`;
    }
    case "sqlite": {
      const s = await stat(source.path);
      if (!s.isFile()) throw new Error(`${source.path} is not a file`);
      await access(source.path, constants.R_OK);
      return `${source.path} exists and is readable`;
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

function tcpConnect(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    socket.once("connect", () => {
      socket.end();
      resolve();
    });
    socket.once("error", reject);
  });
}
