import { isUtf8 } from "node:buffer";
import { createHash } from "node:crypto";
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, type Stats } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { join } from "node:path";
import { code, LifeboatError, messageOf } from "../errors.ts";
import { type ExcludeTest, excludePatternFor } from "./volume-exclude.ts";
import { InventoryBuilder } from "./volume-inventory.ts";
import { END_OF_ARCHIVE, encodeHeader, padding, type TarMember } from "./volume-tar.ts";

// Large files are read in chunks of this size: memory stays at a few chunks whatever the file's size.
const CHUNK = 256 * 1024;
// Files up to this size are read whole when their entry is prepared; larger ones are streamed, asynchronously.
// Entries are prepared (lstat, listing, small-file read) with synchronous calls: as promises, every call was a
// thread-pool round trip costing several times the system call itself (a 50k-file tree took 20 times as long as
// GNU tar). The event loop runs again at each BATCH handed on, so it is blocked for one batch's entries at a time.
const SMALL = 128 * 1024;
// Small members are gathered into chunks of about this size, so 50k tiny files are not 150k stream writes.
const BATCH = 64 * 1024;
// A volume with a million vanished files should not make a manifest of a million lines.
const MAX_WARNINGS = 200;
// O_NOFOLLOW: a file swapped for a symlink after lstat is not followed out of the tree. O_NONBLOCK: a file swapped
// for a FIFO does not block the open forever (it has no effect on regular files).
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
// Linux's PATH_MAX less its NUL: every entry is opened by its whole path from the volume root (node has no openat,
// which lets GNU tar go deeper), so a longer path fails with ENAMETOOLONG.
const MAX_PATH_BYTES = 4095;

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
  /** From the directory entry's type: whether the child was a directory when listed (its children are walked next). */
  isDir: boolean[];
  /** From the directory entry's type (false where the filesystem does not say): a regular file, opened without lstat. */
  isFile: boolean[];
  /**
   * Names that are not valid UTF-8 (U+FFFD for each bad byte sequence), reported when the directory is written
   * unless excluded; badIsDir as isDir.
   */
  bad: string[];
  badIsDir: boolean[];
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
  /** Not storable: a FIFO, socket or device, or (why) a symlink whose target is not UTF-8. */
  | { kind: "special"; st: Stats; why?: string; fix?: string };

interface Item {
  rel: string;
  prepared: Prepared;
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
  #excluded = 0;
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
    this.#rootDev = lstatSync(root).dev;
    // The root must be listable whatever onUnreadable says: an empty backup with a warning is no backup.
    const rootListing = list(root);
    this.#badNames("", rootListing);
    const stack: Frame[] = [{ rel: "", ...rootListing, next: 0 }];
    for (;;) {
      signal.throwIfAborted();
      const item = this.#next(stack);
      if (!item) break;
      yield* this.#write(item.rel, item.prepared);
      if (this.#pendingBytes >= BATCH) yield this.#flush();
    }
    if (this.inventory.files.length === 0 && this.#excluded > 0) {
      // First, past the cap: an empty snapshot that looks like a success is the thing a reader must not miss.
      this.#warnings.unshift(
        "the volume's exclude patterns left nothing to back up: this snapshot is empty (check the job's exclude list)",
      );
    }
    this.#push(END_OF_ARCHIVE);
    yield this.#flush();
  }

  /** Prepares the next entry in walk order (a directory's children follow it), or undefined at the end. */
  #next(stack: Frame[]): Item | undefined {
    for (let top = stack.at(-1); top; top = stack.at(-1)) {
      if (top.next >= top.names.length) {
        stack.pop();
        continue;
      }
      const i = top.next++;
      const name = top.names[i] as string;
      const rel = top.rel ? `${top.rel}/${name}` : name;
      const prepared = top.isFile[i] ? this.#prepareFile(rel) : this.#prepare(rel, top.isDir[i] as boolean);
      if (prepared.kind === "dir" && prepared.listing && !prepared.mount) stack.push({ rel, ...prepared.listing, next: 0 });
      return { rel, prepared };
    }
    return undefined;
  }

  /**
   * #prepare for an entry its directory listed as a regular file: opened straight away, its metadata from fstat, so
   * a small file costs one path lookup instead of two. Anything else by then (a symlink or FIFO swapped in) goes
   * the general way. Never throws.
   */
  #prepareFile(rel: string): Prepared {
    if (this.#opts.exclude(rel, false)) return { kind: "excluded" };
    const abs = join(this.#opts.root, rel);
    let fd: number;
    try {
      fd = openSync(abs, OPEN_FLAGS);
    } catch (err) {
      const errno = (err as { code?: string }).code;
      return errno === "ELOOP" || errno === "ENXIO" ? this.#prepare(rel, false) : { kind: "lost", err };
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) return this.#prepare(rel, false);
      if (st.size > SMALL) return { kind: "large" };
      return readSmall(fd, st);
    } catch (err) {
      return { kind: "lost", err };
    } finally {
      closeQuietly(fd);
    }
  }

  /** Everything about one entry that can be done ahead of writing it. Never throws. */
  #prepare(rel: string, listedAsDir: boolean): Prepared {
    const abs = join(this.#opts.root, rel);
    try {
      const st = lstatSync(abs);
      if (this.#opts.exclude(rel, st.isDirectory())) return { kind: "excluded" };
      if (st.isDirectory()) {
        // Listed as something else a moment ago: its children were not queued, so it cannot be walked now.
        if (!listedAsDir) return { kind: "lost", err: Object.assign(new Error("changed type"), { code: "ENOTDIR" }) };
        if (st.dev !== this.#rootDev) return { kind: "dir", st, mount: true };
        try {
          return { kind: "dir", st, mount: false, listing: list(abs) };
        } catch (err) {
          return { kind: "dir", st, mount: false, err };
        }
      }
      if (st.isSymbolicLink()) {
        // Read as bytes: a target that is not UTF-8 would otherwise come back with U+FFFD in place of its bytes, and
        // be stored, counted and restored altered without a word.
        const raw = readlinkSync(abs, { encoding: "buffer" });
        if (!isUtf8(raw)) return { kind: "special", st, why: "its target is not valid UTF-8", fix: "point it at a UTF-8 name" };
        return { kind: "symlink", st, target: raw.toString("utf8") };
      }
      if (!st.isFile()) return { kind: "special", st };
      if (st.size > SMALL) return { kind: "large" };
      const fd = openSync(abs, OPEN_FLAGS);
      try {
        return readSmall(fd, st);
      } finally {
        closeQuietly(fd);
      }
    } catch (err) {
      return { kind: "lost", err };
    }
  }

  /** Writes one prepared entry to the stream and the inventory, turning problems into warnings or errors in order. */
  async *#write(rel: string, p: Prepared): AsyncGenerator<Buffer> {
    switch (p.kind) {
      case "excluded":
        this.#excluded++;
        return;
      case "lost":
        return this.#lost(rel, p.err);
      case "special":
        return this.#unreadable(
          rel,
          p.why ?? `it is a ${specialKind(p.st)}, not a regular file, directory or symlink`,
          p.fix ?? "move it out of the volume",
        );
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
      if (problem) {
        this.#warn(
          `"${rel}" ${problem}: its copy in this backup holds what was read, zero-filled to ${size} bytes (its size when the backup reached it)`,
        );
      } else {
        // Every byte the header promised was read: nothing was zero-filled, whatever happened to the file since.
        const after = await fh.stat();
        if (after.size > size) {
          problem = `grew from ${size} to ${after.size} bytes while being read: its copy in this backup holds its first ${size} bytes (its size when the backup reached it)`;
        } else if (after.size !== size || after.mtimeMs !== st.mtimeMs) {
          problem = `changed while being read: its copy in this backup holds the ${size} bytes read`;
        }
        if (problem) this.#warn(`"${rel}" ${problem}`);
      }
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
    for (let i = 0; i < listing.bad.length; i++) {
      const name = listing.bad[i] as string;
      const path = rel ? `${rel}/${name}` : name;
      // Matched as shown (U+FFFD for the bad bytes), so the pattern the hint suggests, or a glob like "bad*", works.
      if (this.#opts.exclude(path, listing.badIsDir[i] as boolean)) {
        this.#excluded++;
        continue;
      }
      this.#unreadable(path, "its name is not valid UTF-8", "rename it");
    }
  }

  /** An entry that could not be stat'ed, listed or opened: gone (a warning), replaced (a warning) or unreadable. */
  #lost(rel: string, err: unknown): void {
    const errno = (err as { code?: string }).code;
    if (errno === "ENOENT") this.#warn(`"${rel}" vanished while the volume was read: it is not in this backup`);
    else if (errno === "ELOOP" || errno === "ENOTDIR" || errno === "EISDIR" || errno === "EINVAL") {
      this.#warn(`"${rel}" changed type while the volume was read: it is not in this backup`);
    } else if (errno === "ENAMETOOLONG") {
      const bytes = Buffer.byteLength(join(this.#opts.root, rel));
      this.#unreadable(
        rel,
        `its full path is ${bytes} bytes, longer than the ${MAX_PATH_BYTES} bytes the system allows (ENAMETOOLONG)`,
        "shorten its path",
      );
    } else this.#unreadable(rel, messageOf(err));
  }

  /** Fails the walk naming rel (fix: what to do about it, besides excluding it), or under "warn" skips it with a warning. */
  #unreadable(rel: string, why: string, fix = "fix its permissions"): void {
    if (this.#opts.onUnreadable === "fail") {
      throw new LifeboatError(code.source, `cannot read "${rel}": ${why}`, {
        hint: `${fix}, exclude it (exclude: [${JSON.stringify(excludePatternFor(rel))}]), or set onUnreadable: "warn" to skip unreadable entries with a warning`,
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
function list(abs: string): Listing {
  const entries = readdirSync(abs, { withFileTypes: true, encoding: "buffer" });
  entries.sort((a, b) => Buffer.compare(a.name, b.name));
  const out: Listing = { names: [], isDir: [], isFile: [], bad: [], badIsDir: [] };
  for (const e of entries) {
    const name = e.name.toString("utf8");
    // A name that is not UTF-8 cannot go into a pax header or the inventory without changing it (as a link target).
    if (!isUtf8(e.name)) {
      out.bad.push(name);
      out.badIsDir.push(e.isDirectory());
    } else {
      out.names.push(name);
      out.isDir.push(e.isDirectory());
      out.isFile.push(e.isFile());
    }
  }
  return out;
}

/**
 * Reads a small open file whole; st is what lstat or fstat said before. `changed` when it was swapped, modified or
 * resized between that stat and the read's end.
 */
function readSmall(fd: number, st: Stats): Prepared {
  // One byte more than the stat said, so a file that grew is noticed; what was read (up to the stat's size) is
  // stored. Reading stops at that size: a file that grew before the read returns the extra byte, one that grew after
  // it shows in the fstat below, so no second read is spent confirming the end.
  const buf = Buffer.allocUnsafe(st.size + 1);
  let n = 0;
  for (;;) {
    const r = readSync(fd, buf, n, buf.length - n, n);
    n += r;
    if (r === 0 || n >= st.size) break;
  }
  const after = fstatSync(fd);
  if (!after.isFile()) return { kind: "lost", err: Object.assign(new Error("changed type"), { code: "ENOTDIR" }) };
  const changed = n !== st.size || after.ino !== st.ino || after.size !== st.size || after.mtimeMs !== st.mtimeMs;
  return { kind: "small", st: after, data: buf.subarray(0, Math.min(n, st.size)), changed };
}

/** Closes a file that was only read: a failing close cannot lose what was read, nor anything on disk. */
function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Nothing to recover: the descriptor is released either way.
  }
}

function meta(rel: string, st: Stats): Omit<TarMember, "type" | "size"> {
  // Whole seconds, truncated as tar does, from mtimeMs: st.mtime is rounded to the millisecond, so .9995 s and later
  // would become the next second.
  return { path: rel, mode: st.mode & 0o7777, mtime: new Date(Math.floor(st.mtimeMs / 1000) * 1000), uid: st.uid, gid: st.gid };
}

function specialKind(st: Stats): string {
  if (st.isFIFO()) return "FIFO";
  if (st.isSocket()) return "socket";
  if (st.isCharacterDevice()) return "character device";
  if (st.isBlockDevice()) return "block device";
  return "special file";
}
