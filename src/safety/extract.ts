import { once } from "node:events";
import { constants } from "node:fs";
import {
  chmod,
  type FileHandle,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  opendir,
  readlink,
  realpath,
  symlink,
  unlink,
  utimes,
} from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, sep } from "node:path";
import type { Readable } from "node:stream";
import { Parser, type ReadEntry } from "tar";
import { abortedError, IntegrityError, LifeboatError, RefusedError, wrap } from "../errors.ts";

/** Options of extractTar. */
export interface ExtractOptions {
  /** The tar bytes (plain tar; no compression). */
  input: Readable;
  /** An existing directory to extract into. Nothing outside it is ever written. */
  dir: string;
  signal?: AbortSignal;
  /**
   * A symlink whose target resolves outside `dir`: "refuse" (the default) fails the extraction and removes the
   * links; "keep" restores it as the link it was (a volume's own link to /etc/ssl, say). Either way no entry is
   * ever written through a symlink: links are created after every file and directory.
   */
  outsideSymlinks?: "refuse" | "keep";
  /** Give entries the archive's uid/gid. Defaults to true when running as root (as tar does). */
  preserveOwner?: boolean;
}

/** What an extraction wrote. */
export interface ExtractResult {
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  /** Bytes of file content written. */
  bytes: number;
}

interface Deferred {
  full: string;
  shown: string;
  linkpath: string;
  mtime?: Date;
  uid?: number;
  gid?: number;
}

const FILE_TYPES = new Set(["File", "OldFile", "ContiguousFile"]);
// Files up to this size are buffered and written in the background, up to WRITE_AHEAD at once: each file is about
// six fs calls, and overlapping them makes 50k small files several times faster. Memory: WRITE_AHEAD × SMALL.
const SMALL = 128 * 1024;
const WRITE_AHEAD = 32;
// A new file already belongs to us (its directory gets its setgid bit only at the end), so chown to us is skipped.
const MY_UID = process.getuid?.();
const MY_GID = process.getgid?.();
// O_EXCL with O_NOFOLLOW: a file is only ever created, never written through a link or into something that exists.
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * Extracts a tar stream into a directory, refusing (RefusedError, code REFUSED) any entry that could reach outside
 * it: absolute paths, ".." components, hard links to anything but a regular file inside, device files, FIFOs and
 * other special entries, paths that pass through a symlink or a file, and (unless outsideSymlinks is "keep")
 * symlinks that resolve outside. Symlinks are created last, so no later entry can be written through one. Modes,
 * mtimes and (as root) owners are restored; directories get theirs at the end, so a read-only directory can still
 * be filled. Existing files at an entry's path are replaced; an existing directory is never replaced, and nothing is
 * written through an existing symlink: an entry such a thing is in the way of is refused, naming it as the
 * destination's (when `dir` held anything at the start) rather than as the archive's doing.
 * Rejects with IntegrityError for a damaged or truncated archive, with code ABORTED on abort, and with the input
 * stream's own error if reading failed. A refused or failed extraction leaves what it wrote so far: callers drop it.
 */
export async function extractTar(opts: ExtractOptions): Promise<ExtractResult> {
  const { input, signal } = opts;
  const aborted = () => abortedError(`extract into ${opts.dir}`, signal);
  if (signal?.aborted) throw aborted();
  let root: string;
  let held: boolean;
  try {
    root = await realpath(opts.dir);
    if (!(await lstat(root)).isDirectory()) throw new Error("not a directory");
    held = await holdsAnything(root);
  } catch (err) {
    throw wrap(`extract into ${opts.dir}`, err);
  }
  // The abort listener is not attached yet: an abort during the awaits above would be missed, and the read hang.
  if (signal?.aborted) {
    input.destroy();
    throw aborted();
  }
  const ex = new Extractor(root, opts.outsideSymlinks ?? "refuse", opts.preserveOwner ?? process.getuid?.() === 0, held);
  const parser = new Parser({ strict: true });
  let failure: unknown;
  let current: ReadEntry | undefined;
  let fail!: (err: unknown) => void;
  const failed = new Promise<never>((_, reject) => {
    fail = (err) => {
      if (failure === undefined) failure = err ?? new Error("extraction failed");
      ex.stop(failure);
      // An entry waiting for bytes that will never come (input gone, abort) would hold the chain forever.
      current?.destroy();
      reject(failure);
    };
  });
  failed.catch(() => {});
  let sawEof = false;
  let chain: Promise<void> = Promise.resolve();
  parser.on("eof", () => {
    sawEof = true;
  });
  parser.on("error", (err: Error) =>
    fail(new IntegrityError(`extract into ${root}: the archive is damaged: ${err.message}`, { cause: err })),
  );
  parser.on("entry", (entry: ReadEntry) => {
    // Entries come one at a time (the parser waits for each to end); their work is chained so it stays in order.
    chain = chain.then(async () => {
      if (failure !== undefined) return void entry.resume();
      current = entry;
      try {
        await ex.entry(entry);
        current = undefined;
      } catch (err) {
        current = undefined;
        entry.resume();
        fail(err instanceof LifeboatError ? err : wrap(`extract "${entry.path}" into ${root}`, err));
      }
    });
  });
  const onAbort = () => {
    fail(aborted());
    input.destroy(aborted());
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    try {
      for await (const chunk of input) {
        if (failure !== undefined) break;
        if (!parser.write(chunk as Buffer)) await Promise.race([once(parser, "drain"), failed]);
      }
      if (failure === undefined) {
        const closed = once(parser, "close");
        parser.end();
        await Promise.race([closed, failed]);
      }
    } catch (err) {
      // The input's own error (a hash mismatch upstream, say) says more than anything the parser adds.
      fail(signal?.aborted ? aborted() : err);
    }
    await chain;
    // Files still being written in the background must be finished (or failed) before anything is reported.
    await ex.idle();
    if (failure !== undefined) throw failure;
    if (!sawEof) throw new IntegrityError(`extract into ${root}: the archive ends without its end-of-archive marker (truncated?)`);
    signal?.throwIfAborted();
    await ex.finish();
    return ex.result;
  } catch (err) {
    if (signal?.aborted) throw aborted();
    throw err;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (!input.readableEnded) input.destroy();
  }
}

/** Writes entries one by one under root, keeping every check in one place. */
class Extractor {
  readonly result: ExtractResult = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 0 };
  // Directories known to be real directories under root (created or lstat'ed): nothing is written through others.
  readonly #dirs = new Set<string>();
  readonly #dirMeta: DirMeta[] = [];
  /**
   * Why the extraction stopped (failed or aborted), once it did, and the reads of an entry's content waiting on it: an
   * entry's stream, once destroyed, never settles a pending read, so stop() rejects them. One waiter per read, removed
   * when it settles: racing every read against one long-lived promise kept every chunk reachable from it.
   */
  #stoppedWith: { err: unknown } | undefined;
  readonly #waiting = new Set<(err: unknown) => void>();
  readonly #links: Deferred[] = [];
  // Background writes by path, so a later entry at the same path (or a hard link to it) waits for the earlier one.
  readonly #inflight = new Map<string, Promise<void>>();
  #writeError: unknown;
  readonly root: string;
  readonly outsideSymlinks: "refuse" | "keep";
  readonly preserveOwner: boolean;
  /** Whether root held entries before the extraction: then what is in an entry's way is most likely the destination's. */
  readonly #held: boolean;
  /** Entries taken on so far (the target directory's own "./" aside): after the first, a refusal leaves a partial tree. */
  #seen = 0;
  constructor(root: string, outsideSymlinks: "refuse" | "keep", preserveOwner: boolean, held: boolean) {
    this.root = root;
    this.#held = held;
    this.outsideSymlinks = outsideSymlinks;
    this.preserveOwner = preserveOwner;
    this.#dirs.add(root);
  }

  /** Ends every read of an entry's content still waiting, and every later one, with err. */
  stop(err: unknown): void {
    this.#stoppedWith ??= { err };
    for (const reject of this.#waiting) reject(err);
    this.#waiting.clear();
  }

  /** An entry's content, chunk by chunk; it ends with the extraction's error when that stops first. */
  async *#contentOf(e: ReadEntry): AsyncGenerator<Buffer> {
    const chunks = (e as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    for (;;) {
      const next = await this.#read(chunks);
      if (next.done) return;
      yield next.value;
    }
  }

  /** The next chunk of an entry's content, unless the extraction stops first. */
  #read(chunks: AsyncIterator<Buffer>): Promise<IteratorResult<Buffer>> {
    if (this.#stoppedWith) return Promise.reject(this.#stoppedWith.err);
    return new Promise((resolve, reject) => {
      this.#waiting.add(reject);
      chunks.next().then(
        (r) => {
          this.#waiting.delete(reject);
          resolve(r);
        },
        (err: unknown) => {
          this.#waiting.delete(reject);
          reject(err);
        },
      );
    });
  }

  async entry(e: ReadEntry): Promise<void> {
    if (this.#writeError !== undefined) throw this.#writeError;
    const parts = this.#parts(e.path, e.path);
    if (parts.length === 0) {
      // "./" names the target itself: its mode and owner belong to whoever made it, not to the archive.
      if (e.type === "Directory") return void e.resume();
      throw refuse(e.path, "names the target directory itself");
    }
    this.#seen++;
    const owner: Owner = this.preserveOwner && e.uid !== undefined && e.gid !== undefined ? { uid: e.uid, gid: e.gid } : {};
    if (e.type === "Directory") {
      const full = await this.#ensureDirs(parts, e.path, true);
      this.#dirMeta.push({ full, mode: e.mode, mtime: e.mtime, ...owner });
      this.result.dirs++;
      return void e.resume();
    }
    const parent = await this.#ensureDirs(parts.slice(0, -1), e.path, true);
    const full = join(parent, parts[parts.length - 1] as string);
    if (FILE_TYPES.has(e.type)) return this.#file(e, full, owner);
    if (e.type === "SymbolicLink") {
      if (!e.linkpath || e.linkpath.includes("\0")) throw refuse(e.path, "is a symlink without a valid target");
      this.#links.push({ full, shown: e.path, linkpath: e.linkpath, mtime: e.mtime, ...owner });
      return void e.resume();
    }
    if (e.type === "Link") {
      const target = this.#parts(e.linkpath ?? "", e.path, "hard link target");
      if (target.length === 0) throw refuse(e.path, "is a hard link to the target directory");
      const from = join(await this.#ensureDirs(target.slice(0, -1), e.path, false), target[target.length - 1] as string);
      await this.#inflight.get(from);
      const st = await lstat(from).catch(() => undefined);
      if (!st?.isFile()) throw refuse(e.path, `is a hard link to "${e.linkpath}", which is not a regular file extracted before it`);
      await this.#inflight.get(full);
      await this.#clear(full, e.path, "hard link");
      await link(from, full);
      this.result.hardlinks++;
      return void e.resume();
    }
    throw refuse(e.path, `is a ${e.type} entry: only files, directories and links are restored`);
  }

  /** Waits for every background write; never rejects (their first error fails the next entry or finish). */
  async idle(): Promise<void> {
    await Promise.all(this.#inflight.values());
  }

  async #file(e: ReadEntry, full: string, owner: Owner): Promise<void> {
    await this.#inflight.get(full);
    if (e.size > SMALL) return this.#write(e, full, this.#contentOf(e), owner);
    const chunks: Buffer[] = [];
    for await (const chunk of this.#contentOf(e)) chunks.push(chunk);
    const data = [Buffer.concat(chunks)];
    while (this.#inflight.size >= WRITE_AHEAD) await Promise.race(this.#inflight.values());
    const task = this.#write(e, full, data, owner)
      .catch((err: unknown) => {
        this.#writeError ??= err instanceof LifeboatError ? err : wrap(`extract "${e.path}" into ${this.root}`, err);
      })
      .finally(() => this.#inflight.delete(full));
    this.#inflight.set(full, task);
  }

  /** Creates one file and writes its content, owner, mode and mtime. */
  async #write(e: ReadEntry, full: string, content: AsyncIterable<Buffer> | Buffer[], owner: Owner): Promise<void> {
    let fh: FileHandle;
    try {
      fh = await open(full, CREATE_FLAGS, 0o600);
    } catch (err) {
      if ((err as { code?: string }).code !== "EEXIST") throw err;
      await this.#clear(full, e.path, "file");
      fh = await open(full, CREATE_FLAGS, 0o600);
    }
    try {
      // Small files come in memory, written whole even once the extraction failed, so the files before a refused
      // entry are complete in the partial tree it leaves; a large one's chunks stop with the extraction (#contentOf).
      for await (const chunk of content) {
        let off = 0;
        while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
        this.result.bytes += chunk.length;
      }
      // chown first: it clears setuid/setgid bits that chmod then sets.
      if (owner.uid !== undefined && owner.gid !== undefined && (owner.uid !== MY_UID || owner.gid !== MY_GID)) {
        await fh.chown(owner.uid, owner.gid);
      }
      if (e.mode !== undefined) await fh.chmod(e.mode & 0o7777);
      if (e.mtime) await fh.utimes(e.mtime, e.mtime);
    } finally {
      await fh.close();
    }
    this.result.files++;
  }

  /** Creates the deferred symlinks, checks where they lead, then gives directories their modes and mtimes. */
  async finish(): Promise<void> {
    await this.idle();
    if (this.#writeError !== undefined) throw this.#writeError;
    for (const l of this.#links) {
      await this.#clear(l.full, l.shown, "symlink", true);
      await symlink(l.linkpath, l.full);
      if (l.uid !== undefined && l.gid !== undefined) await lchown(l.full, l.uid, l.gid);
      if (l.mtime) await lutimes(l.full, l.mtime, l.mtime);
      this.result.symlinks++;
    }
    if (this.outsideSymlinks === "refuse") {
      const outside: Deferred[] = [];
      for (const l of this.#links) if (!(await resolvesInside(this.root, l.full))) outside.push(l);
      if (outside.length > 0) {
        // Links are checked once all exist (a chain of inside-looking links can still lead out); bad ones go.
        for (const l of outside) await unlink(l.full).catch(() => {});
        const first = outside[0] as Deferred;
        const more = outside.length > 1 ? ` (and ${outside.length - 1} more)` : "";
        throw refuse(first.shown, `is a symlink to "${first.linkpath}", which leads outside ${this.root}${more}`);
      }
    }
    await applyDirMeta(this.#dirMeta);
  }

  /** Splits an entry path into names, refusing absolute paths, "..", NUL bytes. An empty list names root. */
  #parts(path: string, shown: string, what = "path"): string[] {
    if (path.includes("\0")) throw refuse(shown, `has a NUL byte in its ${what}`);
    if (path.startsWith("/")) throw refuse(shown, `has an absolute ${what} ("${path}")`);
    const parts = path.split("/").filter((p) => p !== "" && p !== ".");
    if (parts.includes("..")) throw refuse(shown, `has ".." in its ${what} ("${path}")`);
    return parts;
  }

  /** Makes sure every name in parts is a real directory under root (creating missing ones if asked); returns its path. */
  async #ensureDirs(parts: string[], shown: string, create: boolean): Promise<string> {
    let cur = this.root;
    for (const part of parts) {
      cur = join(cur, part);
      if (this.#dirs.has(cur)) continue;
      await this.#inflight.get(cur);
      const st = await lstat(cur).catch((err: { code?: string }) => {
        if (err.code === "ENOENT") return undefined;
        throw err;
      });
      if (!st) {
        if (!create) throw refuse(shown, `needs "${relative(this.root, cur)}", which does not exist`);
        await mkdir(cur, 0o755);
      } else if (!st.isDirectory()) {
        // Links are only created once every entry is out, so a symlink here was in the destination before.
        const link = st.isSymbolicLink();
        const why = `goes through "${relative(this.root, cur)}", which is a ${link ? "symlink" : "file"}`;
        throw link || this.#held ? this.#inTheWay(shown, cur, `${why} already in ${this.root}`) : refuse(shown, why);
      }
      this.#dirs.add(cur);
    }
    return cur;
  }

  /** Removes what is at full so an entry (a `what`) can take its place; an existing directory is refused, never removed. */
  async #clear(full: string, shown: string, what: string, finishing = false): Promise<void> {
    const st = await lstat(full).catch(() => undefined);
    if (!st) return;
    if (st.isDirectory()) {
      if (!this.#held) throw refuse(shown, `(a ${what}) would replace an existing directory`);
      const why = `(a ${what}) would replace "${relative(this.root, full)}", which is a directory already in ${this.root}`;
      throw this.#inTheWay(shown, full, why, finishing);
    }
    await unlink(full);
  }

  /**
   * The refusal of an entry that something already in the destination (at full) is in the way of. finishing: met
   * while creating the symlinks, when every other entry is written.
   */
  #inTheWay(shown: string, full: string, why: string, finishing = false): RefusedError {
    const left =
      finishing || this.#seen > 1
        ? `Other entries were already written, so ${this.root} now holds a partial restore (which a later restore into it counts as data in the way)`
        : "Nothing was written.";
    return new RefusedError(`archive entry "${shown}" ${why}`, {
      hint: `the destination is in the way, not the archive: move ${full} aside, or restore into a new, empty directory. ${left}`,
    });
  }
}

function refuse(entry: string, why: string): RefusedError {
  return new RefusedError(`archive entry "${entry}" ${why}`, {
    hint: "the archive is damaged or crafted to write outside the restore directory: extraction stopped at this entry (entries before it were written)",
  });
}

/** Whether a directory has any entry: one read, however large it is. */
async function holdsAnything(dir: string): Promise<boolean> {
  const d = await opendir(dir);
  try {
    return (await d.read()) !== null;
  } finally {
    await d.close();
  }
}

interface Owner {
  uid?: number;
  gid?: number;
}

interface DirMeta {
  full: string;
  mode?: number;
  mtime?: Date;
  uid?: number;
  gid?: number;
}

/** Gives directories their owner, mode and mtime, deepest first (adding to a directory changes its mtime). */
async function applyDirMeta(dirs: readonly DirMeta[]): Promise<void> {
  for (let i = dirs.length - 1; i >= 0; i--) {
    const d = dirs[i] as DirMeta;
    if (d.uid !== undefined && d.gid !== undefined) await lchown(d.full, d.uid, d.gid);
    if (d.mode !== undefined) await chmod(d.full, d.mode & 0o7777);
    if (d.mtime) await utimes(d.full, d.mtime, d.mtime);
  }
}

/**
 * True if the symlink at `link` (under root) resolves inside root, following it the way the kernel would: name by
 * name, through every further symlink, so "a -> ." plus "b -> a/.." is caught although each looks harmless.
 * A name that does not exist ends the walk: the rest is resolved by its text. Absolute targets count as outside.
 */
async function resolvesInside(root: string, link: string): Promise<boolean> {
  const stack = relative(root, dirname(link)).split(sep).filter(Boolean);
  let pending = [basename(link)];
  let hops = 0;
  let exists = true;
  while (pending.length > 0) {
    const name = pending.shift() as string;
    if (name === "" || name === ".") continue;
    if (name === "..") {
      if (stack.length === 0) return false;
      stack.pop();
      continue;
    }
    stack.push(name);
    if (!exists) continue;
    const here = join(root, ...stack);
    const st = await lstat(here).catch(() => undefined);
    if (!st) {
      exists = false;
      continue;
    }
    if (!st.isSymbolicLink()) continue;
    // Linux gives up after 40 links; so does this walk, calling the loop outside.
    if (++hops > 40) return false;
    const target = await readlink(here);
    if (isAbsolute(target)) return false;
    stack.pop();
    pending = [...target.split("/"), ...pending];
  }
  return true;
}
