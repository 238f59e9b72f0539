import { createHash } from "node:crypto";
import { constants, existsSync } from "node:fs";
import { type FileHandle, mkdir, open, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";

/** Where a received part's bytes are: at `offset` in the upload's `data` file, or (offset null) in a file of its own. */
export interface PartRecord {
  number: number;
  md5: string;
  size: number;
  offset: number | null;
}

/** S3's smallest part other than the last; a smaller first arrival does not fix the upload's part size. */
const MIN_PART = 5 * 1024 * 1024;
/** In-place offsets stay far below any file system's file size limit; a part beyond gets a file of its own. */
const MAX_IN_PLACE = 2 ** 40;
/** Received bytes are written in batches of about this size: one write per batch, not one per socket read. */
const BATCH = 1024 * 1024;
/** Buffer for the copying join: reused, so joining costs no fresh memory (page faults are costly on small VMs). */
const JOIN_BUFFER = 4 * 1024 * 1024;

/**
 * Multipart parts of the embedded S3 server, stored so that completing an upload usually copies nothing.
 *
 * The first part of at least 5 MiB fixes the upload's part size P; every part no larger than P is written in place,
 * at (n - 1) · P, into the upload's one `data` file. When the listed parts are 1..k, each of size P but the last,
 * that file is the object: completion truncates and renames it. Any other shape S3 allows (parts of several sizes,
 * gaps in the numbers, parts left out of the list) is joined by copying. Copying 1 GB at completion, where nothing
 * overlaps it, took about 1.5 s of a 10 s benchmark backup (docs/BENCHMARK.md).
 *
 * Layout under an upload's directory, besides s3rver's `key` and `metadata`: `data`, `<n>` (a part of its own) and
 * `<n>.json` (its PartRecord, written only once the part's bytes are on disk, so a part cut short does not exist).
 */
export class PartStore {
  /** P per upload directory, in this process. An upload met first after a restart never writes in place again. */
  readonly #partSize = new Map<string, number | null>();

  /** Receives part n of the upload in dir (which must exist) from content, declared as `declared` bytes long. */
  async put(dir: string, n: number, content: Readable, declared: number): Promise<PartRecord> {
    const recordPath = join(dir, `${n}.json`);
    // A failed re-upload of the part must not leave the previous record pointing at bytes it overwrote.
    await rm(recordPath, { force: true });
    const offset = this.#inPlaceOffset(dir, n, declared);
    const file = offset === null ? join(dir, String(n)) : join(dir, "data");
    const flags = constants.O_WRONLY | constants.O_CREAT | (offset === null ? constants.O_TRUNC : 0);
    const limit = offset === null ? Number.POSITIVE_INFINITY : declared;
    const { size, md5 } = await receive(content, await open(file, flags), offset ?? 0, limit);
    const record: PartRecord = { number: n, md5, size, offset };
    await writeFile(recordPath, JSON.stringify(record));
    return record;
  }

  /** The record of part n, or undefined if it was never received whole. */
  async record(dir: string, n: number): Promise<PartRecord | undefined> {
    const text = await readFile(join(dir, `${n}.json`), "utf8").catch(() => undefined);
    return text === undefined ? undefined : (JSON.parse(text) as PartRecord);
  }

  /** Writes the parts, in order, as the file objectPath (replacing any), and removes the upload's directory. */
  async join(dir: string, parts: readonly PartRecord[], objectPath: string): Promise<number> {
    await mkdir(dirname(objectPath), { recursive: true });
    let size = 0;
    let inPlace = true;
    for (const p of parts) {
      inPlace &&= p.offset === size && (p === parts.at(-1) || p.size === parts[0]?.size);
      size += p.size;
    }
    if (inPlace && parts.length > 0) {
      const data = await open(join(dir, "data"), "r+");
      try {
        // Parts uploaded but not listed may lie beyond the end; S3 drops them.
        await data.truncate(size);
      } finally {
        await data.close();
      }
      await rename(join(dir, "data"), objectPath);
    } else {
      await copyParts(dir, parts, objectPath);
    }
    await this.forget(dir);
    return size;
  }

  /** Removes an upload's directory (abort, or after completion). */
  async forget(dir: string): Promise<void> {
    this.#partSize.delete(dir);
    await rm(dir, { recursive: true, force: true });
  }

  #inPlaceOffset(dir: string, n: number, declared: number): number | null {
    if (!Number.isSafeInteger(declared) || declared <= 0) return null;
    let p = this.#partSize.get(dir);
    if (p === undefined) {
      // A data file from before a restart was laid out with a P this process no longer knows.
      if (existsSync(join(dir, "data"))) p = null;
      else if (declared >= MIN_PART) p = declared;
      else return null;
      this.#partSize.set(dir, p);
    }
    if (p === null || declared > p) return null;
    const offset = (n - 1) * p;
    return offset + declared <= MAX_IN_PLACE ? offset : null;
  }
}

/** Writes content at position `start` of the file, hashing it; refuses more than `limit` bytes. Closes the file. */
async function receive(content: Readable, file: FileHandle, start: number, limit: number): Promise<{ size: number; md5: string }> {
  const hash = createHash("md5");
  let size = 0;
  let batch: Buffer[] = [];
  let batched = 0;
  const flush = async () => {
    await writeAllAt(file, batch, batched, start + size);
    size += batched;
    batch = [];
    batched = 0;
  };
  try {
    for await (const chunk of content as AsyncIterable<Buffer>) {
      // Past the declared length, the bytes would land on the next part's place.
      if (size + batched + chunk.length > limit) throw new Error("part body longer than its Content-Length");
      hash.update(chunk);
      batch.push(chunk);
      batched += chunk.length;
      if (batched >= BATCH) await flush();
    }
    if (batched > 0) await flush();
  } finally {
    await file.close();
  }
  return { size, md5: hash.digest("hex") };
}

async function writeAllAt(file: FileHandle, chunks: Buffer[], length: number, position: number): Promise<void> {
  const { bytesWritten } = await file.writev(chunks, position);
  if (bytesWritten === length) return;
  // A short write on a regular file is rare (a full disk says so with an error); finish it from one buffer.
  const rest = Buffer.concat(chunks, length);
  for (let done = bytesWritten; done < length; ) done += (await file.write(rest, done, length - done, position + done)).bytesWritten;
}

async function copyParts(dir: string, parts: readonly PartRecord[], objectPath: string): Promise<void> {
  const out = await open(objectPath, "w");
  const buffer = Buffer.allocUnsafe(JOIN_BUFFER);
  const data = parts.some((p) => p.offset !== null) ? await open(join(dir, "data"), "r") : undefined;
  try {
    for (const part of parts) {
      const own = part.offset === null ? await open(join(dir, String(part.number)), "r") : undefined;
      try {
        const input = own ?? (data as FileHandle);
        for (let done = 0; done < part.size; ) {
          const want = Math.min(buffer.length, part.size - done);
          const { bytesRead } = await input.read(buffer, 0, want, (part.offset ?? 0) + done);
          if (bytesRead === 0) throw new Error(`part ${part.number} of the upload is shorter than recorded`);
          for (let w = 0; w < bytesRead; ) w += (await out.write(buffer, w, bytesRead - w)).bytesWritten;
          done += bytesRead;
        }
      } finally {
        await own?.close();
      }
    }
  } finally {
    await data?.close();
    await out.close();
  }
}
