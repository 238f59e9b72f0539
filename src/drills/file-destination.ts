import { randomBytes } from "node:crypto";
import { createWriteStream, type Stats } from "node:fs";
import { chmod, chown, mkdir, open, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { code, LifeboatError, messageOf } from "../errors.ts";
import type { Destination } from "./kind.ts";

/** A destination's stat for inspect(): undefined when nothing is there, any other failure an error naming the path. */
export async function statToInspect(path: string): Promise<Stats | undefined> {
  return stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    if (err.code === "ENOTDIR") {
      throw new LifeboatError(code.usage, `${path}: a folder on the way is a file`, {
        cause: err,
        hint: "give a path whose every folder is a directory (or does not exist yet)",
      });
    }
    throw new LifeboatError(code.failed, `inspect ${path}: ${messageOf(err)}`, { cause: err });
  });
}

/**
 * A single file as a restore destination (a SQLite database). The restored bytes go to a temporary file beside the
 * destination, are flushed to disk, then renamed over it: a failed restore leaves the old file as it was.
 * `companions` are files that belong to the old one and would corrupt the new one if left (SQLite's -wal, -shm);
 * `check` vets the restored file before it replaces anything (throws to refuse it).
 */
export function fileDestination(to: string, companions: readonly string[] = [], check?: (file: string) => Promise<void>): Destination {
  const path = resolve(to);
  return {
    confirmName: path,
    display: path,
    async inspect() {
      const st = await statToInspect(path);
      if (!st) return { empty: true, lines: [`file ${path} does not exist; it will be created`] };
      if (!st.isFile())
        throw new LifeboatError(code.usage, `${path} exists and is not a file`, { hint: "give the path of the database file to restore" });
      if (st.size === 0) return { empty: true, lines: [`file ${path} exists and is empty`] };
      return {
        empty: false,
        lines: [`file ${path} HOLDS DATA: ${st.size} bytes, modified ${st.mtime.toISOString()}; it will be replaced`],
      };
    },
    async restore(input) {
      const tmp = join(dirname(path), `.${basename(path)}.lifeboat-${randomBytes(4).toString("hex")}`);
      try {
        const old = await statToInspect(path);
        await mkdir(dirname(path), { recursive: true });
        await pipeline(await input.stream(), createWriteStream(tmp, { mode: 0o600, flags: "wx" }));
        await check?.(tmp);
        // The replaced file's owner and mode, so the application that opened it can still open it.
        if (old) await takeOwnerAndMode(tmp, old, path);
        const fh = await open(tmp, "r");
        await fh.sync();
        await fh.close();
        for (const c of companions) await rm(`${path}${c}`, { force: true });
        await rename(tmp, path);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err instanceof LifeboatError
          ? err
          : new LifeboatError(code.failed, `restore into ${path}: ${messageOf(err)}`, { cause: err });
      }
    },
  };
}

async function takeOwnerAndMode(file: string, old: Stats, path: string): Promise<void> {
  await chmod(file, old.mode & 0o7777);
  const st = await stat(file);
  if (st.uid === old.uid && st.gid === old.gid) return;
  await chown(file, old.uid, old.gid).catch((err: NodeJS.ErrnoException) => {
    throw new LifeboatError(
      code.failed,
      `restore into ${path}: cannot give the restored file the owner of the one it replaces (uid ${old.uid}, gid ${old.gid}): ${err.code ?? messageOf(err)}`,
      {
        cause: err,
        hint: `run the restore as that user or as root, or restore to a new path and move it; ${path} was left as it was`,
      },
    );
  });
}
