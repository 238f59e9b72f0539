import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  appendFileSync,
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import type { VolumeSourceConfig } from "../../src/config/schema.ts";
import { restoreVolume } from "../../src/drills/volume.ts";
import { code } from "../../src/errors.ts";
import type { Dump } from "../../src/sources/source.ts";
import { compileExcludes, type VolumeInventory, VolumeSource } from "../../src/sources/volume.ts";
import { excludePatternFor, excludePatternProblem } from "../../src/sources/volume-exclude.ts";
import { describeSourceContract, drain } from "../contracts/source.ts";

const temps: string[] = [];
function temp(prefix = "lifeboat-volume-"): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

function source(path: string, extra: Partial<VolumeSourceConfig> = {}): VolumeSource {
  return new VolumeSource({ type: "volume", path, boundary: "host", exclude: [], onUnreadable: "fail", ...extra });
}

async function collect(dump: Dump): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of dump.stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const T1 = new Date("2021-03-04T05:06:07Z");
const T2 = new Date("2019-12-31T23:59:59Z");

/** A tree with nested dirs, inside and outside symlinks, odd modes, fixed mtimes, empty files and things to exclude. */
function makeTree(): string {
  const root = temp();
  mkdirSync(join(root, "docs/deep/deeper"), { recursive: true });
  mkdirSync(join(root, "empty-dir"));
  mkdirSync(join(root, "cache/sub"), { recursive: true });
  mkdirSync(join(root, "locked"));
  writeFileSync(join(root, "docs/a.txt"), "alpha\n");
  writeFileSync(join(root, "docs/deep/deeper/b.bin"), Buffer.alloc(70_000, 7));
  writeFileSync(join(root, "docs/empty.txt"), "");
  writeFileSync(join(root, "docs/ünïcode name.txt"), "ü");
  writeFileSync(join(root, `${"long-".repeat(30)}name.txt`), "long");
  writeFileSync(join(root, "cache/sub/junk"), "junk");
  writeFileSync(join(root, "cache/.hidden"), "hidden");
  writeFileSync(join(root, "notes.tmp"), "tmp");
  writeFileSync(join(root, "docs/deep/old.tmp"), "tmp");
  writeFileSync(join(root, "script.sh"), "#!/bin/sh\n");
  writeFileSync(join(root, "locked/secret"), "s");
  chmodSync(join(root, "script.sh"), 0o750);
  chmodSync(join(root, "docs/a.txt"), 0o600);
  chmodSync(join(root, "locked/secret"), 0o400);
  chmodSync(join(root, "locked"), 0o555);
  symlinkSync("../a.txt", join(root, "docs/deep/to-a"));
  symlinkSync("/etc/passwd", join(root, "outside-abs"));
  symlinkSync("../../../../../../../../etc", join(root, "outside-rel"));
  symlinkSync("does-not-exist", join(root, "dangling"));
  utimesSync(join(root, "docs/a.txt"), T1, T1);
  utimesSync(join(root, "docs/deep/deeper/b.bin"), T2, T2);
  utimesSync(join(root, "docs/deep"), T2, T2);
  return root;
}

/** Every entry of a tree (not following links): type, mode, size, mtime (seconds), content hash or link target. */
function describeTree(root: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, p));
      const common = { mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000) };
      if (st.isSymbolicLink()) out[p] = { type: "symlink", target: readlinkSync(join(root, p)), mtime: common.mtime };
      else if (st.isDirectory()) {
        out[p] = { type: "dir", ...common };
        walk(p);
      } else out[p] = { type: "file", ...common, size: st.size, sha256: sha(readFileSync(join(root, p))) };
    }
  };
  walk("");
  return out;
}

describeSourceContract("volume", () => {
  const root = temp();
  for (let i = 0; i < 4; i++) writeFileSync(join(root, `f${i}.bin`), Buffer.alloc(2 * 1024 * 1024, i));
  return source(root);
});

/**
 * Backs up a 16 MiB big.bin and a next.txt, changing big.bin with `change` once the backup has started reading it,
 * and restores the stream into a new directory.
 */
async function backUpWhileChanging(change: (big: string) => void) {
  const root = temp();
  writeFileSync(join(root, "big.bin"), Buffer.alloc(16 * 1024 * 1024, 3));
  writeFileSync(join(root, "next.txt"), "after");
  const dump = await source(root).dump(new AbortController().signal);
  const it = dump.stream[Symbol.asyncIterator]();
  const first = await it.next();
  await new Promise((r) => setTimeout(r, 300));
  change(join(root, "big.bin"));
  const out = temp();
  await restoreVolume({ input: Readable.from(prepend(first.value as Buffer, rest(it))), dir: out });
  return { dump, out, info: await dump.done };
}

describe("VolumeSource", () => {
  it("round-trips a tree through the tar stream and extractTar: files, dirs, links as links, modes, mtimes", async () => {
    const root = makeTree();
    const dump = await source(root, { exclude: ["cache/**", "*.tmp"] }).dump(new AbortController().signal);
    expect(dump.artifact).toBe("volume.tar");
    expect(dump.format).toBe("tar-pax");
    const out = temp();
    await restoreVolume({ input: dump.stream, dir: out });
    const info = await dump.done;
    expect(info.warnings).toEqual([]);

    const want = describeTree(root);
    // Excluded: everything under cache/ (dot files too) and *.tmp at any depth; the cache directory itself stays.
    for (const k of Object.keys(want)) if (k.startsWith("cache/") || k.endsWith(".tmp")) delete want[k];
    expect(describeTree(out)).toEqual(want);
    expect(readlinkSync(join(out, "outside-abs"))).toBe("/etc/passwd");
    expect(lstatSync(join(out, "outside-rel")).isSymbolicLink()).toBe(true);
    expect(lstatSync(join(out, "docs/deep/deeper/b.bin")).mtime.toISOString()).toBe(T2.toISOString());
  });

  it("captures the inventory from the same read: sizes, sha256, link targets, modes, totals", async () => {
    const root = makeTree();
    const dump = await source(root, { exclude: ["cache/**", "*.tmp"] }).dump(new AbortController().signal);
    await collect(dump);
    const inv = (await dump.inventory) as VolumeInventory;
    expect(inv.kind).toBe("volume");
    expect(inv.counts).toBe("exact");
    const byPath = new Map(inv.files.map((f) => [f.path, f]));
    expect(byPath.get("docs/a.txt")).toEqual({ path: "docs/a.txt", type: "file", size: 6, sha256: sha("alpha\n"), mode: 0o600 });
    expect(byPath.get("docs/empty.txt")?.sha256).toBe(sha(""));
    expect(byPath.get("docs/deep/deeper/b.bin")?.sha256).toBe(sha(Buffer.alloc(70_000, 7)));
    expect(byPath.get("docs/deep/to-a")).toMatchObject({ type: "symlink", target: "../a.txt" });
    expect(byPath.get("outside-abs")).toMatchObject({ type: "symlink", target: "/etc/passwd" });
    expect(byPath.get("locked")).toMatchObject({ type: "dir", mode: 0o555 });
    expect(byPath.get("script.sh")?.mode).toBe(0o750);
    expect(byPath.has("cache")).toBe(true);
    expect([...byPath.keys()].filter((p) => p.startsWith("cache/") || p.endsWith(".tmp"))).toEqual([]);
    const files = inv.files.filter((f) => f.type === "file");
    expect(inv.fileCount).toBe(files.length);
    expect(inv.totalBytes).toBe(files.reduce((n, f) => n + f.size, 0));
    expect(inv.symlinkCount).toBe(4);
    const info = await dump.done;
    expect(info.details).toMatchObject({ path: root, fileCount: inv.fileCount, totalBytes: inv.totalBytes });
  });

  it("writes an archive the stock tar reads (the recovery runbook's path)", async () => {
    if (spawnSync("tar", ["--version"]).status !== 0) return;
    const root = makeTree();
    const dump = await source(root).dump(new AbortController().signal);
    const file = join(temp(), "volume.tar");
    writeFileSync(file, await collect(dump));
    const out = temp();
    execFileSync("tar", ["-xpf", file, "-C", out]);
    expect(describeTree(out)).toEqual(describeTree(root));
  });

  it("reports a file removed during the backup as a warning, not a crash", async () => {
    const root = temp();
    writeFileSync(join(root, "a-big.bin"), Buffer.alloc(8 * 1024 * 1024, 1));
    // More entries than the read-ahead holds, so the last one is not looked at before the pause below.
    for (let i = 0; i < 100; i++) writeFileSync(join(root, `m${String(i).padStart(3, "0")}`), `${i}`);
    writeFileSync(join(root, "z-gone.txt"), "soon gone");
    const dump = await source(root).dump(new AbortController().signal);
    const it = dump.stream[Symbol.asyncIterator]();
    const first = await it.next();
    // The walk now waits for the consumer, in the middle of a-big.bin.
    await new Promise((r) => setTimeout(r, 300));
    unlinkSync(join(root, "z-gone.txt"));
    const out = temp();
    await restoreVolume({ input: Readable.from(prepend(first.value as Buffer, rest(it))), dir: out });
    expect(readFileSync(join(out, "m099"), "utf8")).toBe("99");
    const info = await dump.done;
    expect(info.warnings).toEqual([expect.stringMatching(/"z-gone\.txt" vanished while the volume was read/)]);
    const inv = (await dump.inventory) as VolumeInventory;
    expect(inv.files.some((f) => f.path === "z-gone.txt")).toBe(false);
  });

  it("warns about a file that shrank mid-read, keeps the archive readable and records what was stored", async () => {
    const { dump, out, info } = await backUpWhileChanging((big) => truncateSync(big, 1024));
    expect(info.warnings).toEqual([expect.stringMatching(/"big\.bin" shrank from 16777216 to \d+ bytes while being read/)]);
    const inv = (await dump.inventory) as VolumeInventory;
    const big = inv.files.find((f) => f.path === "big.bin");
    expect(big).toMatchObject({ size: 16 * 1024 * 1024, changed: true });
    // The archive stays aligned: the entry after the damaged one restores intact, and the hash matches the copy.
    expect(readFileSync(join(out, "next.txt"), "utf8")).toBe("after");
    expect(sha(readFileSync(join(out, "big.bin")))).toBe(big?.sha256);
  });

  it("says a file that only grew mid-read was cut at its size when the backup reached it, not zero-filled", async () => {
    const { dump, out, info } = await backUpWhileChanging((big) => appendFileSync(big, Buffer.alloc(4096, 5)));
    expect(info.warnings).toEqual([
      '"big.bin" grew from 16777216 to 16781312 bytes while being read: its copy in this backup holds its first 16777216 bytes (its size when the backup reached it)',
    ]);
    const inv = (await dump.inventory) as VolumeInventory;
    expect(inv.files.find((f) => f.path === "big.bin")).toMatchObject({
      size: 16 * 1024 * 1024,
      changed: true,
      sha256: sha(Buffer.alloc(16 * 1024 * 1024, 3)),
    });
    expect(readFileSync(join(out, "next.txt"), "utf8")).toBe("after");
  });

  it("fails on an unreadable entry (a FIFO) naming it, or skips it with a warning under onUnreadable: warn", async () => {
    // Tests run as root, who can read any file: a FIFO is an entry that cannot be read as a file.
    const root = temp();
    writeFileSync(join(root, "ok.txt"), "ok");
    mkdirSync(join(root, "pipes"));
    execFileSync("mkfifo", [join(root, "pipes/fifo")]);
    const failing = await source(root).dump(new AbortController().signal);
    const streamed = drain(failing.stream);
    const err = await failing.done.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: code.source, message: expect.stringMatching(/cannot read "pipes\/fifo": it is a FIFO/) });
    expect((err as { hint?: string }).hint).toMatch(/onUnreadable: "warn"/);
    expect((await streamed).error).toBeDefined();
    await expect(failing.inventory).rejects.toBe(err);

    const warning = await source(root, { onUnreadable: "warn" }).dump(new AbortController().signal);
    await collect(warning);
    expect((await warning.done).warnings).toEqual([expect.stringMatching(/"pipes\/fifo" is unreadable and was skipped: it is a FIFO/)]);
    expect(((await warning.inventory) as VolumeInventory).files.map((f) => f.path)).toEqual(["ok.txt", "pipes"]);
  });

  it("refuses a symlink whose target is not valid UTF-8 rather than store it altered", async () => {
    const root = temp();
    writeFileSync(join(root, "ok.txt"), "ok");
    symlinkSync(Buffer.from("caf\xe9.txt", "latin1"), join(root, "badtarget"));
    const failing = await source(root).dump(new AbortController().signal);
    const streamed = drain(failing.stream);
    const err = await failing.done.catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: code.source,
      message: expect.stringMatching(/cannot read "badtarget": its target is not valid UTF-8/),
    });
    await streamed;
    const warning = await source(root, { onUnreadable: "warn" }).dump(new AbortController().signal);
    await collect(warning);
    expect((await warning.done).warnings).toEqual([
      expect.stringMatching(/"badtarget" is unreadable and was skipped: its target is not valid UTF-8/),
    ]);
  });

  it("keeps mtimes to the second as tar does, truncated: .9997 s stays in its second", async () => {
    const root = temp();
    writeFileSync(join(root, "late"), "x");
    execFileSync("touch", ["-d", "2020-01-01 00:00:00.9997 UTC", join(root, "late")]);
    const dump = await source(root).dump(new AbortController().signal);
    const out = temp();
    await restoreVolume({ input: dump.stream, dir: out });
    await dump.done;
    expect(lstatSync(join(out, "late")).mtime.toISOString()).toBe("2020-01-01T00:00:00.000Z");
  });

  it("applies excludes to names that are not valid UTF-8, and suggests a pattern that works", async () => {
    const root = temp();
    mkdirSync(join(root, "cache/deep"), { recursive: true });
    mkdirSync(join(root, "odd"));
    writeFileSync(join(root, "keep.txt"), "k");
    const raw = (rel: string, name: string) => Buffer.concat([Buffer.from(`${root}/${rel}`), Buffer.from([0xff]), Buffer.from(name)]);
    writeFileSync(raw("bad", "*[name"), "x");
    writeFileSync(raw("cache/deep/", "x"), "x");
    mkdirSync(raw("odd/", "dir"));
    writeFileSync(Buffer.concat([raw("odd/", "dir"), Buffer.from("/inside")]), "x");
    const run = async (exclude: string[]) => {
      const d = await source(root, { exclude }).dump(new AbortController().signal);
      d.stream.resume();
      return d.done.then(
        async () => ((await d.inventory) as VolumeInventory).files.map((f) => f.path),
        (e: { message: string; hint: string }) => e,
      );
    };
    // Each bad name is reported with U+FFFD for the bad byte, and the suggested pattern is escaped and anchored.
    const first = (await run([])) as { message: string; hint: string };
    expect(first.message).toMatch(/cannot read "bad\uFFFD\*\[name": its name is not valid UTF-8/);
    const suggested = /exclude: \[("[^"]*")\]/.exec(first.hint)?.[1] as string;
    expect(JSON.parse(suggested)).toBe("/bad\uFFFD\\*\\[name");
    expect(first.hint).toMatch(/^rename it, exclude it/);
    const second = (await run([JSON.parse(suggested)])) as { message: string; hint: string };
    expect(second.message).toMatch(/cannot read "cache\/deep\/\uFFFDx"/);
    // "cache/**" covers everything below cache/; an excluded directory is not listed, so names below it never count.
    expect(await run([JSON.parse(suggested), "cache/**", "odd/\uFFFDdir/"])).toEqual(["cache", "keep.txt", "odd"]);
    expect(await run(["/bad*", "cache/", "odd/*"])).toEqual(["keep.txt", "odd"]);
  });

  it("warns when the excludes leave nothing to back up", async () => {
    const root = makeTree();
    const dump = await source(root, { exclude: ["**"] }).dump(new AbortController().signal);
    await collect(dump);
    const info = await dump.done;
    expect(info.details).toMatchObject({ fileCount: 0, dirCount: 0, symlinkCount: 0 });
    expect(info.warnings).toEqual([expect.stringMatching(/exclude patterns left nothing to back up: this snapshot is empty/)]);
    // An empty volume is not an exclusion problem, and a volume with something left has nothing to warn about.
    const empty = await source(temp()).dump(new AbortController().signal);
    await collect(empty);
    expect((await empty.done).warnings).toEqual([]);
    const some = await source(root, { exclude: ["docs/**", "*.tmp"] }).dump(new AbortController().signal);
    await collect(some);
    expect((await some.done).warnings).toEqual([]);
  });

  it("names an entry whose full path is too long for the system, and how to get past it", async () => {
    const root = temp();
    const deep = Array.from({ length: 17 }, () => "d".repeat(250));
    // Created step by step from inside: no single call may see a path that long.
    const cwd = process.cwd();
    try {
      process.chdir(root);
      for (const d of deep) {
        mkdirSync(d);
        process.chdir(d);
      }
    } finally {
      process.chdir(cwd);
    }
    const dump = await source(root).dump(new AbortController().signal);
    dump.stream.resume();
    const err = (await dump.done.catch((e: unknown) => e)) as { message: string; hint: string };
    expect(err.message).toMatch(/: its full path is \d+ bytes, longer than the 4095 bytes the system allows \(ENAMETOOLONG\)$/);
    expect(err.hint).toMatch(/^shorten its path, exclude it \(exclude: \["\/d+(\/d+)+"\]\)/);
  });

  it("fails on a file it may not read (permission denied), checked as an unprivileged user", () => {
    if (process.getuid?.() !== 0) return;
    const root = temp();
    chmodSync(root, 0o755);
    writeFileSync(join(root, "public.txt"), "p");
    writeFileSync(join(root, "private.txt"), "secret");
    chmodSync(join(root, "private.txt"), 0o600);
    const script = `
      import { VolumeSource } from ${JSON.stringify(new URL("../../src/sources/volume.ts", import.meta.url).pathname)};
      const s = new VolumeSource({ type: "volume", path: ${JSON.stringify(root)}, boundary: "b", exclude: [], onUnreadable: "fail" });
      const d = await s.dump(new AbortController().signal);
      d.stream.resume();
      await d.done.then(() => console.log("no error"), (e) => console.log(e.message));`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { uid: 65534, gid: 65534, encoding: "utf8" });
    if (r.status !== 0 && /EACCES|permission/i.test(r.stderr) && !r.stdout) return; // cannot run node as nobody here
    expect(r.stdout).toMatch(/cannot read "private\.txt": EACCES/);
  });

  it("refuses a missing path, a file as path, a relative path and a bad exclude pattern", async () => {
    const signal = new AbortController().signal;
    await expect(source("/nonexistent/lifeboat").dump(signal)).rejects.toMatchObject({ code: code.source });
    const file = join(temp(), "f");
    writeFileSync(file, "x");
    await expect(source(file).dump(signal)).rejects.toThrow(/not a directory/);
    expect(() => source("relative/dir")).toThrow(/not absolute/);
    expect(() => source("/x", { exclude: ["!keep"] })).toThrow(/negation/);
  });

  it("streams a 300 MB file through backup and restore with flat memory", async () => {
    const root = temp();
    // Sparse: no disk space used, and the reads still move 300 MB through the walk, the hash and the stream.
    writeFileSync(join(root, "huge.bin"), "");
    truncateSync(join(root, "huge.bin"), 300 * 1024 * 1024);
    const dump = await source(root).dump(new AbortController().signal);
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 10);
    const out = temp();
    try {
      const r = await restoreVolume({ input: dump.stream, dir: out });
      expect(r.bytes).toBe(300 * 1024 * 1024);
    } finally {
      clearInterval(sampler);
    }
    await dump.done;
    expect(peak - before).toBeLessThan(100 * 1024 * 1024);
    const zeros = createHash("sha256");
    const mib = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < 300; i++) zeros.update(mib);
    const inv = (await dump.inventory) as VolumeInventory;
    expect(inv.files[0]?.sha256).toBe(zeros.digest("hex"));
    expect(statSync(join(out, "huge.bin")).size).toBe(300 * 1024 * 1024);
    rmSync(join(out, "huge.bin"));
  });

  it("backs up 50,000 small files and restores them", { timeout: 600_000 }, async () => {
    const root = temp();
    for (let d = 0; d < 50; d++) {
      mkdirSync(join(root, `d${d}`));
      for (let f = 0; f < 1000; f++) writeFileSync(join(root, `d${d}/f${f}`), `${d}:${f}`);
    }
    const dump = await source(root).dump(new AbortController().signal);
    const out = temp();
    const result = await restoreVolume({ input: dump.stream, dir: out });
    const inv = (await dump.inventory) as VolumeInventory;
    expect(inv.fileCount).toBe(50_000);
    expect(result.files).toBe(50_000);
    expect(readFileSync(join(out, "d49/f999"), "utf8")).toBe("49:999");
  });
});

describe("compileExcludes", () => {
  it("matches names at any depth, anchors patterns with a slash, takes dot files, and honours dir-only patterns", () => {
    const ex = compileExcludes(["*.tmp", "cache/**", "/build", "logs/", "a/**/z", "[!k]eep?"]);
    expect(ex("x.tmp", false)).toBe(true);
    expect(ex("deep/.y.tmp", false)).toBe(true);
    expect(ex("cache", true)).toBe(false);
    expect(ex("cache/.hidden/x", false)).toBe(true);
    expect(ex("sub/cache/x", false)).toBe(false);
    expect(ex("build", true)).toBe(true);
    expect(ex("src/build", true)).toBe(false);
    expect(ex("logs", true)).toBe(true);
    expect(ex("logs", false)).toBe(false);
    expect(ex("a/z", false)).toBe(true);
    expect(ex("a/b/c/z", false)).toBe(true);
    expect(ex("deeps", false)).toBe(true);
    expect(ex("keeps", false)).toBe(false);
    expect(() => compileExcludes([""])).toThrow(/empty/);
    expect(() => compileExcludes(["[abc"])).toThrow(/unclosed/);
  });

  it("says why a pattern is invalid without throwing, for config validation", () => {
    expect(excludePatternProblem("cache/**")).toBeUndefined();
    expect(excludePatternProblem("!foo")).toBe('"!foo" is a negation, which is not supported');
    expect(excludePatternProblem("[abc")).toBe('"[abc" has an unclosed [ class');
    expect(excludePatternProblem("/")).toBe('"/" matches the volume root itself');
  });

  it("suggests, for any path, a pattern that excludes exactly that entry", () => {
    for (const rel of ["!bang", "a*b", "dir/[x]?\\y", "top", "bad\uFFFDname", "a/**"]) {
      const ex = compileExcludes([excludePatternFor(rel)]);
      expect(ex(rel, false), rel).toBe(true);
      expect(ex(rel, true), rel).toBe(true);
      expect(ex(`sub/${rel}`, false), rel).toBe(false);
      expect(ex(rel.replace(/[^/]$/, "Z"), false), rel).toBe(false);
    }
    expect(compileExcludes([excludePatternFor("a*b")])("aXb", false)).toBe(false);
  });
});

async function* rest(it: AsyncIterator<unknown>): AsyncGenerator<Buffer> {
  for (;;) {
    const r = await it.next();
    if (r.done) return;
    yield r.value as Buffer;
  }
}

async function* prepend(first: Buffer, tail: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield first;
  yield* tail;
}
