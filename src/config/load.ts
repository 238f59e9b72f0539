import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Encrypter } from "age-encryption";
import type { z } from "zod";
import { ConfigError, messageOf } from "../errors.ts";
import { findBoundaryViolations } from "../safety/boundary.ts";
import { checkVolumeDevices } from "../safety/device.ts";
import { describeIssues } from "./issues.ts";
import { type Config, configSchema, type Drill, drillSchema, type Job, jobSchema, keyPrefix, type TargetConfig } from "./schema.ts";

/** A job together with the file that declared it. */
export type LoadedJob = Job & { file: string };
/** A drill together with the file that declared it. */
export type LoadedDrill = Drill & { file: string };

/** Everything lifeboat knows from the user's files, validated. */
export interface LoadedConfig {
  /** Absolute path of backup.config.ts. */
  file: string;
  config: Config;
  jobs: Map<string, LoadedJob>;
  drills: Map<string, LoadedDrill>;
}

/**
 * The config file to use: the flag, else $LIFEBOAT_CONFIG, else ./backup.config.ts. An empty value counts as unset
 * (`LIFEBOAT_CONFIG= lifeboat …` in a unit file or shell means "none", not "this directory").
 */
export function resolveConfigPath(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag || env.LIFEBOAT_CONFIG || "backup.config.ts");
}

/**
 * Whether a loaded module exports nothing as default. A file outside an ESM package loads as CommonJS (tsx compiles it
 * so), and then Node's namespace always has a default: module.exports, an empty object when the file exports nothing.
 */
function lacksDefault(mod: Record<string, unknown>): boolean {
  if (mod.default === undefined) return true;
  const cjs = "module.exports" in mod;
  return cjs && typeof mod.default === "object" && mod.default !== null && Object.keys(mod.default).length === 0;
}

async function importDefault(file: string): Promise<unknown> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`${file}: cannot load: ${messageOf(err)}`, {
      cause: err,
      hint: "fix the TypeScript error above; the file must `export default defineConfig/defineJob/defineDrill({...})`",
    });
  }
  if (lacksDefault(mod)) {
    throw new ConfigError(`${file}: has no default export`, {
      hint: "end the file with `export default defineJob({...})` (or defineConfig/defineDrill)",
    });
  }
  return mod.default;
}

function parseWith<S extends z.ZodType>(schema: S, value: unknown, shown: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) {
    const d = describeIssues(shown, r.error, value);
    throw new ConfigError(d.message, { hint: d.hint });
  }
  return r.data;
}

function tsFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /\.(ts|mts|js|mjs)$/.test(f) && !f.endsWith(".d.ts") && !f.startsWith("_"))
    .sort()
    .map((f) => join(dir, f));
}

/**
 * Loads backup.config.ts, then jobs/*.ts and restore-drills/*.ts beside it, validates each and checks
 * the cross-references and the blast-radius rule. Rejects with a ConfigError naming file, field and fix.
 */
export async function loadConfig(configPath: string): Promise<LoadedConfig> {
  const file = resolve(configPath);
  if (!existsSync(file)) {
    throw new ConfigError(`config file ${file} not found`, {
      hint: "run lifeboat in the directory holding backup.config.ts, or pass --config FILE (or set LIFEBOAT_CONFIG)",
    });
  }
  if (statSync(file).isDirectory()) {
    const inside = join(file, "backup.config.ts");
    throw new ConfigError(`${file} is a directory; pass the backup.config.ts file (or run from its folder)`, {
      hint: existsSync(inside) ? `use --config ${inside}` : "point --config (or LIFEBOAT_CONFIG) at the config file itself",
    });
  }
  const dir = dirname(file);
  const show = (f: string) => relative(process.cwd(), f) || f;
  const config = parseWith(configSchema, await importDefault(file), show(file));
  validateRecipients(config, show(file));

  const jobs = new Map<string, LoadedJob>();
  for (const f of tsFiles(join(dir, "jobs"))) {
    const job = parseWith(jobSchema, await importDefault(f), show(f));
    const twin = jobs.get(job.name);
    if (twin)
      throw new ConfigError(`${show(f)}: name: job "${job.name}" is already declared in ${show(twin.file)}`, {
        hint: "give every job a unique name",
      });
    const twice = job.targets.find((t, i) => job.targets.indexOf(t) !== i);
    if (twice !== undefined)
      throw new ConfigError(`${show(f)}: targets: job "${job.name}" lists target "${twice}" more than once`, {
        hint: "list each target once; every target listed gets one complete copy",
      });
    for (const t of job.targets) {
      if (!config.targets[t]) {
        throw new ConfigError(`${show(f)}: targets: job "${job.name}" ships to target "${t}", which ${show(file)} does not declare`, {
          hint: `declare it under targets, or use one of: ${Object.keys(config.targets).join(", ")}`,
        });
      }
    }
    const places = new Map<string, string>();
    for (const t of job.targets) {
      const place = storagePlace(config.targets[t] as TargetConfig);
      const same = places.get(place);
      if (same !== undefined) {
        throw new ConfigError(
          `${show(f)}: targets: job "${job.name}" ships to targets "${same}" and "${t}", which are the same place (${place}): that is one copy, not two`,
          { hint: "point one of them at another bucket, prefix or directory, or list only one" },
        );
      }
      places.set(place, t);
    }
    jobs.set(job.name, { ...job, file: f });
  }

  const drills = new Map<string, LoadedDrill>();
  for (const f of tsFiles(join(dir, "restore-drills"))) {
    const drill = parseWith(drillSchema, await importDefault(f), show(f));
    const twin = drills.get(drill.name);
    if (twin)
      throw new ConfigError(`${show(f)}: name: drill "${drill.name}" is already declared in ${show(twin.file)}`, {
        hint: "give every drill a unique name",
      });
    const job = jobs.get(drill.job);
    if (!job) {
      throw new ConfigError(`${show(f)}: job: drill "${drill.name}" names job "${drill.job}", which no file in jobs/ declares`, {
        hint: `use one of: ${[...jobs.keys()].join(", ") || "(no jobs yet)"}`,
      });
    }
    if (drill.from && !job.targets.includes(drill.from)) {
      throw new ConfigError(`${show(f)}: from: job "${job.name}" does not ship to target "${drill.from}"`, {
        hint: `use one of the job's targets: ${job.targets.join(", ")}`,
      });
    }
    drills.set(drill.name, { ...drill, file: f });
  }

  const violations = findBoundaryViolations(
    [...jobs.values()].map((j) => ({
      job: j.name,
      sourceBoundary: j.source.boundary,
      targets: j.targets.map((t) => ({ name: t, boundary: config.targets[t]?.boundary ?? "" })),
    })),
  );
  if (violations.length) {
    const lines = violations.map(
      (v) =>
        `${show(jobs.get(v.job)?.file ?? "")}: targets: job "${v.job}" ships to target "${v.target}" in its own boundary "${v.boundary}"`,
    );
    throw new ConfigError(lines.join("\n"), {
      hint: "a backup must live in a different blast radius than its source: pick a target with another boundary",
    });
  }
  // Labels can lie: a filesystem target on the very device of a volume it backs up dies with it.
  checkVolumeDevices(
    [...jobs.values()].map((j) => ({ ...j, file: show(j.file) })),
    config.targets,
  );
  return { file, config, jobs, drills };
}

function validateRecipients(config: Config, shown: string): void {
  config.encryption.recipients.forEach((r, i) => {
    if (/^AGE-SECRET-KEY-/i.test(r.trim())) {
      // A secret key on the backup host lets whoever takes the host read every backup.
      throw new ConfigError(`${shown}: encryption.recipients.${i}: this is an age secret key, not a recipient`, {
        hint: "put only the public key (age1…) in the config; keep the identity file where drills and restores run",
      });
    }
    let reason = "";
    try {
      new Encrypter().addRecipient(r.trim());
    } catch (err) {
      reason = ` (${messageOf(err)})`;
    }
    if (!r.trim().startsWith("age1") || reason) {
      throw new ConfigError(`${shown}: encryption.recipients.${i}: "${r}" is not an age recipient${reason}`, {
        hint: "use a public key starting with age1 (printed by `lifeboat keygen` or `age-keygen -y`)",
      });
    }
  });
}

/** Finds a job by name or throws a usage-level ConfigError listing the known jobs. */
export function getJob(loaded: LoadedConfig, name: string): LoadedJob {
  const job = loaded.jobs.get(name);
  if (!job) {
    throw new ConfigError(`no job named "${name}" in ${dirname(loaded.file)}/jobs/`, {
      hint: `known jobs: ${[...loaded.jobs.keys()].join(", ") || "(none)"}`,
    });
  }
  return job;
}

/**
 * Where a target stores, normalised the way the backends normalise it (an endpoint's trailing slash, a prefix's
 * slashes, a directory's "..": "/dup/" and "dup" are one place).
 */
function storagePlace(t: TargetConfig): string {
  if (t.type === "filesystem") return `file://${resolve(t.path)}`;
  // AWS bucket names are global: the region does not make two places of one bucket.
  const endpoint = t.endpoint ? t.endpoint.replace(/\/+$/, "").toLowerCase() : "aws";
  return `${endpoint}/${t.bucket}/${keyPrefix(t.prefix)}`;
}
