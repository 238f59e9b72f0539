import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const bin = fileURLToPath(new URL("../../bin/lifeboat.js", import.meta.url));

/** What a CLI run printed and how it exited. */
export interface CliResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, when it is JSON. */
  json?: unknown;
}

/**
 * Starts the real CLI (bin/lifeboat.js) as a child process, without a TTY, as a script or agent would. Asynchronous
 * on purpose: the embedded S3 server runs in the test process and must keep answering.
 */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; result: Promise<CliResult> } {
  const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
  child.stdin?.end();
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const result = new Promise<CliResult>((resolve) => {
    child.on("close", (status, signal) => {
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {}
      resolve({ status, signal, stdout, stderr, json });
    });
  });
  return { child, result };
}

/** Runs the CLI to completion. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return startCli(args, env).result;
}

/**
 * Starts the CLI and sends it SIGTERM once `count()` finds something (a scratch database, a running query), polled
 * every pollMs for at most waitMs. Returns the count at that moment (the test says what it must be) and how the CLI
 * ended.
 */
export async function interruptWhenSeen(
  args: string[],
  env: NodeJS.ProcessEnv,
  count: () => number | Promise<number>,
  opts: { waitMs?: number; pollMs?: number } = {},
): Promise<{ seen: number; result: CliResult }> {
  const { child, result } = startCli(args, env);
  const until = Date.now() + (opts.waitMs ?? 30_000);
  let seen = await count();
  while (seen === 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 20));
    seen = await count();
  }
  child.kill("SIGTERM");
  return { seen, result: await result };
}

const ptyHelper = fileURLToPath(new URL("./terminal.py", import.meta.url));

/**
 * Runs the CLI under a pseudo-terminal, as a person would, typing `answer` at the confirmation prompt. CI is unset
 * for it: lifeboat never asks when CI is set.
 */
export function atTerminal(answer: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; out: string }> {
  const { CI: _ci, ...rest } = process.env;
  const child = spawn("python3", [ptyHelper, "to continue", answer, "--", process.execPath, bin, ...args], { env: { ...rest, ...env } });
  let out = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    out += d.toString();
  });
  return new Promise((resolve) => child.on("close", (status) => resolve({ status, out })));
}
