import { existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { S3TargetConfig } from "../../src/config/schema.ts";
import type { DoctorReport, TargetAudit } from "../../src/safety/audit.ts";
import { S3Target } from "../../src/storage/s3.ts";
import { listAll } from "../../src/storage/target.ts";
import { makeKey } from "../helpers/age.ts";
import { runCli } from "../helpers/cli.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/pg.ts";
import { writeProject } from "../helpers/project.ts";
import { type S3TestServer, startS3Server } from "../helpers/s3.ts";

let db: TestDatabase;
let s3: S3TestServer;
let key: Awaited<ReturnType<typeof makeKey>>;
let nas: string;

beforeAll(async () => {
  [db, s3, key] = await Promise.all([createTestDatabase(), startS3Server(), makeKey()]);
  const c = await db.client();
  await c.query("create table t (id int); insert into t values (1), (2);");
  await c.end();
  nas = mkdtempSync(join(tmpdir(), "lifeboat-nas-"));
});
afterAll(async () => {
  await Promise.allSettled([db?.drop(), s3?.stop()]);
});

function project(offsite: Partial<S3TargetConfig> & { prefix?: string }, sourceUrl = db.url) {
  const t = { ...s3.config(offsite.prefix ?? "doctor"), ...offsite };
  return writeProject({
    "backup.config.ts": `import { defineConfig } from "lifeboat";
export default defineConfig({
  encryption: { recipients: ["${key.recipient}"] },
  targets: { offsite: ${JSON.stringify(t)}, nas: { type: "filesystem", path: ${JSON.stringify(nas)}, boundary: "test:nas" } },
});
`,
    "jobs/shop.ts": `import { defineJob } from "lifeboat";
export default defineJob({ name: "shop", source: { type: "postgres", url: "${sourceUrl}", boundary: "test:postgres" }, targets: ["offsite", "nas"],
  retention: { keepDaily: 7, keepWeekly: 4 } });
`,
  });
}

/** The report from stdout: with exit 1 the error's own JSON line follows it. */
function report(stdout: string): DoctorReport {
  const cut = stdout.lastIndexOf('\n{"ok":false,"error"');
  return JSON.parse(cut >= 0 ? stdout.slice(0, cut) : stdout) as DoctorReport;
}
const target = (r: DoctorReport, name: string) => r.targets.find((t) => t.target === name) as TargetAudit;
const bucketKeys = async () => (await listAll(new S3Target("all", s3.config("")), "")).map((o) => o.key);

describe("lifeboat doctor", () => {
  it("reports what each credential can do, calls the test server deletable, and leaves nothing behind", async () => {
    const p = project({});
    const r = await runCli(["--config", p.config, "--json", "doctor"]);
    expect(r.status, r.stderr).toBe(0);
    const rep = report(r.stdout);
    expect(rep.ok).toBe(true);
    expect(rep.sources).toEqual([expect.objectContaining({ job: "shop", kind: "postgres", status: "ok" })]);
    const offsite = target(rep, "offsite");
    expect(offsite.verdict).toBe("deletable");
    expect(offsite.roles.map((x) => x.role)).toEqual(["writer", "reader", "pruner"]);
    for (const role of offsite.roles) {
      expect(role).toMatchObject({ credentials: "credentials", write: "yes", read: "yes", list: "yes", delete: "yes", overwrite: "yes" });
    }
    expect(offsite.versioning).toBe("off");
    expect(offsite.objectLock).toBe("unsupported");
    expect(offsite.lockNeeded).toEqual({ days: 28, because: "job shop: keepWeekly 4" });
    expect(offsite.warnings.join("\n")).toMatch(/a compromised backup host or agent holding the writer credential can delete every backup/);
    expect(offsite.warnings.join("\n")).toMatch(/one credential \(credentials\) serves writer, reader and pruner/);
    expect(offsite.canaries.left).toEqual([]);
    const fs = target(rep, "nas");
    expect(fs.verdict).toBe("deletable");
    expect(fs.roles[0]).toMatchObject({ credentials: "local user", write: "yes", read: "yes", list: "yes", delete: "yes" });
    expect(fs.warnings.join("\n")).toMatch(/any local user or process running as the owner/);
    expect(await bucketKeys()).toEqual([]);
    // The canaries are gone, and with the last of them their folder.
    expect(existsSync(join(nas, ".lifeboat"))).toBe(false);
  });

  it("prints the verdict and the warning loudly in text mode", async () => {
    const r = await runCli(["--config", project({}).config, "doctor"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/target offsite \(s3, s3:\/\/test-[0-9a-f]+\/doctor\): DELETABLE/);
    expect(r.stdout).toMatch(/WARNING: target "offsite" is DELETABLE/);
    expect(r.stdout).toMatch(/writer +credentials +yes +yes +yes +yes +yes/);
  });

  it("requireImmutable: doctor fails, and backup refuses with exit 3 before writing anything", async () => {
    const p = project({ requireImmutable: true, prefix: "immutable" });
    const d = await runCli(["--config", p.config, "--json", "doctor"]);
    expect(d.status).toBe(1);
    expect(target(report(d.stdout), "offsite").problems.join("\n")).toMatch(/requireImmutable is set and the target is deletable/);
    const b = await runCli(["--config", p.config, "backup", "shop"]);
    expect(b.status, b.stderr).toBe(3);
    expect(b.stderr).toMatch(/target "offsite" has requireImmutable, but its writer credential \(credentials\) can delete objects/);
    expect(await bucketKeys()).toEqual([]);
    expect(readdirSync(nas).filter((f) => f !== ".lifeboat")).toEqual([]);
  });

  it("a writer key the server does not know: its capabilities are unknown (not append-only), the other roles still work", async () => {
    const p = project({ roles: { writer: { accessKeyId: "WRITER-ONLY", secretAccessKey: "writer-secret-value" } } });
    const r = await runCli(["--config", p.config, "--json", "doctor"]);
    expect(r.status).toBe(1);
    const offsite = target(report(r.stdout), "offsite");
    expect(offsite.roles[0]).toMatchObject({ role: "writer", credentials: "roles.writer", write: "error", delete: "error" });
    expect(offsite.roles[1]).toMatchObject({ role: "reader", credentials: "credentials", write: "yes", read: "yes" });
    expect(offsite.verdict).toBe("unknown");
    expect(offsite.reasons[0]).toBe("the writer credential is not accepted: access key id not known to the server");
    expect(offsite.problems.join("\n")).toMatch(/the writer credential \(roles\.writer\): access key id not known to the server/);
    expect(r.stdout + r.stderr).not.toContain("writer-secret-value");
  });

  it("one unknown key for every role: UNKNOWN with the reason, never APPEND-ONLY", async () => {
    const p = project({ credentials: { accessKeyId: "NOPE", secretAccessKey: "nope-secret-value" } });
    const r = await runCli(["--config", p.config, "doctor"]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(
      /target offsite .*: UNKNOWN\n {2}the writer credential is not accepted: access key id not known to the server/,
    );
    expect(r.stdout).not.toMatch(/APPEND-ONLY|cannot delete objects/);
    expect(r.stdout).toMatch(/PROBLEM: the writer\/reader\/pruner credential \(credentials\): access key id not known to the server/);
  });

  it("an unreachable source and an unreachable target exit 1, naming both", async () => {
    const p = project({ endpoint: "http://127.0.0.1:1" }, db.url.replace(/:5432\//, ":1/"));
    const r = await runCli(["--config", p.config, "doctor"]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/failed +shop \(postgres\): postgres .*cannot reach the server/);
    expect(r.stdout).toMatch(/target offsite .*: UNKNOWN/);
    expect(r.stdout).toMatch(/PROBLEM: unreachable or failing: target "offsite": cannot reach http:\/\/127\.0\.0\.1:1/);
    expect(r.stderr).toMatch(/doctor found \d+ problem/);
  });
});
