import { readFileSync, statSync } from "node:fs";
import { code, LifeboatError, messageOf, RefusedError } from "../errors.ts";

/** Where the identity file comes from: the flag, else $LIFEBOAT_IDENTITY_FILE. */
export function identityPath(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  const p = flag ?? env.LIFEBOAT_IDENTITY_FILE;
  if (!p) {
    throw new LifeboatError(code.usage, "no age identity given: decrypting a snapshot needs the secret key", {
      hint: "pass --identity FILE or set LIFEBOAT_IDENTITY_FILE (the file written by `lifeboat keygen --out`)",
    });
  }
  return p;
}

/**
 * Reads age identities (AGE-SECRET-KEY-…) from a file. Refuses a file that group or others can read: a secret key
 * anyone on the host can copy is no longer a secret, and age-keygen writes 0600 for that reason.
 */
export function loadIdentities(file: string): string[] {
  let text: string;
  try {
    const st = statSync(file);
    // Before the mode check: /dev/null or a folder is the wrong path, not a file to chmod.
    if (!st.isFile()) {
      throw new LifeboatError(code.usage, `identity file ${file} is not a regular file`, {
        hint: "pass the file written by `lifeboat keygen --out` (or age-keygen) with --identity or LIFEBOAT_IDENTITY_FILE",
      });
    }
    if ((st.mode & 0o077) !== 0) {
      throw new RefusedError(`identity file ${file} is readable by group or others (mode ${(st.mode & 0o777).toString(8)})`, {
        hint: `run: chmod 600 ${file}`,
      });
    }
    text = readFileSync(file, "utf8");
  } catch (err) {
    if (err instanceof LifeboatError) throw err;
    throw new LifeboatError(code.usage, `cannot read identity file ${file}: ${messageOf(err)}`, {
      cause: err,
      hint: "check the path given with --identity or LIFEBOAT_IDENTITY_FILE",
    });
  }
  const ids = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  if (ids.length === 0 || ids.some((l) => !/^AGE-SECRET-KEY-/.test(l))) {
    throw new LifeboatError(code.crypto, `identity file ${file} holds no age identity`, {
      hint: "it should contain a line starting AGE-SECRET-KEY- (as written by `lifeboat keygen` or `age-keygen`)",
    });
  }
  return ids;
}
