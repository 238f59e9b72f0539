import type { Retention } from "../config/schema.ts";
import { code, LifeboatError } from "../errors.ts";
import { ageText, durationMs, PERIOD_KINDS, type PeriodKind, periodOf } from "./retention-calendar.ts";

// The retention planner: data in, plan out. It reads nothing and deletes nothing; src/catalog/prune.ts feeds it what
// a target holds and carries out the plan. Keeping it pure lets every calendar edge be tested with a fixed clock.

const DAY_MS = 86_400_000;
/** An incomplete snapshot younger than this may be a backup still writing; it is never touched. */
const INCOMPLETE_MIN_AGE_MS = DAY_MS;

/** One snapshot as the planner sees it. */
export interface RetentionSnapshot {
  id: string;
  /** When the snapshot was taken (its start): what decides its calendar periods. */
  time: Date;
  /** complete: manifest valid; incomplete: objects without a manifest; broken: a manifest that cannot be read. */
  state: "complete" | "incomplete" | "broken";
  /** The end of the Object Lock retention the manifest records. */
  lockedUntil?: Date;
}

/** A tombstone: a snapshot marked for deletion by an earlier prune. */
export interface RetentionMark {
  snapshotId: string;
  markedAt: Date;
  /** The grace period when it was marked; the longer of this and the policy's applies. */
  graceDays?: number;
}

/** What the planner needs. */
export interface RetentionInput {
  policy: Retention;
  snapshots: readonly RetentionSnapshot[];
  /** Ids of snapshots a drill restored and checked with verdict pass. */
  proven: Iterable<string>;
  tombstones: readonly RetentionMark[];
  now: Date;
}

/**
 * keep: stays; mark: gets a tombstone now; pending: marked, grace period running; delete: marked long enough, goes now;
 * unmark: marked earlier but kept now (policy changed, newly proven), so its tombstone is removed.
 */
export type RetentionAction = "keep" | "mark" | "pending" | "delete" | "unmark";

/** The decision for one snapshot, with every reason that led to it. */
export interface RetentionDecision {
  snapshotId: string;
  time: string;
  state: RetentionSnapshot["state"];
  action: RetentionAction;
  /** "keep: last 3", "keep: daily 2026-11-24", "keep: newest proven by drill", "mark", "delete: marked 9 days ago"… */
  reasons: string[];
  markedAt?: string;
  /** When a marked snapshot may be deleted. */
  deleteAfter?: string;
}

/** A plan for one job on one target. */
export interface RetentionPlan {
  now: string;
  /** Newest first. */
  decisions: RetentionDecision[];
  /** The newest snapshot a drill proved, which no policy deletes. */
  newestProven?: string;
  /** Tombstones whose snapshot is gone (a deletion that stopped before removing its tombstone): removed by the pruner. */
  orphanTombstones: string[];
}

/** Newest first; equal times by id, so the order (and so the plan) never depends on the input's order. */
function newestFirst(a: RetentionSnapshot, b: RetentionSnapshot): number {
  return b.time.getTime() - a.time.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

/**
 * Plans retention for one job on one target. Keeps the last keepLast complete snapshots and the newest complete
 * snapshot in each of the last keep<Period> calendar periods that hold one (periods in policy.timezone, weeks ISO),
 * plus, whatever the policy says: the newest snapshot a drill proved, the newest complete snapshot, anything younger
 * than minAge, anything still under an Object Lock, broken manifests, and everything when no snapshot is complete.
 * The rest is marked; a mark older than the grace period turns into a deletion.
 */
export function planRetention(input: RetentionInput): RetentionPlan {
  const { policy, now } = input;
  const minAge = durationMs(policy.minAge);
  const sorted = [...input.snapshots].sort(newestFirst);
  const complete = sorted.filter((s) => s.state === "complete");
  const proven = new Set(input.proven);
  const marks = new Map(input.tombstones.map((t) => [t.snapshotId, t]));
  const keep = new Map<string, string[]>();
  const why = (id: string, reason: string) => keep.set(id, [...(keep.get(id) ?? []), reason]);

  for (const s of complete.slice(0, policy.keepLast)) why(s.id, `keep: last ${policy.keepLast}`);
  for (const kind of PERIOD_KINDS) {
    const count = policy[keyOf(kind)];
    if (count <= 0) continue;
    const seen = new Set<string>();
    for (const s of complete) {
      const period = periodOf(s.time, kind, policy.timezone);
      if (seen.has(period)) continue;
      if (seen.size >= count) break;
      seen.add(period);
      why(s.id, `keep: ${kind} ${period}`);
    }
  }
  const newestProven = complete.find((s) => proven.has(s.id));
  if (newestProven) why(newestProven.id, "keep: newest proven by drill");
  const newest = complete[0];
  if (newest && !keep.has(newest.id)) why(newest.id, "keep: newest snapshot (a job is never left without one)");

  // A bare "mark" leaves the reader to work out why: say which rules passed it over and when it goes.
  const rules = [
    `keepLast ${policy.keepLast}`,
    ...PERIOD_KINDS.filter((k) => policy[keyOf(k)] > 0).map((k) => `${keyOf(k)} ${policy[keyOf(k)]}`),
  ];
  const unkept = `kept by no rule (${rules.join(", ")}) and older than minAge ${policy.minAge}; deleted after graceDays ${policy.graceDays} unless undeleted`;
  const decisions = sorted.map((s): RetentionDecision => {
    const reasons = [...(keep.get(s.id) ?? [])];
    const age = now.getTime() - s.time.getTime();
    if (!newest) reasons.push("keep: no complete snapshot on this target, so nothing is pruned");
    if (s.state === "broken") reasons.push("keep: manifest unreadable (inspect it by hand)");
    if (age < minAge) reasons.push(`keep: younger than minAge (${policy.minAge})`);
    if (s.lockedUntil && s.lockedUntil.getTime() > now.getTime()) reasons.push(`keep: locked until ${s.lockedUntil.toISOString()}`);
    if (s.state === "incomplete" && age < INCOMPLETE_MIN_AGE_MS)
      reasons.push("keep: incomplete, younger than 1 day (may still be writing)");
    if (s.state === "incomplete" && newest && s.time.getTime() >= newest.time.getTime())
      reasons.push("keep: incomplete, newer than the newest complete snapshot (may still be writing)");
    const base = { snapshotId: s.id, time: s.time.toISOString(), state: s.state };
    const mark = marks.get(s.id);
    // Marked, due, and without a manifest: a prune's deletion that stopped half-way (the manifest goes first). Only
    // finishing it is right; "kept again" would leave its objects behind as if from a failed run.
    if (mark && s.state === "incomplete" && (!s.lockedUntil || s.lockedUntil.getTime() <= now.getTime())) {
      const due = mark.markedAt.getTime() + Math.max(policy.graceDays, mark.graceDays ?? 0) * DAY_MS;
      if (now.getTime() >= due) {
        return {
          ...base,
          markedAt: mark.markedAt.toISOString(),
          deleteAfter: new Date(due).toISOString(),
          action: "delete",
          reasons: ["delete: its deletion was started (the manifest is gone); finishing it"],
        };
      }
    }
    if (reasons.length > 0) {
      return mark ? { ...base, action: "unmark", reasons: [...reasons, "unmark: kept again"] } : { ...base, action: "keep", reasons };
    }
    if (!mark) {
      const what = s.state === "incomplete" ? "mark: incomplete (no manifest), a failed or interrupted run" : `mark: ${unkept}`;
      return { ...base, action: "mark", reasons: [what] };
    }
    const graceDays = Math.max(policy.graceDays, mark.graceDays ?? 0);
    const deleteAfter = new Date(mark.markedAt.getTime() + graceDays * DAY_MS);
    const marked = { markedAt: mark.markedAt.toISOString(), deleteAfter: deleteAfter.toISOString() };
    const ago = ageText(now.getTime() - mark.markedAt.getTime());
    if (now.getTime() >= deleteAfter.getTime()) return { ...base, ...marked, action: "delete", reasons: [`delete: marked ${ago} ago`] };
    return { ...base, ...marked, action: "pending", reasons: [`pending: marked ${ago} ago, deleted after ${marked.deleteAfter}`] };
  });

  const present = new Set(sorted.map((s) => s.id));
  const plan: RetentionPlan = {
    now: now.toISOString(),
    decisions,
    newestProven: newestProven?.id,
    orphanTombstones: [...marks.keys()].filter((id) => !present.has(id)).sort(),
  };
  assertSafe(plan, input, minAge);
  return plan;
}

function keyOf(kind: PeriodKind): "keepHourly" | "keepDaily" | "keepWeekly" | "keepMonthly" | "keepYearly" {
  const keys = { hourly: "keepHourly", daily: "keepDaily", weekly: "keepWeekly", monthly: "keepMonthly", yearly: "keepYearly" } as const;
  return keys[kind];
}

/**
 * Re-checks the promises on the finished plan, independently of how it was made: a plan that breaks one is a bug,
 * and refusing it is better than deleting a backup.
 */
function assertSafe(plan: RetentionPlan, input: RetentionInput, minAge: number): void {
  const byId = new Map(input.snapshots.map((s) => [s.id, s]));
  const goes = plan.decisions.filter((d) => d.action === "mark" || d.action === "pending" || d.action === "delete");
  const bad = (why: string) => {
    throw new LifeboatError(code.failed, `retention plan rejected: ${why}`, { hint: "this is a bug in lifeboat; nothing was deleted" });
  };
  if (plan.newestProven && goes.some((d) => d.snapshotId === plan.newestProven)) bad("it removes the newest proven snapshot");
  const complete = input.snapshots.filter((s) => s.state === "complete");
  if (complete.length > 0 && complete.every((s) => goes.some((d) => d.snapshotId === s.id))) bad("it leaves no complete snapshot");
  for (const d of goes) {
    const s = byId.get(d.snapshotId);
    if (!s) continue;
    const finishing = d.action === "delete" && s.state === "incomplete";
    if (!finishing && input.now.getTime() - s.time.getTime() < minAge) bad(`${s.id} is younger than minAge`);
    if (s.lockedUntil && s.lockedUntil.getTime() > input.now.getTime()) bad(`${s.id} is still locked`);
    if (s.state === "broken") bad(`${s.id} has an unreadable manifest`);
  }
}

/**
 * How many days an Object Lock must last to cover a retention policy: the age of the oldest snapshot the policy
 * promises to keep (keepDaily 7 → 7, keepWeekly 4 → 28, keepMonthly 12 → 372, keepYearly 2 → 732, keepHourly 48 → 2,
 * minAge 3d → 3), rounded up. keepLast counts snapshots, not days, so it adds nothing. A job without a policy counts
 * as the default one (minAge 1d → 1 day). Returns the days and the rule that needs them.
 */
export function lockDaysNeeded(policy: Retention | undefined): { days: number; because: string } {
  if (!policy) return { days: 1, because: "no retention policy: the newest day of snapshots" };
  const spans: [number, string][] = [
    [durationMs(policy.minAge) / DAY_MS, `minAge ${policy.minAge}`],
    [policy.keepHourly / 24, `keepHourly ${policy.keepHourly}`],
    [policy.keepDaily, `keepDaily ${policy.keepDaily}`],
    [policy.keepWeekly * 7, `keepWeekly ${policy.keepWeekly}`],
    [policy.keepMonthly * 31, `keepMonthly ${policy.keepMonthly}`],
    [policy.keepYearly * 366, `keepYearly ${policy.keepYearly}`],
  ];
  const [days, because] = spans.reduce((a, b) => (b[0] > a[0] ? b : a));
  return { days: Math.max(1, Math.ceil(days)), because };
}
