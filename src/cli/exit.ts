import { CommanderError } from "commander";
import { code, LifeboatError } from "../errors.ts";
import { redact } from "../secret.ts";
import { jsonPrinted } from "./output.ts";

/** Process exit codes (docs/CLI.md). */
export const exitCode = { ok: 0, failed: 1, usage: 2, refused: 3 } as const;

/** The exit code for an error: 2 bad usage or config, 3 refused by a guard, 1 anything else. The one place this is decided. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : exitCode.usage;
  if (err instanceof LifeboatError) {
    switch (err.code) {
      case code.config:
      case code.usage:
        return exitCode.usage;
      case code.refused:
        return exitCode.refused;
      case code.notFound:
      case code.integrity:
      case code.source:
      case code.storage:
      case code.crypto:
      case code.aborted:
      case code.failed:
        return exitCode.failed;
      default: {
        const never: never = err.code;
        return never;
      }
    }
  }
  return exitCode.failed;
}

function causeChain(err: unknown): string[] {
  const out: string[] = [];
  let c = err instanceof Error ? err.cause : undefined;
  const seen = new Set<unknown>();
  while (c && !seen.has(c) && out.length < 5) {
    seen.add(c);
    const m = c instanceof Error ? c.message : String(c);
    const top = err instanceof Error ? err.message : "";
    if (m && !top.includes(m)) out.push(m);
    c = c instanceof Error ? c.cause : undefined;
  }
  return out;
}

const logged = new WeakSet<object>();

/**
 * Marks an error the command already wrote to stderr in its own format (the daemon's JSON log line), so reportError
 * does not add it again as text. The exit code, and the --json result on stdout, still come from reportError.
 */
export function alreadyLogged<E extends Error>(err: E): E {
  logged.add(err);
  return err;
}

/** Whether the error was already written by its command (see alreadyLogged). */
export function isLogged(err: Error): boolean {
  return logged.has(err);
}

/** Prints an error (message, causes, hint) to stderr, or as JSON to stdout with --json; returns the exit code. */
export function reportError(err: unknown, json: boolean): number {
  const status = exitCodeFor(err);
  if (err instanceof CommanderError) return status; // commander already printed it
  const message = redact(err instanceof Error ? err.message : String(err));
  const hint = err instanceof LifeboatError ? err.hint : undefined;
  const causes = causeChain(err).map((c) => redact(c));
  // One JSON value per run: a command that printed its result (with ok: false) already said what failed.
  if (json && !jsonPrinted()) {
    const errCode = err instanceof LifeboatError ? err.code : code.failed;
    process.stdout.write(`${JSON.stringify({ ok: false, error: { code: errCode, message, causes, hint, exitCode: status } })}\n`);
  }
  if (err instanceof Error && logged.has(err)) return status;
  const lines = [`error: ${message}`, ...causes.map((c) => `  caused by: ${c}`)];
  if (hint) lines.push(`hint: ${hint}`);
  process.stderr.write(`${lines.join("\n")}\n`);
  if (process.env.LIFEBOAT_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return status;
}
