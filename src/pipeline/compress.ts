import { spawnSync } from "node:child_process";
import { Duplex, PassThrough, pipeline, type Readable, Writable } from "node:stream";
import { constants, createZstdCompress, createZstdDecompress } from "node:zlib";
import { code, LifeboatError } from "../errors.ts";
import type { Dump } from "../sources/source.ts";
import { runFilter, spawnFilter, stopWhenClosed } from "./child.ts";
import { Meter } from "./measure.ts";

let cliAvailable: boolean | undefined;

/** Whether the zstd program is installed; it is about twice as fast as Node's single-threaded zstd. */
function useCli(): boolean {
  const pref = process.env.LIFEBOAT_ZSTD;
  if (pref === "node") return false;
  if (cliAvailable === undefined) cliAvailable = spawnSync("zstd", ["--version"], { stdio: "ignore" }).status === 0;
  return cliAvailable;
}

/** zstd's closing summary at -vv: "(970123456 B => 554123456 B, …" (before 1.5: "(970123456 => 554123456 bytes, …"). */
const SUMMARY = /\(\s*(\d+)\s*(?:B\s*)?=>\s*(\d+)\s*(?:B|bytes)\b/g;

/** The exact input size zstd reports in its summary, or undefined. */
export function summaryRawBytes(stderr: string): number | undefined {
  const last = [...stderr.matchAll(SUMMARY)].at(-1);
  return last ? Number(last[1]) : undefined;
}

let directAvailable: boolean | undefined;

/**
 * Whether zstd can read a dump tool's pipe itself: the program is installed and its summary gives exact byte counts
 * (the dump's size, which lifeboat then never sees).
 */
function useDirect(): boolean {
  if (!useCli()) return false;
  if (directAvailable === undefined) {
    const r = spawnSync("zstd", ["-1", "-vv", "-c"], { input: "lifeboat", encoding: "utf8" });
    directAvailable = r.status === 0 && summaryRawBytes(r.stderr) === 8;
  }
  return directAvailable;
}

/** Input to the zstd program is handed over in writes of about this size. */
const BATCH = 256 * 1024;

/**
 * Runs the zstd program as a compressing filter, as spawnFilter does, but batching its input.
 * Batching: pg_dump writes 4–8 KiB at a time; handed on one by one, every chunk cost a syscall here and a read and a
 * wake-up in zstd, one of the largest costs of a backup (docs/BENCHMARK.md). Chunks are written to zstd's stdin
 * while it is corked and leave as one writev per ~256 KiB: no copy and no new memory.
 */
function spawnCompressor(args: readonly string[]): Duplex {
  const output = new PassThrough({ highWaterMark: BATCH });
  // fail runs only on a later event, once duplex exists.
  const child = runFilter("zstd", args, "compress (zstd)", { stdin: "pipe", output, fail: (err) => duplex.destroy(err) });
  const stdin = child.stdin as Writable;
  // stdin fails (EPIPE) when zstd dies early; runFilter reports the real reason.
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
  const duplex = Duplex.from({ writable: input, readable: output });
  stopWhenClosed(child, duplex);
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

/** A dump on its way through zstd. */
export interface CompressedDump {
  /** zstd frames; ends only after zstd and the dump both finished cleanly. */
  stream: Readable;
  /** The dump's size in bytes; final once the stream ended. */
  rawBytes(): number;
  /** The bytes read so far, where lifeboat sees them; undefined while zstd reads the dump tool's pipe itself. */
  progress(): number | undefined;
}

/**
 * Compresses a dump. When the dump is one tool's stdout and the zstd program is installed, zstd reads that pipe
 * directly: the raw bytes (about twice the stored ones) never pass through Node, whose reads and writes of them cost
 * more CPU than zstd's compression (docs/BENCHMARK.md). Otherwise the dump's stream is fed to the compressor.
 */
export function compressDump(dump: Dump, level: number): CompressedDump {
  const pipe = useDirect() ? dump.handOff?.() : undefined;
  if (pipe) return compressPipe(pipe, dump.done, level);
  const raw = new Meter();
  const stream = createCompressStream(level);
  // Errors reach the returned stream: pipeline destroys every stage with the first error.
  pipeline(dump.stream, raw, stream, () => {});
  return { stream, rawBytes: () => raw.bytes, progress: () => raw.bytes };
}

function compressPipe(input: Readable, dumped: Promise<unknown>, level: number): CompressedDump {
  const what = "compress (zstd)";
  let rawBytes = 0;
  const output = new PassThrough({ highWaterMark: BATCH });
  const child = runFilter("zstd", [`-${level}`, "-T2", "-vv", "-c"], what, {
    stdin: input,
    output,
    fail: (err) => output.destroy(err),
    // zstd saw an end of input; only the dump tool's exit says whether it was the whole dump.
    async whenClean(stderr) {
      await dumped;
      const n = summaryRawBytes(stderr);
      if (n === undefined) throw new LifeboatError(code.failed, `${what}: zstd reported no input size: ${stderr.trim()}`);
      rawBytes = n;
    },
  });
  // zstd holds its own copy of the pipe now; Node's would keep the dump tool's stdout from ever closing.
  input.destroy();
  stopWhenClosed(child, output);
  return { stream: output, rawBytes: () => rawBytes, progress: () => undefined };
}
