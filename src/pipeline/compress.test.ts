import { spawn } from "node:child_process";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterEach, describe, expect, it } from "vitest";
import { exitOf, ToolOutput } from "../sources/process.ts";
import type { Dump, DumpInfo } from "../sources/source.ts";
import { compressDump, createDecompressStream, summaryRawBytes } from "./compress.ts";

/** What `seq 1 n` prints. */
function seqText(n: number): string {
  return `${Array.from({ length: n }, (_, i) => i + 1).join("\n")}\n`;
}

/** A dump whose artifact is a shell command's stdout; done rejects when the command exits non-zero. */
function shellDump(script: string): Dump {
  const child = spawn("sh", ["-c", script], { stdio: ["ignore", "pipe", "ignore"] });
  const output = new ToolOutput(child);
  const done = exitOf(child).then((exit): DumpInfo => {
    const err = exit.status === 0 ? undefined : new Error(`the tool exited with ${exit.status}`);
    output.settle(err);
    if (err) throw err;
    return { warnings: [] };
  });
  done.catch(() => {});
  return {
    artifact: "t.raw",
    format: "raw",
    get stream() {
      return output.stream;
    },
    handOff: () => output.handOff(),
    inventory: Promise.resolve({ kind: "test", counts: "exact" }),
    done,
  };
}

async function decompressed(stream: Readable): Promise<string> {
  const out: Buffer[] = [];
  await pipeline(
    stream,
    createDecompressStream(),
    new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c);
        cb();
      },
    }),
  );
  return Buffer.concat(out).toString();
}

const savedPref = process.env.LIFEBOAT_ZSTD;
afterEach(() => {
  if (savedPref === undefined) delete process.env.LIFEBOAT_ZSTD;
  else process.env.LIFEBOAT_ZSTD = savedPref;
});

describe("compressDump", () => {
  const n = 400_000;
  const expected = seqText(n);

  it("lets zstd read the tool's pipe itself and learns the dump's size from zstd", async () => {
    const c = compressDump(shellDump(`seq 1 ${n}`), 1);
    // No byte of the dump passes through Node: there is nothing to count while it runs.
    expect(c.progress()).toBeUndefined();
    expect(await decompressed(c.stream)).toBe(expected);
    expect(c.rawBytes()).toBe(Buffer.byteLength(expected));
  });

  it("feeds the dump's stream to the compressor when zstd must not be used directly", async () => {
    process.env.LIFEBOAT_ZSTD = "node";
    const c = compressDump(shellDump(`seq 1 ${n}`), 3);
    expect(await decompressed(c.stream)).toBe(expected);
    expect(c.rawBytes()).toBe(Buffer.byteLength(expected));
    expect(c.progress()).toBe(c.rawBytes());
  });

  it("fails with the tool's error when the tool fails after zstd compressed everything cleanly", async () => {
    const c = compressDump(shellDump(`seq 1 ${n}; exit 3`), 1);
    await expect(decompressed(c.stream)).rejects.toThrow("the tool exited with 3");
  });

  it("fails when the tool is killed half-way", async () => {
    const c = compressDump(shellDump(`seq 1 ${n}; kill -9 $$`), 1);
    await expect(decompressed(c.stream)).rejects.toThrow(/the tool exited with null/);
  });

  it("does not hand the pipe over once the stream is read, nor read the stream once handed over", () => {
    const read = shellDump("seq 1 10");
    read.stream.resume();
    expect(read.handOff?.()).toBeUndefined();
    const handed = shellDump("seq 1 10");
    const pipe = handed.handOff?.();
    expect(pipe).toBeInstanceOf(Readable);
    expect(() => handed.stream).toThrow(/handed to another process/);
    pipe?.destroy();
  });
});

describe("summaryRawBytes", () => {
  it("reads the input size from zstd's closing summary, of 1.5 and of older versions", () => {
    expect(summaryRawBytes("/*stdin*\\ : 75.37%   (166774961 B => 125695828 B, /*stdout*\\)")).toBe(166774961);
    expect(summaryRawBytes("/*stdin*\\ : 75.37%   (166774961 => 125695828 bytes, /*stdout*\\)")).toBe(166774961);
    expect(summaryRawBytes("/*stdin*\\ : 75.37%   (   159 MiB =>    120 MiB, /*stdout*\\)")).toBeUndefined();
  });
});
