import { Readable } from "node:stream";
import { abortedError, type LifeboatError, NotFoundError } from "../errors.ts";
import { checkKey } from "./filesystem.ts";
import type { GetOptions, PutOptions, StoredObject, Target } from "./target.ts";

interface Entry {
  data: Buffer;
  modified: Date;
}

/**
 * Keeps objects in a Map, for unit tests of pipeline, catalog and drills. It passes the same contract as the real
 * backends: atomic put (the body is buffered whole, then committed), the body's error returned unchanged,
 * NotFoundError for a missing key, and the same key rules as the filesystem target.
 */
export class MemoryTarget implements Target {
  readonly kind = "memory";
  readonly name: string;
  readonly #objects = new Map<string, Entry>();

  constructor(name = "memory") {
    this.name = name;
  }

  /** Buffers the whole body, then stores it in one step. See Target.put. */
  async put(key: string, body: Readable, opts: PutOptions = {}): Promise<StoredObject> {
    checkKey(this.name, key);
    const { signal } = opts;
    if (signal?.aborted) throw this.#aborted(key, signal);
    // Destroying the body ends the loop below even when the body is stalled.
    const onAbort = () => body.destroy(Object.assign(new Error("put aborted"), { name: "AbortError" }));
    signal?.addEventListener("abort", onAbort, { once: true });
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of body) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk as Uint8Array));
    } catch (err) {
      throw signal?.aborted ? this.#aborted(key, signal) : err;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
    if (signal?.aborted) throw this.#aborted(key, signal);
    const entry = { data: Buffer.concat(chunks), modified: new Date() };
    this.#objects.set(key, entry);
    return { key, size: entry.data.length, modified: entry.modified };
  }

  /** Streams a copy of the object (or a byte range). Rejects with NotFoundError for a missing key. */
  async get(key: string, opts: GetOptions = {}): Promise<Readable> {
    checkKey(this.name, key);
    const entry = this.#objects.get(key);
    if (!entry) throw new NotFoundError(`target "${this.name}": object "${key}" not found`);
    const { range } = opts;
    // Range end is inclusive, as in HTTP and fs.createReadStream.
    const data = range ? entry.data.subarray(range.start, range.end === undefined ? undefined : range.end + 1) : entry.data;
    return Readable.from([Buffer.from(data)]);
  }

  /** Lists objects whose keys start with prefix, in key order. */
  async *list(prefix: string): AsyncIterable<StoredObject> {
    const keys = [...this.#objects.keys()].filter((k) => k.startsWith(prefix)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const key of keys) {
      const entry = this.#objects.get(key);
      if (entry) yield { key, size: entry.data.length, modified: entry.modified };
    }
  }

  /** Size and time of one object, or undefined if missing. */
  async head(key: string): Promise<StoredObject | undefined> {
    checkKey(this.name, key);
    const entry = this.#objects.get(key);
    return entry && { key, size: entry.data.length, modified: entry.modified };
  }

  /** Deletes the object; a missing key is fine. */
  async remove(key: string): Promise<void> {
    checkKey(this.name, key);
    this.#objects.delete(key);
  }

  #aborted(key: string, signal: AbortSignal): LifeboatError {
    return abortedError(`target "${this.name}": put "${key}"`, signal);
  }
}
