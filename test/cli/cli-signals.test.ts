import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeKey } from "../helpers/age.ts";
import { startCli } from "../helpers/cli.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/pg.ts";
import { writeProject } from "../helpers/project.ts";

// A second SIGTERM exits at once (130). Whatever lifeboat started must not outlive it: here a "pg_dump" that ignores
// SIGTERM (as a tool stuck in a system call effectively does) and would otherwise run on, reparented to init.
let db: TestDatabase;
let key: Awaited<ReturnType<typeof makeKey>>;
const bin = mkdtempSync(join(tmpdir(), "lifeboat-fake-tools-"));
const pidFile = join(bin, "pg_dump.pid");
const started: number[] = [];

beforeAll(async () => {
  [db, key] = await Promise.all([createTestDatabase(), makeKey()]);
  writeFileSync(
    join(bin, "pg_dump"),
    `#!/bin/sh
if [ "$1" = "--version" ]; then echo "pg_dump (PostgreSQL) 99.0"; exit 0; fi
echo $$ > ${JSON.stringify(pidFile)}
trap '' TERM INT
exec sleep 300
`,
  );
  chmodSync(join(bin, "pg_dump"), 0o755);
});

afterAll(async () => {
  for (const pid of started) if (alive(pid)) process.kill(pid, "SIGKILL");
  await db?.drop();
});

/** Whether a process runs (a zombie waiting to be reaped has ended). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

async function until(check: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function project(jobExtra = "", config = "") {
  const store = mkdtempSync(join(tmpdir(), "lifeboat-store-"));
  return writeProject({
    "backup.config.ts": `import { defineConfig } from "lifeboat";
export default defineConfig({ encryption: { recipients: ["${key.recipient}"] },
  targets: { nas: { type: "filesystem", path: ${JSON.stringify(store)}, boundary: "test:nas" } }${config} });
`,
    "jobs/shop.ts": `import { defineJob } from "lifeboat";
export default defineJob({ name: "shop", source: { type: "postgres", url: "${db.url}", boundary: "test:postgres" }, targets: ["nas"]${jobExtra} });
`,
  });
}

/** Starts the CLI, waits for the fake pg_dump, and returns its pid with the CLI's handle. */
async function startWithDump(args: string[]) {
  if (existsSync(pidFile)) writeFileSync(pidFile, "");
  const run = startCli(args, { PATH: `${bin}:${process.env.PATH}` });
  let stderr = "";
  run.child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  await until(() => existsSync(pidFile) && readFileSync(pidFile, "utf8").trim() !== "", "pg_dump to start");
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  started.push(pid);
  expect(alive(pid)).toBe(true);
  return { ...run, pid, stderr: () => stderr };
}

describe("a second signal exits at once, and takes the child processes with it", () => {
  it("backup: the first SIGTERM starts the clean-up, the second exits 130 and kills pg_dump", async () => {
    const p = project();
    const run = await startWithDump(["--config", p.config, "backup", "shop"]);
    run.child.kill("SIGTERM");
    await until(() => /received SIGTERM: stopping and cleaning up/.test(run.stderr()), "the first signal's message");
    run.child.kill("SIGTERM");
    const r = await run.result;
    expect(r.status).toBe(130);
    await until(() => !alive(run.pid), "pg_dump to be gone", 5_000);
  });

  it("daemon: SIGTERM waits for the run (grace period), a second SIGTERM exits 130 and kills pg_dump", async () => {
    const p = project(`, schedule: "* * * * * *"`, `, daemon: { shutdownGraceSeconds: 300, retry: { attempts: 0 }, metrics: { port: 0 } }`);
    const run = await startWithDump(["--config", p.config, "daemon"]);
    run.child.kill("SIGTERM");
    await until(() => run.stderr().includes('"event":"daemon.stopping"'), "the daemon to start its shutdown");
    expect(alive(run.pid)).toBe(true);
    run.child.kill("SIGTERM");
    const r = await run.result;
    expect(r.status).toBe(130);
    expect(r.stderr).toMatch(/"event":"daemon.exit-now".*"killed":[1-9]/);
    await until(() => !alive(run.pid), "pg_dump to be gone", 5_000);
  });
});
