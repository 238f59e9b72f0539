import { describe, expect, it } from "vitest";
import { type S3TargetConfig, s3TargetSchema } from "../../src/config/schema.ts";
import { effectiveLock, verdictOf } from "../../src/safety/audit-verdict.ts";
import { configForRole, credentialFor, roleLine, sharedCredentialWarning, targetSecrets } from "../../src/storage/roles.ts";
import type { BucketProtection } from "../../src/storage/s3.ts";

const s3 = (extra: Partial<S3TargetConfig> = {}): S3TargetConfig =>
  s3TargetSchema.parse({ type: "s3", bucket: "acme-backups", boundary: "aws:eu", ...extra });
const key = (id: string) => ({ accessKeyId: id, secretAccessKey: `${id}-secret` });
const bucket = (p: Partial<BucketProtection>): BucketProtection => ({ versioning: "off", objectLock: "disabled", notes: [], ...p });
const need = { days: 28, because: "keepWeekly 4" };

describe("roles pick their credential in one place", () => {
  it("roles.<role>, else credentials, else the default chain", () => {
    const cfg = s3({ credentials: key("SHARED"), roles: { writer: key("WRITER") } });
    expect(credentialFor(cfg, "writer")).toMatchObject({ label: "roles.writer", identity: "key:WRITER" });
    expect(credentialFor(cfg, "pruner")).toMatchObject({ label: "credentials", identity: "key:SHARED" });
    expect(credentialFor(s3(), "reader")).toEqual({ role: "reader", label: "default chain", identity: "default chain" });
    expect(roleLine("offsite", cfg, "writer")).toBe('using target "offsite" as writer (credentials: roles.writer)');
  });

  it("a target opened for one role holds no other role's secret", () => {
    const cfg = s3({ credentials: key("SHARED"), roles: { writer: key("WRITER"), pruner: key("PRUNER") } });
    const asWriter = configForRole(cfg, "writer");
    expect(asWriter.credentials?.accessKeyId).toBe("WRITER");
    expect(JSON.stringify(asWriter)).not.toContain("PRUNER-secret");
    expect(JSON.stringify(asWriter)).not.toContain("SHARED-secret");
    expect(targetSecrets(cfg).sort()).toEqual(["PRUNER-secret", "SHARED-secret", "WRITER-secret"]);
  });

  it("warns when roles share a credential", () => {
    expect(sharedCredentialWarning("o", s3({ credentials: key("A") }))).toMatch(
      /one credential \(credentials\) serves writer, reader and pruner/,
    );
    expect(sharedCredentialWarning("o", s3())).toMatch(/one credential \(default chain\)/);
    expect(sharedCredentialWarning("o", s3({ credentials: key("A"), roles: { reader: key("R") } }))).toMatch(/writer and pruner share/);
    expect(sharedCredentialWarning("o", s3({ roles: { writer: key("W"), reader: key("R"), pruner: key("P") } }))).toBeUndefined();
  });
});

describe("the verdict", () => {
  const base = { kind: "s3", needed: need, writerDelete: "yes", writerOverwrite: "yes", versioning: "off" } as const;

  it("immutable when the lock covers what retention needs, whatever the writer can do", () => {
    const lock = effectiveLock(
      s3({ objectLock: { mode: "COMPLIANCE", days: 30 } }),
      bucket({ objectLock: "enabled", versioning: "enabled" }),
    );
    expect(lock).toEqual({ mode: "COMPLIANCE", days: 30, source: "target objectLock" });
    expect(verdictOf({ ...base, lock }).verdict).toBe("immutable");
    const byDefault = effectiveLock(s3(), bucket({ objectLock: "enabled", defaultRetention: { mode: "GOVERNANCE", days: 60 } }));
    const v = verdictOf({ ...base, lock: byDefault });
    expect(v.verdict).toBe("immutable");
    expect(v.reasons.join(" ")).toMatch(/BypassGovernanceRetention/);
  });

  it("a lock shorter than retention needs does not make a target immutable", () => {
    const lock = effectiveLock(s3({ objectLock: { mode: "COMPLIANCE", days: 7 } }), bucket({ objectLock: "enabled" }));
    const v = verdictOf({ ...base, lock });
    expect(v.verdict).toBe("deletable");
    expect(v.reasons[0]).toMatch(/shorter than retention needs: 28 days \(keepWeekly 4\)/);
  });

  it("objectLock on a bucket without Object Lock (or a server without it) counts for nothing", () => {
    const cfg = s3({ objectLock: { mode: "COMPLIANCE", days: 90 } });
    expect(effectiveLock(cfg, bucket({ objectLock: "disabled" }))).toBeUndefined();
    expect(effectiveLock(cfg, bucket({ objectLock: "unsupported" }))).toBeUndefined();
    expect(effectiveLock(cfg, bucket({ objectLock: "unknown" }))?.days).toBe(90);
  });

  it("append-only when the writer can neither delete nor destroy by overwriting", () => {
    expect(verdictOf({ ...base, writerDelete: "no", writerOverwrite: "no" }).verdict).toBe("append-only");
    expect(verdictOf({ ...base, writerDelete: "no", versioning: "enabled" }).verdict).toBe("append-only");
    expect(verdictOf({ ...base, writerDelete: "no", versioning: "off" }).verdict).toBe("deletable");
    expect(verdictOf({ ...base, writerDelete: "error" }).verdict).toBe("unknown");
  });

  it("a filesystem target is always deletable, and says why", () => {
    const v = verdictOf({ ...base, kind: "filesystem", writerDelete: "no" });
    expect(v.verdict).toBe("deletable");
    expect(v.reasons[0]).toMatch(/any process running as this user \(or root\) can delete/);
  });
});
