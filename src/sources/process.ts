// Child-process plumbing shared by the sources that drive database tools (pg_dump, pg_restore, mariadb-dump, …).
import type { ChildProcess } from "node:child_process";
import type { Readable } from "node:stream";

const STDERR_LIMIT = 64 * 1024;

/** Keeps the last bytes a child writes to stderr, bounded. */
export function stderrTail(stream: Readable): () => string {
  let buf = Buffer.alloc(0);
  stream.on("data", (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    if (buf.length > STDERR_LIMIT) buf = buf.subarray(buf.length - STDERR_LIMIT);
  });
  return () => buf.toString("utf8").trim();
}

/** How a child ended. */
export interface Exit {
  status: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/** Resolves once the child is gone; never rejects. */
export function exitOf(child: ChildProcess): Promise<Exit> {
  return new Promise((resolve) => {
    child.on("error", (error) => {
      if (child.pid === undefined) resolve({ status: null, signal: null, error });
    });
    child.on("close", (status, signal) => resolve({ status, signal }));
  });
}

/** Says how a child ended: "exited with code 2", "was killed by SIGTERM", "could not run (…)". */
export function exitWhy(exit: Exit): string {
  if (exit.error) return `could not run (${exit.error.message})`;
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.status}`;
}

/** Kills a child with SIGTERM, then SIGKILL if it lingers. */
export function terminate(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"), 5000).unref();
}

/** Errors of feeding a child's stdin that only mean the child stopped reading; its exit status says why. */
export function benignPipeError(err: unknown): boolean {
  const c = (err as { code?: string } | undefined)?.code ?? "";
  return ["EPIPE", "ERR_STREAM_PREMATURE_CLOSE", "ERR_STREAM_DESTROYED"].includes(c);
}
