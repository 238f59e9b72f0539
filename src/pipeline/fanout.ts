import { PassThrough, Writable } from "node:stream";

/**
 * A Writable that copies every chunk to several branches, one per target. It waits for the slowest live branch
 * (back-pressure), so memory stays bounded. A branch whose consumer failed is detached and the others go on.
 */
export class FanOut extends Writable {
  readonly branches: PassThrough[];
  readonly #alive: Set<number>;

  constructor(count: number, highWaterMark = 1024 * 1024) {
    super({ highWaterMark });
    this.branches = Array.from({ length: count }, () => {
      // The reading side hands on chunks as they were written (object mode): a byte stream read with for-await, as
      // targets read, joins everything buffered into a new Buffer on every read, a copy of every byte stored.
      // That side counts chunks; with the age stream's (64 KiB ciphertexts and 16-byte tags) it holds at most about
      // highWaterMark bytes.
      const b = new PassThrough({
        writableHighWaterMark: highWaterMark,
        readableObjectMode: true,
        readableHighWaterMark: Math.max(1, Math.round(highWaterMark / (64 * 1024))),
      });
      // Each branch's failure reaches its consumer's put(); an unobserved error event must not crash the process.
      b.on("error", () => {});
      return b;
    });
    this.#alive = new Set(this.branches.keys());
  }

  /** Stops feeding one branch (its consumer failed); returns how many are still fed. */
  detach(index: number, err?: Error): number {
    if (this.#alive.delete(index)) this.branches[index]?.destroy(err);
    if (this.#alive.size === 0) this.destroy(err ?? new Error("every target failed"));
    return this.#alive.size;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const waits: Promise<void>[] = [];
    for (const i of this.#alive) {
      const b = this.branches[i] as PassThrough;
      // Destroyed by its consumer (a put that failed), whose detach() follows only once its clean-up settled: its
      // close event is already past, so waiting for it would hang every other target.
      if (b.destroyed) continue;
      if (!b.write(chunk) && !b.destroyed) {
        waits.push(
          new Promise((resolve) => {
            const done = () => {
              b.off("drain", done);
              b.off("close", done);
              resolve();
            };
            b.on("drain", done);
            b.on("close", done);
          }),
        );
      }
    }
    if (waits.length === 0) cb();
    else Promise.all(waits).then(() => cb(), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    for (const i of this.#alive) this.branches[i]?.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // autoDestroy runs after a clean finish too; the branches then still hold data for their consumers.
    if (err) for (const i of this.#alive) this.branches[i]?.destroy(err);
    cb(err);
  }
}
