import { z } from "zod";
import { messageOf, NotFoundError } from "../errors.ts";
import { tombstoneKey, tombstonesPrefix } from "../storage/layout.ts";
import { getBuffer, putBuffer, type Target } from "../storage/target.ts";
import { VERSION } from "../version.ts";

/** `<job>/tombstones/<snapshotId>.json`, format version 1: a snapshot marked for deletion by the pruner. */
export const tombstoneSchema = z.object({
  format: z.literal("lifeboat-tombstone"),
  version: z.literal(1),
  job: z.string(),
  snapshotId: z.string(),
  /** When the pruner marked it. */
  markedAt: z.string(),
  /** The grace period at marking time; the snapshot is deleted by a prune after markedAt + graceDays. */
  graceDays: z.number().int().min(0),
  /** Why it was marked (the plan's reasons). */
  reasons: z.array(z.string()).default([]),
  tool: z.object({ name: z.literal("lifeboat"), version: z.string() }),
});

/** A tombstone as stored. */
export type TombstoneRecord = z.infer<typeof tombstoneSchema>;

/** A tombstone as read back, with the times that count. */
export interface Tombstone {
  job: string;
  snapshotId: string;
  /**
   * When the mark counts from: the later of the recorded markedAt and the object's own modification time, so a
   * tombstone written with a back-dated markedAt (by a key that may write but should not delete) gains nothing.
   */
  markedAt: string;
  graceDays: number;
  /** markedAt + graceDays: the first moment a prune may delete the snapshot. */
  deleteAfter: string;
  reasons: string[];
}

/** Writes the tombstone marking one snapshot. Idempotent (a second mark replaces the first, restarting the grace period). */
export async function writeTombstone(target: Target, record: Omit<TombstoneRecord, "format" | "version" | "tool">): Promise<void> {
  const full: TombstoneRecord = { format: "lifeboat-tombstone", version: 1, ...record, tool: { name: "lifeboat", version: VERSION } };
  await putBuffer(target, tombstoneKey(record.job, record.snapshotId), `${JSON.stringify(tombstoneSchema.parse(full), null, 2)}\n`, {
    contentType: "application/json",
  });
}

/** Removes a snapshot's tombstone; a missing one is fine. Idempotent. */
export async function removeTombstone(target: Target, job: string, snapshotId: string): Promise<void> {
  await target.remove(tombstoneKey(job, snapshotId));
}

/** Reads one tombstone. Rejects with NotFoundError when the snapshot is not marked. */
export async function readTombstone(target: Target, job: string, snapshotId: string): Promise<Tombstone> {
  const key = tombstoneKey(job, snapshotId);
  const [buf, head] = await Promise.all([getBuffer(target, key), target.head(key)]);
  return toTombstone(job, snapshotId, buf, head?.modified);
}

function toTombstone(job: string, snapshotId: string, buf: Buffer, modified: Date | undefined): Tombstone {
  let rec: TombstoneRecord | undefined;
  try {
    const parsed = tombstoneSchema.safeParse(JSON.parse(buf.toString("utf8")));
    if (parsed.success && parsed.data.job === job && parsed.data.snapshotId === snapshotId) rec = parsed.data;
  } catch {}
  // An unreadable tombstone still marks the snapshot (it was put where only marks go), counted from its write time,
  // with no grace recorded; the policy's grace then applies.
  const recorded = rec ? Date.parse(rec.markedAt) : Number.NaN;
  const written = modified?.getTime() ?? Number.NaN;
  const from = Math.max(Number.isNaN(recorded) ? 0 : recorded, Number.isNaN(written) ? 0 : written) || Date.now();
  const graceDays = rec?.graceDays ?? 0;
  return {
    job,
    snapshotId,
    markedAt: new Date(from).toISOString(),
    graceDays,
    deleteAfter: new Date(from + graceDays * 86_400_000).toISOString(),
    reasons: rec?.reasons ?? ["(unreadable tombstone)"],
  };
}

/**
 * Lists a job's tombstones on a target (snapshots marked for deletion), oldest mark first. The report shows these as
 * pending deletions. Rejects with the target's error if the listing fails.
 */
export async function listTombstones(target: Target, job: string): Promise<Tombstone[]> {
  const found: { id: string; modified?: Date }[] = [];
  for await (const o of target.list(tombstonesPrefix(job))) {
    const m = /^[^/]+\/tombstones\/([^/]+)\.json$/.exec(o.key);
    if (m?.[1]) found.push({ id: m[1], modified: o.modified });
  }
  const out: Tombstone[] = [];
  for (let i = 0; i < found.length; i += 8) {
    const batch = found.slice(i, i + 8);
    const read = await Promise.all(
      batch.map(async ({ id, modified }) => {
        try {
          return toTombstone(job, id, await getBuffer(target, tombstoneKey(job, id)), modified);
        } catch (err) {
          if (err instanceof NotFoundError) return undefined; // removed meanwhile (undelete or a finished deletion)
          throw new Error(`read tombstone of ${id}: ${messageOf(err)}`, { cause: err });
        }
      }),
    );
    for (const t of read) if (t) out.push(t);
  }
  return out.sort((a, b) => a.markedAt.localeCompare(b.markedAt) || a.snapshotId.localeCompare(b.snapshotId));
}
