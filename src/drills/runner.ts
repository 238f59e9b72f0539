import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DrillRecord, writeDrillRecord } from "../catalog/drill-record.ts";
import { makeSnapshotId } from "../catalog/snapshot-id.ts";
import { findSnapshot } from "../catalog/snapshots.ts";
import { getJob, type LoadedConfig, type LoadedDrill, type LoadedJob } from "../config/load.ts";
import { abortedError, ConfigError, code, LifeboatError, messageOf } from "../errors.ts";
import { openTarget } from "../pipeline/job.ts";
import { downloadArtifact, openArtifact, readInventory } from "../pipeline/restore.ts";
import type { Target } from "../storage/target.ts";
import { VERSION } from "../version.ts";
import type { ArtifactInput, CheckResult, Scratch } from "./kind.ts";
import { drillKindFor } from "./kinds.ts";

/** What a drill run needs. */
export interface DrillOptions {
  loaded: LoadedConfig;
  drill: string;
  /** age identities (secret keys) that decrypt the snapshot. */
  identities: readonly string[];
  /** Restore this snapshot instead of the newest complete one. */
  snapshotId?: string;
  signal?: AbortSignal;
  now?: () => Date;
  makeTarget?: (loaded: LoadedConfig, name: string) => Target;
  /** Called as phases start, for progress display and logs. */
  onPhase?: (phase: "find" | "fetch" | "restore" | "check" | "record", detail?: string) => void;
  /** Things a person should know that do not stop the drill (a newer snapshot whose manifest cannot be read). */
  onWarning?: (message: string) => void;
}

/** A drill run's record, and whether writing it to the target worked. */
export interface DrillOutcome {
  record: DrillRecord;
  /** Set when the record could not be stored; the drill's verdict stands, but it is not evidence yet. */
  recordError?: string;
}

/** Finds a drill by name, or throws a ConfigError listing the known ones. */
export function getDrill(loaded: LoadedConfig, name: string): LoadedDrill {
  const d = loaded.drills.get(name);
  if (!d)
    throw new ConfigError(`no drill named "${name}" in restore-drills/`, {
      hint: `known drills: ${[...loaded.drills.keys()].join(", ") || "(none)"}`,
    });
  return d;
}

/**
 * Runs one restore drill: newest complete snapshot (or the given one) → hash-checked download → decrypt → restore
 * into a fresh scratch place → checks → drop the scratch place (always, also on failure or abort) → drill record on
 * the target. A wrong key or an abort rejects without a record; everything else ends in a record with a verdict.
 */
export async function runDrill(opts: DrillOptions): Promise<DrillOutcome> {
  const drill = getDrill(opts.loaded, opts.drill);
  const job = getJob(opts.loaded, drill.job);
  const targetName = drill.from ?? (job.targets[0] as string);
  const target = (opts.makeTarget ?? openTarget)(opts.loaded, targetName);
  try {
    return await drillOn(target, drill, job, opts);
  } finally {
    await target.close?.();
  }
}

/** Errors that say the operator must act (wrong key, bad config, a guard, an abort, an unreadable target): no record, the run did not happen. */
function operatorError(err: unknown): boolean {
  return (
    // STORAGE: the target could not be read (a dropped connection, a refused request), which is no evidence about the
    // snapshot either way: a record would un-prove a good one over a network blip.
    err instanceof LifeboatError &&
    ([code.crypto, code.config, code.usage, code.refused, code.aborted, code.storage] as string[]).includes(err.code)
  );
}

async function drillOn(target: Target, drill: LoadedDrill, job: LoadedJob, opts: DrillOptions): Promise<DrillOutcome> {
  const now = opts.now ?? (() => new Date());
  const started = now();
  const signal = opts.signal ?? new AbortController().signal;
  const runId = makeSnapshotId(started);
  const kind = drillKindFor(job.source.type);
  const timings = { fetchMs: 0, restoreMs: 0, checksMs: 0, totalMs: 0 };
  opts.onPhase?.("find", target.name);
  const manifest = await findSnapshot(target, job.name, opts.snapshotId, opts.onWarning);
  let scratch: Scratch | undefined;
  let tmp: string | undefined;
  let checks: CheckResult[] = [];
  let error: string | undefined;
  try {
    const artifact = manifest.artifacts[0];
    if (!artifact) throw new LifeboatError(code.integrity, `snapshot ${manifest.snapshotId} lists no artifact`);
    // The inventory first: small, and a wrong identity shows here before anything is created.
    const inventory = await readInventory(target, manifest, opts.identities);
    scratch = await kind.createScratch({ config: opts.loaded.config, job, manifest, runId: randomBytes(4).toString("hex"), signal });
    // The scratch area is lifeboat's own: created on first use, readable by its owner only (restored data is sensitive).
    // Only after createScratch, whose guards refuse a scratch area inside the source.
    if (opts.loaded.config.scratch.directory) await mkdir(opts.loaded.config.scratch.directory, { recursive: true, mode: 0o700 });
    const input: ArtifactInput = {
      stream: () => openArtifact(target, manifest, artifact, opts.identities, signal),
      file: async () => {
        tmp ??= await mkdtemp(join(opts.loaded.config.scratch.directory ?? tmpdir(), "lifeboat-fetch-"));
        const file = join(tmp, artifact.name.replace(/\.zst\.age$/, ""));
        opts.onPhase?.("fetch", artifact.name);
        const t0 = Date.now();
        try {
          await downloadArtifact(target, manifest, artifact, opts.identities, file, signal);
        } finally {
          timings.fetchMs += Date.now() - t0;
        }
        return file;
      },
    };
    opts.onPhase?.("restore", scratch.location);
    const r0 = Date.now();
    try {
      await scratch.restore(input, signal);
    } finally {
      // A download inside restore counts once, as fetch. A failed restore's time counts too: how long until it failed.
      timings.restoreMs = Date.now() - r0 - timings.fetchMs;
    }
    opts.onPhase?.("check");
    const c0 = Date.now();
    checks = await scratch.check(inventory, drill, signal);
    timings.checksMs = Date.now() - c0;
    // Checks cut short by an interrupt are no evidence either way: no record.
    if (signal.aborted) throw abortedError(`drill ${drill.name}`, signal);
  } catch (err) {
    if (signal.aborted) throw err instanceof LifeboatError && err.code === code.aborted ? err : abortedError(`drill ${drill.name}`, signal);
    if (operatorError(err)) throw err;
    error = messageOf(err);
  } finally {
    await Promise.allSettled([scratch?.drop(), tmp ? rm(tmp, { recursive: true, force: true }) : undefined]);
  }
  const finished = now();
  timings.totalMs = finished.getTime() - started.getTime();
  if (error === undefined && checks.length === 0) error = "no checks ran: enable rowCounts/files or add queries";
  const record: DrillRecord = {
    format: "lifeboat-drill",
    version: 1,
    runId,
    drill: drill.name,
    job: job.name,
    target: target.name,
    snapshotId: manifest.snapshotId,
    snapshotFinishedAt: manifest.finishedAt,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    timings,
    rtoMs: timings.fetchMs + timings.restoreMs,
    scratch: { kind: kind.kind, location: scratch?.location ?? "(not created)" },
    checks,
    verdict: error === undefined && checks.every((c) => c.ok) ? "pass" : "fail",
    ...(error !== undefined ? { error } : {}),
    tool: { name: "lifeboat", version: VERSION },
  };
  opts.onPhase?.("record");
  try {
    await writeDrillRecord(target, record);
    return { record };
  } catch (err) {
    return { record, recordError: `store drill record on target "${target.name}": ${messageOf(err)}` };
  }
}
