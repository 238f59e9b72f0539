import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import { spawnFilter } from "./child.ts";

const sink = () => new Writable({ write: (_c, _e, cb) => cb() });

describe("spawnFilter", () => {
  it("passes data through a program that exits 0", async () => {
    const out: Buffer[] = [];
    await pipeline(
      Readable.from([Buffer.from("hello "), Buffer.from("world")]),
      spawnFilter("cat", [], "test"),
      new Writable({
        write: (c, _e, cb) => {
          out.push(c);
          cb();
        },
      }),
    );
    expect(Buffer.concat(out).toString()).toBe("hello world");
  });

  it("fails when the program exits non-zero after writing all its output", async () => {
    const filter = spawnFilter("sh", ["-c", "cat; echo checksum mismatch >&2; exit 3"], "test filter");
    await expect(pipeline(Readable.from([Buffer.from("data")]), filter, sink())).rejects.toThrow(
      /test filter: sh exited with 3: checksum mismatch/,
    );
  });
});
