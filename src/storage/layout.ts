// The object key layout, documented in docs/FORMAT.md. Keys are relative to a target's prefix.

/** Prefix holding every snapshot of a job. */
export function snapshotsPrefix(job: string): string {
  return `${job}/snapshots/`;
}

/** Prefix holding one snapshot's objects. */
export function snapshotPrefix(job: string, snapshotId: string): string {
  return `${job}/snapshots/${snapshotId}/`;
}

/** Key of one object of a snapshot. */
export function snapshotKey(job: string, snapshotId: string, name: string): string {
  return `${snapshotPrefix(job, snapshotId)}${name}`;
}

/** The manifest's name: written last, it marks a snapshot complete. */
export const MANIFEST = "manifest.json";

/** The encrypted inventory's name. */
export const INVENTORY = "inventory.json.age";

/** Prefix holding a job's drill records. */
export function drillsPrefix(job: string): string {
  return `${job}/drills/`;
}

/** Key of one drill record. */
export function drillKey(job: string, runId: string): string {
  return `${drillsPrefix(job)}${runId}.json`;
}

/** Prefix holding a job's tombstones: marks put by pruning on snapshots that will be deleted after the grace period. */
export function tombstonesPrefix(job: string): string {
  return `${job}/tombstones/`;
}

/** Key of the tombstone marking one snapshot for deletion. */
export function tombstoneKey(job: string, snapshotId: string): string {
  return `${tombstonesPrefix(job)}${snapshotId}.json`;
}

/** Prefix of lifeboat's own scratch objects on a target (doctor's canaries), outside every job. */
export const LIFEBOAT_PREFIX = ".lifeboat/";

/**
 * Whether a key is bookkeeping (tombstones, doctor canaries) that gets no Object Lock retention from lifeboat: it
 * holds no backup data, and a locked version would linger for the whole lock period after undelete or cleanup.
 */
export function isUnlockedKey(key: string): boolean {
  return key.startsWith(LIFEBOAT_PREFIX) || /^[^/]+\/tombstones\//.test(key);
}

/** Splits "<job>/snapshots/<id>/<name>" into its parts, or undefined for other keys. */
export function parseSnapshotKey(key: string): { job: string; snapshotId: string; name: string } | undefined {
  const m = /^([^/]+)\/snapshots\/([^/]+)\/(.+)$/.exec(key);
  return m ? { job: m[1] as string, snapshotId: m[2] as string, name: m[3] as string } : undefined;
}
