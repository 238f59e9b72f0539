// The library: everything the CLI does is callable from here, without the CLI.

export { type DrillRecord, listDrillRecords } from "./catalog/drill-record.ts";
export type { Manifest } from "./catalog/manifest.ts";
export { computeReport, type Report } from "./catalog/report.ts";
export { readReport } from "./catalog/report-read.ts";
export { findSnapshot, listSnapshots } from "./catalog/snapshots.ts";
export { defineConfig, defineDrill, defineJob } from "./config/define.ts";
export { type LoadedConfig, loadConfig, resolveConfigPath } from "./config/load.ts";
export type { Config, ConfigInput, Drill, DrillInput, Job, JobInput } from "./config/schema.ts";
export { runDaemon } from "./daemon/daemon.ts";
export { restoreSnapshot } from "./drills/restore.ts";
export { runDrill } from "./drills/runner.ts";
export { ConfigError, code, IntegrityError, LifeboatError, NotFoundError, RefusedError } from "./errors.ts";
export { backupJob, openTarget } from "./pipeline/job.ts";
export { verifySnapshot } from "./pipeline/restore.ts";
export { type Confirmer, TerminalConfirmer } from "./safety/confirm.ts";
export { loadIdentities } from "./safety/identity.ts";
export type { Source } from "./sources/source.ts";
export type { Target } from "./storage/target.ts";
