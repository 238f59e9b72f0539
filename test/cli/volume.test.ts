import { chmodSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeKey } from "../helpers/age.ts";
import { runCli } from "../helpers/cli.ts";
import { writeProject } from "../helpers/project.ts";
import { type S3TestServer, startS3Server } from "../helpers/s3.ts";

// A volume (directory) job end to end through the CLI: backup, drill, guarded restore.
let s3: S3TestServer;
let key: Awaited<ReturnType<typeof makeKey>>;
let work: string;
let volume: string;
let project: { config: string };
const cli = (...args: string[]) => runCli(["--config", project.config, ...args], { LIFEBOAT_IDENTITY_FILE: key.identityFile });

beforeAll(async () => {
  [s3, key] = await Promise.all([startS3Server(), makeKey()]);
  work = await mkdtemp(join(tmpdir(), "lifeboat-volume-cli-"));
  volume = join(work, "uploads");
  mkdirSync(join(volume, "docs", "2026"), { recursive: true });
  writeFileSync(join(volume, "docs", "2026", "invoice.pdf"), Buffer.alloc(70_000, 7));
  writeFileSync(join(volume, "readme.txt"), "hello\n");
  chmodSync(join(volume, "readme.txt"), 0o640);
  symlinkSync("docs/2026/invoice.pdf", join(volume, "latest.pdf"));
  project = writeProject({
    "backup.config.ts": `import { defineConfig } from "lifeboat";
export default defineConfig({ encryption: { recipients: ["${key.recipient}"] }, targets: { offsite: ${JSON.stringify(s3.config("vol"))} }, scratch: { directory: "${join(work, "scratch")}" } });
`,
    "jobs/uploads.ts": `import { defineJob } from "lifeboat";
export default defineJob({ name: "uploads", source: { type: "volume", path: "${volume}", boundary: "app-disk" }, targets: ["offsite"] });
`,
    "restore-drills/uploads.ts": `import { defineDrill } from "lifeboat";
export default defineDrill({ name: "uploads", job: "uploads" });
`,
  });
});

afterAll(async () => {
  await s3?.stop();
});

describe("volume job through the CLI", () => {
  it("backs up and drills every file; the scratch directory is gone afterwards", async () => {
    const b = await cli("backup", "uploads");
    expect(b.status, b.stderr).toBe(0);
    const d = await cli("--json", "drill", "uploads");
    expect(d.status, d.stderr + d.stdout).toBe(0);
    const rec = (d.json as { drills: { record: { verdict: string; checks: { kind: string }[] } }[] }).drills[0]!.record;
    expect(rec.verdict).toBe("pass");
    expect(rec.checks.map((c) => c.kind)).toContain("files");
    expect(readdirSync(join(work, "scratch")).filter((f) => f.startsWith("lifeboat_drill"))).toEqual([]);
  });

  it("restores into a new directory, and refuses one holding data without a person at a terminal", async () => {
    const dest = join(work, "restored");
    const r = await cli("restore", "uploads", "--to", dest);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(join(dest, "docs", "2026", "invoice.pdf")).equals(Buffer.alloc(70_000, 7))).toBe(true);
    expect(readlinkSync(join(dest, "latest.pdf"))).toBe("docs/2026/invoice.pdf");
    expect(statSync(join(dest, "readme.txt")).mode & 0o777).toBe(0o640);
    const busy = join(work, "busy");
    mkdirSync(busy);
    writeFileSync(join(busy, "readme.txt"), "mine\n");
    const refused = await cli("restore", "uploads", "--to", busy);
    expect(refused.status).toBe(3);
    expect(refused.stderr).toMatch(/refusing to overwrite/);
    expect(readdirSync(busy)).toEqual(["readme.txt"]);
    expect(readFileSync(join(busy, "readme.txt"), "utf8")).toBe("mine\n");
  });
});
