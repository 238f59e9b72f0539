import type { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { LifeboatError } from "../../src/errors.ts";
import type { Source } from "../../src/sources/source.ts";

/** Rejects if the promise does not settle in time, so a hanging source fails the test with a reason. */
export function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** How a stream finished: its byte count and whether it ended cleanly or with an error. */
export function drain(stream: Readable): Promise<{ bytes: number; error?: unknown }> {
  return new Promise((resolve) => {
    let bytes = 0;
    stream.on("data", (c: Buffer) => {
      bytes += c.length;
    });
    stream.once("end", () => resolve({ bytes }));
    stream.once("error", (error) => resolve({ bytes, error }));
    stream.once("close", () => resolve({ bytes, error: stream.readableEnded ? undefined : new Error("closed before end") }));
  });
}

/**
 * The behaviour every Source shares. makeSource is called once per test and must return a source holding more
 * data than a pipe buffers (a few MB), so that an abort lands while the dump is still running.
 */
export function describeSourceContract(name: string, makeSource: () => Source | Promise<Source>): void {
  describe(`Source contract: ${name}`, () => {
    it("dumps non-empty bytes; inventory and done resolve", async () => {
      const source = await makeSource();
      expect(source.kind).toMatch(/^[a-z]+$/);
      const dump = await source.dump(new AbortController().signal);
      expect(dump.artifact).not.toBe("");
      expect(dump.format).not.toBe("");
      const result = await within(60_000, "stream", drain(dump.stream));
      expect(result.error).toBeUndefined();
      expect(result.bytes).toBeGreaterThan(0);
      const info = await within(60_000, "done", dump.done);
      expect(Array.isArray(info.warnings)).toBe(true);
      const inventory = await within(60_000, "inventory", dump.inventory);
      expect(inventory.kind).toBe(source.kind);
      expect(["exact", "approximate"]).toContain(inventory.counts);
    });

    it("refuses to start with an already aborted signal", async () => {
      const source = await makeSource();
      const ac = new AbortController();
      ac.abort();
      await expect(source.dump(ac.signal)).rejects.toBeInstanceOf(LifeboatError);
    });

    it("abort kills the dump: done rejects and the stream never ends cleanly", async () => {
      const source = await makeSource();
      const ac = new AbortController();
      const dump = await source.dump(ac.signal);
      // Read one chunk so the dump is known to be running, then stop reading so it blocks on a full pipe.
      await within(30_000, "first chunk", new Promise<void>((resolve) => dump.stream.once("data", () => resolve())));
      dump.stream.pause();
      const outcome = drain(dump.stream);
      ac.abort();
      dump.stream.resume();
      await expect(within(30_000, "done after abort", dump.done)).rejects.toMatchObject({ code: "ABORTED" });
      const streamed = await within(30_000, "stream after abort", outcome);
      expect(streamed.error).toBeDefined();
      await within(30_000, "inventory after abort", Promise.allSettled([dump.inventory]));
    });
  });
}
