import { createHash } from "node:crypto";
import { Transform } from "node:stream";

/** A pass-through that counts bytes and, optionally, hashes them (sha256) on the way. */
export class Meter extends Transform {
  bytes = 0;
  readonly #hash = createHash("sha256");
  readonly #hashing: boolean;
  constructor(opts: { hash?: boolean; onBytes?: (total: number) => void } = {}) {
    super();
    this.#hashing = opts.hash ?? false;
    this.#onBytes = opts.onBytes;
  }
  readonly #onBytes?: (total: number) => void;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.bytes += chunk.length;
    if (this.#hashing) this.#hash.update(chunk);
    this.#onBytes?.(this.bytes);
    this.push(chunk);
    cb();
  }
  /** The sha256 of everything that passed, hex; call once, after the stream ended. */
  digest(): string {
    return this.#hash.digest("hex");
  }
}
