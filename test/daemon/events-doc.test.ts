import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const root = new URL("../../", import.meta.url);
const read = (rel: string) => readFileSync(new URL(rel, root), "utf8");

describe("docs/DAEMON.md", () => {
  it("lists every log event the daemon writes", () => {
    const sources = [...readdirSync(new URL("src/daemon/", root)).map((f) => `src/daemon/${f}`), "src/cli/daemon.ts"];
    const events = new Set<string>();
    for (const f of sources) {
      // log.info("event", …) and log[level]("event", …)
      for (const m of read(f).matchAll(/(?:\b(?:debug|info|warn|error)|\])\("([a-z]+\.[a-z-]+)"/g)) events.add(m[1] as string);
      for (const m of read(f).matchAll(/"(run\.(?:aborted|failed))"/g)) events.add(m[1] as string);
    }
    expect(events.size).toBeGreaterThan(20);
    const doc = read("docs/DAEMON.md");
    expect([...events].filter((e) => !doc.includes(`\`${e}\``)).sort()).toEqual([]);
  });
});
