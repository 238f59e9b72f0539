import { spawn, spawnSync } from "node:child_process";
import { Duplex, PassThrough, Writable } from "node:stream";
import { constants, createZstdCompress, createZstdDecompress } from "node:zlib";
import { code, LifeboatError } from "../errors.ts";
import { spawnFilter } from "./child.ts";

let cliAvailable: boolean | undefined;

/** Whether the zstd program is installed; it is about twice as fast as Node's single-threaded zstd. */
function useCli(): boolean {
  const pref = process.env.LIFEBOAT_ZSTD;
  if (pref === "node") return false;
  if (cliAvailable === undefined) cliAvailable = spawnSync("zstd", ["--version"], { stdio: "ignore" }).status === 0;
  return cliAvailable;
}

/** Input to the zstd program is handed over in writes of about this size. */
const BATCH = 256 * 1024;
const STDERR_LIMIT = 16 * 1024;

/**
 * Runs the zstd program as a compressing filter. Unlike spawnFilter it batches its input and ends its output only
 * after zstd exited with 0 (a zstd that fails at the end can never look like a short, clean stream).
 * Batching: pg_dump writes 4–8 KiB at a time; handed on one by one, every chunk cost a syscall here and a read and a
 * wake-up in zstd, one of the largest costs of a backup (docs/BENCHMARK.md). Chunks are written to zstd's stdin
 * while it is corked and leave as one writev per ~256 KiB: no copy and no new memory.
 */
function spawnCompressor(args: readonly string[]): Duplex {
  const what = "compress (zstd)";
  const child = spawn("zstd", args, { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-STDERR_LIMIT);
  });
  const stdin = child.stdin;
  // stdin fails (EPIPE) when zstd dies early; the close handler below reports the real reason.
  stdin.on("error", () => {});
  let corked = 0;
  const input = new Writable({
    highWaterMark: BATCH,
    write(chunk: Buffer, _enc, cb) {
      if (corked === 0) stdin.cork();
      corked += chunk.length;
      stdin.write(chunk);
      if (corked < BATCH) return cb();
      corked = 0;
      stdin.uncork();
      if (stdin.writableNeedDrain) stdin.once("drain", () => cb());
      else cb();
    },
    final(cb) {
      if (corked > 0) stdin.uncork();
      corked = 0;
      stdin.end();
      cb();
    },
  });
  const output = new PassThrough({ highWaterMark: BATCH });
  child.stdout.pipe(output, { end: false });
  const duplex = Duplex.from({ writable: input, readable: output });
  child.on("error", (err) => {
    duplex.destroy(new LifeboatError(code.failed, `${what}: cannot run zstd (${err.message})`, { cause: err, hint: "install zstd" }));
  });
  child.on("close", (status, signal) => {
    if (status === 0) {
      output.end();
      return;
    }
    const why = signal ? `killed by ${signal}` : `exited with ${status}`;
    duplex.destroy(new LifeboatError(code.failed, `${what}: zstd ${why}${stderr ? `: ${stderr.trim()}` : ""}`));
  });
  duplex.on("close", () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  });
  return duplex;
}

/** A zstd compressor stream (standard zstd frames: `zstd -d` reads them). */
export function createCompressStream(level: number): Duplex {
  if (useCli()) return spawnCompressor([`-${level}`, "-T2", "-q", "-c"]);
  return createZstdCompress({ params: { [constants.ZSTD_c_compressionLevel]: level } });
}

/** A zstd decompressor stream. */
export function createDecompressStream(): Duplex {
  if (useCli()) return spawnFilter("zstd", ["-d", "-q", "-c"], "decompress (zstd)");
  return createZstdDecompress();
}
