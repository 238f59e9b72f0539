import { realpath, stat } from "node:fs/promises";
import { isAbsolute } from "node:path";
import { Readable } from "node:stream";
import type { VolumeSourceConfig } from "../config/schema.ts";
import { abortedError, ConfigError, code, LifeboatError, messageOf, wrap } from "../errors.ts";
import type { Dump, DumpInfo, Inventory, Source } from "./source.ts";
import { compileExcludes, type ExcludeTest } from "./volume-exclude.ts";
import { VOLUME_FORMAT } from "./volume-tar.ts";
import { VolumeWalk } from "./volume-walk.ts";

export { compileExcludes, type ExcludeTest } from "./volume-exclude.ts";
export { type VolumeEntry, type VolumeInventory, volumeEntrySchema, volumeInventorySchema } from "./volume-inventory.ts";
export { VOLUME_FORMAT } from "./volume-tar.ts";

/** The artifact name of a volume snapshot (stored as volume.tar.zst.age). */
export const VOLUME_ARTIFACT = "volume.tar";

// The stream buffers about this much ahead of its consumer; the walk waits beyond it.
const HIGH_WATER = 1024 * 1024;

/**
 * A directory tree, streamed as one pax tar (regular files, directories and symlinks with their modes, owners and
 * mtimes) in a single read: each file is hashed as its bytes go into the tar, so the inventory (file list with
 * sizes and sha256) is exact for the archive. Memory stays flat whatever the size of the files; the inventory
 * grows with the number of entries (about 1.5–2 KB each, docs/CONFIG.md).
 */
export class VolumeSource implements Source {
  readonly kind = "volume";
  readonly #path: string;
  readonly #exclude: ExcludeTest;
  readonly #onUnreadable: "fail" | "warn";

  /** Checks the path (must be absolute) and compiles the exclude patterns; throws ConfigError for either. Reads nothing yet. */
  constructor(config: VolumeSourceConfig) {
    if (!isAbsolute(config.path)) {
      throw new ConfigError(`volume source: path "${config.path}" is not absolute`, {
        hint: "give the directory's absolute path, e.g. /srv/app/uploads",
      });
    }
    this.#path = config.path;
    this.#exclude = compileExcludes(config.exclude);
    this.#onUnreadable = config.onUnreadable;
  }

  /**
   * Starts the walk. Rejects (code SOURCE) if the path is missing or not a directory, (code ABORTED) if the signal
   * is already aborted. The stream ends after the end-of-archive marker; it is destroyed with done's error if an
   * entry is unreadable (onUnreadable "fail"), the root cannot be listed, or the signal aborts (code ABORTED).
   * Vanished, changed and skipped entries are done's warnings. Inventory and done settle together.
   */
  async dump(signal: AbortSignal): Promise<Dump> {
    const path = this.#path;
    const where = `volume ${path}`;
    const aborted = () => abortedError(`${where}: dump`, signal);
    if (signal.aborted) throw aborted();
    let root: string;
    try {
      // The configured path may itself be a symlink (e.g. /srv/current): the walk starts at what it points to.
      root = await realpath(path);
      if (!(await stat(root)).isDirectory()) throw new Error("not a directory");
    } catch (err) {
      throw new LifeboatError(code.source, `${where}: cannot open the directory: ${messageOf(err)}`, {
        cause: err,
        hint: "check the path, and that the volume is mounted and readable by lifeboat",
      });
    }

    const walk = new VolumeWalk({ root, exclude: this.#exclude, onUnreadable: this.#onUnreadable, signal });
    let settled = false;
    let resolveDone!: (info: DumpInfo) => void;
    let rejectDone!: (err: LifeboatError) => void;
    const done = new Promise<DumpInfo>((resolve, reject) => {
      resolveDone = resolve;
      rejectDone = reject;
    });
    done.catch(() => {});
    const fail = (err: LifeboatError) => {
      if (settled) return;
      settled = true;
      rejectDone(err);
    };

    async function* run(): AsyncGenerator<Buffer> {
      let finished = false;
      try {
        yield* walk.tar();
        finished = true;
      } catch (err) {
        const e = signal.aborted ? aborted() : wrap(where, err, code.source);
        fail(e);
        throw e;
      } finally {
        if (!finished)
          fail(
            signal.aborted ? aborted() : new LifeboatError(code.source, `${where}: the dump stream was closed before the walk finished`),
          );
      }
      if (settled) return;
      settled = true;
      const inv = walk.inventory;
      resolveDone({
        tool: "lifeboat volume walker (pax headers by node-tar)",
        warnings: walk.warnings(),
        details: { path, fileCount: inv.fileCount, dirCount: inv.dirCount, symlinkCount: inv.symlinkCount, totalBytes: inv.totalBytes },
      });
    }

    const stream = Readable.from(run(), { objectMode: false, highWaterMark: HIGH_WATER });
    // The error is also done's rejection: a consumer that only awaits done must not crash on the stream's error.
    stream.on("error", () => {});
    const onAbort = () => {
      const err = aborted();
      fail(err);
      stream.destroy(err);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    done.finally(() => signal.removeEventListener("abort", onAbort)).catch(() => {});

    const inventory: Promise<Inventory> = done.then(() => walk.inventory.build());
    inventory.catch(() => {});
    return { artifact: VOLUME_ARTIFACT, format: VOLUME_FORMAT, stream, inventory, done };
  }
}
