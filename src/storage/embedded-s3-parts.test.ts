import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type PartRecord, PartStore } from "./embedded-s3-parts.ts";

const MiB = 1024 * 1024;
let root: string;
let dir: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "lifeboat-parts-"));
  dir = join(root, "upload");
  await mkdir(dir);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A body arriving in socket-sized pieces, as a request does. */
const body = (b: Buffer) =>
  Readable.from(Array.from({ length: Math.ceil(b.length / 65536) }, (_, i) => b.subarray(i * 65536, (i + 1) * 65536)));
const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");

async function putAll(store: PartStore, bodies: Map<number, Buffer>): Promise<Map<number, PartRecord>> {
  const records = new Map<number, PartRecord>();
  for (const [n, b] of bodies) records.set(n, await store.put(dir, n, body(b), b.length));
  return records;
}

describe("PartStore", () => {
  it("writes parts of one size in place and completes by renaming that file, dropping unlisted parts", async () => {
    const store = new PartStore();
    const bodies = new Map([
      [2, randomBytes(5 * MiB)],
      [1, randomBytes(5 * MiB)],
      [4, randomBytes(5 * MiB)],
      [3, randomBytes(1234)],
    ]);
    const records = await putAll(store, bodies);
    expect(records.get(1)).toEqual({ number: 1, md5: md5(bodies.get(1) as Buffer), size: 5 * MiB, offset: 0 });
    expect(records.get(3)?.offset).toBe(10 * MiB);
    const dataInode = (await stat(join(dir, "data"))).ino;
    const out = join(root, "objects", "a", "object");
    const listed = [1, 2, 3].map((n) => records.get(n) as PartRecord);
    expect(await store.join(dir, listed, out)).toBe(10 * MiB + 1234);
    expect((await stat(out)).ino).toBe(dataInode);
    const expected = Buffer.concat([1, 2, 3].map((n) => bodies.get(n) as Buffer));
    expect((await readFile(out)).equals(expected)).toBe(true);
    await expect(stat(dir)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("copies when the parts are of several sizes, leave gaps, or were kept in files of their own", async () => {
    const store = new PartStore();
    // A small first arrival does not fix the part size; a larger part than the fixed one gets a file of its own.
    const bodies = new Map([
      [3, randomBytes(1000)],
      [1, randomBytes(5 * MiB)],
      [2, randomBytes(6 * MiB)],
      [5, randomBytes(5 * MiB - 7)],
    ]);
    const records = await putAll(store, bodies);
    expect([3, 1, 2, 5].map((n) => records.get(n)?.offset)).toEqual([null, 0, null, 20 * MiB]);
    expect((await readdir(dir)).sort()).toEqual(["1.json", "2", "2.json", "3", "3.json", "5.json", "data"]);
    const order = [1, 2, 3, 5];
    const out = join(root, "object");
    const size = await store.join(
      dir,
      order.map((n) => records.get(n) as PartRecord),
      out,
    );
    const expected = Buffer.concat(order.map((n) => bodies.get(n) as Buffer));
    expect(size).toBe(expected.length);
    expect((await readFile(out)).equals(expected)).toBe(true);
  });

  it("keeps only the newest upload of a part, and none of one cut short", async () => {
    const store = new PartStore();
    const first = randomBytes(5 * MiB);
    const second = randomBytes(5 * MiB);
    await store.put(dir, 1, body(first), first.length);
    const r = await store.put(dir, 1, body(second), second.length);
    expect(r.md5).toBe(md5(second));
    expect(await store.record(dir, 1)).toEqual(r);
    const broken = new Readable({
      read() {
        this.push(randomBytes(65536));
        this.destroy(new Error("connection reset"));
      },
    });
    await expect(store.put(dir, 1, broken, 5 * MiB)).rejects.toThrow("connection reset");
    expect(await store.record(dir, 1)).toBeUndefined();
  });

  it("refuses more bytes than declared instead of writing over the next part's place", async () => {
    const store = new PartStore();
    await store.put(dir, 1, body(randomBytes(5 * MiB)), 5 * MiB);
    await expect(store.put(dir, 2, body(randomBytes(5 * MiB + 1)), 5 * MiB)).rejects.toThrow(/longer than its Content-Length/);
    expect(await store.record(dir, 2)).toBeUndefined();
  });

  it("after a restart, stores new parts in files of their own and still joins everything", async () => {
    const bodies = new Map([
      [1, randomBytes(5 * MiB)],
      [2, randomBytes(5 * MiB)],
    ]);
    const records = await putAll(new PartStore(), bodies);
    const restarted = new PartStore();
    const third = randomBytes(3 * MiB);
    const r3 = await restarted.put(dir, 3, body(third), third.length);
    expect(r3.offset).toBeNull();
    const out = join(root, "object");
    await restarted.join(dir, [records.get(1) as PartRecord, records.get(2) as PartRecord, r3], out);
    expect((await readFile(out)).equals(Buffer.concat([bodies.get(1) as Buffer, bodies.get(2) as Buffer, third]))).toBe(true);
  });
});
