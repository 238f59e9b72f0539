import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import { FanOut } from "./fanout.ts";

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of stream) out.push(c);
  return Buffer.concat(out);
}

describe("FanOut", () => {
  it("keeps feeding the other branches when one is destroyed before it is detached", async () => {
    const fan = new FanOut(2, 64 * 1024);
    const data = randomBytes(4 * 1024 * 1024);
    const chunks = Array.from({ length: data.length / (64 * 1024) }, (_, i) => data.subarray(i * 64 * 1024, (i + 1) * 64 * 1024));
    const received = collect(fan.branches[0] as unknown as AsyncIterable<Buffer>);
    // A consumer that fails after the first chunk, as a put whose upload broke: it destroys its branch at once, and
    // its clean-up (an abort request to the server) takes a while before detach() is called.
    const broken = fan.branches[1];
    broken?.once("data", () => broken.destroy(new Error("connection reset")));
    const detached = new Promise<void>((r) => setTimeout(() => r(void fan.detach(1)), 300));
    const written = pipeline(Readable.from(chunks), fan);
    const hang = new Promise((_, reject) => setTimeout(() => reject(new Error("the fan-out hung")), 10_000));
    await Promise.race([Promise.all([written, detached]), hang]);
    expect((await received).equals(data)).toBe(true);
  });
});
