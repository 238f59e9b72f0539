// The library: everything the CLI does is callable from here.
export { defineConfig, defineDrill, defineJob } from "./config/define.ts";
export { loadConfig } from "./config/load.ts";
export type { Config, ConfigInput, Drill, DrillInput, Job, JobInput } from "./config/schema.ts";
export { code, LifeboatError } from "./errors.ts";
