import type { Readable } from "node:stream";
import type { Manifest } from "../catalog/manifest.ts";
import type { Config, Drill, Job } from "../config/schema.ts";
import type { Inventory } from "../sources/source.ts";

/** One check's outcome, as recorded in the drill record. */
export interface CheckResult {
  /** "rowCounts", "query", "integrity", "files", … */
  kind: string;
  name: string;
  ok: boolean;
  expected?: unknown;
  actual?: unknown;
  /** Each mismatch, for checks over many items (tables, files). */
  mismatches?: { item: string; expected: unknown; actual: unknown }[];
  /** A message: the database's error for a failing query, a reason for a skipped check. */
  detail?: string;
}

/** The snapshot's artifact, offered two ways so each kind takes what it restores best from. */
export interface ArtifactInput {
  /** Streams the plaintext (decrypted, decompressed, hash-checked at its end). */
  stream(): Promise<Readable>;
  /** Downloads the plaintext to a temporary file once and returns its path (for tools that need to seek). */
  file(): Promise<string>;
}

/** A scratch place a drill restores into: created fresh, always dropped. */
export interface Scratch {
  /** What was created, for the record (a database name, a directory); never credentials. */
  readonly location: string;
  /** Restores the artifact into the scratch place. */
  restore(input: ArtifactInput, signal: AbortSignal): Promise<void>;
  /** Runs the kind's own checks: row counts, integrity, file inventory, user queries. */
  check(inventory: Inventory, drill: Drill, signal: AbortSignal): Promise<CheckResult[]>;
  /** Removes the scratch place; idempotent, safe to call after a failed create or restore. */
  drop(): Promise<void>;
}

/** What a kind needs to create its scratch place. */
export interface ScratchContext {
  config: Config;
  job: Job;
  manifest: Manifest;
  /** A short random id unique to this drill run, for names. */
  runId: string;
  signal: AbortSignal;
}

/** How drills restore and check one source kind. One file per kind; registered in src/drills/kinds.ts. */
export interface DrillKind {
  readonly kind: string;
  /** Creates the scratch place. Rejects with RefusedError if it could touch the source. */
  createScratch(ctx: ScratchContext): Promise<Scratch>;
}

/** A real restore destination named by the user (`lifeboat restore --to`), never a scratch place. */
export interface Destination {
  /** What a person must type to confirm an overwrite (the database name, the directory path). */
  readonly confirmName: string;
  /** How to show it (no credentials). */
  readonly display: string;
  /** What is there now: empty when missing or holding no data; otherwise lines saying what would be destroyed. */
  inspect(signal: AbortSignal): Promise<{ empty: boolean; lines: string[] }>;
  /** Restores into it; overwrite is true only after a person confirmed. */
  restore(input: ArtifactInput, opts: { overwrite: boolean }, signal: AbortSignal): Promise<void>;
}

/** What a kind needs to open a restore destination. */
export interface DestinationContext {
  config: Config;
  job: Job;
  manifest: Manifest;
}

/** Kinds that support `lifeboat restore` implement this beside DrillKind. */
export interface RestoreKind {
  openDestination(to: string, ctx: DestinationContext): Promise<Destination>;
}
