import { opendir } from "node:fs/promises";
import { resolve } from "node:path";
import { code, LifeboatError } from "../errors.ts";
import { statToInspect } from "./file-destination.ts";
import type { Destination } from "./kind.ts";
import { restoreVolume } from "./volume.ts";

// Enough entries to tell a person what is there; a full walk of a large tree is not needed to say "it holds data".
const SAMPLE = 10;

/**
 * A directory as a restore destination (volume snapshots). A missing or empty directory is restored into directly;
 * one holding anything needs a confirmed overwrite: files in the snapshot replace theirs, other files stay.
 */
async function holdsEntries(dir: string): Promise<boolean> {
  try {
    for await (const _ of await opendir(dir)) return true;
  } catch {
    // Missing or unreadable: nothing lifeboat wrote is there to speak of.
  }
  return false;
}

export function directoryDestination(to: string): Destination {
  const dir = resolve(to);
  return {
    confirmName: dir,
    display: dir,
    async inspect() {
      const st = await statToInspect(dir);
      if (!st) return { empty: true, lines: [`directory ${dir} does not exist; it will be created`] };
      if (!st.isDirectory())
        throw new LifeboatError(code.usage, `${dir} exists and is not a directory`, { hint: "give a directory to restore into" });
      const names: string[] = [];
      let more = false;
      for await (const e of await opendir(dir)) {
        if (names.length === SAMPLE) {
          more = true;
          break;
        }
        names.push(e.name);
      }
      if (names.length === 0) return { empty: true, lines: [`directory ${dir} exists and is empty`] };
      return {
        empty: false,
        lines: [
          `directory ${dir} HOLDS DATA: ${names.join(", ")}${more ? ", …" : ""}`,
          "  files in the snapshot will replace files of the same name; other files stay",
        ],
      };
    },
    async restore(input, opts, signal) {
      try {
        await restoreVolume({ input: await input.stream(), dir, signal });
      } catch (err) {
        if (signal.aborted || !(err instanceof LifeboatError)) throw err;
        // Entries are written as they arrive: what came before the failure is on disk (docs/CLI.md, restore). Said
        // only where something was written, and never "remove it" of a directory that held the user's own files.
        if (!(await holdsEntries(dir))) throw err;
        const note = opts.overwrite
          ? `entries of the snapshot written before the failure have replaced files of the same name in ${dir}`
          : `${dir} now holds a partial restore: remove it before restoring again`;
        throw new LifeboatError(err.code, `${err.message} (${note})`, { cause: err.cause, hint: err.hint });
      }
    },
  };
}
