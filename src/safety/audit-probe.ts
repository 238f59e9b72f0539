import { randomBytes } from "node:crypto";
import { keyPrefix, type TargetConfig } from "../config/schema.ts";
import { messageOf } from "../errors.ts";
import { redact } from "../secret.ts";
import { LIFEBOAT_PREFIX } from "../storage/layout.ts";
import { credentialFor, openTargetAs, ROLES, type Role, targetSecrets } from "../storage/roles.ts";
import { isAccessDenied } from "../storage/s3.ts";
import { getBuffer, listAll, putBuffer, type Target } from "../storage/target.ts";
import type { Capability } from "./audit-verdict.ts";

/** What one credential of a target was seen to do. */
export interface CredentialProbe {
  /** Where the credential comes from ("roles.writer", "credentials", "default chain", "local user"). */
  label: string;
  /** The roles that use this credential. */
  roles: Role[];
  write: Capability;
  read: Capability;
  list: Capability;
  /** Deleting an object (S3: DeleteObject on a key never written, which S3 answers like any delete). */
  delete: Capability;
  /** A second put on an existing key: on S3 without versioning, an overwrite destroys the old object. */
  overwrite: Capability;
  /** Why a probe ended in "error" (unreachable, missing bucket), redacted. */
  errors: string[];
  /** Why the server refused the credential as such (unknown access key id, wrong secret), when it did. */
  rejected?: string;
}

/** The probes of every credential of one target, and what was left behind. */
export interface TargetProbes {
  probes: CredentialProbe[];
  /** The canary keys still on the target (nobody could delete them), under .lifeboat/. */
  leftCanaries: string[];
  /** How leftovers were cleaned up, for the report. */
  cleanup: string;
}

/**
 * S3 error codes that reject the credential itself rather than one operation: every request with it fails the same
 * way, so they say nothing about what a working key of that name could do.
 */
const CREDENTIAL_REJECTED: Record<string, string> = {
  InvalidAccessKeyId: "access key id not known to the server",
  SignatureDoesNotMatch: "the secret access key is wrong (SignatureDoesNotMatch: the server knows the access key id)",
  ExpiredToken: "the session token has expired",
  TokenRefreshRequired: "the session token has expired",
  InvalidToken: "the session token is invalid",
  CredentialsProviderError: "no credentials found (the SDK's default chain has none)",
};

/** Why the server rejected the credential as such (unknown key, wrong secret, expired token), or undefined. */
export function credentialRejected(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    const s = e as { Code?: string; name?: string };
    const why = CREDENTIAL_REJECTED[s.Code ?? ""] ?? CREDENTIAL_REJECTED[s.name ?? ""];
    if (why) return why;
  }
  return undefined;
}

/**
 * Whether an error means "this credential may not", as opposed to "could not reach" or "broken". A credential the
 * server does not accept at all is broken, not denied: calling that "cannot delete" would pass a typo for append-only.
 */
export function isDenied(err: unknown): boolean {
  if (credentialRejected(err)) return false;
  if (isAccessDenied(err)) return true;
  for (let e = err, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    const c = (e as NodeJS.ErrnoException).code;
    if (c === "EACCES" || c === "EPERM" || c === "EROFS") return true;
  }
  return false;
}

/** A random key that is never written: deleting it asks "may this credential delete?" without risking any object. */
export function neverWrittenKey(job: string | undefined): string {
  const tag = `lifeboat-delete-probe-${randomBytes(6).toString("hex")}`;
  // Beside real snapshots when a job ships here, so a policy that allows deleting snapshots (and only those) is caught.
  return job ? `${job}/snapshots/${tag}/never-written` : `${LIFEBOAT_PREFIX}${tag}`;
}

/**
 * Tries an operation: "yes" when it works, "no" when the credential is refused, "error" otherwise (with the
 * redacted reason recorded, as the probe's `rejected` when the server does not accept the credential at all).
 */
async function tryIt(p: CredentialProbe, secrets: string[], fn: () => Promise<unknown>): Promise<Capability> {
  try {
    await fn();
    return "yes";
  } catch (err) {
    if (isDenied(err)) return "no";
    const rejected = credentialRejected(err);
    if (rejected) p.rejected ??= rejected;
    else p.errors.push(redact(messageOf(err), secrets));
    return "error";
  }
}

/**
 * Probes what each distinct credential of a target can do, with canaries under `.lifeboat/doctor-<random>`:
 * write (put a canary), overwrite (put it again), read (get a canary back), list (.lifeboat/), delete (S3: a key never
 * written, so no backup is ever at risk; filesystem: the canary itself). Roles sharing a credential are probed once.
 * Afterwards the canaries are deleted with the pruner credential if it may; otherwise they stay under .lifeboat/.
 * `job` is a job shipping to the target, for the placement of the delete probe.
 */
/** A probe must come back in seconds: 15 s without an answer fails it, not the 2 minutes a long upload may idle. */
export const PROBE_OPTIONS = { idleTimeoutMs: 15_000 };

export async function probeTarget(name: string, config: TargetConfig, job: string | undefined): Promise<TargetProbes> {
  const secrets = targetSecrets(config);
  const groups = new Map<string, Role[]>();
  for (const role of ROLES) {
    const id = credentialFor(config, role).identity;
    groups.set(id, [...(groups.get(id) ?? []), role]);
  }
  const opened: Target[] = [];
  const canaries: string[] = [];
  const probes: CredentialProbe[] = [];
  const byRole = new Map<Role, Target>();
  try {
    for (const roles of groups.values()) {
      const first = roles[0] as Role;
      const target = openTargetAs(name, config, first, PROBE_OPTIONS);
      opened.push(target);
      for (const r of roles) byRole.set(r, target);
      const p: CredentialProbe = {
        label: credentialFor(config, first).label,
        roles,
        write: "untested",
        read: "untested",
        list: "untested",
        delete: "untested",
        overwrite: "untested",
        errors: [],
      };
      const canary = `${LIFEBOAT_PREFIX}doctor-${randomBytes(6).toString("hex")}`;
      const body = (n: number) => `lifeboat doctor canary ${n} for role(s) ${roles.join(", ")}, ${new Date().toISOString()}\n`;
      p.write = await tryIt(p, secrets, () => putBuffer(target, canary, body(1)));
      if (p.write === "yes") {
        canaries.push(canary);
        p.overwrite = await tryIt(p, secrets, () => putBuffer(target, canary, body(2)));
      } else if (p.write === "no") {
        p.overwrite = "no"; // an overwrite is a put on an existing key: the same permission
      }
      const readable = canaries.at(-1);
      if (readable) p.read = await tryIt(p, secrets, () => getBuffer(target, readable));
      p.list = await tryIt(p, secrets, () => listAll(target, LIFEBOAT_PREFIX));
      if (config.type !== "filesystem") p.delete = await tryIt(p, secrets, () => target.remove(neverWrittenKey(job)));
      probes.push(p);
    }
    // A filesystem has one credential, the local user; its delete test is removing its own canary.
    if (config.type === "filesystem") {
      const [p, canary, target] = [probes[0], canaries[0], opened[0]];
      if (p && canary && target) {
        p.delete = await tryIt(p, secrets, () => target.remove(canary));
        if (p.delete === "yes") canaries.length = 0;
      }
      return { probes, leftCanaries: [...canaries], cleanup: canary ? "canary removed" : "no canary written" };
    }
    return { probes, ...(await cleanUp(byRole, probes, canaries, config)) };
  } finally {
    await Promise.allSettled(opened.map((t) => t.close?.()));
  }
}

/** Deletes the canaries with the pruner credential when it may delete; the writer's is never used for it. */
async function cleanUp(
  byRole: Map<Role, Target>,
  probes: CredentialProbe[],
  canaries: string[],
  config: TargetConfig,
): Promise<Pick<TargetProbes, "leftCanaries" | "cleanup">> {
  if (canaries.length === 0) return { leftCanaries: [], cleanup: "no canary written" };
  const pruner = byRole.get("pruner");
  const prunerProbe = probes.find((p) => p.roles.includes("pruner"));
  if (!pruner || prunerProbe?.delete !== "yes") {
    return {
      leftCanaries: canaries.map((c) => inBucket(config, c)),
      cleanup: `left ${canaries.length} canary object(s) under ${canaryHome(config)} (the pruner credential may not delete); remove them or let a lifecycle rule expire ${canaryHome(config)}`,
    };
  }
  const left: string[] = [];
  for (const c of canaries) await pruner.remove(c).catch(() => left.push(c));
  return {
    leftCanaries: left.map((c) => inBucket(config, c)),
    cleanup: left.length ? `could not remove ${left.join(", ")} with the pruner credential` : "canaries removed with the pruner credential",
  };
}

/** A key as a person finds it in the bucket (the target's prefix included); unchanged for a directory. */
function inBucket(config: TargetConfig, key: string): string {
  return config.type === "s3" ? keyPrefix(config.prefix) + key : key;
}

/** Where the canaries are, as a person finds them. */
function canaryHome(config: TargetConfig): string {
  return inBucket(config, LIFEBOAT_PREFIX);
}
