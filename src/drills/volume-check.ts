import { createHash } from "node:crypto";
import { constants, type Stats } from "node:fs";
import { chmod, lstat, open, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { abortedError, messageOf } from "../errors.ts";
import type { Inventory } from "../sources/source.ts";
import { type VolumeEntry, volumeInventorySchema } from "../sources/volume.ts";
import type { CheckResult } from "./kind.ts";

// Files hashed at once: each is a few thread-pool round trips, and overlapping them keeps 50k small files quick.
const PARALLEL = 16;
const READ = 256 * 1024;
// A record listing a million missing files helps nobody; the count says how many more there were.
const MAX_MISMATCHES = 1000;
// Mismatches named in the detail line; the first MAX_MISMATCHES are in `mismatches`.
const DETAIL_ITEMS = 5;
// Root reads whatever the modes say; anyone else must lend themselves read (and search) permission to check a
// restored file of mode 000 or a directory of mode 0644, both common in a volume backed up as root.
const MY_UID = process.getuid?.();

type Mismatch = NonNullable<CheckResult["mismatches"]>[number];

interface Tally {
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
}

/**
 * Checks a restored directory against a volume inventory: every entry present with its type, every file with its
 * recorded size and sha256, every symlink pointing where it did, permission bits (0777) as recorded, and no
 * extra entries. Nothing is followed: symlinks are read, never entered, so a restored link to /etc stays a link.
 * Not running as root, entries it owns whose modes keep their owner out (a file of mode 000, a directory of mode
 * 0644) get owner read (and search) permission while they are read, and their recorded modes back before it returns.
 * Never rejects for a difference: each is a mismatch (item, expected, actual) in one CheckResult of kind "files".
 * Rejects with code ABORTED on abort and with the fs error if the directory itself cannot be read.
 */
export async function checkVolumeTree(dir: string, inventory: Inventory, signal: AbortSignal): Promise<CheckResult> {
  const base = { kind: "files", name: "files equal the backup's inventory" };
  const parsed = volumeInventorySchema.safeParse(inventory);
  if (!parsed.success) {
    return {
      ...base,
      ok: false,
      detail: `the snapshot's inventory is not a volume file list: ${parsed.error.issues[0]?.message ?? "invalid"}`,
    };
  }
  const inv = parsed.data;
  const expected = new Map<string, VolumeEntry>(inv.files.map((f) => [f.path, f]));
  const mismatches: Mismatch[] = [];
  const actual: Tally = { files: 0, dirs: 0, symlinks: 0, bytes: 0 };
  const opened: Opened[] = [];
  try {
    const stack = [""];
    while (stack.length > 0) {
      const rel = stack.pop() as string;
      const names = (await readdir(rel ? join(dir, rel) : dir)).sort();
      await eachLimited(names, PARALLEL, async (name) => {
        if (signal.aborted) throw abortedError(`check ${dir}`, signal);
        const path = rel ? `${rel}/${name}` : name;
        const want = expected.get(path);
        expected.delete(path);
        const found = await inspect(join(dir, path), want, actual, opened);
        if (!want) return void mismatches.push({ item: path, expected: "absent", actual: found.summary });
        for (const m of compare(want, found)) mismatches.push({ item: path, ...m });
        if (found.type === "dir" && want.type === "dir") stack.push(path);
      });
    }
  } catch (err) {
    // The error that stopped the check is the one to report, not a failure to tidy up after it.
    await closeUp(opened).catch(() => {});
    throw err;
  }
  await closeUp(opened);
  for (const want of expected.values()) {
    mismatches.push({ item: want.path, expected: want.type === "file" ? { type: "file", size: want.size } : want.type, actual: "missing" });
  }
  mismatches.sort((a, b) => (a.item < b.item ? -1 : a.item > b.item ? 1 : 0));
  const ok = mismatches.length === 0;
  const result: CheckResult = {
    ...base,
    ok,
    expected: { files: inv.fileCount, dirs: inv.dirCount, symlinks: inv.symlinkCount, bytes: inv.totalBytes },
    actual,
  };
  if (!ok) {
    result.mismatches = mismatches.slice(0, MAX_MISMATCHES);
    const shown = mismatches.slice(0, DETAIL_ITEMS).map((m) => `"${m.item}" expected ${show(m.expected)}, got ${show(m.actual)}`);
    if (mismatches.length > DETAIL_ITEMS) shown.push(`and ${mismatches.length - DETAIL_ITEMS} more`);
    const listed = mismatches.length > MAX_MISMATCHES ? ` (the first ${MAX_MISMATCHES} are listed)` : "";
    result.detail = `${mismatches.length} ${mismatches.length === 1 ? "entry differs" : "entries differ"}${listed}: ${shown.join("; ")}`;
  }
  return result;
}

interface Found {
  type: "file" | "dir" | "symlink" | "other" | "unreadable";
  summary: unknown;
  size?: number;
  sha256?: string;
  target?: string;
  mode?: number;
}

/** A directory given owner read and search permission for the check, with the mode to give back. */
interface Opened {
  abs: string;
  mode: number;
}

/**
 * Reads what is at a restored path without following it; hashes a file only when its size is right. A directory
 * its owner could not list or enter is opened up and added to `opened` (its mode is found as it was).
 */
async function inspect(abs: string, want: VolumeEntry | undefined, tally: Tally, opened: Opened[]): Promise<Found> {
  let st: Stats;
  try {
    st = await lstat(abs);
  } catch (err) {
    return { type: "unreadable", summary: `unreadable: ${messageOf(err)}` };
  }
  const mode = st.mode & 0o7777;
  if (st.isDirectory()) {
    tally.dirs++;
    if (lendable(st, 0o500)) {
      // Failing, the listing below fails and says why; nothing to undo then.
      await chmod(abs, mode | 0o500).then(
        () => opened.push({ abs, mode }),
        () => {},
      );
    }
    return { type: "dir", summary: "dir", mode };
  }
  if (st.isSymbolicLink()) {
    tally.symlinks++;
    const target = await readlink(abs).catch((err) => `unreadable: ${messageOf(err)}`);
    return { type: "symlink", summary: { type: "symlink", target }, target };
  }
  if (!st.isFile()) return { type: "other", summary: "special file" };
  tally.files++;
  tally.bytes += st.size;
  const found: Found = { type: "file", summary: { type: "file", size: st.size }, size: st.size, mode };
  // A wrong size is already a mismatch; reading the file would only spend time.
  if (want?.type === "file" && want.size === st.size) {
    const lend =
      lendable(st, 0o400) &&
      (await chmod(abs, mode | 0o400).then(
        () => true,
        () => false,
      ));
    try {
      found.sha256 = await hashFile(abs, st.size).catch((err) => `unreadable: ${messageOf(err)}`);
    } finally {
      if (lend) await chmod(abs, mode);
    }
  }
  return found;
}

/** Whether st lacks owner permission `bits` that this (non-root) process may lend itself as st's owner. */
function lendable(st: Stats, bits: number): boolean {
  return MY_UID !== undefined && MY_UID !== 0 && st.uid === MY_UID && (st.mode & bits) !== bits;
}

/** Gives opened-up directories their modes back, deepest first (each was opened after its parent). */
async function closeUp(opened: readonly Opened[]): Promise<void> {
  let failure: unknown;
  for (let i = opened.length - 1; i >= 0; i--) {
    const o = opened[i] as Opened;
    await chmod(o.abs, o.mode).catch((err: unknown) => {
      failure ??= err;
    });
  }
  if (failure !== undefined) throw failure;
}

/** The differences between a recorded entry and what was found at its path. */
function compare(want: VolumeEntry, found: Found): Omit<Mismatch, "item">[] {
  if (found.type !== want.type) return [{ expected: want.type, actual: found.summary }];
  const out: Omit<Mismatch, "item">[] = [];
  if (want.type === "symlink") {
    if (found.target !== want.target) out.push({ expected: { target: want.target }, actual: { target: found.target } });
    return out;
  }
  if (want.type === "file") {
    if (found.size !== want.size) out.push({ expected: { size: want.size }, actual: { size: found.size } });
    else if (want.sha256 && found.sha256 !== want.sha256) out.push({ expected: { sha256: want.sha256 }, actual: { sha256: found.sha256 } });
  }
  // Only the permission bits: setuid, setgid and sticky are legitimately dropped by a restore that is not root.
  if (found.mode !== undefined && (found.mode & 0o777) !== (want.mode & 0o777)) {
    out.push({ expected: { mode: octal(want.mode & 0o777) }, actual: { mode: octal(found.mode & 0o777) } });
  }
  return out;
}

async function hashFile(abs: string, size: number): Promise<string> {
  const fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const hash = createHash("sha256");
    const buf = Buffer.allocUnsafe(Math.max(1, Math.min(READ, size)));
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
    return hash.digest("hex");
  } finally {
    await fh.close();
  }
}

/** Runs fn over items with at most `limit` at once; rejects with the first error after the running ones settle. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (next < items.length && failure === undefined) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure;
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, "0")}`;
}

function show(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}
