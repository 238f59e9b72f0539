import { chmod, lstat, mkdir, readdir, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Readable } from "node:stream";
import type { Drill } from "../config/schema.ts";
import { abortedError, code, LifeboatError, messageOf, wrap } from "../errors.ts";
import { type ExtractResult, extractTar } from "../safety/extract.ts";
import type { Inventory } from "../sources/source.ts";
import type { ArtifactInput, CheckResult, DrillKind, Scratch, ScratchContext } from "./kind.ts";
import { createScratchDir, isInside, realPath } from "./scratch-dir.ts";
import { checkVolumeTree } from "./volume-check.ts";

export { checkVolumeTree } from "./volume-check.ts";

/** Options of restoreVolume. */
export interface RestoreVolumeOptions {
  /** The volume's tar (the artifact's plaintext). */
  input: Readable;
  /** Where to restore; created if missing. */
  dir: string;
  signal?: AbortSignal;
}

/**
 * Restores a volume snapshot's tar into a directory with the safe extractor: nothing is written outside `dir`, no
 * entry goes through a symlink, device files and escaping paths are refused (RefusedError). Symlinks that point
 * outside are restored as the links they were in the volume (they are created last and never followed). It does not
 * check whether `dir` holds data: the restore command's guard does. Rejects with the input's error (code kept),
 * IntegrityError for a damaged archive, code ABORTED on abort.
 */
export async function restoreVolume(opts: RestoreVolumeOptions): Promise<ExtractResult> {
  try {
    await makeRestoreDir(opts.dir);
  } catch (err) {
    // Nobody else reads the input: left open, its decompressor would keep the process alive for good.
    opts.input.destroy();
    throw err;
  }
  return extractTar({ input: opts.input, dir: opts.dir, signal: opts.signal, outsideSymlinks: "keep" });
}

/** The scratch directory of one volume drill run. */
class VolumeScratch implements Scratch {
  readonly location: string;

  constructor(dir: string) {
    this.location = dir;
  }

  /** Extracts the artifact into the scratch directory. Rejects with the input's or the extractor's error, or ABORTED. */
  async restore(input: ArtifactInput, signal: AbortSignal): Promise<void> {
    const where = `restore into ${this.location}`;
    if (signal.aborted) throw abortedError(where, signal);
    try {
      await restoreVolume({ input: await input.stream(), dir: this.location, signal });
    } catch (err) {
      if (signal.aborted) throw abortedError(where, signal);
      throw wrap(where, err);
    }
  }

  /**
   * Compares the restored tree with the inventory (unless checks.files is "off", which runs no check): every file
   * with its size and sha256, symlink targets, permission bits, nothing extra. A difference is a failing
   * CheckResult, never a rejection; rejects with ABORTED on abort.
   */
  async check(inventory: Inventory, drill: Drill, signal: AbortSignal): Promise<CheckResult[]> {
    if (drill.checks.files === "off") return [];
    try {
      return [await checkVolumeTree(this.location, inventory, signal)];
    } catch (err) {
      if (err instanceof LifeboatError && err.code === code.aborted) throw err;
      throw wrap(`check ${this.location}`, err);
    }
  }

  /** Removes the scratch directory; idempotent, also after a failed restore or one that left read-only directories. */
  async drop(): Promise<void> {
    // Only ever a directory this kind named: a bug elsewhere must not turn drop into rm -rf of something else.
    if (!basename(this.location).startsWith("lifeboat_drill_")) throw new Error(`refusing to remove ${this.location}`);
    try {
      await rm(this.location, { recursive: true, force: true });
    } catch (err) {
      const errno = (err as { code?: string }).code;
      if (errno !== "EACCES" && errno !== "EPERM") throw err;
      // Not root, and a restored directory is read-only (mode 0555): make directories writable, then remove.
      await makeWritable(this.location);
      await rm(this.location, { recursive: true, force: true });
    }
  }
}

async function makeWritable(dir: string): Promise<void> {
  const st = await lstat(dir).catch(() => undefined);
  if (!st?.isDirectory()) return;
  await chmod(dir, 0o700).catch(() => {});
  for (const name of await readdir(dir).catch(() => [])) await makeWritable(join(dir, name));
}

/** A path resolved through symlinks as far as it exists (so a symlinked directory cannot hide where it points). */
/**
 * Drills of volume jobs: the snapshot's tar is extracted into a fresh directory
 * `<scratch.directory>/lifeboat_drill_<job>_<runId>` (mode 0700: it holds restored data) and compared with the
 * inventory there. createScratch rejects with ConfigError if scratch.directory is unset and with RefusedError if
 * the new directory would lie inside the volume or hold it.
 */
export const volumeDrillKind: DrillKind = {
  kind: "volume",
  async createScratch(ctx: ScratchContext): Promise<Scratch> {
    const dir = await createScratchDir(ctx, {
      kind: "volume",
      placeHint: "outside the volume, with room for a full copy",
      async overlap(dir) {
        const source = await realPath((ctx.job.source as { path: string }).path);
        return isInside(dir, source) || isInside(source, dir)
          ? `scratch directory ${dir} and the volume ${source} would overlap`
          : undefined;
      },
      overlapHint:
        "point scratch.directory neither inside the volume nor at a directory holding it, so a drill never writes into the data it checks",
    });
    return new VolumeScratch(dir);
  },
};

/** Creates the directory a volume is restored into (and its parents), naming it and the fix when it cannot. */
async function makeRestoreDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new LifeboatError(code.failed, `restore into ${dir}: cannot create the directory (${e.code ?? messageOf(err)})`, {
      cause: err,
      hint: "restore into a directory on a writable file system whose parent lifeboat may write, or create it first",
    });
  }
}
