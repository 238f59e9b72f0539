import { z } from "zod";

/** One stored object of a snapshot, as the manifest promises it. */
export const objectEntrySchema = z.object({
  /** Object name inside the snapshot directory. */
  name: z.string(),
  /** Stored (encrypted) size in bytes. */
  size: z.number().int().nonnegative(),
  /** sha256 of the stored bytes, hex. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

/** The data artifact of a snapshot. */
export const artifactSchema = objectEntrySchema.extend({
  /** Format of the plaintext after decryption and decompression (docs/FORMAT.md). */
  format: z.string(),
  /** Encoding layers from outside in: ["age", "zstd"]. */
  encoding: z.array(z.string()),
  /** Bytes before compression. */
  rawBytes: z.number().int().nonnegative(),
  /** Bytes after compression, before encryption. */
  compressedBytes: z.number().int().nonnegative(),
  /** Program that produced the plaintext. */
  producer: z.string().optional(),
});

/** manifest.json, format version 1. Written last: its presence marks the snapshot complete. */
export const manifestSchema = z.object({
  format: z.literal("lifeboat-snapshot"),
  version: z.literal(1),
  job: z.string(),
  snapshotId: z.string(),
  /** The target this copy was written to. */
  target: z.string(),
  startedAt: z.string(),
  finishedAt: z.string(),
  source: z.object({
    kind: z.string(),
    boundary: z.string(),
    details: z.record(z.string(), z.unknown()).default({}),
  }),
  encryption: z.object({ scheme: z.literal("age"), recipients: z.array(z.string()) }),
  compression: z.object({ scheme: z.literal("zstd"), level: z.number() }),
  artifacts: z.array(artifactSchema).min(1),
  inventory: objectEntrySchema.extend({ counts: z.enum(["exact", "approximate"]) }),
  warnings: z.array(z.string()).default([]),
  /** S3 Object Lock retention put on every object of this snapshot (target option objectLock); absent when none. */
  lock: z.object({ mode: z.enum(["GOVERNANCE", "COMPLIANCE"]), retainUntil: z.string() }).optional(),
  tool: z.object({ name: z.literal("lifeboat"), version: z.string() }),
});

/** A parsed manifest. */
export type Manifest = z.infer<typeof manifestSchema>;
/** One artifact entry. */
export type Artifact = z.infer<typeof artifactSchema>;
