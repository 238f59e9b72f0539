import type { Readable } from "node:stream";

/** What a target knows about one stored object. */
export interface StoredObject {
  key: string;
  size: number;
  /** Last modification time as the storage reports it. */
  modified?: Date;
}

/** Options for put. */
export interface PutOptions {
  /** Aborting rejects the put and removes anything partial (temp file, multipart upload). */
  signal?: AbortSignal;
  contentType?: string;
}

/** Options for get. */
export interface GetOptions {
  /** Inclusive byte range, for ranged reads. */
  range?: { start: number; end?: number };
  signal?: AbortSignal;
}

/**
 * Storage in another blast radius. Keys are "/"-separated and relative to the target's prefix.
 * Implementations never retry on their own; retry wraps a Target (see DESIGN.md).
 */
export interface Target {
  /** The target's name in backup.config.ts. */
  readonly name: string;
  /** The backend kind ("s3", "filesystem", "memory"). */
  readonly kind: string;
  /**
   * Stores the whole stream under key, atomically: a reader sees the old object or the complete new one, never a part.
   * Rejects with the stream's own error if the body fails (unchanged, so the caller can tell its error from storage's),
   * or a LifeboatError (code STORAGE) naming the target. On rejection nothing partial is left. Not safe to retry with
   * the same stream (it is consumed); retry with a new stream.
   */
  put(key: string, body: Readable, opts?: PutOptions): Promise<StoredObject>;
  /** Opens the object for reading. Rejects with NotFoundError for a missing key. Idempotent. */
  get(key: string, opts?: GetOptions): Promise<Readable>;
  /** Lists objects whose keys start with prefix, in key order. Idempotent. */
  list(prefix: string): AsyncIterable<StoredObject>;
  /** Metadata of one object, or undefined if missing. Idempotent. */
  head(key: string): Promise<StoredObject | undefined>;
  /** Deletes the object; a missing key is not an error. Idempotent. Used only by pruning, with its own credential. */
  remove(key: string): Promise<void>;
  /** Releases connections. */
  close?(): Promise<void>;
}

/** Reads a whole (small) object into a Buffer: manifests, inventories and drill records only. */
export async function getBuffer(target: Target, key: string): Promise<Buffer> {
  const stream = await target.get(key);
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(chunks);
}

/** Stores a small in-memory value. */
export async function putBuffer(target: Target, key: string, data: Buffer | string, opts?: PutOptions): Promise<StoredObject> {
  const { Readable } = await import("node:stream");
  return target.put(key, Readable.from([Buffer.from(data)]), opts);
}

/** Collects a listing into an array. */
export async function listAll(target: Target, prefix: string): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  for await (const o of target.list(prefix)) out.push(o);
  return out;
}
