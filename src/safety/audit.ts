import type { LoadedConfig } from "../config/load.ts";
import { keyPrefix, type TargetConfig } from "../config/schema.ts";
import { code, LifeboatError, messageOf, RefusedError } from "../errors.ts";
import { redact } from "../secret.ts";
import { credentialFor, openTargetAs, ROLES, type Role, sharedCredentialWarning, targetSecrets } from "../storage/roles.ts";
import { type BucketProtection, S3Target } from "../storage/s3.ts";
import { isDenied, neverWrittenKey, PROBE_OPTIONS, probeTarget } from "./audit-probe.ts";
import { checkSource, type SourceCheck, sourceSecrets } from "./audit-sources.ts";
import {
  type Capability,
  deletableWarning,
  type EffectiveLock,
  effectiveLock,
  lockCovers,
  lockNeededFor,
  type Verdict,
  verdictOf,
} from "./audit-verdict.ts";

/** What one role's credential was seen to do on a target. */
export interface RoleReport {
  role: Role;
  /** Where its credential comes from ("roles.writer", "credentials", "default chain", "local user"). */
  credentials: string;
  write: Capability;
  read: Capability;
  list: Capability;
  delete: Capability;
  overwrite: Capability;
}

/** Everything doctor found out about one target. */
export interface TargetAudit {
  target: string;
  type: TargetConfig["type"];
  /** "s3://bucket/prefix" or the directory. */
  where: string;
  verdict: Verdict;
  /** Why the verdict is what it is. */
  reasons: string[];
  roles: RoleReport[];
  versioning?: BucketProtection["versioning"];
  objectLock?: BucketProtection["objectLock"];
  defaultRetention?: BucketProtection["defaultRetention"];
  /** The lock new objects get, if any. */
  lock?: EffectiveLock;
  /** The lock days "immutable" needs on this target, and the rule that needs them. */
  lockNeeded: { days: number; because: string };
  canaries: { left: string[]; cleanup: string };
  /** Failures: each makes doctor exit 1. */
  problems: string[];
  warnings: string[];
  notes: string[];
  ok: boolean;
}

/** doctor's whole report. */
export interface DoctorReport {
  ok: boolean;
  config: { file: string; jobs: number; drills: number; targets: number };
  sources: SourceCheck[];
  targets: TargetAudit[];
  problems: number;
  warnings: number;
}

/** Every secret the config holds (S3 secret keys and tokens, connection passwords), for redacting whatever is printed. */
export function configSecrets(loaded: LoadedConfig): string[] {
  return [
    ...Object.values(loaded.config.targets).flatMap((t) => targetSecrets(t)),
    ...[...loaded.jobs.values()].flatMap((j) => sourceSecrets(j.source)),
  ];
}

/**
 * Checks a loaded config end to end without touching any backup: every job's source is reached (sources in
 * parallel), and every target is audited (auditTarget). `ok` is false when anything is unreachable or a required
 * property fails. Never rejects for a failing source or target; those are in the report.
 */
export async function runDoctor(loaded: LoadedConfig): Promise<DoctorReport> {
  const secrets = configSecrets(loaded);
  const sourcesP = Promise.all([...loaded.jobs.values()].map((j) => checkSource(j)));
  const targets: TargetAudit[] = [];
  for (const name of Object.keys(loaded.config.targets)) targets.push(await auditTarget(loaded, name));
  const sources = (await sourcesP).map((s) => ({ ...s, detail: redact(s.detail, secrets) }));
  const problems = sources.filter((s) => s.status === "failed").length + targets.reduce((n, t) => n + t.problems.length, 0);
  return {
    ok: problems === 0,
    config: { file: loaded.file, jobs: loaded.jobs.size, drills: loaded.drills.size, targets: targets.length },
    sources,
    targets,
    problems,
    warnings: targets.reduce((n, t) => n + t.warnings.length, 0),
  };
}

/**
 * Audits one target: what each role's credential can do (probeTarget), the bucket's versioning and Object Lock,
 * the verdict (immutable, append-only, deletable), and the problems (exit 1) and warnings that follow.
 */
export async function auditTarget(loaded: LoadedConfig, name: string): Promise<TargetAudit> {
  const config = loaded.config.targets[name] as TargetConfig;
  const secrets = configSecrets(loaded);
  const jobs = [...loaded.jobs.values()].filter((j) => j.targets.includes(name));
  const audit: TargetAudit = {
    target: name,
    type: config.type,
    // As the keys are written: "//prod//east/" stores under prod/east/.
    where: config.type === "s3" ? `s3://${config.bucket}/${keyPrefix(config.prefix).slice(0, -1)}` : config.path,
    verdict: "unknown",
    reasons: [],
    roles: [],
    lockNeeded: lockNeededFor(loaded, name),
    canaries: { left: [], cleanup: "" },
    problems: [],
    warnings: [],
    notes: [],
    ok: false,
  };
  const probed = await probeTarget(name, config, jobs[0]?.name);
  audit.canaries = { left: probed.leftCanaries, cleanup: probed.cleanup };
  for (const role of ROLES) {
    const p = probed.probes.find((x) => x.roles.includes(role));
    if (!p) continue;
    audit.roles.push({
      role,
      credentials: credentialFor(config, role).label,
      write: p.write,
      read: p.read,
      list: p.list,
      delete: p.delete,
      overwrite: p.overwrite,
    });
  }
  const errors = [...new Set(probed.probes.flatMap((p) => p.errors))];
  audit.problems.push(...errors.map((e) => `unreachable or failing: ${e}`));
  const rejected = probed.probes.filter((p) => p.rejected).map((p) => `the ${p.roles.join("/")} credential (${p.label}): ${p.rejected}`);
  audit.problems.push(...rejected.map((r) => `${r}; the server refuses every request with it`));

  let protection: BucketProtection | undefined;
  if (config.type === "s3" && errors.length === 0) {
    try {
      protection = await bucketProtection(name, config);
      Object.assign(audit, {
        versioning: protection.versioning,
        objectLock: protection.objectLock,
        defaultRetention: protection.defaultRetention,
      });
      audit.notes.push(...protection.notes);
    } catch (err) {
      audit.problems.push(redact(messageOf(err), secrets));
    }
  }
  audit.lock = effectiveLock(config, protection);
  const writer = audit.roles.find((r) => r.role === "writer");
  const v = verdictOf({
    kind: config.type,
    lock: audit.lock,
    needed: audit.lockNeeded,
    writerDelete: errors.length ? "error" : (writer?.delete ?? "untested"),
    writerOverwrite: writer?.overwrite ?? "untested",
    versioning: protection?.versioning ?? "unknown",
  });
  audit.verdict = v.verdict;
  // A key the server does not know can neither delete nor do anything else, which says nothing about the real key.
  const writerRejected = probed.probes.find((p) => p.roles.includes("writer"))?.rejected;
  audit.reasons = writerRejected ? [`the writer credential is not accepted: ${writerRejected}`, ...v.reasons] : v.reasons;
  judge(
    audit,
    config,
    jobs.some((j) => j.retention !== undefined),
  );
  audit.ok = audit.problems.length === 0;
  return audit;
}

/** Asks the bucket about versioning and Object Lock with each credential until one may answer. */
async function bucketProtection(name: string, config: TargetConfig): Promise<BucketProtection> {
  const merged: BucketProtection = { versioning: "unknown", objectLock: "unknown", notes: [] };
  const seen = new Set<string>();
  for (const role of ROLES) {
    const cred = credentialFor(config, role);
    if (seen.has(cred.identity)) continue;
    seen.add(cred.identity);
    const target = openTargetAs(name, config, role, PROBE_OPTIONS);
    try {
      if (!(target instanceof S3Target)) break;
      const p = await target.protection();
      if (merged.versioning === "unknown") merged.versioning = p.versioning;
      if (merged.objectLock === "unknown") Object.assign(merged, { objectLock: p.objectLock, defaultRetention: p.defaultRetention });
      merged.notes.push(...p.notes.map((n) => `${n} (${cred.label})`));
      if (merged.versioning !== "unknown" && merged.objectLock !== "unknown") break;
    } finally {
      await target.close?.();
    }
  }
  return merged;
}

/** Turns capabilities and the verdict into problems (exit 1), warnings and notes. */
function judge(a: TargetAudit, config: TargetConfig, hasRetention: boolean): void {
  const role = (r: Role) => a.roles.find((x) => x.role === r);
  const missing = (r: RoleReport | undefined, caps: (keyof RoleReport)[]) => caps.filter((c) => r && r[c] === "no");
  const writer = role("writer");
  const reader = role("reader");
  const pruner = role("pruner");
  const w = missing(writer, ["write"]);
  if (w.length) a.problems.push(`the writer credential (${writer?.credentials}) cannot write: backups to this target fail`);
  const r = missing(reader, ["read", "list"]);
  if (r.length)
    a.problems.push(`the reader credential (${reader?.credentials}) cannot ${r.join(" or ")}: snapshots, verify, drills and restores fail`);
  const p = missing(pruner, ["list", "read", "delete", "write"]);
  if (p.length && hasRetention)
    a.problems.push(`the pruner credential (${pruner?.credentials}) cannot ${p.join(", ")}: retention cannot run`);
  else if (p.length) a.notes.push(`the pruner credential cannot ${p.join(", ")} (no job here has a retention policy, so that is fine)`);
  if (config.type === "s3" && config.objectLock && (a.objectLock === "disabled" || a.objectLock === "unsupported")) {
    a.problems.push(
      a.objectLock === "disabled"
        ? "objectLock is set but the bucket has no Object Lock: every put with a retention fails (Object Lock is enabled when a bucket is created)"
        : "objectLock is set but the server does not implement Object Lock: the retention would not be enforced",
    );
  }
  if (a.verdict === "unknown" && a.problems.length === 0) a.problems.push("could not determine whether the writer can delete");
  if (a.verdict === "deletable") {
    if (config.type === "s3" && config.requireImmutable) {
      a.problems.push(`requireImmutable is set and the target is deletable: lifeboat backup refuses it (exit 3)`);
    }
    a.warnings.push(
      config.type === "filesystem"
        ? `target "${a.target}" is DELETABLE: any local user or process running as the owner of ${a.where} (or root) can delete every backup on it; keep another copy in a different blast radius`
        : deletableWarning(a.target),
    );
  }
  const shared = sharedCredentialWarning(a.target, config);
  if (shared) a.warnings.push(shared);
  else if (config.type === "s3" && reader?.delete === "yes")
    a.warnings.push("the reader credential can delete objects; drills and restores need only read (and put under <job>/drills/)");
  if (writer?.read === "yes" && credentialFor(config, "writer").identity !== credentialFor(config, "reader").identity)
    a.notes.push("the writer credential can also read (it needs only put)");
  if (config.type === "s3" && credentialFor(config, "writer").label === "default chain") {
    a.notes.push("the writer uses the SDK's default credential chain (environment, profile, instance role)");
  }
  if (config.type === "s3" && a.versioning !== "enabled" && writer?.overwrite === "yes") {
    a.notes.push(`versioning is ${a.versioning ?? "unknown"}: an overwrite replaces the only copy of an object`);
  }
}

/**
 * The requireImmutable guard, run before a backup uploads anything: refuses (RefusedError, exit 3) when the target's
 * writer credential can delete objects and no Object Lock covers the retention policy. It writes nothing: deletion is
 * tested by deleting a key that was never written (on a versioned bucket S3 records a delete marker there, no data).
 * A target without requireImmutable passes untouched.
 */
export async function assertWriterCannotDelete(loaded: LoadedConfig, name: string): Promise<void> {
  const config = loaded.config.targets[name];
  if (config?.type !== "s3" || !config.requireImmutable) return;
  const needed = lockNeededFor(loaded, name);
  const label = credentialFor(config, "writer").label;
  const target = openTargetAs(name, config, "writer", PROBE_OPTIONS);
  try {
    const protection = target instanceof S3Target ? await target.protection() : undefined;
    const lock = effectiveLock(config, protection);
    if (lockCovers(lock, needed)) return;
    const job = [...loaded.jobs.values()].find((j) => j.targets.includes(name))?.name;
    try {
      await target.remove(neverWrittenKey(job));
    } catch (err) {
      if (isDenied(err)) return;
      throw new LifeboatError(code.storage, `target "${name}": check whether the writer can delete: ${messageOf(err)}`, { cause: err });
    }
    const short = lock
      ? ` and its Object Lock (${lock.days} days) is shorter than retention needs (${needed.days} days, ${needed.because})`
      : "";
    throw new RefusedError(
      `target "${name}" has requireImmutable, but its writer credential (${label}) can delete objects${short}; nothing was backed up`,
      {
        hint:
          "give the writer a key that may only put (see docs/SECURITY.md), or enable Object Lock with enough days; " +
          "run `lifeboat doctor` to see what each credential can do",
      },
    );
  } finally {
    await target.close?.();
  }
}
