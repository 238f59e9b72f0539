import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeKey } from "../helpers/age.ts";
import { atTerminal as atTerminalOf, interruptWhenSeen, runCli } from "../helpers/cli.ts";
import { writeProject } from "../helpers/project.ts";
import { type S3TestServer, startS3Server } from "../helpers/s3.ts";

// A volume (directory) job end to end through the CLI: backup, drill, guarded restore.
let s3: S3TestServer;
let key: Awaited<ReturnType<typeof makeKey>>;
let work: string;
let volume: string;
let project: { config: string };
const cli = (...args: string[]) => runCli(["--config", project.config, ...args], { LIFEBOAT_IDENTITY_FILE: key.identityFile });

/** Runs the CLI under a pseudo-terminal, typing `answer` at the confirmation prompt as a person would. */
const atTerminal = (answer: string, args: string[]) =>
  atTerminalOf(answer, ["--config", project.config, ...args], { LIFEBOAT_IDENTITY_FILE: key.identityFile });

beforeAll(async () => {
  [s3, key] = await Promise.all([startS3Server(), makeKey()]);
  work = await mkdtemp(join(tmpdir(), "lifeboat-volume-cli-"));
  volume = join(work, "uploads");
  mkdirSync(join(volume, "docs", "2026"), { recursive: true });
  writeFileSync(join(volume, "docs", "2026", "invoice.pdf"), Buffer.alloc(70_000, 7));
  writeFileSync(join(volume, "readme.txt"), "hello\n");
  chmodSync(join(volume, "readme.txt"), 0o640);
  symlinkSync("docs/2026/invoice.pdf", join(volume, "latest.pdf"));
  // Enough incompressible data that a drill of it is still restoring when the test interrupts it.
  mkdirSync(join(work, "bulk"));
  for (let i = 0; i < 3; i++) writeFileSync(join(work, "bulk", `part-${i}.bin`), randomBytes(32 * 1024 * 1024));
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
    "jobs/badglob.ts": `import { defineJob } from "lifeboat";
export default defineJob({ name: "badglob", source: { type: "volume", path: "${volume}", boundary: "app-disk", exclude: ["*.tmp", "!keep"] }, targets: ["offsite"] });
`,
    "jobs/bulk.ts": `import { defineJob } from "lifeboat";
export default defineJob({ name: "bulk", source: { type: "volume", path: "${join(work, "bulk")}", boundary: "app-disk" }, targets: ["offsite"] });
`,
    "restore-drills/bulk.ts": `import { defineDrill } from "lifeboat";
export default defineDrill({ name: "bulk", job: "bulk" });
`,
    "jobs/damaged.ts": `import { defineJob } from "lifeboat";
export default defineJob({ name: "damaged", source: { type: "volume", path: "${join(work, "damaged-src")}", boundary: "app-disk" }, targets: ["offsite"] });
`,
    "restore-drills/damaged.ts": `import { defineDrill } from "lifeboat";
export default defineDrill({ name: "damaged", job: "damaged" });
`,
  });
  mkdirSync(join(work, "damaged-src"));
  writeFileSync(join(work, "damaged-src", "a.txt"), "first entry\n");
  writeFileSync(join(work, "damaged-src", "data.bin"), randomBytes(600_000));
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

  it("refuses a confirmed restore that meets a symlink of the destination where the snapshot has a directory: exit 3, blaming the destination", async () => {
    const dest = join(work, "in-the-way");
    const elsewhere = join(work, "elsewhere");
    mkdirSync(dest);
    mkdirSync(elsewhere);
    symlinkSync(elsewhere, join(dest, "docs"));
    const r = await atTerminal(dest, ["restore", "uploads", "--to", dest]);
    expect(r.status, r.out).toBe(3);
    expect(r.out).toMatch(/archive entry "docs\/" goes through "docs", which is a symlink already in /);
    expect(r.out).toMatch(/hint: the destination is in the way, not the archive: move \S+\/docs aside/);
    expect(r.out).not.toMatch(/crafted/);
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it("fails a drill and a restore of a damaged data object cleanly: a record, no crash, nothing left behind", async () => {
    const b = await cli("--json", "backup", "damaged");
    expect(b.status, b.stderr).toBe(0);
    const id = (b.json as { snapshotId: string }).snapshotId;
    // One flipped byte near the end of the stored object, through the S3 API.
    const url = `${s3.endpoint}/${s3.bucket}/vol/damaged/snapshots/${id}/volume.tar.zst.age`;
    const stored = Buffer.from(await (await fetch(url)).arrayBuffer());
    const middle = stored.length - 200;
    stored.writeUInt8((stored.readUInt8(middle) ^ 0xff) & 0xff, middle);
    expect((await fetch(url, { method: "PUT", body: stored })).ok).toBe(true);

    const d = await cli("--json", "drill", "damaged");
    expect(d.stderr).not.toMatch(/Unhandled 'error'|node:events/);
    expect(d.status, d.stderr).toBe(1);
    const rec = (d.json as { drills: { record: { verdict: string; error?: string } }[] }).drills[0]!.record;
    expect(rec.verdict).toBe("fail");
    const damage = /volume\.tar\.zst\.age: (payload chunk \d+ failed authentication|sha256 \w+ does not match the manifest)/;
    expect(rec.error).toMatch(damage);
    expect(readdirSync(join(work, "scratch")).filter((f) => f.startsWith("lifeboat_drill"))).toEqual([]);

    const r = await cli("restore", "damaged", "--to", join(work, "damaged-restored"));
    expect(r.stderr).not.toMatch(/Unhandled 'error'|node:events/);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(damage);
    expect(r.stderr).toMatch(/hint: snapshot \S+ on offsite cannot be restored: pick an older one/);
  });

  it("names the job file of an exclude pattern it cannot use (exit 2)", async () => {
    const r = await cli("backup", "badglob");
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/jobs\/badglob\.ts: source: .*exclude\.1: .*"!keep"/);
  });

  it("says so and exits when the destination directory cannot be created", async () => {
    // Its parent is a symlink to nowhere: stat finds nothing there, but mkdir cannot make it.
    symlinkSync("/nonexistent/lifeboat", join(work, "dangling"));
    const started = Date.now();
    const r = await cli("restore", "uploads", "--to", join(work, "dangling", "sub"));
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/restore into .*dangling\/sub: cannot create the directory \(ENOTDIR\)/);
    expect(r.stderr).toMatch(/hint: /);
    expect(Date.now() - started).toBeLessThan(30_000);
    writeFileSync(join(work, "afile"), "x");
    const under = await cli("restore", "uploads", "--to", join(work, "afile", "sub"));
    expect(under.status, under.stderr).toBe(2);
    expect(under.stderr).toMatch(/afile\/sub: a folder on the way is a file/);
  });

  it("removes the scratch directory when the drill is interrupted with SIGTERM", async () => {
    const b = await cli("backup", "bulk");
    expect(b.status, b.stderr).toBe(0);
    const scratchDir = join(work, "scratch");
    const inScratch = () => (existsSync(scratchDir) ? readdirSync(scratchDir).filter((f) => f.startsWith("lifeboat_drill")) : []);
    const { seen, result: r } = await interruptWhenSeen(
      ["--config", project.config, "drill", "bulk"],
      { LIFEBOAT_IDENTITY_FILE: key.identityFile },
      () => inScratch().length,
      { pollMs: 10 },
    );
    expect(seen).toBe(1);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/interrupted by SIGTERM/);
    expect(inScratch()).toEqual([]);
  });
});
