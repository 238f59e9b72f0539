import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Manifest } from "../catalog/manifest.ts";
import { findSnapshot } from "../catalog/snapshots.ts";
import { getJob, type LoadedConfig, type LoadedJob } from "../config/load.ts";
import { ConfigError, code, LifeboatError, RefusedError } from "../errors.ts";
import { openTarget } from "../pipeline/job.ts";
import { downloadArtifact, openArtifact, readInventory } from "../pipeline/restore.ts";
import type { Confirmer } from "../safety/confirm.ts";
import type { ArtifactInput, RestoreKind } from "./kind.ts";
import { drillKindFor } from "./kinds.ts";

/** What a guarded restore needs. */
export interface RestoreOptions {
  loaded: LoadedConfig;
  job: string;
  /** Where to restore: a database URL or a directory, as the job's kind takes. */
  to: string;
  identities: readonly string[];
  snapshotId?: string;
  /** Target to read from (default: the job's first). */
  from?: string;
  /** Asks a person before anything that holds data is overwritten. */
  confirmer: Confirmer;
  signal?: AbortSignal;
  /** Where the plan is shown (what will happen), before any question. */
  say?: (line: string) => void;
}

/** What a restore did. */
export interface RestoreResult {
  job: string;
  snapshotId: string;
  snapshotFinishedAt: string;
  target: string;
  destination: string;
  overwrote: boolean;
  confirmedBy?: string;
  tables?: number;
  rows?: number;
  durationMs: number;
}

/**
 * Restores a snapshot into a real destination. A missing or empty destination is restored into directly; one that
 * holds data only after the confirmer says a person typed its name. Refusal rejects with RefusedError (exit 3) and
 * nothing is written.
 */
export async function restoreSnapshot(opts: RestoreOptions): Promise<RestoreResult> {
  const started = Date.now();
  const job = getJob(opts.loaded, opts.job);
  const kind = drillKindFor(job.source.type) as Partial<RestoreKind>;
  if (!kind.openDestination) throw new ConfigError(`lifeboat restore does not support ${job.source.type} jobs yet`);
  const targetName = opts.from ?? (job.targets[0] as string);
  if (!job.targets.includes(targetName))
    throw new ConfigError(`job "${job.name}" does not ship to target "${targetName}"`, { hint: `use one of: ${job.targets.join(", ")}` });
  const target = openTarget(opts.loaded, targetName);
  const signal = opts.signal ?? new AbortController().signal;
  const say = opts.say ?? (() => {});
  let tmp: string | undefined;
  try {
    const manifest: Manifest = await findSnapshot(target, job.name, opts.snapshotId, (m) => say(`warning: ${m}`));
    const artifact = manifest.artifacts[0];
    if (!artifact) throw new LifeboatError(code.integrity, `snapshot ${manifest.snapshotId} lists no artifact`);
    const inventory = await readInventory(target, manifest, opts.identities);
    // The scratch area is lifeboat's own: created on first use, readable by its owner only (restored data is sensitive).
    if (opts.loaded.config.scratch.directory) await mkdir(opts.loaded.config.scratch.directory, { recursive: true, mode: 0o700 });
    const dest = await kind.openDestination(opts.to, { config: opts.loaded.config, job, manifest });
    const state = await dest.inspect(signal);
    const tables = inventory.tables ? Object.keys(inventory.tables).length : undefined;
    const rows = inventory.tables ? Object.values(inventory.tables).reduce((a, b) => a + b, 0) : undefined;
    const ageH = ((Date.now() - Date.parse(manifest.finishedAt)) / 3_600_000).toFixed(1);
    const plan = [
      `restore job ${job.name}, snapshot ${manifest.snapshotId} (taken ${manifest.finishedAt}, ${ageH} h ago) from target ${targetName}`,
      ...(tables !== undefined ? [`  the snapshot holds ${tables} tables, ${rows} rows`] : []),
      `  into ${dest.display}`,
      ...state.lines.map((l) => `  ${l}`),
    ];
    let confirmedBy: string | undefined;
    if (!state.empty) {
      const answer = await opts.confirmer.confirm({ summary: plan, expected: dest.confirmName, what: "the destination's name" });
      if (!answer.confirmed) {
        throw new RefusedError(`refusing to overwrite ${dest.display}: it holds data and ${answer.reason}`, {
          hint: "restore into an empty or new destination, or run this at an interactive terminal and type the name when asked; no flag skips this",
        });
      }
      confirmedBy = answer.by;
    } else {
      for (const l of plan) say(l);
    }
    const input: ArtifactInput = {
      stream: () => openArtifact(target, manifest, artifact, opts.identities, signal),
      file: async () => {
        tmp ??= await mkdtemp(join(opts.loaded.config.scratch.directory ?? tmpdir(), "lifeboat-restore-"));
        const file = join(tmp, artifact.name.replace(/\.zst\.age$/, ""));
        await downloadArtifact(target, manifest, artifact, opts.identities, file, signal);
        return file;
      },
    };
    try {
      await dest.restore(input, { overwrite: !state.empty }, signal);
    } catch (err) {
      throw withRecoveryHint(err, job, manifest.snapshotId, targetName);
    }
    return {
      job: job.name,
      snapshotId: manifest.snapshotId,
      snapshotFinishedAt: manifest.finishedAt,
      target: targetName,
      destination: dest.display,
      overwrote: !state.empty,
      ...(confirmedBy ? { confirmedBy } : {}),
      ...(tables !== undefined ? { tables, rows } : {}),
      durationMs: Date.now() - started,
    };
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
    await target.close?.();
  }
}

/**
 * A damaged or missing object in the snapshot is that snapshot's problem, not the user's last chance: say where
 * else to restore from. Other errors keep their own hint.
 */
function withRecoveryHint(err: unknown, job: LoadedJob, snapshotId: string, target: string): unknown {
  if (!(err instanceof LifeboatError) || err.hint) return err;
  if (err.code !== code.integrity && err.code !== code.notFound) return err;
  const others = job.targets.filter((t) => t !== target);
  const hint = `snapshot ${snapshotId} on ${target} cannot be restored: pick an older one (lifeboat snapshots ${job.name}, then --snapshot <id>)${others.length ? ` or restore from another target (--from ${others.join(" | ")})` : ""}`;
  return new LifeboatError(err.code, err.message, { cause: err.cause, hint });
}
