// Summarizes the benchmark's runs: medians, ratios against the floor of the same run, the targets, and the JSON.
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import type { Measured } from "./run.ts";

/** The pipelines measured. */
export type Variant = "floor" | "handRolled" | "lifeboatS3" | "lifeboatFs";

export const LABELS: Record<Variant, string> = {
  floor: "floor        pg_dump -Fc -Z0 > /dev/null",
  handRolled: "hand-rolled  pg_dump -Fc | age > file",
  lifeboatS3: "lifeboat     backup → embedded S3 (s3rver)",
  lifeboatFs: "lifeboat     backup → filesystem target",
};

/** The targets of the issue: lifeboat within 1.5× the floor, faster than hand-rolled, under 250 MB resident. */
export const MAX_FLOOR_RATIO = 1.5;
export const MAX_RSS_BYTES = 250e6;

/** One measured run of one variant. */
export interface RunRecord extends Omit<Measured, "stdout" | "stderr"> {
  variant: Variant;
  round: number;
  loadavgBefore: number;
  /** CPU seconds of every process that worked for this run: its own tree, the PostgreSQL backends, s3rver. */
  totalCpuS: number;
  /** Bytes written: the age file (hand-rolled) or the stored object (lifeboat). */
  outputBytes?: number;
  /** lifeboat's own durationMs (the backup, without Node and config start-up). */
  lifeboatDurationS?: number;
  lifeboatRawBytes?: number;
  lifeboatCompressedBytes?: number;
  ok: boolean;
  error?: string;
}

/** The medians (peaks: the worst run) of one variant. */
export interface VariantSummary {
  runs: number;
  failed: number;
  wallS: number;
  minWallS: number;
  maxWallS: number;
  totalCpuS: number;
  cpuByCommand: Record<string, number>;
  /** Peak RSS of the command's own process (lifeboat's Node process), or of its largest process, KiB. */
  peakRssKiB?: number;
  treeRssKiB: number;
  outputBytes?: number;
  lifeboatDurationS?: number;
}

export const secs = (s: number) => `${s.toFixed(2)} s`;
export const mb = (kib: number | undefined) => (kib === undefined ? "n/a" : `${((kib * 1024) / 1e6).toFixed(0)} MB`);
/** "node 9.1, zstd 4.0, …", largest first. */
export const cpuList = (by: Record<string, number>) =>
  Object.entries(by)
    .filter(([c, v]) => c !== "time" && c !== "bash" && v >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .map(([c, v]) => `${c} ${v.toFixed(1)}`)
    .join(", ");
const pad = (s: string, n: number) => s.padEnd(n);
const lpad = (s: string, n: number) => s.padStart(n);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function summarize(all: RunRecord[], v: Variant): VariantSummary | undefined {
  const rs = all.filter((r) => r.variant === v && r.ok);
  if (rs.length === 0) return undefined;
  const commands = new Set(rs.flatMap((r) => Object.keys(r.cpuByCommand)));
  const durations = rs.map((r) => r.lifeboatDurationS).filter((d) => d !== undefined);
  const rss = Math.max(...rs.map((r) => Math.max(r.mainHwmKiB ?? 0, r.maxRssKiB ?? 0)));
  return {
    runs: rs.length,
    failed: all.filter((r) => r.variant === v && !r.ok).length,
    wallS: median(rs.map((r) => r.wallS)),
    minWallS: Math.min(...rs.map((r) => r.wallS)),
    maxWallS: Math.max(...rs.map((r) => r.wallS)),
    totalCpuS: median(rs.map((r) => r.totalCpuS)),
    cpuByCommand: Object.fromEntries([...commands].map((c) => [c, median(rs.map((r) => r.cpuByCommand[c] ?? 0))])),
    peakRssKiB: rss || undefined,
    treeRssKiB: Math.max(...rs.map((r) => r.treeRssKiB)),
    outputBytes: rs[0]?.outputBytes,
    lifeboatDurationS: durations.length ? median(durations) : undefined,
  };
}

/** What report() prints and writes. */
export interface ReportInput {
  runs: RunRecord[];
  variants: Variant[];
  rounds: number;
  database: Record<string, unknown>;
  tools: Record<string, string>;
  resultsFile: string;
  log: (s: string) => void;
}

/** Prints the table, the ratios and the verdicts, and writes everything as JSON. */
export function report({ runs, variants, rounds, database, tools, resultsFile, log }: ReportInput): void {
  const summary: Partial<Record<Variant, VariantSummary>> = {};
  for (const v of variants) summary[v] = summarize(runs, v);
  const floor = summary.floor?.wallS;
  const ratio = (a?: number, b?: number) => (a !== undefined && b !== undefined ? a / b : undefined);
  const ratios = {
    lifeboatOverFloor: ratio(summary.lifeboatS3?.wallS, floor),
    handRolledOverFloor: ratio(summary.handRolled?.wallS, floor),
    lifeboatOverHandRolled: ratio(summary.lifeboatS3?.wallS, summary.handRolled?.wallS),
    lifeboatFsOverFloor: ratio(summary.lifeboatFs?.wallS, floor),
    lifeboatFsOverHandRolled: ratio(summary.lifeboatFs?.wallS, summary.handRolled?.wallS),
  };
  const rssKiB = summary.lifeboatS3?.peakRssKiB;
  const rssBytes = rssKiB === undefined ? undefined : rssKiB * 1024;
  const pass = (x: number | undefined, ok: (x: number) => boolean) => (x === undefined ? undefined : ok(x));
  const targets = {
    floorRatio: {
      limit: MAX_FLOOR_RATIO,
      value: ratios.lifeboatOverFloor,
      pass: pass(ratios.lifeboatOverFloor, (x) => x <= MAX_FLOOR_RATIO),
    },
    fasterThanHandRolled: { value: ratios.lifeboatOverHandRolled, pass: pass(ratios.lifeboatOverHandRolled, (x) => x < 1) },
    peakRss: { limitBytes: MAX_RSS_BYTES, valueBytes: rssBytes, pass: pass(rssBytes, (x) => x < MAX_RSS_BYTES) },
  };

  log("");
  log(`Results: median of ${rounds} round(s); ratios are against the floor measured in this run`);
  log(`${pad("", 46)}${lpad("wall", 9)}${lpad("×floor", 8)}${lpad("CPU", 9)}${lpad("peak RSS", 10)}${lpad("output", 9)}`);
  for (const v of variants) {
    const s = summary[v];
    if (!s) {
      log(`${pad(LABELS[v], 46)}  every run FAILED`);
      continue;
    }
    const out = s.outputBytes === undefined ? "-" : `${(s.outputBytes / 1e6).toFixed(0)} MB`;
    log(
      `${pad(LABELS[v], 46)}${lpad(secs(s.wallS), 9)}${lpad(floor ? `${(s.wallS / floor).toFixed(2)}×` : "-", 8)}` +
        `${lpad(secs(s.totalCpuS), 9)}${lpad(mb(s.peakRssKiB), 10)}${lpad(out, 9)}`,
    );
  }
  log(
    "  wall: median (min–max): " +
      variants.map((v) => `${v} ${summary[v] ? `${summary[v].minWallS.toFixed(1)}–${summary[v].maxWallS.toFixed(1)}` : "-"}`).join(", "),
  );
  log("  CPU: every process that worked for the run, including the PostgreSQL backends and s3rver:");
  for (const v of variants) if (summary[v]) log(`    ${pad(v, 11)} ${cpuList(summary[v].cpuByCommand)}`);
  const lb = summary.lifeboatS3;
  if (lb?.lifeboatDurationS !== undefined) {
    log(
      `  lifeboat → S3: the backup itself took ${secs(lb.lifeboatDurationS)}; the rest of the wall time is Node, tsx and config start-up`,
    );
  }
  if (lb)
    log(`  lifeboat → S3: peak RSS of the CLI's Node process ${mb(lb.peakRssKiB)}; whole process tree (sampled) ${mb(lb.treeRssKiB)}`);

  const verdict = (ok: boolean | undefined) => (ok === undefined ? "n/a " : ok ? "PASS" : "FAIL");
  const f = (x?: number) => (x === undefined ? "n/a" : `${x.toFixed(2)}×`);
  log("");
  log("Targets (lifeboat → embedded S3):");
  log(`  ${verdict(targets.floorRatio.pass)}  lifeboat / floor        ${f(ratios.lifeboatOverFloor)}  (target ≤ ${MAX_FLOOR_RATIO}×)`);
  log(`  ${verdict(targets.fasterThanHandRolled.pass)}  lifeboat / hand-rolled  ${f(ratios.lifeboatOverHandRolled)}  (target < 1×)`);
  log(
    `  ${verdict(targets.peakRss.pass)}  peak RSS                ${rssBytes === undefined ? "n/a" : `${(rssBytes / 1e6).toFixed(0)} MB`}  (target < ${MAX_RSS_BYTES / 1e6} MB)`,
  );
  log(`  info  hand-rolled / floor     ${f(ratios.handRolledOverFloor)}`);
  if (summary.lifeboatFs)
    log(`  info  lifeboat → filesystem: / floor ${f(ratios.lifeboatFsOverFloor)}, / hand-rolled ${f(ratios.lifeboatFsOverHandRolled)}`);
  const failed = runs.filter((r) => !r.ok);
  for (const r of failed) log(`  FAILED run: ${r.variant} round ${r.round}: ${r.error}`);

  const results = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
    tools,
    database,
    rounds,
    summary,
    ratios,
    targets,
    runs,
  };
  writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
  log(`\nJSON results: ${resultsFile}`);
}
