// `npm run bench` (tsx bench/backup.ts): lifeboat's backup against the floor and the usual hand-rolled pipeline, on
// the same ~1 GB database, in the same run, interleaved. See docs/BENCHMARK.md.
//
// Environment:
//   BENCH_MB=1000        size of the database lifeboat_bench, MiB (pg_database_size)
//   BENCH_REBUILD=1      recreate the database even if one of the right size exists
//   BENCH_DROP=1         drop lifeboat_bench at the end (default: keep it for the next run)
//   BENCH_ROUNDS=2       rounds; each runs every variant once, in rotated order; medians are reported
//   BENCH_FS=0           skip the lifeboat → filesystem comparison run
//   BENCH_PG_URL         maintenance database to connect to (default postgres://postgres@127.0.0.1:5432/postgres)
//   BENCH_RESULTS        where to write the JSON results (default $TMPDIR/lifeboat-bench-results.json)
//   BENCH_PART_MIB, BENCH_QUEUE_SIZE   override the S3 target's partSizeMiB / queueSize (defaults: lifeboat's)
//   BENCH_ONLY=floor,lifeboatS3        run only these variants (floor, handRolled, lifeboatS3, lifeboatFs)
//   BENCH_LIFEBOAT_NODE_OPTIONS        extra NODE_OPTIONS for the lifeboat CLI only (e.g. --cpu-prof --cpu-prof-dir=/tmp/p)
//   BENCH_S3_NODE_OPTIONS              extra Node options for the embedded S3 server's process (e.g. --cpu-prof)
//   BENCH_LIFEBOAT_BIN                 another checkout's bin/lifeboat.js, to measure that version (before/after); run as
//                                      an executable, as users run it (its shebang sets lifeboat's V8 flags)
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { generateIdentity, identityToRecipient } from "age-encryption";
import { pgEnv } from "../src/sources/postgres.ts";
import { EMBEDDED_S3_CREDENTIALS } from "../src/storage/embedded-s3.ts";
import { BENCH_DB, type BenchDatabase, dropBenchDatabase, ensureBenchDatabase } from "./database.ts";
import { cpuList, mb, type RunRecord, report, secs, type Variant } from "./report.ts";
import { cpuSeconds, haveGnuTime, type Measured, measure } from "./run.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const env = process.env;
const MB = Number(env.BENCH_MB ?? 1000);
const ROUNDS = Math.max(1, Number(env.BENCH_ROUNDS ?? 2));
const WITH_FS = env.BENCH_FS !== "0";
const ADMIN_URL = env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const RESULTS = env.BENCH_RESULTS ?? join(tmpdir(), "lifeboat-bench-results.json");
const BUCKET = "lifeboat-bench";
const LIFEBOAT_BIN = resolve(env.BENCH_LIFEBOAT_BIN ?? join(root, "bin", "lifeboat.js"));

const log = (s: string) => process.stdout.write(`${s}\n`);

function toolVersion(cmd: string, arg = "--version"): string {
  try {
    return (
      execFileSync(cmd, [arg], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
        .split("\n")[0]
        ?.trim() ?? ""
    );
  } catch {
    return "missing";
  }
}

/** The V8 flags on the CLI's shebang line ("#!/usr/bin/env -S node --a --b"). */
const CLI_NODE_FLAGS = (() => {
  const first = readFileSync(LIFEBOAT_BIN, "utf8").split("\n", 1)[0] ?? "";
  return /^#!.*\bnode\s+(.*)$/.exec(first)?.[1]?.split(/\s+/).filter(Boolean) ?? [];
})();

/**
 * The embedded S3 server's V8 flags: the CLI's, since it streams the same bytes through the same kind of buffers
 * (without them its garbage collection cost about 0.6 CPU-s more per run), and a larger initial old generation. Its
 * heap holds about 20 MB of live objects while every received body chunk is a fresh buffer outside it; with the
 * default initial size, V8 ran 33–44 mark-compacts per GB received, each freeing about 1 MB, 1.3–2 CPU-s in all. With
 * room to spare, scavenges free those buffers instead (docs/BENCHMARK.md). It stands in for a remote bucket, so its
 * CPU on the benchmark's cores is an artefact of the benchmark, not lifeboat's work.
 */
const S3_NODE_FLAGS = [...CLI_NODE_FLAGS, "--initial-old-space-size=128"];

/** The embedded S3 server, in its own process (bench/s3-server.ts). */
async function startS3(directory: string): Promise<{ endpoint: string; child: ChildProcess; stop: () => Promise<void> }> {
  const nodeOptions = [...S3_NODE_FLAGS, ...(env.BENCH_S3_NODE_OPTIONS?.split(/\s+/).filter(Boolean) ?? [])];
  const script = join(root, "bench", "s3-server.ts");
  const child = spawn(process.execPath, [...nodeOptions, "--import", "tsx", script, directory, BUCKET], {
    cwd: root,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const first = await Promise.race([
    once(lines, "line").then(([l]) => String(l)),
    once(child, "exit").then(() => {
      throw new Error("the embedded S3 server exited before it was ready");
    }),
  ]);
  const { endpoint } = JSON.parse(first) as { endpoint: string };
  return {
    endpoint,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = once(child, "exit");
      child.kill("SIGTERM");
      await gone;
    },
  };
}

function writeProject(dir: string, endpoint: string, recipient: string, dbUrl: string): string {
  const part = env.BENCH_PART_MIB ? `partSizeMiB: ${Number(env.BENCH_PART_MIB)}, ` : "";
  const queue = env.BENCH_QUEUE_SIZE ? `queueSize: ${Number(env.BENCH_QUEUE_SIZE)}, ` : "";
  mkdirSync(join(dir, "jobs"));
  mkdirSync(join(dir, "fs-target"));
  const config = join(dir, "backup.config.ts");
  writeFileSync(
    config,
    `import { defineConfig } from "lifeboat";
export default defineConfig({
  encryption: { recipients: [${JSON.stringify(recipient)}] },
  targets: {
    s3: {
      type: "s3", bucket: "${BUCKET}", prefix: "lb", endpoint: "${endpoint}", forcePathStyle: true, ${part}${queue}
      credentials: { accessKeyId: "${EMBEDDED_S3_CREDENTIALS.accessKeyId}", secretAccessKey: "${EMBEDDED_S3_CREDENTIALS.secretAccessKey}" },
      boundary: "bench-s3",
    },
    fs: { type: "filesystem", path: ${JSON.stringify(join(dir, "fs-target"))}, boundary: "bench-fs" },
  },
});
`,
  );
  for (const [name, target] of [
    ["bench", "s3"],
    ["bench-fs", "fs"],
  ]) {
    writeFileSync(
      join(dir, "jobs", `${name}.ts`),
      `import { defineJob } from "lifeboat";
export default defineJob({ name: "${name}", source: { type: "postgres", url: ${JSON.stringify(dbUrl)}, boundary: "bench-postgres" }, targets: ["${target}"] });
`,
    );
  }
  return config;
}

interface Context {
  dir: string;
  config: string;
  recipient: string;
  db: BenchDatabase;
  s3: { child: ChildProcess };
  devNull: number;
  seq: number;
}

/** The CPU of every process that worked for a run: its own tree (GNU time, else sampled), the backends, s3rver. */
function totalCpu(m: Measured, extra = 0): number {
  const sampled = Object.values(m.cpuByCommand).reduce((a, b) => a + b, 0);
  if (m.userS === undefined) return sampled + extra;
  return m.userS + (m.sysS ?? 0) + (m.cpuByCommand["postgres (server)"] ?? 0) + extra;
}

function record(variant: Variant, round: number, loadavgBefore: number, m: Measured): RunRecord {
  const { stdout: _o, stderr, ...rest } = m;
  const ok = m.status === 0;
  return { ...rest, variant, round, loadavgBefore, totalCpuS: totalCpu(m), ok, error: ok ? undefined : stderr.trim().slice(-2000) };
}

async function runVariant(ctx: Context, variant: Variant, round: number): Promise<RunRecord> {
  const timeFile = join(ctx.dir, `time-${ctx.seq++}.txt`);
  // The PostgreSQL backends serving the dump (and lifeboat's row counts) do much of the work: their CPU is shown too.
  const servers = { name: "postgres (server)", match: new RegExp(`^postgres: .*${BENCH_DB} `) };
  const dumpEnv = { ...env, ...pgEnv(ctx.db.url) };
  const load = loadavg()[0] as number;
  if (variant === "floor") {
    const m = await measure("pg_dump", ["-Fc", "-Z0", "-d", BENCH_DB], { env: dumpEnv, stdoutFd: ctx.devNull, timeFile, servers });
    return record(variant, round, load, m);
  }
  if (variant === "handRolled") {
    const out = join(ctx.dir, "hand-rolled.age");
    const script = 'set -o pipefail; pg_dump -Fc -d "$BENCH_DB" | age -r "$BENCH_RECIPIENT" > "$BENCH_OUT"';
    const m = await measure("bash", ["-c", script], {
      env: { ...dumpEnv, BENCH_DB, BENCH_RECIPIENT: ctx.recipient, BENCH_OUT: out },
      timeFile,
      servers,
    });
    const rec = record(variant, round, load, m);
    if (rec.ok) rec.outputBytes = statSync(out).size;
    rmSync(out, { force: true });
    return rec;
  }
  const job = variant === "lifeboatS3" ? "bench" : "bench-fs";
  const s3pid = ctx.s3.child.pid as number;
  const s3cpu0 = cpuSeconds(s3pid);
  const nodeOptions = env.BENCH_LIFEBOAT_NODE_OPTIONS;
  const m = await measure(LIFEBOAT_BIN, ["--config", ctx.config, "--json", "backup", job], {
    cwd: ctx.dir,
    env: nodeOptions ? { ...env, NODE_OPTIONS: `${env.NODE_OPTIONS ?? ""} ${nodeOptions}`.trim() } : env,
    timeFile,
    servers,
  });
  const rec = record(variant, round, load, m);
  if (variant === "lifeboatS3") {
    // s3rver stands in for a remote service: its CPU is counted in the total, since it shares this machine.
    const s3cpu = cpuSeconds(s3pid) - s3cpu0;
    rec.cpuByCommand.s3rver = s3cpu;
    rec.totalCpuS = totalCpu(m, s3cpu);
  }
  try {
    const r = JSON.parse(m.stdout) as { ok: boolean; durationMs: number; rawBytes: number; compressedBytes: number; storedBytes: number };
    rec.ok = rec.ok && r.ok;
    rec.lifeboatDurationS = r.durationMs / 1000;
    rec.lifeboatRawBytes = r.rawBytes;
    rec.lifeboatCompressedBytes = r.compressedBytes;
    rec.outputBytes = r.storedBytes;
    if (!rec.ok) rec.error = `exit ${m.status}: ${m.stdout.trim().slice(-2000)}`;
  } catch {
    rec.ok = false;
    rec.error = `exit ${m.status}: ${(m.stderr || m.stdout).trim().slice(-2000)}`;
  }
  // Keep the disk from filling up over rounds: the stored snapshots are not needed.
  rmSync(join(ctx.dir, "s3", BUCKET, "lb"), { recursive: true, force: true });
  rmSync(join(ctx.dir, "fs-target", "bench-fs"), { recursive: true, force: true });
  return rec;
}

const pad = (s: string, n: number) => s.padEnd(n);
const lpad = (s: string, n: number) => s.padStart(n);

async function main(): Promise<void> {
  for (const tool of ["pg_dump", "age", "zstd"]) {
    if (toolVersion(tool) === "missing") throw new Error(`${tool} is not installed; the benchmark needs it`);
  }
  log(`lifeboat benchmark: ${MB} MiB database, ${ROUNDS} round(s), ${cpus().length} CPU(s), load ${loadavg()[0]?.toFixed(2)}`);
  if (!haveGnuTime) log("(no /usr/bin/time: CPU time and exact peak RSS are not available; RSS is sampled from /proc)");

  log(`database ${BENCH_DB}:`);
  const db = await ensureBenchDatabase(ADMIN_URL, MB, env.BENCH_REBUILD === "1", log);
  log(
    `  ${db.created ? `created in ${secs(db.createSeconds)}` : "reused (BENCH_REBUILD=1 to recreate)"}: ` +
      `${(db.bytes / 1048576).toFixed(0)} MiB, ${db.rows.toLocaleString("en")} orders`,
  );

  const dir = mkdtempSync(join(tmpdir(), "lifeboat-bench-"));
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  const cleanup = async () => {
    for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => {});
  };
  const onSignal = () => {
    cleanup().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const s3 = await startS3(join(dir, "s3"));
    cleanups.push(() => s3.stop());
    const identity = await generateIdentity();
    const recipient = await identityToRecipient(identity);
    writeFileSync(join(dir, "identity.txt"), `${identity}\n`, { mode: 0o600 });
    const config = writeProject(dir, s3.endpoint, recipient, db.url);
    const devNull = openSync("/dev/null", "w");
    cleanups.push(() => closeSync(devNull));
    const ctx: Context = { dir, config, recipient, db, s3, devNull, seq: 0 };
    log(`embedded S3 server ${s3.endpoint} (pid ${s3.child.pid}), work directory ${dir}`);
    if (env.BENCH_LIFEBOAT_BIN) log(`lifeboat: ${LIFEBOAT_BIN}`);
    log(`embedded S3 server: its own Node process, flags ${S3_NODE_FLAGS.join(" ")} (the CLI's, and a larger old generation)`);

    // Warm-up, not measured: the database into the page cache, tsx's compile cache for the CLI.
    log("warm-up: one pg_dump to /dev/null, one lifeboat start");
    await runVariant(ctx, "floor", 0);
    await measure(LIFEBOAT_BIN, ["--config", config, "snapshots", "bench-fs"], {
      cwd: dir,
      env,
      timeFile: join(dir, "warm.txt"),
    });

    const all: Variant[] = ["floor", "handRolled", "lifeboatS3", ...(WITH_FS ? (["lifeboatFs"] as const) : [])];
    const only = env.BENCH_ONLY?.split(",").filter(Boolean);
    const variants = only ? all.filter((v) => only.includes(v)) : all;
    const runs: RunRecord[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      // Rotated each round, so no variant always runs right after the same neighbour.
      const order = variants.map((_, i) => variants[(i + round - 1) % variants.length] as Variant);
      for (const v of order) {
        const r = await runVariant(ctx, v, round);
        runs.push(r);
        log(
          `  round ${round} ${pad(v, 11)} ${lpad(secs(r.wallS), 9)}  cpu ${secs(r.totalCpuS)}  rss ${mb(Math.max(r.mainHwmKiB ?? 0, r.maxRssKiB ?? 0) || undefined)}` +
            `  [${cpuList(r.cpuByCommand)}]  load ${r.loadavgBefore.toFixed(1)}${r.ok ? "" : `  FAILED: ${r.error}`}`,
        );
      }
    }
    report({
      runs,
      variants,
      rounds: ROUNDS,
      database: { name: BENCH_DB, mib: MB, bytes: db.bytes, rows: db.rows, created: db.created, createSeconds: db.createSeconds },
      tools: { pg_dump: toolVersion("pg_dump"), zstd: toolVersion("zstd"), age: toolVersion("age") },
      resultsFile: RESULTS,
      log,
    });
  } finally {
    await cleanup();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (env.BENCH_DROP === "1") {
      await dropBenchDatabase(ADMIN_URL);
      log(`dropped ${BENCH_DB} (BENCH_DROP=1)`);
    }
  }
}

main().catch((err) => {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  // Exit 0 as documented: the benchmark reports, it does not gate. The message above says what went wrong.
});
