import { spawn } from "node:child_process";
import { Duplex, PassThrough } from "node:stream";
import { code, LifeboatError } from "../errors.ts";

const STDERR_LIMIT = 16 * 1024;

/**
 * Runs a filter program (stdin → stdout) as a Duplex stream. Its output ends only after the program exited with 0;
 * a non-zero exit or a signal destroys the stream with an error naming the program and its stderr, so a filter that
 * fails at the very end (zstd's frame checksum) can never look like a short, clean stream.
 */
export function spawnFilter(command: string, args: readonly string[], what: string): Duplex {
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-STDERR_LIMIT);
  });
  const output = new PassThrough();
  child.stdout.pipe(output, { end: false });
  const duplex = Duplex.from({ writable: child.stdin, readable: output });
  // stdin closes early when the program dies; the exit handler below reports the real reason.
  child.stdin.on("error", () => {});
  child.on("error", (err) => {
    duplex.destroy(
      new LifeboatError(code.failed, `${what}: cannot run ${command} (${err.message})`, { cause: err, hint: `install ${command}` }),
    );
  });
  child.on("close", (status, signal) => {
    if (status === 0) output.end();
    else {
      const why = signal ? `killed by ${signal}` : `exited with ${status}`;
      duplex.destroy(new LifeboatError(code.failed, `${what}: ${command} ${why}${stderr ? `: ${stderr.trim()}` : ""}`));
    }
  });
  duplex.on("close", () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  });
  return duplex;
}
