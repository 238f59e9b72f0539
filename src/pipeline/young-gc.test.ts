import { afterEach, describe, expect, it } from "vitest";
import { youngCollector } from "./young-gc.ts";

const g = globalThis as { gc?: unknown };
const saved = g.gc;
afterEach(() => {
  g.gc = saved;
});

describe("youngCollector", () => {
  it("asks for a minor collection each time the stream passed another interval", () => {
    const calls: unknown[] = [];
    g.gc = (options: unknown) => calls.push(options);
    const collect = youngCollector(100);
    for (const total of [50, 99, 100, 150, 199, 250, 260, 1000]) collect(total);
    // 100 reached (next at 200), 250 reached (next at 350), 1000 reached.
    expect(calls).toEqual([{ type: "minor" }, { type: "minor" }, { type: "minor" }]);
  });
});
