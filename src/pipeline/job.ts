import { relative } from "node:path";
import type { LoadedConfig, LoadedJob } from "../config/load.ts";
import { getJob } from "../config/load.ts";
import { ConfigError } from "../errors.ts";
import { assertWriterCannotDelete } from "../safety/audit.ts";
import { createSource } from "../sources/index.ts";
import type { Source } from "../sources/source.ts";
import { credentialFor, openTargetAs, type Role, roleLine } from "../storage/roles.ts";
import type { Target } from "../storage/target.ts";
import { type BackupProgress, type BackupResult, runBackup } from "./backup.ts";

/** Options for backing up a configured job. */
export interface BackupJobOptions {
  signal?: AbortSignal;
  now?: () => Date;
  onProgress?: (p: BackupProgress) => void;
  /** Builds targets; tests and wrappers (retry, credentials) substitute their own. */
  makeTarget?: (loaded: LoadedConfig, name: string, role: Role) => Target;
}

/**
 * Opens the named target of the config with the credential of one role (src/storage/roles.ts picks it). Each call
 * site names its role; the default, reader, is the least dangerous one: it cannot delete what it reads.
 */
export function openTarget(loaded: LoadedConfig, name: string, role: Role = "reader"): Target {
  const cfg = loaded.config.targets[name];
  if (!cfg) throw new Error(`target "${name}" is not declared`);
  return openTargetAs(name, cfg, role);
}

/** Which role and credential a command uses on its targets, for its output. */
export interface RoleUse {
  role: Role;
  /** Target name → credential label ("roles.writer", "credentials", "default chain", "local user"). */
  credentials: Record<string, string>;
  /** One line per target: `using target "offsite" as writer (credentials: roles.writer)`. */
  lines: string[];
}

/** Describes the role a command uses on the given targets, without opening them. */
export function roleUse(loaded: LoadedConfig, targets: readonly string[], role: Role): RoleUse {
  const use: RoleUse = { role, credentials: {}, lines: [] };
  for (const name of targets) {
    const cfg = loaded.config.targets[name];
    if (!cfg) continue;
    use.credentials[name] = credentialFor(cfg, role).label;
    use.lines.push(roleLine(name, cfg, role));
  }
  return use;
}

/**
 * Backs up one configured job to all its targets with the writer credential: what `lifeboat backup <job>` and the
 * daemon run. Targets with requireImmutable are checked first, before the source is touched or anything uploaded:
 * if the writer could delete there, the whole backup is refused (RefusedError, exit 3).
 */
export async function backupJob(loaded: LoadedConfig, jobName: string, opts: BackupJobOptions = {}): Promise<BackupResult> {
  const job = getJob(loaded, jobName);
  for (const t of job.targets) await assertWriterCannotDelete(loaded, t);
  const make = opts.makeTarget ?? openTarget;
  const targets = job.targets.map((t) => make(loaded, t, "writer"));
  try {
    return await runBackup({
      job,
      config: loaded.config,
      source: sourceOf(job),
      targets,
      signal: opts.signal,
      now: opts.now,
      onProgress: opts.onProgress,
    });
  } finally {
    await Promise.allSettled(targets.map((t) => t.close?.()));
  }
}

/** The job's source; a setting the source refuses (an exclude pattern, dump arguments) is named with its job file. */
function sourceOf(job: LoadedJob): Source {
  try {
    return createSource(job.source);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new ConfigError(`${relative(process.cwd(), job.file) || job.file}: source: ${err.message}`, { cause: err, hint: err.hint });
  }
}
