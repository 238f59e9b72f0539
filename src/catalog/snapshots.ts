import { code, IntegrityError, LifeboatError, messageOf, NotFoundError } from "../errors.ts";
import { MANIFEST, parseSnapshotKey, snapshotKey, snapshotsPrefix } from "../storage/layout.ts";
import { getBuffer, type Target } from "../storage/target.ts";
import { type Manifest, manifestSchema } from "./manifest.ts";

/** The snapshots a target holds for a job. */
export interface SnapshotListing {
  /** Complete snapshots (manifest present and valid), newest first. */
  complete: Manifest[];
  /** Snapshot ids with objects but no manifest: interrupted or failed runs, never restorable as "good". */
  incomplete: string[];
  /** Snapshot ids whose manifest could not be read or parsed, with the reason. */
  broken: { snapshotId: string; error: string }[];
}

/** Reads and validates one manifest. Rejects with NotFoundError if missing, IntegrityError if unreadable. */
export async function readManifest(target: Target, job: string, snapshotId: string): Promise<Manifest> {
  const key = snapshotKey(job, snapshotId, MANIFEST);
  const buf = await getBuffer(target, key);
  let json: unknown;
  try {
    json = JSON.parse(buf.toString("utf8"));
  } catch (err) {
    throw new IntegrityError(`target "${target.name}": ${key} is not valid JSON (${messageOf(err)})`);
  }
  const version = (json as { format?: unknown; version?: unknown } | null)?.version;
  if ((json as { format?: unknown } | null)?.format === "lifeboat-snapshot" && typeof version === "number" && version > 1) {
    throw new IntegrityError(`target "${target.name}": ${key} has format version ${version}, newer than this lifeboat reads (1)`, {
      hint: "a newer lifeboat wrote it: upgrade lifeboat to read it (docs/FORMAT.md describes every version)",
    });
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    throw new IntegrityError(`target "${target.name}": ${key} is not a valid manifest (${parsed.error.issues[0]?.message ?? "?"})`);
  }
  if (parsed.data.job !== job || parsed.data.snapshotId !== snapshotId) {
    throw new IntegrityError(
      `target "${target.name}": ${key} describes ${parsed.data.job}/${parsed.data.snapshotId}, not ${job}/${snapshotId}`,
    );
  }
  return parsed.data;
}

/** Lists a job's snapshots on a target from the target alone: nothing local is needed. */
export async function listSnapshots(target: Target, job: string): Promise<SnapshotListing> {
  const ids = new Set<string>();
  const withManifest = new Set<string>();
  for await (const o of target.list(snapshotsPrefix(job))) {
    const k = parseSnapshotKey(o.key);
    if (!k || k.job !== job) continue;
    ids.add(k.snapshotId);
    if (k.name === MANIFEST) withManifest.add(k.snapshotId);
  }
  const complete: Manifest[] = [];
  const broken: SnapshotListing["broken"] = [];
  const ordered = [...withManifest].sort().reverse();
  // A few manifests at a time: enough to hide latency, not enough to trip rate limits.
  for (let i = 0; i < ordered.length; i += 8) {
    const batch = ordered.slice(i, i + 8);
    const read = await Promise.allSettled(batch.map((id) => readManifest(target, job, id)));
    // A manifest that could not be fetched (a dropped connection, a refused request) says nothing about the manifest:
    // the listing fails, rather than call a good snapshot broken (and the last backup failed).
    const unreachable = read.find((r) => r.status === "rejected" && r.reason instanceof LifeboatError && r.reason.code === code.storage);
    if (unreachable) throw (unreachable as PromiseRejectedResult).reason;
    read.forEach((r, j) => {
      if (r.status === "fulfilled") complete.push(r.value);
      else broken.push({ snapshotId: batch[j] as string, error: messageOf(r.reason) });
    });
  }
  complete.sort(newestFirst);
  const incomplete = [...ids]
    .filter((id) => !withManifest.has(id))
    .sort()
    .reverse();
  return { complete, incomplete, broken };
}

/**
 * Newest first, by start time: a snapshot holds its source as it was when it started, so of two overlapping backups
 * the one started later holds the newer data, whichever finished first. Ids sort by start second; within one
 * second the manifests' startedAt (milliseconds) decides, then the id.
 */
export function newestFirst(a: Manifest, b: Manifest): number {
  return Date.parse(b.startedAt) - Date.parse(a.startedAt) || b.snapshotId.localeCompare(a.snapshotId);
}

/** The given snapshot, or the newest complete one. Rejects with NotFoundError naming job and target. */
export async function findSnapshot(target: Target, job: string, snapshotId?: string, warn?: (message: string) => void): Promise<Manifest> {
  if (snapshotId) {
    try {
      return await readManifest(target, job, snapshotId);
    } catch (err) {
      if (err instanceof NotFoundError) {
        throw new NotFoundError(`job "${job}": snapshot ${snapshotId} not found on target "${target.name}" (or it is incomplete)`, {
          hint: `list complete snapshots with: lifeboat snapshots ${job}`,
        });
      }
      throw err;
    }
  }
  const { complete, broken } = await listSnapshots(target, job);
  const newest = complete[0];
  if (!newest) {
    // Manifests that cannot be read are not "no backup": the data may all be there, for a newer lifeboat or a person.
    if (broken.length) {
      throw new NotFoundError(
        `job "${job}": no readable manifest on target "${target.name}": ${broken.length} snapshot(s) have one that cannot be read (${broken[0]?.error})`,
        { hint: `lifeboat snapshots ${job} lists them; upgrade lifeboat if a newer one wrote them, else see docs/RECOVERY.md` },
      );
    }
    throw new NotFoundError(`job "${job}": no complete snapshot on target "${target.name}"`, {
      hint: `take one with: lifeboat backup ${job}`,
    });
  }
  const newerBroken = broken.filter((b) => b.snapshotId > newest.snapshotId);
  for (const b of newerBroken) {
    warn?.(
      `snapshot ${b.snapshotId} on target "${target.name}" is newer than ${newest.snapshotId} but its manifest cannot be read (${b.error}); using ${newest.snapshotId}`,
    );
  }
  return newest;
}
