import type { FileHandle } from "node:fs/promises";

/** Bytes gathered before one writev: the age stream arrives as 64 KiB bodies and 16-byte tags, two writes each. */
const BATCH_BYTES = 1024 * 1024;
/** Below the kernel's IOV_MAX (1024) with room to spare. */
const BATCH_BUFFERS = 256;

/**
 * Writes a stream's chunks to a file in batches: one writev per ~1 MiB instead of one write per chunk, each a trip
 * through the thread pool that cost as much CPU as the encryption (docs/BENCHMARK.md). The chunks are kept, not
 * copied, so they must not be reused by their producer; Node streams hand out fresh buffers.
 */
export class BatchedFileWriter {
  readonly #file: FileHandle;
  #pending: Buffer[] = [];
  #bytes = 0;

  constructor(file: FileHandle) {
    this.#file = file;
  }

  /** Adds a chunk; writes the batch once it is full. Rejects with the write's error. */
  async add(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    this.#pending.push(chunk);
    this.#bytes += chunk.length;
    if (this.#bytes >= BATCH_BYTES || this.#pending.length >= BATCH_BUFFERS) await this.flush();
  }

  /** Writes what is gathered. */
  async flush(): Promise<void> {
    const bufs = this.#pending;
    this.#pending = [];
    this.#bytes = 0;
    await writeAll(this.#file, bufs);
  }
}

/** writev until every byte is written: a write may be short (a disk filling up), and the rest must follow or fail. */
export async function writeAll(file: FileHandle, buffers: readonly Buffer[]): Promise<void> {
  let rest = buffers.filter((b) => b.length > 0);
  while (rest.length > 0) {
    const { bytesWritten } = await file.writev(rest);
    if (bytesWritten <= 0) throw Object.assign(new Error("no space left on device (the write stored nothing)"), { code: "ENOSPC" });
    let n = bytesWritten;
    let i = 0;
    while (i < rest.length && n >= (rest[i] as Buffer).length) n -= (rest[i++] as Buffer).length;
    rest = rest.slice(i);
    if (n > 0) rest[0] = (rest[0] as Buffer).subarray(n);
  }
}
