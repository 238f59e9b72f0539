import { randomBytes } from "node:crypto";
import { createWriteStream, type Stats } from "node:fs";
import { open, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { code, LifeboatError, messageOf } from "../errors.ts";
import type { Destination } from "./kind.ts";

/** A destination's stat for inspect(): undefined when nothing is there, any other failure an error naming the path. */
export async function statToInspect(path: string): Promise<Stats | undefined> {
  return stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw new LifeboatError(code.failed, `inspect ${path}: ${messageOf(err)}`, { cause: err });
  });
}

/**
 * A single file as a restore destination (a SQLite database). The restored bytes go to a temporary file beside the
 * destination, are flushed to disk, then renamed over it: a failed restore leaves the old file as it was.
 * `companions` are files that belong to the old one and would corrupt the new one if left (SQLite's -wal, -shm).
 */
export function fileDestination(to: string, companions: readonly string[] = []): Destination {
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
        await pipeline(await input.stream(), createWriteStream(tmp, { mode: 0o600, flags: "wx" }));
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
