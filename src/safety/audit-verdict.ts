import type { LoadedConfig } from "../config/load.ts";
import type { TargetConfig } from "../config/schema.ts";
import type { BucketProtection } from "../storage/s3.ts";
import { lockDaysNeeded } from "./retention.ts";

/** What one credential was seen to do: yes, no (denied), untested (nothing to test it on), error (could not tell). */
export type Capability = "yes" | "no" | "untested" | "error";

/**
 * How safe a target's backups are from the writer credential (the one every backup host and agent holds):
 * immutable: an Object Lock covers the retention policy, so no credential can destroy what the policy keeps;
 * append-only: the writer can neither delete nor destroy by overwriting; deletable: the writer can delete or
 * overwrite backups; unknown: the probes could not tell (the target was unreachable).
 */
export type Verdict = "immutable" | "append-only" | "deletable" | "unknown";

/** The lock that applies to objects lifeboat writes on a target, and where it comes from. */
export interface EffectiveLock {
  mode: "GOVERNANCE" | "COMPLIANCE";
  days: number;
  /** "target objectLock" (lifeboat puts the retention) or "bucket default retention" (S3 does). */
  source: string;
}

/**
 * The Object Lock every new object gets: the target's objectLock when the bucket has Object Lock enabled (or the
 * credential may not say, as lifeboat's puts would fail on a bucket without it), else the bucket's default retention.
 */
export function effectiveLock(config: TargetConfig, protection: BucketProtection | undefined): EffectiveLock | undefined {
  if (config.type !== "s3" || !protection) return undefined;
  if (config.objectLock && (protection.objectLock === "enabled" || protection.objectLock === "unknown")) {
    return { ...config.objectLock, source: "target objectLock" };
  }
  if (protection.objectLock === "enabled" && protection.defaultRetention) {
    return { ...protection.defaultRetention, source: "bucket default retention" };
  }
  return undefined;
}

/**
 * The Object Lock days a target needs for the verdict "immutable": the longest lockDaysNeeded of the jobs that
 * ship to it (docs/SECURITY.md, "What immutable means").
 */
export function lockNeededFor(loaded: LoadedConfig, target: string): { days: number; because: string } {
  let best = { days: 1, because: "no job ships here" };
  for (const job of loaded.jobs.values()) {
    if (!job.targets.includes(target)) continue;
    const need = lockDaysNeeded(job.retention);
    if (need.days >= best.days) best = { days: need.days, because: `job ${job.name}: ${need.because}` };
  }
  return best;
}

/** Whether a lock lasts at least as long as the retention policy needs. */
export function lockCovers(lock: EffectiveLock | undefined, needed: { days: number }): boolean {
  return lock !== undefined && lock.days >= needed.days;
}

/** What verdictOf needs: the lock, what it must cover, and what the writer credential was seen to do. */
export interface VerdictInput {
  kind: string;
  lock?: EffectiveLock;
  needed: { days: number; because: string };
  writerDelete: Capability;
  writerOverwrite: Capability;
  versioning: BucketProtection["versioning"];
}

/** Decides a target's verdict and says why, in sentences fit for doctor's output. */
export function verdictOf(v: VerdictInput): { verdict: Verdict; reasons: string[] } {
  if (v.kind === "filesystem") {
    return {
      verdict: "deletable",
      reasons: [
        "a filesystem target is protected only by the machine that mounts it: any process running as this user (or root) " +
          "can delete or overwrite every backup (an append-only attribute, chattr +a, or a snapshotting NAS is outside lifeboat's view)",
      ],
    };
  }
  if (v.lock && lockCovers(v.lock, v.needed)) {
    const reasons = [
      `every object is locked for ${v.lock.days} days (${v.lock.mode}, ${v.lock.source}); retention needs ${v.needed.days} (${v.needed.because})`,
    ];
    if (v.lock.mode === "GOVERNANCE")
      reasons.push("GOVERNANCE mode: a credential with s3:BypassGovernanceRetention can still delete; grant it to no lifeboat role");
    return { verdict: "immutable", reasons };
  }
  const reasons: string[] = [];
  if (v.lock) reasons.push(`the lock (${v.lock.days} days) is shorter than retention needs: ${v.needed.days} days (${v.needed.because})`);
  if (v.writerDelete === "error" || v.writerDelete === "untested") {
    return { verdict: "unknown", reasons: [...reasons, "could not test whether the writer can delete"] };
  }
  const destroysByOverwrite = v.writerOverwrite === "yes" && v.versioning !== "enabled";
  if (v.writerDelete === "no" && !destroysByOverwrite) {
    if (v.writerOverwrite === "yes") reasons.push("the writer can overwrite, but versioning keeps the old versions");
    if (v.writerOverwrite !== "yes" && v.writerOverwrite !== "no") reasons.push("overwrite was not tested");
    return { verdict: "append-only", reasons: [...reasons, "the writer credential cannot delete objects"] };
  }
  if (v.writerDelete === "yes") reasons.push("the writer credential can delete objects");
  if (v.writerDelete === "yes" && v.versioning === "enabled") {
    reasons.push(
      "versioning is on, so its deletes only hide objects behind delete markers; older versions stay until a credential " +
        "with s3:DeleteObjectVersion or a lifecycle rule removes them",
    );
  }
  if (destroysByOverwrite)
    reasons.push(`the writer credential can overwrite objects and versioning is ${v.versioning}, so an overwrite destroys`);
  return { verdict: "deletable", reasons };
}

/** The loud warning doctor prints for a deletable target, naming the risk. */
export function deletableWarning(target: string): string {
  return (
    `target "${target}" is DELETABLE: a compromised backup host or agent holding the writer credential can delete every backup ` +
    "on it. Give the writer a put-only key, turn on versioning and Object Lock, or set requireImmutable to refuse such targets " +
    "(docs/SECURITY.md)"
  );
}
