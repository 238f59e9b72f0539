import { type ChildProcess, spawn } from "node:child_process";
import { Duplex, PassThrough, type Readable, type Stream, type Writable } from "node:stream";
import { code, LifeboatError } from "../errors.ts";

const STDERR_LIMIT = 16 * 1024;

/** How runFilter reports and ends. */
export interface FilterOptions {
  /** The program's stdin: a pipe for Node to write, or a readable that wraps a descriptor (another program's stdout). */
  stdin: "pipe" | Readable;
  /** Receives the program's stdout; ended only after a clean exit. */
  output: PassThrough;
  /** Called with the error when the program cannot start, exits non-zero or is killed, or whenClean rejects. */
  fail(err: Error): void;
  /** Runs after an exit with 0, before output ends (given the stderr tail); its rejection fails instead. */
  whenClean?(stderr: string): Promise<void>;
}

/**
 * Starts a filter program with its stdout piped into `output`, which ends only after the program exited with 0; a
 * non-zero exit or a signal fails with an error naming the program and its stderr, so a filter that fails at the
 * very end (zstd's frame checksum) can never look like a short, clean stream.
 */
export function runFilter(command: string, args: readonly string[], what: string, opts: FilterOptions): ChildProcess {
  const child = spawn(command, args, { stdio: [opts.stdin, "pipe", "pipe"] });
  let stderr = "";
  (child.stderr as Readable).on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-STDERR_LIMIT);
  });
  (child.stdout as Readable).pipe(opts.output, { end: false });
  child.on("error", (err) => {
    opts.fail(
      new LifeboatError(code.failed, `${what}: cannot run ${command} (${err.message})`, { cause: err, hint: `install ${command}` }),
    );
  });
  child.on("close", (status, signal) => {
    if (status !== 0) {
      const why = signal ? `killed by ${signal}` : `exited with ${status}`;
      opts.fail(new LifeboatError(code.failed, `${what}: ${command} ${why}${stderr ? `: ${stderr.trim()}` : ""}`));
    } else if (!opts.whenClean) opts.output.end();
    else {
      opts.whenClean(stderr).then(
        () => opts.output.end(),
        (err: unknown) => opts.fail(err instanceof Error ? err : new Error(String(err))),
      );
    }
  });
  return child;
}

/** Stops a program when the stream that consumes it closes first. */
export function stopWhenClosed(child: ChildProcess, stream: Stream): void {
  stream.on("close", () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  });
}

/** Runs a filter program (stdin → stdout) as a Duplex stream; see runFilter for how it ends. */
export function spawnFilter(command: string, args: readonly string[], what: string): Duplex {
  const output = new PassThrough();
  // fail runs only on a later event, once duplex exists.
  const child = runFilter(command, args, what, { stdin: "pipe", output, fail: (err) => duplex.destroy(err) });
  const stdin = child.stdin as Writable;
  // stdin closes early when the program dies; the exit handler reports the real reason.
  stdin.on("error", () => {});
  const duplex = Duplex.from({ writable: stdin, readable: output });
  stopWhenClosed(child, duplex);
  return duplex;
}
