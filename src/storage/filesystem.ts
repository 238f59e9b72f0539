import { randomBytes } from "node:crypto";
import { type FileHandle, mkdir, open, readdir, rename, rmdir, stat, unlink } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import type { Readable } from "node:stream";
import type { FilesystemTargetConfig } from "../config/schema.ts";
import { abortedError, code, LifeboatError, messageOf, NotFoundError } from "../errors.ts";
import { BatchedFileWriter } from "./file-writer.ts";
import type { GetOptions, PutOptions, StoredObject, Target } from "./target.ts";

/** Temp files written by put: ".<name>.tmp-<hex>". list skips them and keys may not look like them. */
const TEMP_NAME = /^\..+\.tmp-[0-9a-f]{12}$/;

/**
 * Checks that a key is a plain relative "/"-separated path, so no backend can be made to write outside its root
 * (filesystem) or to a key another backend could not store. Throws LifeboatError (code STORAGE) naming the target.
 */
export function checkKey(target: string, key: string): void {
  const bad = (why: string): never => {
    throw new LifeboatError(code.storage, `target "${target}": invalid key ${JSON.stringify(key)} (${why})`, {
      hint: 'keys are relative paths like "job/snapshots/<id>/manifest.json"; this is a bug in the caller',
    });
  };
  if (key === "") bad("empty");
  if (key.startsWith("/")) bad("absolute");
  if (key.includes("\\") || key.includes("\0")) bad("backslash or NUL");
  const segments = key.split("/");
  for (const s of segments) {
    if (s === "") bad("empty segment");
    if (s === "." || s === "..") bad(`"${s}" segment`);
  }
  if (TEMP_NAME.test(segments[segments.length - 1] ?? "")) bad("looks like a temp file");
}

/** Error codes that mean "the path does not exist" (ENOTDIR: a key segment is a file, so the key cannot exist). */
function isMissing(err: unknown): boolean {
  const c = (err as NodeJS.ErrnoException | undefined)?.code;
  return c === "ENOENT" || c === "ENOTDIR";
}

/**
 * A directory on a disk or mount that fails separately from the sources (a NAS, another disk).
 * put writes a temp file beside the final name, fsyncs it, renames it into place and fsyncs the directory,
 * so a crash leaves the old object or the new one, never a torn one.
 * The root directory is never created: if a NAS is not mounted, writing into the empty mount point would put
 * the "offsite" copy on the local disk, so a missing root is an error.
 */
export class FilesystemTarget implements Target {
  readonly kind = "filesystem";
  readonly name: string;
  /** Absolute root directory. */
  readonly root: string;

  constructor(name: string, config: Pick<FilesystemTargetConfig, "path">) {
    this.name = name;
    this.root = resolve(config.path);
  }

  /** Stores the stream atomically (temp file, fsync, rename, fsync directory). See Target.put. */
  async put(key: string, body: Readable, opts: PutOptions = {}): Promise<StoredObject> {
    const path = this.#path(key);
    const { signal } = opts;
    if (signal?.aborted) throw this.#aborted(key, signal);
    await this.#requireRoot();
    const dir = dirname(path);
    let created: string | undefined;
    try {
      created = await mkdir(dir, { recursive: true });
    } catch (err) {
      throw this.#fail(`create directory for "${key}"`, dir, err);
    }
    const temp = join(dir, `.${basename(path)}.tmp-${randomBytes(6).toString("hex")}`);
    let file: FileHandle | undefined;
    // Aborting destroys the body, which ends the read loop below even if the body is stalled.
    const onAbort = () => body.destroy(Object.assign(new Error("put aborted"), { name: "AbortError" }));
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      try {
        file = await open(temp, "wx");
      } catch (err) {
        throw this.#fail(`create "${key}"`, temp, err);
      }
      let size = 0;
      // A manual loop rather than pipeline: whatever the iterator throws is the body's own error (returned unchanged),
      // while write errors are wrapped here; pipeline would mix the two.
      try {
        const out = new BatchedFileWriter(file);
        for await (const chunk of body) {
          const buf = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
          try {
            await out.add(buf);
          } catch (err) {
            throw this.#fail(`write "${key}"`, temp, err);
          }
          size += buf.length;
        }
        try {
          await out.flush();
        } catch (err) {
          throw this.#fail(`write "${key}"`, temp, err);
        }
      } catch (err) {
        throw signal?.aborted ? this.#aborted(key, signal) : err;
      }
      if (signal?.aborted) throw this.#aborted(key, signal);
      try {
        await file.sync();
        const modified = (await file.stat()).mtime;
        await file.close();
        file = undefined;
        await rename(temp, path);
        // fsync every directory that gained an entry: the new file's, and the parents of directories mkdir created.
        await this.#syncDirs(created ? dirname(created) : dir, dir);
        return { key, size, modified };
      } catch (err) {
        throw this.#fail(`store "${key}"`, path, err);
      }
    } catch (err) {
      await file?.close().catch(() => {});
      await unlink(temp).catch(() => {});
      // A failed backup leaves no empty snapshot folder behind to puzzle whoever lists the target by hand.
      if (created) await removeEmpty(dir, created);
      throw err;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Opens the object (optionally a byte range). Rejects with NotFoundError for a missing key. */
  async get(key: string, opts: GetOptions = {}): Promise<Readable> {
    const path = this.#path(key);
    let file: FileHandle;
    try {
      file = await open(path, "r");
      if (!(await file.stat()).isFile()) {
        await file.close();
        throw Object.assign(new Error("not a file"), { code: "ENOENT" });
      }
    } catch (err) {
      if (isMissing(err)) {
        await this.#requireRoot();
        throw new NotFoundError(`target "${this.name}": object "${key}" not found`, { cause: err });
      }
      throw this.#fail(`read "${key}"`, path, err);
    }
    const { range, signal } = opts;
    return file.createReadStream({ start: range?.start, end: range?.end, signal });
  }

  /** Lists objects whose keys start with prefix, sorted by key; temp files of puts in progress are skipped. */
  async *list(prefix: string): AsyncIterable<StoredObject> {
    await this.#requireRoot();
    // Walk only the deepest directory the prefix names in full; keys are then filtered by the whole prefix.
    const base = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "";
    if (base !== "") checkKey(this.name, base);
    const found: StoredObject[] = [];
    await this.#walk(base === "" ? this.root : join(this.root, ...base.split("/")), prefix, found);
    // Plain code-unit order, like S3's (byte order for ASCII keys); localeCompare would differ.
    found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    yield* found;
  }

  /** Size and modification time of one object, or undefined if missing. */
  async head(key: string): Promise<StoredObject | undefined> {
    const path = this.#path(key);
    try {
      const s = await stat(path);
      return s.isFile() ? { key, size: s.size, modified: s.mtime } : undefined;
    } catch (err) {
      if (!isMissing(err)) throw this.#fail(`stat "${key}"`, path, err);
      await this.#requireRoot();
      return undefined;
    }
  }

  /** Deletes the object; a missing key is fine. Empty directories are left (harmless, and racing puts may need them). */
  async remove(key: string): Promise<void> {
    const path = this.#path(key);
    try {
      await unlink(path);
    } catch (err) {
      if (!isMissing(err)) throw this.#fail(`remove "${key}"`, path, err);
    }
    // The folder a pruned snapshot leaves empty goes too: empty folders would pile up and slow every listing. Only
    // the object's own folder: its parents may be about to receive a new snapshot's folder.
    if (dirname(path) !== this.root) await removeEmpty(dirname(path), dirname(path));
  }

  #path(key: string): string {
    checkKey(this.name, key);
    const path = join(this.root, ...key.split("/"));
    // Belt and braces after checkKey: the path must stay under the root.
    const rel = relative(this.root, path);
    if (rel === "" || rel.startsWith("..") || isAbsolute(rel))
      throw new LifeboatError(code.storage, `target "${this.name}": key "${key}" escapes the root`);
    return path;
  }

  async #walk(dir: string, prefix: string, out: StoredObject[]): Promise<void> {
    let entries: import("node:fs").Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isMissing(err)) return;
      throw this.#fail(`list "${prefix}"`, dir, err);
    }
    for (const e of entries) {
      const full = join(dir, e.name);
      const key = relative(this.root, full).split(sep).join("/");
      if (e.isDirectory()) {
        // Descend only where keys can still match the prefix.
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await this.#walk(full, prefix, out);
      } else if (e.isFile() && !TEMP_NAME.test(e.name) && key.startsWith(prefix)) {
        try {
          const s = await stat(full);
          out.push({ key, size: s.size, modified: s.mtime });
        } catch (err) {
          if (!isMissing(err)) throw this.#fail(`list "${prefix}"`, full, err); // removed meanwhile: skip
        }
      }
    }
  }

  async #syncDirs(from: string, to: string): Promise<void> {
    const dirs = [to];
    for (let d = to; d !== from && d.startsWith(from); ) {
      d = dirname(d);
      dirs.push(d);
    }
    for (const d of dirs) {
      const handle = await open(d, "r");
      try {
        await handle.sync();
      } catch (err) {
        // Some filesystems (certain network mounts) cannot fsync a directory; the rename is still done.
        const c = (err as NodeJS.ErrnoException).code;
        if (c !== "EINVAL" && c !== "ENOTSUP" && c !== "EISDIR") throw err;
      } finally {
        await handle.close();
      }
    }
  }

  async #requireRoot(): Promise<void> {
    try {
      if ((await stat(this.root)).isDirectory()) return;
      throw new LifeboatError(code.storage, `target "${this.name}": ${this.root} is not a directory`, {
        hint: "point the target's path at a directory",
      });
    } catch (err) {
      if (err instanceof LifeboatError) throw err;
      if (isMissing(err)) {
        throw new LifeboatError(code.storage, `target "${this.name}": directory ${this.root} does not exist`, {
          cause: err,
          hint: "create it, or mount the volume it lives on (lifeboat never creates the root, so an unmounted share is not filled by mistake)",
        });
      }
      throw this.#fail("open root", this.root, err);
    }
  }

  #aborted(key: string, signal: AbortSignal): LifeboatError {
    return abortedError(`target "${this.name}": put "${key}"`, signal);
  }

  /** Wraps a filesystem error with the target, the operation and the path, and a hint for the common ones. */
  #fail(operation: string, path: string, err: unknown): LifeboatError {
    if (err instanceof LifeboatError) return err;
    const c = (err as NodeJS.ErrnoException | undefined)?.code;
    const at = `target "${this.name}": ${operation}`;
    switch (c) {
      case "ENOSPC":
      case "EDQUOT":
        return new LifeboatError(code.storage, `${at}: ${c === "ENOSPC" ? "disk full" : "quota exceeded"} at ${path}`, {
          cause: err,
          hint: `free space on the device holding ${this.root} (or raise the quota), then run the backup again`,
        });
      case "EACCES":
      case "EPERM":
        return new LifeboatError(code.storage, `${at}: permission denied on ${path}`, {
          cause: err,
          hint: `let the user running lifeboat (uid ${process.getuid?.() ?? "?"}) read and write ${this.root}`,
        });
      case "EROFS":
        return new LifeboatError(code.storage, `${at}: ${path} is on a read-only filesystem`, {
          cause: err,
          hint: `remount ${this.root} read-write or choose another directory`,
        });
      default:
        return new LifeboatError(code.storage, `${at}: ${messageOf(err)}`, { cause: err });
    }
  }
}

/** Removes dir and its parents up to and including top, while they are empty (rmdir refuses any that is not). */
async function removeEmpty(dir: string, top: string): Promise<void> {
  for (let d = dir; d.startsWith(top); d = dirname(d)) {
    try {
      await rmdir(d);
    } catch {
      return;
    }
    if (d === top) return;
  }
}
