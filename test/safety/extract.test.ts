import { execFileSync, spawnSync } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { code } from "../../src/errors.ts";
import { type ExtractOptions, extractTar } from "../../src/safety/extract.ts";

const temps: string[] = [];
function temp(): string {
  const d = mkdtempSync(join(tmpdir(), "lifeboat-extract-"));
  temps.push(d);
  return d;
}
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

// Raw ustar bytes, written field by field, so the archives below can be as malicious as a hand can make them.
interface RawHeader {
  type?: string;
  size?: number;
  linkname?: string;
  mode?: number;
}

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, "0")}\0`;
}

function header(name: string, h: RawHeader = {}): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100, "utf8");
  b.write(octal(h.mode ?? 0o644, 8), 100, "ascii");
  b.write(octal(0, 8), 108, "ascii");
  b.write(octal(0, 8), 116, "ascii");
  b.write(octal(h.size ?? 0, 12), 124, "ascii");
  b.write(octal(1_600_000_000, 12), 136, "ascii");
  b.fill(" ", 148, 156);
  b.write(h.type ?? "0", 156, "ascii");
  if (h.linkname) b.write(h.linkname, 157, 100, "utf8");
  b.write("ustar\u000000", 257, "binary");
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  return b;
}

const file = (name: string, content: string | Buffer, mode?: number) => {
  const data = Buffer.from(content);
  return Buffer.concat([header(name, { size: data.length, mode }), data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
};
const dir = (name: string) => header(name, { type: "5", mode: 0o755 });
const symlink = (name: string, target: string) => header(name, { type: "2", linkname: target });
const hardlink = (name: string, target: string) => header(name, { type: "1", linkname: target });
const archive = (...members: Buffer[]) => Buffer.concat([...members, Buffer.alloc(1024)]);

function extract(bytes: Buffer, target: string, opts: Partial<ExtractOptions> = {}) {
  return extractTar({ input: Readable.from([bytes]), dir: target, ...opts });
}

/** A directory outside the extraction target that no entry may touch. */
const outsideDir = temp;

describe("extractTar", () => {
  it("extracts plain files, directories, inside symlinks and hard links to earlier files", async () => {
    const target = temp();
    const r = await extract(
      archive(
        dir("./"),
        dir("d/"),
        file("./d/a.txt", "alpha", 0o640),
        symlink("d/to-a", "a.txt"),
        symlink("up", "d/a.txt"),
        hardlink("d/hard", "d/a.txt"),
        file("e/implicit-parent.txt", "x"),
      ),
      target,
    );
    expect(r).toEqual({ files: 2, dirs: 1, symlinks: 2, hardlinks: 1, bytes: 6 });
    expect(readFileSync(join(target, "d/a.txt"), "utf8")).toBe("alpha");
    expect(lstatSync(join(target, "d/a.txt")).mode & 0o777).toBe(0o640);
    expect(readlinkSync(join(target, "d/to-a"))).toBe("a.txt");
    expect(lstatSync(join(target, "d/hard")).ino).toBe(lstatSync(join(target, "d/a.txt")).ino);
    expect(readFileSync(join(target, "e/implicit-parent.txt"), "utf8")).toBe("x");
  });

  it.each([
    ["an absolute path", (out: string) => file(join(out, "evil"), "pwned"), /absolute path/],
    ["a .. path", () => file("../evil", "pwned"), /has "\.\." in its path/],
    ["a .. in the middle", () => file("a/../../evil", "pwned"), /has "\.\." in its path/],
    ["a character device", () => header("dev/null2", { type: "3" }), /CharacterDevice entry/],
    ["a block device", () => header("sda", { type: "4" }), /BlockDevice entry/],
    ["a FIFO", () => header("fifo", { type: "6" }), /FIFO entry/],
    ["a hard link to an absolute path", (out: string) => hardlink("h", join(out, "victim")), /absolute hard link target/],
    ["a hard link climbing out", () => hardlink("h", "../victim"), /"\.\." in its hard link target/],
    ["a hard link to a symlink of the archive", () => Buffer.concat([symlink("s", "x"), hardlink("h", "s")]), /not a regular file/],
  ])("refuses %s, writing nothing outside", async (_what, member, message) => {
    const out = outsideDir();
    const target = temp();
    const err = await extract(archive(member(out)), target).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: code.refused, message: expect.stringMatching(message) });
    expect(readdirSync(out)).toEqual([]);
    expect(existsSync(join(target, "..", "evil"))).toBe(false);
  });

  it("refuses a symlink pointing outside by default and removes it; keeps it with outsideSymlinks: keep", async () => {
    const out = outsideDir();
    for (const target of [out, "../../../../../../../etc", "/etc/passwd"]) {
      const t = temp();
      await expect(extract(archive(symlink("link", target)), t)).rejects.toMatchObject({
        code: code.refused,
        message: expect.stringMatching(/is a symlink to .* which leads outside/),
      });
      expect(readdirSync(t)).toEqual([]);
      const kept = temp();
      await extract(archive(symlink("link", target)), kept, { outsideSymlinks: "keep" });
      expect(readlinkSync(join(kept, "link"))).toBe(target);
    }
  });

  it("catches a chain of harmless-looking symlinks that leads out", async () => {
    const t = temp();
    await expect(extract(archive(symlink("r", "."), symlink("x", "r/..")), t)).rejects.toMatchObject({
      code: code.refused,
      message: expect.stringMatching(/"x" is a symlink to "r\/\.\."/),
    });
  });

  it("never writes through a symlink: not one from the archive, not one already in the target", async () => {
    for (const outsideSymlinks of ["refuse", "keep"] as const) {
      const out = outsideDir();
      const t = temp();
      // The link is created last, so the file goes into a real directory "link"; the link then cannot replace it.
      const err = await extract(archive(symlink("link", out), file("link/pwned", "x")), t, { outsideSymlinks }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: code.refused, message: expect.stringMatching(/would replace an existing directory/) });
      expect(readdirSync(out)).toEqual([]);

      const pre = temp();
      symlinkSync(out, join(pre, "pre"));
      const err2 = await extract(archive(file("pre/pwned", "x")), pre, { outsideSymlinks }).catch((e: unknown) => e);
      expect(err2).toMatchObject({ code: code.refused, message: expect.stringMatching(/goes through "pre", which is a symlink/) });
      const err3 = await extract(archive(hardlink("pre/h", "x")), pre, { outsideSymlinks }).catch((e: unknown) => e);
      expect(err3).toMatchObject({ code: code.refused });
      expect(readdirSync(out)).toEqual([]);
    }
  });

  it("blames the destination, not the archive, for a symlink, file or directory of its own in an entry's way", async () => {
    const out = outsideDir();
    const t = temp();
    writeFileSync(join(t, "mine.txt"), "mine");
    symlinkSync(out, join(t, "sub"));
    const err = (await extract(archive(file("first.txt", "1"), dir("sub/"), file("sub/x", "x")), t).catch((e: unknown) => e)) as {
      code: string;
      message: string;
      hint: string;
    };
    expect(err).toMatchObject({
      code: code.refused,
      message: `archive entry "sub/" goes through "sub", which is a symlink already in ${t}`,
    });
    expect(err.hint).toMatch(/^the destination is in the way, not the archive: move .*\/sub aside, or restore into a new, empty directory/);
    expect(err.hint).toMatch(/Other entries were already written, so .* now holds a partial restore/);
    expect(err.hint).not.toMatch(/crafted|was not restored/);
    expect(readFileSync(join(t, "first.txt"), "utf8")).toBe("1");
    expect(readdirSync(out)).toEqual([]);

    const t2 = temp();
    mkdirSync(join(t2, "d"));
    const err2 = await extract(archive(file("d", "x")), t2).catch((e: unknown) => e);
    expect(err2).toMatchObject({
      code: code.refused,
      message: `archive entry "d" (a file) would replace "d", which is a directory already in ${t2}`,
      hint: expect.stringMatching(/^the destination is in the way/),
    });
    const t3 = temp();
    writeFileSync(join(t3, "f"), "mine");
    const err3 = await extract(archive(file("f/x", "x")), t3).catch((e: unknown) => e);
    expect(err3).toMatchObject({
      code: code.refused,
      message: `archive entry "f/x" goes through "f", which is a file already in ${t3}`,
      hint: expect.stringMatching(/restore into a new, empty directory\. Nothing was written\.$/),
    });
    // A symlink of the snapshot meeting a directory of the destination is only found once everything else is out.
    const t5 = temp();
    mkdirSync(join(t5, "l"));
    const err5 = await extract(archive(file("a", "1"), symlink("l", "a")), t5).catch((e: unknown) => e);
    expect(err5).toMatchObject({
      code: code.refused,
      message: `archive entry "l" (a symlink) would replace "l", which is a directory already in ${t5}`,
      hint: expect.stringMatching(/Other entries were already written/),
    });

    // Into an empty directory, only the archive can have put a file in its own way.
    const err4 = await extract(archive(file("a", "1"), file("a/b", "2")), temp()).catch((e: unknown) => e);
    expect(err4).toMatchObject({
      code: code.refused,
      message: 'archive entry "a/b" goes through "a", which is a file',
      hint: "the archive is damaged or crafted to write outside the restore directory: extraction stopped at this entry (entries before it were written)",
    });
  });

  it("leaves every file before a refused entry complete, not cut off by the refusal", async () => {
    for (let round = 0; round < 3; round++) {
      const t = temp();
      symlinkSync(outsideDir(), join(t, "z-sub"));
      // Small files are written in the background, several at once: many are still in flight when "z-sub/" is refused.
      const files = Array.from({ length: 30 }, (_, i) => file(`f${String(i).padStart(2, "0")}`, `content of file ${i}\n`.repeat(50)));
      const err = await extract(archive(...files, dir("z-sub/")), t).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: code.refused });
      for (let i = 0; i < 30; i++) {
        expect(readFileSync(join(t, `f${String(i).padStart(2, "0")}`), "utf8"), `f${i}`).toBe(`content of file ${i}\n`.repeat(50));
      }
    }
  });

  it("replaces an existing file or symlink at an entry's path, but never an existing directory", async () => {
    const out = outsideDir();
    const t = temp();
    symlinkSync(join(out, "victim"), join(t, "f"));
    await extract(archive(file("f", "new")), t);
    expect(lstatSync(join(t, "f")).isFile()).toBe(true);
    expect(existsSync(join(out, "victim"))).toBe(false);
    mkdirSync(join(t, "d"));
    await expect(extract(archive(file("d", "x")), t)).rejects.toMatchObject({ code: code.refused });
  });

  it("rejects a damaged archive with IntegrityError: bad checksum, truncation, no end marker", async () => {
    const good = file("a.txt", "hello");
    const bad = Buffer.from(good);
    bad[0] = "b".charCodeAt(0);
    await expect(extract(archive(bad), temp())).rejects.toMatchObject({ code: code.integrity });
    const big = file("big", Buffer.alloc(10_000, 1));
    await expect(extract(big.subarray(0, 4096), temp())).rejects.toMatchObject({ code: code.integrity });
    await expect(extract(good, temp())).rejects.toMatchObject({ code: code.integrity, message: expect.stringMatching(/end-of-archive/) });
  });

  it("passes the input stream's own error on, and stops with ABORTED when aborted", async () => {
    const boom = new Error("hash mismatch upstream");
    const failing = new Readable({
      read() {
        this.destroy(boom);
      },
    });
    await expect(extractTar({ input: failing, dir: temp() })).rejects.toBe(boom);

    const ac = new AbortController();
    const endless = new Readable({ read() {} });
    endless.push(file("a", Buffer.alloc(100_000)).subarray(0, 2048));
    const pending = extractTar({ input: endless, dir: temp(), signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(pending).rejects.toMatchObject({ code: code.aborted });
  });

  it("stops with ABORTED when aborted while it is still opening the target directory", async () => {
    const ac = new AbortController();
    const endless = new Readable({ read() {} });
    const pending = extractTar({ input: endless, dir: temp(), signal: ac.signal });
    ac.abort(new Error("interrupted by SIGTERM"));
    const hang = new Promise((_, reject) => setTimeout(() => reject(new Error("extractTar never settled")), 10_000));
    await expect(Promise.race([pending, hang])).rejects.toMatchObject({ code: code.aborted });
    expect(endless.destroyed).toBe(true);
  });

  it("stops with ABORTED when aborted in the middle of a large file's content", async () => {
    for (let round = 0; round < 5; round++) {
      const ac = new AbortController();
      const big = file("big", Buffer.alloc(32 * 1024 * 1024, 1));
      // The whole entry but not the end of the archive, in many chunks, as a download delivers it.
      const input = Readable.from(
        (function* () {
          for (let i = 0; i < big.length; i += 64 * 1024) yield big.subarray(i, i + 64 * 1024);
        })(),
      );
      const pending = extractTar({ input, dir: temp(), signal: ac.signal });
      setTimeout(() => ac.abort(new Error("interrupted by SIGINT")), 5 + round * 7);
      const hang = new Promise((_, reject) => setTimeout(() => reject(new Error("extractTar never settled")), 10_000));
      await expect(Promise.race([pending, hang])).rejects.toMatchObject({ code: code.aborted });
    }
  });

  it("reads archives made by the stock tar, hard links included", async () => {
    if (spawnSync("tar", ["--version"]).status !== 0) return;
    const src = temp();
    mkdirSync(join(src, "d"));
    execFileSync("sh", ["-c", `echo one > "${src}/d/one" && ln "${src}/d/one" "${src}/d/two" && ln -s one "${src}/d/sym"`]);
    const bytes = execFileSync("tar", ["-cf", "-", "-C", src, "."]);
    const t = temp();
    await extract(bytes, t);
    expect(readFileSync(join(t, "d/two"), "utf8")).toBe("one\n");
    expect(lstatSync(join(t, "d/two")).ino).toBe(lstatSync(join(t, "d/one")).ino);
    expect(readlinkSync(join(t, "d/sym"))).toBe("one");
  });
});
