import { z } from "zod";
import { IntegrityError, messageOf } from "../errors.ts";
import { drillKey, drillsPrefix } from "../storage/layout.ts";
import { getBuffer, putBuffer, type Target } from "../storage/target.ts";

/** One check as recorded. */
export const checkRecordSchema = z.object({
  kind: z.string(),
  name: z.string(),
  ok: z.boolean(),
  expected: z.unknown().optional(),
  actual: z.unknown().optional(),
  mismatches: z.array(z.object({ item: z.string(), expected: z.unknown(), actual: z.unknown() })).optional(),
  detail: z.string().optional(),
});

/** `<job>/drills/<runId>.json`, format version 1: the evidence that a snapshot was restored and checked. */
export const drillRecordSchema = z.object({
  format: z.literal("lifeboat-drill"),
  version: z.literal(1),
  runId: z.string(),
  drill: z.string(),
  job: z.string(),
  /** The target the snapshot was restored from. */
  target: z.string(),
  snapshotId: z.string(),
  /** When the proven snapshot was taken. */
  snapshotFinishedAt: z.string(),
  startedAt: z.string(),
  finishedAt: z.string(),
  /** Milliseconds per phase: fetch (download, hash check, decrypt, decompress), restore, checks, total. */
  timings: z.object({ fetchMs: z.number(), restoreMs: z.number(), checksMs: z.number(), totalMs: z.number() }),
  /** Measured recovery time: fetch + restore. The job's RTO as last proven. */
  rtoMs: z.number(),
  scratch: z.object({ kind: z.string(), location: z.string() }),
  checks: z.array(checkRecordSchema),
  verdict: z.enum(["pass", "fail"]),
  /** Why the drill failed before or outside the checks (download, integrity, restore). */
  error: z.string().optional(),
  tool: z.object({ name: z.literal("lifeboat"), version: z.string() }),
});

/** A parsed drill record. */
export type DrillRecord = z.infer<typeof drillRecordSchema>;

/** Stores a drill record. */
export async function writeDrillRecord(target: Target, record: DrillRecord): Promise<void> {
  await putBuffer(target, drillKey(record.job, record.runId), `${JSON.stringify(drillRecordSchema.parse(record), null, 2)}\n`);
}

/** Lists a job's drill records, newest first; unreadable records are returned separately with the reason. */
export async function listDrillRecords(
  target: Target,
  job: string,
): Promise<{ records: DrillRecord[]; broken: { key: string; error: string }[] }> {
  const keys: string[] = [];
  for await (const o of target.list(drillsPrefix(job))) if (o.key.endsWith(".json")) keys.push(o.key);
  keys.sort().reverse();
  const records: DrillRecord[] = [];
  const broken: { key: string; error: string }[] = [];
  for (let i = 0; i < keys.length; i += 8) {
    const batch = keys.slice(i, i + 8);
    const read = await Promise.allSettled(
      batch.map(async (k) => {
        const parsed = drillRecordSchema.safeParse(JSON.parse((await getBuffer(target, k)).toString("utf8")));
        if (!parsed.success) throw new IntegrityError(`${k}: not a valid drill record`);
        return parsed.data;
      }),
    );
    read.forEach((r, j) => {
      if (r.status === "fulfilled") records.push(r.value);
      else broken.push({ key: batch[j] as string, error: messageOf(r.reason) });
    });
  }
  return { records, broken };
}

/**
 * Each snapshot's current verdict: that of the last record (by finishedAt) that drilled it. A pass is evidence only
 * until a later drill of the same snapshot fails: the object may have rotted or gone since.
 */
export function currentVerdicts(
  records: readonly Pick<DrillRecord, "snapshotId" | "finishedAt" | "verdict">[],
): Map<string, "pass" | "fail"> {
  const latest = new Map<string, { finishedAt: string; verdict: "pass" | "fail" }>();
  for (const r of records) {
    const seen = latest.get(r.snapshotId);
    if (!seen || r.finishedAt > seen.finishedAt) latest.set(r.snapshotId, { finishedAt: r.finishedAt, verdict: r.verdict });
  }
  return new Map([...latest].map(([id, v]) => [id, v.verdict]));
}
