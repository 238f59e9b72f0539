import { describe, expect, it } from "vitest";
import { GROWTH_PARTS, MAX_PART_BYTES, MAX_PARTS, nextPartSize } from "./part-sizes.ts";

const MiB = 1024 ** 2;
const TiB = 1024 ** 4;

/** The parts an upload of `total` bytes is cut into, starting at `first` bytes. */
function partsOf(total: number, first: number): number[] {
  const parts: number[] = [];
  let size = first;
  let sent = 0;
  while (sent < total) {
    const n = Math.min(size, total - sent);
    parts.push(n);
    sent += n;
    size = nextPartSize(size, sent);
  }
  return parts;
}

describe("nextPartSize", () => {
  it("keeps the first size for the first GROWTH_PARTS parts, then doubles", () => {
    const p = 8 * MiB;
    expect(nextPartSize(p, (GROWTH_PARTS - 1) * p)).toBe(p);
    expect(nextPartSize(p, GROWTH_PARTS * p)).toBe(2 * p);
    // Each doubling comes after half as many parts again of the new size.
    expect(nextPartSize(2 * p, 2 * GROWTH_PARTS * p - 1)).toBe(2 * p);
    expect(nextPartSize(2 * p, 2 * GROWTH_PARTS * p)).toBe(4 * p);
  });

  it("leaves a 1 GB dump at the configured part size", () => {
    expect(new Set(partsOf(1e9, 8 * MiB).slice(0, -1))).toEqual(new Set([8 * MiB]));
  });

  it.each([5, 6, 8, 16, 100, 2561, 5120])("fits a 5 TiB object in S3's limits starting from %i MiB parts", (first) => {
    const parts = partsOf(5 * TiB, first * MiB);
    expect(parts.length).toBeLessThanOrEqual(9_000);
    expect(parts.length).toBeLessThanOrEqual(MAX_PARTS);
    expect(Math.max(...parts)).toBeLessThanOrEqual(MAX_PART_BYTES);
    expect(parts.reduce((a, b) => a + b, 0)).toBe(5 * TiB);
  });
});
