import { describe, expect, it } from "vitest";
import type { LoadedConfig } from "../../src/config/load.ts";
import { validateSchedules } from "../../src/daemon/cron.ts";
import { type RunContext, type RunSummary, Scheduler, type SchedulerOptions, type Task } from "../../src/daemon/scheduler.ts";
import { ConfigError, code, LifeboatError } from "../../src/errors.ts";
import { deferred, FakeCron, flush, InstantClock, ManualClock, memoryLogger } from "./fakes.ts";

const job = (name: string, schedule = "0 * * * *"): Task => ({ key: `job:${name}`, kind: "job", name, schedule });

function setup(over: Partial<SchedulerOptions> & { run: SchedulerOptions["run"] }) {
  const cron = new FakeCron();
  const mem = memoryLogger();
  const finished: RunSummary[] = [];
  const skipped: string[] = [];
  const started: string[] = [];
  const s = new Scheduler({
    tasks: [job("a"), job("b"), job("c")],
    cron,
    clock: new InstantClock(),
    log: mem.log,
    timezone: "UTC",
    concurrency: 2,
    retry: { attempts: 2, backoffMs: 1000 },
    hooks: {
      onStart: (t) => {
        started.push(t.key);
      },
      onFinish: (x) => {
        finished.push(x);
      },
      onSkip: (t, reason) => {
        skipped.push(`${t.key}:${reason}`);
      },
    },
    ...over,
  });
  s.start();
  return { s, cron, finished, skipped, started, events: mem.events };
}

describe("Scheduler", () => {
  it("runs a task when its cron fires, in the configured time zone", async () => {
    const ran: string[] = [];
    const { s, cron, finished } = setup({ run: async (t) => void ran.push(t.key), timezone: "Europe/Berlin" });
    expect(cron.scheduled.get("job:a")).toMatchObject({ expression: "0 * * * *", timezone: "Europe/Berlin" });
    cron.fire("job:a");
    await s.idle();
    expect(ran).toEqual(["job:a"]);
    expect(finished.map((f) => [f.task.key, f.outcome, f.attempts])).toEqual([["job:a", "ok", 1]]);
  });

  it("skips a trigger while the previous run of the same task is still going, and logs it", async () => {
    const gate = deferred();
    let runs = 0;
    const { s, cron, skipped, events } = setup({
      run: async () => {
        runs++;
        await gate.promise;
      },
    });
    cron.fire("job:a");
    cron.fire("job:a");
    expect(s.trigger("job:a")).toBe("overlap");
    expect(skipped).toEqual(["job:a:overlap", "job:a:overlap"]);
    expect(events.filter((e) => e.event === "run.skipped")).toHaveLength(2);
    gate.resolve();
    await s.idle();
    expect(runs).toBe(1);
    expect(s.trigger("job:a")).toBe("started");
    await s.idle();
    expect(runs).toBe(2);
  });

  it("runs at most `concurrency` tasks at once; the others wait their turn", async () => {
    const gates = new Map<string, { resolve: () => void }>();
    const order: string[] = [];
    const { s } = setup({
      run: async (t) => {
        order.push(t.key);
        const g = deferred();
        gates.set(t.key, g);
        await g.promise;
      },
    });
    for (const k of ["job:a", "job:b", "job:c"]) s.trigger(k);
    await flush();
    expect(s.inFlight).toBe(2);
    expect(order).toEqual(["job:a", "job:b"]);
    expect(s.active()).toEqual(["job:a", "job:b", "job:c"]);
    gates.get("job:a")?.resolve();
    await flush();
    await flush();
    expect(order).toEqual(["job:a", "job:b", "job:c"]);
    gates.get("job:b")?.resolve();
    gates.get("job:c")?.resolve();
    await s.idle();
    expect(s.inFlight).toBe(0);
  });

  it("retries a failed run with exponential backoff and reports the attempts", async () => {
    const clock = new InstantClock();
    let n = 0;
    const { s, finished } = setup({
      clock,
      run: async (_t, ctx: RunContext) => {
        n++;
        if (ctx.attempt < 3) throw new LifeboatError(code.storage, `transient ${ctx.attempt}`);
      },
    });
    s.trigger("job:a");
    await s.idle();
    expect(n).toBe(3);
    expect(clock.slept).toEqual([1000, 2000]);
    expect(finished[0]).toMatchObject({ outcome: "ok", attempts: 3 });
  });

  it("gives up after the configured retries", async () => {
    const { s, finished, started } = setup({
      run: async () => {
        throw new Error("always");
      },
    });
    s.trigger("job:a");
    await s.idle();
    expect(finished[0]).toMatchObject({ outcome: "failed", attempts: 3 });
    expect(String(finished[0]?.error)).toMatch(/always/);
    expect(started).toEqual(["job:a"]);
  });

  it.each([
    ["a config error", new ConfigError("bad")],
    ["a wrong key", new LifeboatError(code.crypto, "wrong key")],
    ["an error marked retryable: false", Object.assign(new Error("checks failed"), { retryable: false })],
  ])("does not retry %s", async (_name, err) => {
    let n = 0;
    const { s, finished } = setup({
      run: async () => {
        n++;
        throw err;
      },
    });
    s.trigger("job:a");
    await s.idle();
    expect(n).toBe(1);
    expect(finished[0]).toMatchObject({ outcome: "failed", attempts: 1 });
  });

  it("stop: lets an in-flight run finish within the grace period; nothing is aborted", async () => {
    const clock = new ManualClock();
    const gate = deferred();
    let signal: AbortSignal | undefined;
    const { s, cron, finished } = setup({
      clock,
      run: async (_t, ctx) => {
        signal = ctx.signal;
        await gate.promise;
      },
    });
    s.trigger("job:a");
    await flush();
    const stopping = s.stop(60_000);
    expect(s.state).toBe("stopping");
    expect(cron.scheduled.get("job:a")?.stopped).toBe(true);
    expect(s.trigger("job:b")).toBe("stopping");
    clock.advance(30_000);
    gate.resolve();
    expect(await stopping).toEqual({ aborted: [], stuck: [] });
    expect(signal?.aborted).toBe(false);
    expect(finished.map((f) => f.outcome)).toEqual(["ok"]);
    expect(s.state).toBe("stopped");
  });

  it("stop: aborts runs still going when the grace period ends, through their AbortSignal", async () => {
    const clock = new ManualClock();
    const { s, finished } = setup({
      clock,
      run: (_t, ctx) =>
        new Promise<void>((_resolve, reject) => {
          ctx.signal.addEventListener("abort", () => reject(new LifeboatError(code.aborted, "aborted")), { once: true });
        }),
    });
    s.trigger("job:a");
    await flush();
    const stopping = s.stop(5_000);
    await flush();
    clock.advance(5_000);
    const result = await stopping;
    expect(result.aborted).toEqual(["job:a"]);
    expect(finished.map((f) => f.outcome)).toEqual(["aborted"]);
  });

  it("stop: drops runs waiting for a slot and pending retries; they never start again", async () => {
    const clock = new ManualClock();
    const gate = deferred();
    const ran: string[] = [];
    const { s, finished, started } = setup({
      clock,
      concurrency: 1,
      run: async (t) => {
        ran.push(t.key);
        if (t.key === "job:a") throw new Error("fails, then waits for a retry");
        await gate.promise;
      },
    });
    s.trigger("job:a");
    await flush();
    await flush();
    expect(clock.sleeping).toEqual([1000]);
    s.trigger("job:b");
    await flush();
    s.trigger("job:c");
    await flush();
    expect(ran).toEqual(["job:a", "job:b"]);
    const stopping = s.stop(60_000);
    await flush();
    gate.resolve();
    expect(await stopping).toEqual({ aborted: [], stuck: [] });
    expect(ran).toEqual(["job:a", "job:b"]);
    expect(started).toEqual(["job:a", "job:b"]);
    expect(finished.map((f) => `${f.task.key}:${f.outcome}:${f.attempts}`).sort()).toEqual(["job:a:failed:1", "job:b:ok:1"]);
  });
});

describe("Scheduler stop during a start hook", () => {
  it("cancels a run whose start hook was still going when the stop came: no new runs after stop", async () => {
    const hook = deferred();
    const ran: string[] = [];
    const finished: RunSummary[] = [];
    const s = new Scheduler({
      tasks: [job("a")],
      cron: new FakeCron(),
      clock: new ManualClock(),
      log: memoryLogger().log,
      timezone: "UTC",
      concurrency: 1,
      retry: { attempts: 0, backoffMs: 0 },
      run: async (t) => void ran.push(t.key),
      hooks: { onStart: () => hook.promise, onFinish: (x) => void finished.push(x) },
    });
    s.start();
    s.trigger("job:a");
    await flush();
    const stopping = s.stop(1000);
    hook.resolve();
    expect(await stopping).toEqual({ aborted: [], stuck: [] });
    expect(ran).toEqual([]);
    expect(finished.map((f) => f.outcome)).toEqual(["cancelled"]);
  });
});

describe("validateSchedules", () => {
  const loaded = (schedule: string, timezone = "UTC") =>
    ({
      file: "/p/backup.config.ts",
      config: { daemon: { timezone } },
      jobs: new Map([["a", { name: "a", schedule, file: "/p/jobs/a.ts" }]]),
      drills: new Map([["d", { name: "d", job: "a", schedule: "0 4 * * 0", file: "/p/restore-drills/d.ts" }]]),
    }) as unknown as LoadedConfig;
  const cron = new FakeCron();

  it("accepts 5- and 6-field expressions", () => {
    expect(() => validateSchedules(loaded("0 */6 * * *"), cron)).not.toThrow();
    expect(() => validateSchedules(loaded("*/1 * * * * *"), cron)).not.toThrow();
  });

  it.each(["61 * * * *", "every day", "* * * *"])("rejects %j naming the file and the field", (expr) => {
    expect(() => validateSchedules(loaded(expr), cron)).toThrowError(ConfigError);
    expect(() => validateSchedules(loaded(expr), cron)).toThrowError(/\/p\/jobs\/a\.ts: schedule: ".*" is not a valid cron expression/);
  });

  it("rejects an unknown time zone naming daemon.timezone, with a time zone hint (not the cron one)", () => {
    expect(() => validateSchedules(loaded("0 * * * *", "Mars/Olympus"), cron)).toThrowError(
      /backup\.config\.ts: daemon\.timezone: "Mars\/Olympus"/,
    );
    const hintOf = (schedule: string) => {
      try {
        validateSchedules(loaded(schedule, "Mars/Olympus"), cron);
      } catch (e) {
        return (e as ConfigError).hint;
      }
    };
    expect(hintOf("0 * * * *")).toMatch(/^daemon\.timezone: use an IANA time zone name such as "UTC", "Europe\/Berlin"/);
    expect(hintOf("0 * * * *")).not.toMatch(/5 fields/);
    expect(hintOf("61 * * * *")).toMatch(/IANA time zone.*; schedule: use 5 fields/);
  });
});
