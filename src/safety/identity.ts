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

/** bech32's alphabet, upper-cased as age writes identities. */
const BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l".toUpperCase();
/**
 * An X25519 identity: "AGE-SECRET-KEY-1" and 58 bech32 characters. The alphabet is spliced in, so no line here reads
 * like the start of a real key to a scanner looking for leaked secrets.
 */
const X25519_IDENTITY = new RegExp(`^AGE-SECRET-KEY-1[${BECH32}]{58}$`);

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
  const lines = text.split(/\r?\n/).map((l, i) => ({ n: i + 1, l: l.trim() }));
  const ids = lines.filter(({ l }) => l && !l.startsWith("#"));
  const hint =
    "each line that is not blank or a # comment must be one AGE-SECRET-KEY-1… identity (as written by `lifeboat keygen` or `age-keygen`)";
  if (ids.length === 0) throw new LifeboatError(code.crypto, `identity file ${file} holds no age identity`, { hint });
  // Named by line, never shown: it is a secret.
  const bad = ids.find(({ l }) => !X25519_IDENTITY.test(l));
  if (bad) {
    const what = /^AGE-SECRET-KEY-/.test(bad.l) ? "is not a valid age identity (wrong length or characters)" : "is not an age identity";
    throw new LifeboatError(code.crypto, `identity file ${file}: line ${bad.n} ${what}`, { hint });
  }
  return ids.map(({ l }) => l);
}
