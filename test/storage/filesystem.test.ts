import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { code, LifeboatError } from "../../src/errors.ts";
import { FilesystemTarget } from "../../src/storage/filesystem.ts";
import { putBuffer } from "../../src/storage/target.ts";
import { describeTargetContract } from "../contracts/target.ts";

describeTargetContract("filesystem", async () => {
  const root = await mkdtemp(join(tmpdir(), "lifeboat-fs-"));
  return {
    target: new FilesystemTarget("nas", { path: root }),
    cleanup: () => rm(root, { recursive: true, force: true }),
    // Temp files of puts are dot-files; none may survive a failed put.
    leftovers: async () => (await readdir(root, { recursive: true })).filter((p) => basename(p).startsWith(".")),
  };
});

describe("FilesystemTarget", () => {
  it("rejects keys that could escape the root", async () => {
    const parent = await mkdtemp(join(tmpdir(), "lifeboat-fs-"));
    const root = join(parent, "root");
    await mkdir(root);
    const target = new FilesystemTarget("nas", { path: root });
    for (const key of ["../x", "/abs", "a//b", "", "a/./b", "a/../../x", "a/", "a\\..\\b"]) {
      const err = await putBuffer(target, key, "x").catch((e: unknown) => e);
      expect(err, key).toBeInstanceOf(LifeboatError);
      expect((err as LifeboatError).code).toBe(code.storage);
      expect((err as LifeboatError).message).toContain('target "nas": invalid key');
      await expect(target.get(key)).rejects.toThrow(/invalid key/);
    }
    expect(await readdir(parent)).toEqual(["root"]);
    expect(await readdir(root)).toEqual([]);
    await rm(parent, { recursive: true, force: true });
  });

  it("refuses a missing root with a hint, and does not create it", async () => {
    const root = join(tmpdir(), `lifeboat-missing-${process.pid}-${Date.now()}`);
    const target = new FilesystemTarget("nas", { path: root });
    const err = (await putBuffer(target, "a/b", "x").catch((e: unknown) => e)) as LifeboatError;
    expect(err.message).toBe(`target "nas": directory ${root} does not exist`);
    expect(err.hint).toMatch(/mount/);
    await expect(target.list("")[Symbol.asyncIterator]().next()).rejects.toThrow(/does not exist/);
    expect(existsSync(root)).toBe(false);
  });

  it("removing an object's last sibling removes its now empty folder, not the folders above", async () => {
    const root = await mkdtemp(join(tmpdir(), "lifeboat-fs-"));
    const target = new FilesystemTarget("nas", { path: root });
    await putBuffer(target, "app/snapshots/1/manifest.json", "{}");
    await putBuffer(target, "app/snapshots/1/db.zst.age", "x");
    await target.remove("app/snapshots/1/manifest.json");
    expect((await readdir(root, { recursive: true })).sort()).toContain("app/snapshots/1");
    await target.remove("app/snapshots/1/db.zst.age");
    expect((await readdir(root, { recursive: true })).sort()).toEqual(["app", "app/snapshots"]);
    await rm(root, { recursive: true, force: true });
  });

  it("removes the folders a failed put created, and only those", async () => {
    const root = await mkdtemp(join(tmpdir(), "lifeboat-fs-"));
    const target = new FilesystemTarget("nas", { path: root });
    await putBuffer(target, "app/snapshots/1/manifest.json", "{}");
    const failing = new Readable({
      read() {
        this.destroy(new Error("dump failed"));
      },
    });
    await expect(target.put("app/snapshots/2/db.zst.age", failing)).rejects.toThrow(/dump failed/);
    expect((await readdir(root, { recursive: true })).sort()).toEqual([
      "app",
      "app/snapshots",
      "app/snapshots/1",
      "app/snapshots/1/manifest.json",
    ]);
    await rm(root, { recursive: true, force: true });
  });

  it.skipIf(process.getuid?.() === 0)("names the path and the fix on permission errors", async () => {
    const root = await mkdtemp(join(tmpdir(), "lifeboat-fs-"));
    await chmod(root, 0o500);
    const err = (await putBuffer(new FilesystemTarget("nas", { path: root }), "a/b", "x").catch((e: unknown) => e)) as LifeboatError;
    expect(err.message).toMatch(/target "nas": .*permission denied on /);
    expect(err.hint).toContain(root);
    await chmod(root, 0o700);
    await rm(root, { recursive: true, force: true });
  });
});
