import type { LoadedConfig } from "../config/load.ts";
import { getJob } from "../config/load.ts";
import { createSource } from "../sources/index.ts";
import { createTarget } from "../storage/index.ts";
import type { Target } from "../storage/target.ts";
import { type BackupProgress, type BackupResult, runBackup } from "./backup.ts";

/** Options for backing up a configured job. */
export interface BackupJobOptions {
  signal?: AbortSignal;
  now?: () => Date;
  onProgress?: (p: BackupProgress) => void;
  /** Builds targets; tests and wrappers (retry, credentials) substitute their own. */
  makeTarget?: (loaded: LoadedConfig, name: string) => Target;
}

/** Opens the named target of the config. */
export function openTarget(loaded: LoadedConfig, name: string): Target {
  const cfg = loaded.config.targets[name];
  if (!cfg) throw new Error(`target "${name}" is not declared`);
  return createTarget(name, cfg);
}

/** Backs up one configured job to all its targets: what `lifeboat backup <job>` and the daemon run. */
export async function backupJob(loaded: LoadedConfig, jobName: string, opts: BackupJobOptions = {}): Promise<BackupResult> {
  const job = getJob(loaded, jobName);
  const make = opts.makeTarget ?? openTarget;
  const targets = job.targets.map((t) => make(loaded, t));
  try {
    return await runBackup({
      job,
      config: loaded.config,
      source: createSource(job.source),
      targets,
      signal: opts.signal,
      now: opts.now,
      onProgress: opts.onProgress,
    });
  } finally {
    await Promise.allSettled(targets.map((t) => t.close?.()));
  }
}
