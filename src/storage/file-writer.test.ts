import type { FileHandle } from "node:fs/promises";
import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BatchedFileWriter, writeAll } from "./file-writer.ts";

const dir = await mkdtemp(join(tmpdir(), "lifeboat-writer-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A FileHandle whose writev stores at most `limit` bytes per call, as a filling disk may. */
function shortWrites(limit: number): { file: FileHandle; written: Buffer[]; calls: () => number } {
  const written: Buffer[] = [];
  let calls = 0;
  const file = {
    async writev(buffers: Buffer[]) {
      calls++;
      let left = limit;
      for (const b of buffers) {
        if (left === 0) break;
        const part = b.subarray(0, left);
        written.push(Buffer.from(part));
        left -= part.length;
      }
      return { bytesWritten: limit - left, buffers };
    },
  } as unknown as FileHandle;
  return { file, written, calls: () => calls };
}

describe("writeAll", () => {
  it("finishes short writes, splitting buffers where a write stopped", async () => {
    const parts = [Buffer.from("abcdefg"), Buffer.alloc(0), Buffer.from("hij"), Buffer.from("klmnopqrstu")];
    const f = shortWrites(4);
    await writeAll(f.file, parts);
    expect(Buffer.concat(f.written).toString()).toBe("abcdefghijklmnopqrstu");
    expect(f.calls()).toBe(6);
  });

  it("fails with ENOSPC when a write stores nothing, instead of spinning", async () => {
    const f = shortWrites(0);
    await expect(writeAll(f.file, [Buffer.from("x")])).rejects.toMatchObject({ code: "ENOSPC" });
  });
});

describe("BatchedFileWriter", () => {
  it("writes chunks in order in about one writev per MiB", async () => {
    const path = join(dir, "batched");
    const file = await open(path, "w");
    let calls = 0;
    const writev = file.writev.bind(file);
    file.writev = ((buffers: Buffer[]) => {
      calls++;
      return writev(buffers);
    }) as typeof file.writev;
    const chunks: Buffer[] = [];
    for (let i = 0; i < 64; i++) chunks.push(Buffer.alloc(64 * 1024, i), Buffer.alloc(16, 255 - i));
    const out = new BatchedFileWriter(file);
    for (const c of chunks) await out.add(c);
    await out.flush();
    await file.close();
    expect((await readFile(path)).equals(Buffer.concat(chunks))).toBe(true);
    // 4 MiB of data: 4 or 5 batches, where a write per chunk made 128.
    expect(calls).toBeGreaterThanOrEqual(4);
    expect(calls).toBeLessThanOrEqual(5);
  });
});
