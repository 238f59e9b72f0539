import type { ConfigInput, DrillInput, JobInput } from "./schema.ts";

/** Declares backup.config.ts. Returns its argument: validation happens when lifeboat loads the file, so it can name the file. */
export function defineConfig(config: ConfigInput): ConfigInput {
  return config;
}

/** Declares one backup job (jobs/<name>.ts). */
export function defineJob(job: JobInput): JobInput {
  return job;
}

/** Declares one restore drill (restore-drills/<name>.ts). */
export function defineDrill(drill: DrillInput): DrillInput {
  return drill;
}
