import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { code, LifeboatError, NotFoundError } from "../../src/errors.ts";
import { getBuffer, listAll, putBuffer, type Target } from "../../src/storage/target.ts";

/** A fresh, empty target for one test, and how to clean up after it. */
export interface TargetUnderTest {
  target: Target;
  cleanup(): Promise<void>;
  /** What a failed put could leave behind (temp files, unfinished multipart uploads); must be empty after a failure. */
  leftovers?(): Promise<string[]>;
}

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;

/**
 * Runs the shared Target contract against one backend: every backend, including the in-memory one, must pass it.
 * makeTarget is called before each test and must return an empty target (a fresh directory or key prefix).
 */
export function describeTargetContract(name: string, makeTarget: () => Promise<TargetUnderTest>): void {
  describe(`Target contract: ${name}`, () => {
    let t: TargetUnderTest;
    let target: Target;
    beforeEach(async () => {
      t = await makeTarget();
      target = t.target;
    });
    afterEach(async () => {
      await target.close?.();
      await t.cleanup();
    });

    const text = async (key: string, range?: { start: number; end?: number }) => (await read(await target.get(key, { range }))).toString();
    const expectNothingLeft = async (key: string) => {
      expect(await target.head(key)).toBeUndefined();
      expect((await listAll(target, "")).map((o) => o.key)).not.toContain(key);
      expect((await t.leftovers?.()) ?? []).toEqual([]);
    };

    it("stores and reads back a small object", async () => {
      const stored = await putBuffer(target, "small/hello.txt", "hello, lifeboat");
      expect(stored).toMatchObject({ key: "small/hello.txt", size: 15 });
      expect((await getBuffer(target, "small/hello.txt")).toString()).toBe("hello, lifeboat");
    });

    it("streams an object larger than one multipart part and reads it back, also by range", async () => {
      const data = randomBytes(12 * MiB + 12345);
      const stored = await target.put("big/data.bin", chunked(data));
      expect(stored.size).toBe(data.length);
      expect(sha256(await read(await target.get("big/data.bin")))).toBe(sha256(data));
      // A range across the 5 MiB part boundary.
      const got = await read(await target.get("big/data.bin", { range: { start: 5 * MiB - 10, end: 5 * MiB + 9 } }));
      expect(got.equals(data.subarray(5 * MiB - 10, 5 * MiB + 10))).toBe(true);
    });

    it("lists what was written, sorted, filtered by prefix, with keys as given", async () => {
      for (const key of ["list/b", "list/a/x", "list/a-c", "list/a/y/z", "lisp"]) await putBuffer(target, key, key);
      const keys = async (prefix: string) => (await listAll(target, prefix)).map((o) => o.key);
      expect(await keys("list/")).toEqual(["list/a-c", "list/a/x", "list/a/y/z", "list/b"]);
      expect(await keys("list/a")).toEqual(["list/a-c", "list/a/x", "list/a/y/z"]);
      expect(await keys("list/a/")).toEqual(["list/a/x", "list/a/y/z"]);
      expect(await keys("")).toEqual(["lisp", "list/a-c", "list/a/x", "list/a/y/z", "list/b"]);
      expect(await keys("nothing/")).toEqual([]);
      const [first] = await listAll(target, "list/a/y");
      expect(first).toMatchObject({ key: "list/a/y/z", size: "list/a/y/z".length });
    });

    it("reads byte ranges (inclusive end, open end)", async () => {
      await putBuffer(target, "range/digits", "0123456789");
      expect(await text("range/digits", { start: 0, end: 0 })).toBe("0");
      expect(await text("range/digits", { start: 3, end: 6 })).toBe("3456");
      expect(await text("range/digits", { start: 7 })).toBe("789");
    });

    it("heads an object, and gives undefined for a missing one", async () => {
      await putBuffer(target, "head/one", "12345");
      const h = await target.head("head/one");
      expect(h).toMatchObject({ key: "head/one", size: 5 });
      if (h?.modified) expect(h.modified).toBeInstanceOf(Date);
      expect(await target.head("head/missing")).toBeUndefined();
    });

    it("rejects get of a missing key with NotFoundError naming the target and key", async () => {
      const err = await target.get("missing/key").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NotFoundError);
      expect((err as Error).message).toContain(`"${target.name}"`);
      expect((err as Error).message).toContain("missing/key");
    });

    it("removes idempotently", async () => {
      await putBuffer(target, "rm/one", "x");
      await target.remove("rm/one");
      expect(await target.head("rm/one")).toBeUndefined();
      await expect(target.get("rm/one")).rejects.toBeInstanceOf(NotFoundError);
      await target.remove("rm/one");
      await target.remove("rm/never-existed");
    });

    it("overwrites with new content", async () => {
      await putBuffer(target, "ow/file", "first version");
      await putBuffer(target, "ow/file", "second");
      expect(await text("ow/file")).toBe("second");
      expect(await listAll(target, "ow/")).toMatchObject([{ key: "ow/file", size: 6 }]);
    });

    it("rejects with the body's own error when the body fails mid-way, and leaves nothing", async () => {
      const boom = new Error("source died");
      const err = await target.put("fail/new", failingBody(11 * MiB, boom)).catch((e: unknown) => e);
      expect(err).toBe(boom);
      await expectNothingLeft("fail/new");
    });

    it("keeps the old object when an overwrite fails", async () => {
      await putBuffer(target, "fail/old", "good copy");
      const boom = new Error("source died again");
      await expect(target.put("fail/old", failingBody(6 * MiB, boom))).rejects.toBe(boom);
      expect(await text("fail/old")).toBe("good copy");
      expect((await t.leftovers?.()) ?? []).toEqual([]);
    });

    it("rejects an aborted put and leaves nothing, even when the body stalls", async () => {
      const body = new Readable({ read() {} }); // never ends by itself
      for (let sent = 0; sent < 6 * MiB; sent += CHUNK) body.push(randomBytes(CHUNK));
      const controller = new AbortController();
      const putting = target.put("abort/stalled", body, { signal: controller.signal }).catch((e: unknown) => e);
      await delay(300);
      controller.abort();
      const err = await putting;
      expect(err).toBeInstanceOf(LifeboatError);
      expect((err as LifeboatError).code).toBe(code.aborted);
      await expectNothingLeft("abort/stalled");
    });

    it("rejects a put whose signal is already aborted without storing anything", async () => {
      const err = await target
        .put("abort/early", Readable.from([Buffer.from("x")]), { signal: AbortSignal.abort() })
        .catch((e: unknown) => e);
      expect((err as LifeboatError).code).toBe(code.aborted);
      await expectNothingLeft("abort/early");
    });
  });
}

/** Streams data in 64 KiB chunks, as a dump would. */
function chunked(data: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += CHUNK) yield data.subarray(i, i + CHUNK);
    })(),
  );
}

/** A body that yields bytes, pauses (so uploads are under way), then fails with error. */
function failingBody(bytes: number, error: Error): Readable {
  return Readable.from(
    (async function* () {
      for (let sent = 0; sent < bytes; sent += CHUNK) yield randomBytes(CHUNK);
      await delay(200);
      throw error;
    })(),
  );
}

async function read(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}
