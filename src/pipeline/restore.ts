import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { type Readable, Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Artifact, Manifest } from "../catalog/manifest.ts";
import { code, IntegrityError, LifeboatError, messageOf } from "../errors.ts";
import type { Inventory } from "../sources/source.ts";
import { snapshotKey } from "../storage/layout.ts";
import type { Target } from "../storage/target.ts";
import { createDecryptStream } from "./age.ts";
import { createDecompressStream } from "./compress.ts";
import { Meter } from "./measure.ts";

/** An object the manifest promises: name, stored size and sha256. */
interface Entry {
  name: string;
  size: number;
  sha256: string;
}

/** A pass-through that fails at the end if the bytes do not have the size and sha256 the manifest promises. */
class Checked extends Transform {
  readonly #hash = createHash("sha256");
  #size = 0;
  private readonly entry: Entry;
  private readonly label: string;
  constructor(entry: Entry, label: string) {
    super();
    this.entry = entry;
    this.label = label;
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
    this.push(chunk);
    cb();
  }
  override _flush(cb: (err?: Error) => void): void {
    const size = this.#size;
    const sha = this.#hash.digest("hex");
    if (size !== this.entry.size) cb(new IntegrityError(`${this.label}: size ${size} bytes, the manifest says ${this.entry.size}`));
    else if (sha !== this.entry.sha256)
      cb(new IntegrityError(`${this.label}: sha256 ${sha} does not match the manifest (${this.entry.sha256})`));
    else cb();
  }
}

function label(target: Target, manifest: Manifest, name: string): string {
  return `target "${target.name}": ${snapshotKey(manifest.job, manifest.snapshotId, name)}`;
}

/** Opens one stored object of a snapshot, checked against the manifest's size and sha256, then age-decrypted. */
export async function openDecrypted(
  target: Target,
  manifest: Manifest,
  entry: Entry,
  identities: readonly string[],
  signal?: AbortSignal,
): Promise<Readable> {
  const key = snapshotKey(manifest.job, manifest.snapshotId, entry.name);
  const what = label(target, manifest, entry.name);
  const raw = await target.get(key, { signal });
  const checked = new Checked(entry, what);
  const dec = createDecryptStream(identities, what, manifest.encryption.recipients);
  raw.on("error", (e) => checked.destroy(e));
  checked.on("error", (e) => dec.destroy(e));
  quietAfterAbort(signal, raw, checked, dec);
  return heldErrors(raw.pipe(checked).pipe(dec));
}

/**
 * Data flows into a returned stream before its consumer reads it (a volume restore first checks its destination),
 * so a damaged object can fail the stream before anyone listens; unheard, that error would crash the process. The
 * stream keeps it (`errored`): the consumer's for-await or pipeline still rejects with it.
 */
function heldErrors<T extends Readable>(stream: T): T {
  stream.on("error", () => {});
  return stream;
}

/**
 * After an abort, the stages' late errors (the aborted download's ECONNRESET, forwarded stage to stage) can arrive
 * once the consumer has stopped listening; unheard, one would crash the process before it cleans up. The abort's
 * own reason is what gets reported.
 */
function quietAfterAbort(signal: AbortSignal | undefined, ...streams: NodeJS.EventEmitter[]): void {
  const quiet = () => {
    for (const s of streams) s.on("error", () => {});
  };
  if (signal?.aborted) quiet();
  else signal?.addEventListener("abort", quiet, { once: true });
}

/** Opens a data artifact as plaintext: checked, decrypted and decompressed. */
export async function openArtifact(
  target: Target,
  manifest: Manifest,
  artifact: Artifact,
  identities: readonly string[],
  signal?: AbortSignal,
): Promise<Readable> {
  const dec = await openDecrypted(target, manifest, artifact, identities, signal);
  const unz = createDecompressStream();
  const what = label(target, manifest, artifact.name);
  const sized = rawSizeCheck(artifact, what);
  dec.on("error", (e) => unz.destroy(e));
  // Node's own zstd fails with a bare "Restored data doesn't match checksum": say which object, and that it is damage.
  unz.on("error", (e) =>
    sized.destroy(e instanceof LifeboatError ? e : new IntegrityError(`${what}: zstd: ${messageOf(e)}`, { cause: e })),
  );
  // A consumer that stops early destroys the last stage only; the decompressor (a zstd process) must stop with it.
  sized.on("close", () => {
    if (!unz.destroyed) unz.destroy();
  });
  quietAfterAbort(signal, unz, sized);
  return heldErrors(dec.pipe(unz).pipe(sized));
}

/** A pass-through that fails at the end unless the plaintext has the manifest's rawBytes: drills and restores check it too. */
function rawSizeCheck(artifact: Artifact, what: string): Transform {
  let bytes = 0;
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      bytes += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      cb(
        bytes === artifact.rawBytes
          ? null
          : new IntegrityError(`${what}: decompressed to ${bytes} bytes, the manifest says ${artifact.rawBytes}`),
      );
    },
  });
}

/** Reads and decrypts a snapshot's inventory (row counts or file list). */
export async function readInventory(target: Target, manifest: Manifest, identities: readonly string[]): Promise<Inventory> {
  const s = await openDecrypted(target, manifest, manifest.inventory, identities);
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as Inventory;
  } catch (err) {
    throw new IntegrityError(`${label(target, manifest, manifest.inventory.name)}: not valid JSON after decryption (${messageOf(err)})`);
  }
}

/** Streams a data artifact's plaintext into a local file; resolves with its size. */
export async function downloadArtifact(
  target: Target,
  manifest: Manifest,
  artifact: Artifact,
  identities: readonly string[],
  file: string,
  signal?: AbortSignal,
): Promise<number> {
  const meter = new Meter();
  await pipeline(await openArtifact(target, manifest, artifact, identities, signal), meter, createWriteStream(file), { signal }).catch(
    (err) => {
      throw err instanceof LifeboatError
        ? err
        : new LifeboatError(code.failed, `download ${artifact.name} to ${file}: ${messageOf(err)}`, { cause: err });
    },
  );
  return meter.bytes;
}

/** The verification of one object. */
export interface ObjectCheck {
  name: string;
  ok: boolean;
  /** Plaintext bytes after decryption (and decompression for artifacts). */
  bytes: number;
  error?: string;
}

/** The verification of one snapshot. */
export interface SnapshotCheck {
  snapshotId: string;
  target: string;
  ok: boolean;
  objects: ObjectCheck[];
}

/**
 * Verifies a snapshot without restoring: every object is downloaded, checked against the manifest's sha256, fully
 * decrypted (every authentication tag) and, for data, decompressed to nowhere.
 */
export async function verifySnapshot(
  target: Target,
  manifest: Manifest,
  identities: readonly string[],
  signal?: AbortSignal,
): Promise<SnapshotCheck> {
  const objects: ObjectCheck[] = [];
  for (const a of manifest.artifacts) {
    const sink = new Meter();
    try {
      await pipeline(await openArtifact(target, manifest, a, identities, signal), sink, new Writable({ write: (_c, _e, cb) => cb() }), {
        signal,
      });
      // The plaintext's size against rawBytes is openArtifact's own check, as for every reader.
      objects.push({ name: a.name, ok: true, bytes: sink.bytes });
    } catch (err) {
      // A wrong key fails every object alike; a storage failure (a dropped connection) says nothing about the bytes.
      if (err instanceof LifeboatError && (err.code === code.crypto || err.code === code.storage)) throw err;
      objects.push({ name: a.name, ok: false, bytes: sink.bytes, error: messageOf(err) });
    }
  }
  try {
    const inv = await readInventory(target, manifest, identities);
    objects.push({ name: manifest.inventory.name, ok: true, bytes: Buffer.byteLength(JSON.stringify(inv)) });
  } catch (err) {
    if (err instanceof LifeboatError && (err.code === code.crypto || err.code === code.storage)) throw err;
    objects.push({ name: manifest.inventory.name, ok: false, bytes: 0, error: messageOf(err) });
  }
  return { snapshotId: manifest.snapshotId, target: target.name, ok: objects.every((o) => o.ok), objects };
}
