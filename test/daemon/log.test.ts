import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/daemon/log.ts";
import { Notifier } from "../../src/daemon/notify.ts";
import { ping, pingUrl } from "../../src/daemon/ping.ts";
import { InstantClock, memoryLogger } from "./fakes.ts";

describe("logger", () => {
  const now = () => new Date("2026-11-24T12:00:00.000Z");

  it("writes one JSON object per event with the common fields, and never a URL's password", () => {
    const lines: string[] = [];
    const log = createLogger({ json: true, now, write: (l) => lines.push(l) }).child({ job: "orders", runId: "ab12" });
    log.error("run.failed", { phase: "dump", durationMs: 42, error: new Error("connect postgres://app:hunter2@db:5432/orders failed") });
    log.debug("hidden");
    expect(lines).toHaveLength(1);
    expect(lines[0]?.endsWith("\n")).toBe(true);
    const e = JSON.parse(lines[0] as string);
    expect(e).toEqual({
      time: "2026-11-24T12:00:00.000Z",
      level: "error",
      event: "run.failed",
      job: "orders",
      runId: "ab12",
      phase: "dump",
      durationMs: 42,
      error: "connect postgres://app:**redacted**@db:5432/orders failed",
    });
    expect(lines[0]).not.toContain("hunter2");
  });

  it("writes readable lines on a terminal", () => {
    const lines: string[] = [];
    createLogger({ json: false, now, write: (l) => lines.push(l) }).warn("run.skipped", {
      job: "orders",
      reason: "overlap",
      note: "two words",
    });
    expect(lines[0]).toBe('2026-11-24 12:00:00 WARN  run.skipped job=orders reason=overlap note="two words"\n');
  });
});

describe("webhooks and pings", () => {
  async function receiver(statuses: number[]) {
    const got: { path: string; body: string }[] = [];
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => {
        body += d;
      });
      req.on("end", () => {
        got.push({ path: req.url ?? "", body });
        res.writeHead(statuses.shift() ?? 200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return { got, url, close: () => new Promise<void>((r) => server.close(() => r())) };
  }

  it("retries a webhook that answers 500, then delivers; the body has a Slack text and structured fields", async () => {
    const r = await receiver([500, 200]);
    const mem = memoryLogger();
    const clock = new InstantClock();
    const n = new Notifier({ webhooks: [`${r.url}/hook/SECRET`], log: mem.log, clock, backoffMs: 1000 });
    await n.send({ event: "backup.failed", severity: "error", job: "orders", text: "backup failed", error: "x postgres://u:pw@h/db" });
    await r.close();
    expect(r.got).toHaveLength(2);
    expect(clock.slept).toEqual([1000]);
    const body = JSON.parse(r.got[1]?.body as string);
    expect(body).toMatchObject({ text: "backup failed", event: "backup.failed", job: "orders", error: "x postgres://u:**redacted**@h/db" });
    expect(JSON.stringify(mem.events)).not.toContain("SECRET");
  });

  it("gives up after 3 attempts without throwing", async () => {
    const mem = memoryLogger();
    const n = new Notifier({ webhooks: ["http://127.0.0.1:1/hook"], log: mem.log, clock: new InstantClock() });
    await expect(n.send({ event: "drill.failed", severity: "error", job: "j", text: "t" })).resolves.toBeUndefined();
    expect(mem.events.filter((e) => e.event === "notify.failed").map((e) => e.level)).toEqual(["warn", "warn", "error"]);
  });

  it("pings start, success and fail by the healthchecks.io convention, and survives a dead endpoint", async () => {
    expect(pingUrl("https://hc-ping.com/abc/", "start")).toBe("https://hc-ping.com/abc/start");
    expect(pingUrl("https://hc-ping.com/abc", "success")).toBe("https://hc-ping.com/abc");
    const r = await receiver([]);
    const mem = memoryLogger();
    for (const kind of ["start", "success", "fail"] as const)
      await ping(`${r.url}/p/uuid`, kind, { log: mem.log, message: kind === "fail" ? "boom" : "" });
    await r.close();
    expect(r.got.map((g) => g.path)).toEqual(["/p/uuid/start", "/p/uuid", "/p/uuid/fail"]);
    expect(r.got[2]?.body).toBe("boom");
    await ping("http://127.0.0.1:1/x", "start", { log: mem.log, timeoutMs: 500 });
    expect(mem.events.at(-1)).toMatchObject({ event: "ping.failed", level: "warn" });
  });
});
