import { statSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { code, LifeboatError, messageOf } from "../errors.ts";

/**
 * Checks that the folder a user-named output file goes into exists, so a typo is a usage error (exit 2) naming the
 * folder, and can be caught before the work that produces the file.
 */
export function checkOutputFolder(file: string, flag: string): void {
  const dir = dirname(resolve(file));
  const st = statSync(dir, { throwIfNoEntry: false });
  if (!st) {
    throw new LifeboatError(code.usage, `${flag} ${file}: the folder ${dir} does not exist`, {
      hint: `create it first (mkdir -p ${dir}), or pass another ${flag} path`,
    });
  }
  if (!st.isDirectory()) {
    throw new LifeboatError(code.usage, `${flag} ${file}: ${dir} is not a folder`, { hint: `pass another ${flag} path` });
  }
}

/**
 * Writes a file the user named on the command line; a failure names the file and what to do instead of a bare errno.
 * `exclusive` never replaces anything (a symlink, even a dangling one, counts as existing): `onExists` says why.
 */
export function writeOutputFile(
  file: string,
  data: string,
  flag: string,
  opts: { mode?: number; exclusive?: boolean; onExists?: () => Error } = {},
): void {
  checkOutputFolder(file, flag);
  try {
    writeFileSync(file, data, { mode: opts.mode, flag: opts.exclusive ? "wx" : "w" });
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code;
    if (errno === "EEXIST" && opts.onExists) throw opts.onExists();
    if (errno === "EISDIR") throw new LifeboatError(code.usage, `${flag} ${file} is a directory`, { hint: `pass a file path to ${flag}` });
    if (errno === "ENOENT") checkOutputFolder(file, flag); // the folder went away since the check
    const denied = errno === "EACCES" || errno === "EPERM" || errno === "EROFS";
    throw new LifeboatError(code.failed, `cannot write ${file}: ${messageOf(err)}`, {
      cause: err,
      hint: denied ? `pass a ${flag} path in a folder you may write to` : undefined,
    });
  }
}
