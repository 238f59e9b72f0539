import { createHash } from "node:crypto";
import { constants, type Stats } from "node:fs";
import { type FileHandle, lstat, open, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { code, LifeboatError, messageOf } from "../errors.ts";
import type { ExcludeTest } from "./volume-exclude.ts";
import { InventoryBuilder } from "./volume-inventory.ts";
import { END_OF_ARCHIVE, encodeHeader, padding, type TarMember } from "./volume-tar.ts";

// Large files are read in chunks of this size: memory stays at a few chunks whatever the file's size.
const CHUNK = 256 * 1024;
// Files up to this size are read whole by the read-ahead; larger ones are streamed in order.
const SMALL = 128 * 1024;
// Entries prepared (lstat, listing, small-file read) ahead of the one being written. Every fs call is a thread-pool
// round trip; overlapping them makes 50k small files several times faster. Memory: at most READ_AHEAD × SMALL.
const READ_AHEAD = 48;
// Small members are gathered into chunks of about this size, so 50k tiny files are not 150k stream writes.
const BATCH = 64 * 1024;
// A volume with a million vanished files should not make a manifest of a million lines.
const MAX_WARNINGS = 200;
// O_NOFOLLOW: a file swapped for a symlink after lstat is not followed out of the tree. O_NONBLOCK: a file swapped
// for a FIFO does not block the open forever (it has no effect on regular files).
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** What a walk of one volume needs. */
export interface WalkOptions {
  /** The volume root, resolved through symlinks. */
  root: string;
  exclude: ExcludeTest;
  onUnreadable: "fail" | "warn";
  signal: AbortSignal;
}

interface Listing {
  names: string[];
  /** From the directory entry's type: whether the read-ahead must wait for this child's own listing. */
  isDir: boolean[];
  /** Names that are not valid UTF-8, reported when the directory is written. */
  bad: string[];
}

interface Frame extends Listing {
  rel: string;
  next: number;
}

type Prepared =
  | { kind: "lost"; err: unknown }
  | { kind: "excluded" }
  | { kind: "dir"; st: Stats; mount: boolean; listing?: Listing; err?: unknown }
  | { kind: "symlink"; st: Stats; target: string }
  | { kind: "small"; st: Stats; data: Buffer; changed: boolean }
  | { kind: "large" }
  | { kind: "special"; st: Stats };

interface Item {
  rel: string;
  prepared: Promise<Prepared>;
}

/**
 * Walks a directory tree once and turns it into a pax tar stream, hashing each file's bytes as they go into the
 * tar, so the inventory describes exactly the archived bytes. Depth first, names in byte order (reproducible).
 * Symlinks are stored as links and never followed; directories of another filesystem (mount points) are stored
 * empty and not entered; hard-linked files are stored as separate copies. Files that vanish or change while being
 * read become warnings; unreadable entries (permissions, FIFOs, sockets, devices, names that are not UTF-8) fail
 * the walk or, with onUnreadable "warn", are skipped with a warning.
 */
export class VolumeWalk {
  readonly inventory = new InventoryBuilder();
  readonly #warnings: string[] = [];
  #dropped = 0;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #rootDev = 0;
  readonly #opts: WalkOptions;

  /** Prepares the walk; nothing is read until tar() is iterated. */
  constructor(opts: WalkOptions) {
    this.#opts = opts;
  }

  /** Warnings so far (vanished, changed and skipped entries), capped at 200 lines plus a count of the rest. */
  warnings(): string[] {
    return this.#dropped ? [...this.#warnings, `… and ${this.#dropped} more warnings`] : [...this.#warnings];
  }

  /**
   * Yields the tar stream. Throws a LifeboatError (code SOURCE) for an unreadable entry under onUnreadable "fail",
   * the fs error for a root that cannot be listed, and the signal's reason when aborted.
   */
  async *tar(): AsyncGenerator<Buffer> {
    const { root, signal } = this.#opts;
    this.#rootDev = (await lstat(root)).dev;
    // The root must be listable whatever onUnreadable says: an empty backup with a warning is no backup.
    const rootListing = await list(root);
    this.#badNames("", rootListing);
    const stack: Frame[] = [{ rel: "", ...rootListing, next: 0 }];
    const queue: Item[] = [];
    for (;;) {
      signal.throwIfAborted();
      await this.#fill(queue, stack);
      const item = queue.shift();
      if (!item) break;
      yield* this.#write(item.rel, await item.prepared);
      if (this.#pendingBytes >= BATCH) yield this.#flush();
    }
    this.#push(END_OF_ARCHIVE);
    yield this.#flush();
  }

  /** Queues the next entries in walk order; waits only for the listing of a directory whose children come next. */
  async #fill(queue: Item[], stack: Frame[]): Promise<void> {
    while (queue.length < READ_AHEAD && stack.length > 0) {
      const top = stack[stack.length - 1] as Frame;
      if (top.next >= top.names.length) {
        stack.pop();
        continue;
      }
      const i = top.next++;
      const name = top.names[i] as string;
      const rel = top.rel ? `${top.rel}/${name}` : name;
      const prepared = this.#prepare(rel, top.isDir[i] as boolean);
      queue.push({ rel, prepared });
      if (top.isDir[i]) {
        const p = await prepared;
        if (p.kind === "dir" && p.listing && !p.mount) stack.push({ rel, ...p.listing, next: 0 });
      }
    }
  }

  /** Everything about one entry that can be done ahead of writing it. Never rejects. */
  async #prepare(rel: string, listedAsDir: boolean): Promise<Prepared> {
    const abs = join(this.#opts.root, rel);
    try {
      const st = await lstat(abs);
      if (this.#opts.exclude(rel, st.isDirectory())) return { kind: "excluded" };
      if (st.isDirectory()) {
        // Listed as something else a moment ago: its children were not queued, so it cannot be walked now.
        if (!listedAsDir) return { kind: "lost", err: Object.assign(new Error("changed type"), { code: "ENOTDIR" }) };
        if (st.dev !== this.#rootDev) return { kind: "dir", st, mount: true };
        try {
          return { kind: "dir", st, mount: false, listing: await list(abs) };
        } catch (err) {
          return { kind: "dir", st, mount: false, err };
        }
      }
      if (st.isSymbolicLink()) return { kind: "symlink", st, target: await readlink(abs) };
      if (!st.isFile()) return { kind: "special", st };
      if (st.size > SMALL) return { kind: "large" };
      return await readSmall(abs, st);
    } catch (err) {
      return { kind: "lost", err };
    }
  }

  /** Writes one prepared entry to the stream and the inventory, turning problems into warnings or errors in order. */
  async *#write(rel: string, p: Prepared): AsyncGenerator<Buffer> {
    switch (p.kind) {
      case "excluded":
        return;
      case "lost":
        return this.#lost(rel, p.err);
      case "special":
        return this.#unreadable(rel, `it is a ${specialKind(p.st)}, not a regular file, directory or symlink`);
      case "symlink":
        return this.#member({ ...meta(rel, p.st), type: "symlink", size: 0, linkpath: p.target });
      case "dir":
        if (p.err !== undefined) return this.#lost(rel, p.err);
        this.#member({ ...meta(rel, p.st), type: "dir", size: 0 });
        if (p.mount) this.#warn(`"${rel}" is a mount point of another filesystem: stored empty, its contents are not in this backup`);
        if (p.listing) this.#badNames(rel, p.listing);
        return;
      case "small": {
        const size = p.data.length;
        this.#push(encodeHeader({ ...meta(rel, p.st), type: "file", size }));
        this.#push(p.data);
        this.#push(padding(size));
        if (p.changed) this.#warn(`"${rel}" changed while being read: its copy in this backup holds what was read`);
        return this.#addFile(rel, p.st, size, createHash("sha256").update(p.data).digest("hex"), p.changed);
      }
      case "large":
        return yield* this.#large(rel);
      default:
        p satisfies never;
    }
  }

  /** Streams one large file: header, content (hashed on the way), padding. */
  async *#large(rel: string): AsyncGenerator<Buffer> {
    let fh: FileHandle;
    try {
      fh = await open(join(this.#opts.root, rel), OPEN_FLAGS);
    } catch (err) {
      return this.#lost(rel, err);
    }
    try {
      // The open file is what gets archived, even if the path was swapped after lstat: its fstat is the truth.
      const st = await fh.stat();
      if (!st.isFile()) return this.#warn(`"${rel}" changed type while the volume was read: it is not in this backup`);
      const size = st.size;
      this.#push(encodeHeader({ ...meta(rel, st), type: "file", size }));
      const hash = createHash("sha256");
      let pos = 0;
      let problem: string | undefined;
      while (pos < size) {
        const want = Math.min(CHUNK, size - pos);
        // A fresh buffer per chunk: the previous one may still sit unread in the stream's queue.
        const buf = Buffer.allocUnsafe(want);
        let n: number;
        try {
          n = (await fh.read(buf, 0, want, pos)).bytesRead;
        } catch (err) {
          // Under "fail" this throws; under "warn" the header is already out, so the rest is zero-filled below.
          if (this.#opts.onUnreadable === "fail") this.#unreadable(rel, messageOf(err));
          problem = `could not be read past byte ${pos} (${messageOf(err)})`;
          break;
        }
        if (n === 0) {
          problem = `shrank from ${size} to ${pos} bytes while being read`;
          break;
        }
        const data = n === want ? buf : buf.subarray(0, n);
        hash.update(data);
        this.#push(data);
        pos += n;
        if (this.#pendingBytes >= BATCH) yield this.#flush();
      }
      // The header promised `size` bytes: zeros fill the gap so every later member stays readable.
      while (pos < size) {
        const zeros = Buffer.alloc(Math.min(CHUNK, size - pos));
        hash.update(zeros);
        this.#push(zeros);
        pos += zeros.length;
        if (this.#pendingBytes >= BATCH) yield this.#flush();
      }
      this.#push(padding(size));
      if (!problem) {
        const after = await fh.stat();
        if (after.size !== size || after.mtimeMs !== st.mtimeMs) problem = "changed while being read";
      }
      if (problem) this.#warn(`"${rel}" ${problem}: its copy in this backup holds what was read (zero-filled to ${size} bytes)`);
      this.#addFile(rel, st, size, hash.digest("hex"), problem !== undefined);
    } finally {
      await fh.close().catch(() => {});
    }
  }

  #addFile(rel: string, st: Stats, size: number, sha256: string, changed: boolean): void {
    this.inventory.add({ path: rel, type: "file", size, sha256, mode: st.mode & 0o7777, ...(changed ? { changed: true as const } : {}) });
  }

  /** Adds a member without content to the stream and the inventory. */
  #member(m: TarMember): void {
    this.#push(encodeHeader(m));
    this.inventory.add({ path: m.path, type: m.type, size: 0, mode: m.mode, ...(m.linkpath !== undefined ? { target: m.linkpath } : {}) });
  }

  #badNames(rel: string, listing: Listing): void {
    for (const name of listing.bad) this.#unreadable(rel ? `${rel}/${name}` : name, "its name is not valid UTF-8 (rename it)");
  }

  /** An entry that could not be stat'ed, listed or opened: gone (a warning), replaced (a warning) or unreadable. */
  #lost(rel: string, err: unknown): void {
    const errno = (err as { code?: string }).code;
    if (errno === "ENOENT") this.#warn(`"${rel}" vanished while the volume was read: it is not in this backup`);
    else if (errno === "ELOOP" || errno === "ENOTDIR" || errno === "EISDIR" || errno === "EINVAL") {
      this.#warn(`"${rel}" changed type while the volume was read: it is not in this backup`);
    } else this.#unreadable(rel, messageOf(err));
  }

  #unreadable(rel: string, why: string): void {
    if (this.#opts.onUnreadable === "fail") {
      throw new LifeboatError(code.source, `cannot read "${rel}": ${why}`, {
        hint: `fix its permissions, exclude it (exclude: ["${rel}"]), or set onUnreadable: "warn" to skip unreadable entries with a warning`,
      });
    }
    this.#warn(`"${rel}" is unreadable and was skipped: ${why}`);
  }

  #warn(message: string): void {
    if (this.#warnings.length < MAX_WARNINGS) this.#warnings.push(message);
    else this.#dropped++;
  }

  #push(b: Buffer): void {
    if (b.length === 0) return;
    this.#pending.push(b);
    this.#pendingBytes += b.length;
  }

  #flush(): Buffer {
    const out = this.#pending.length === 1 ? (this.#pending[0] as Buffer) : Buffer.concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    return out;
  }
}

/** Lists a directory: names in byte order (reproducible archives), with their types from the directory entries. */
async function list(abs: string): Promise<Listing> {
  const entries = await readdir(abs, { withFileTypes: true, encoding: "buffer" });
  entries.sort((a, b) => Buffer.compare(a.name, b.name));
  const out: Listing = { names: [], isDir: [], bad: [] };
  for (const e of entries) {
    const name = e.name.toString("utf8");
    // A name that is not UTF-8 cannot go into a pax header or the inventory without changing it.
    if (!Buffer.from(name, "utf8").equals(e.name)) out.bad.push(name);
    else {
      out.names.push(name);
      out.isDir.push(e.isDirectory());
    }
  }
  return out;
}

/** Reads a small file whole. `changed` when it was swapped, modified or resized between lstat and the read's end. */
async function readSmall(abs: string, st: Stats): Promise<Prepared> {
  const fh = await open(abs, OPEN_FLAGS);
  try {
    // One byte more than lstat said, so a file that grew is noticed; what was read (up to its lstat size) is stored.
    const buf = Buffer.allocUnsafe(st.size + 1);
    let n = 0;
    for (;;) {
      const r = (await fh.read(buf, n, buf.length - n, n)).bytesRead;
      if (r === 0 || n + r === buf.length) {
        n += r;
        break;
      }
      n += r;
    }
    const after = await fh.stat();
    if (!after.isFile()) return { kind: "lost", err: Object.assign(new Error("changed type"), { code: "ENOTDIR" }) };
    const changed = n !== st.size || after.ino !== st.ino || after.size !== st.size || after.mtimeMs !== st.mtimeMs;
    return { kind: "small", st: after, data: buf.subarray(0, Math.min(n, st.size)), changed };
  } finally {
    await fh.close().catch(() => {});
  }
}

function meta(rel: string, st: Stats): Omit<TarMember, "type" | "size"> {
  return { path: rel, mode: st.mode & 0o7777, mtime: st.mtime, uid: st.uid, gid: st.gid };
}

function specialKind(st: Stats): string {
  if (st.isFIFO()) return "FIFO";
  if (st.isSocket()) return "socket";
  if (st.isCharacterDevice()) return "character device";
  if (st.isBlockDevice()) return "block device";
  return "special file";
}
