import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeKey } from "../helpers/age.ts";
import { runCli } from "../helpers/cli.ts";
import { writeProject } from "../helpers/project.ts";

// A filesystem target on a disk that fills up mid-backup: a real 1 MiB tmpfs, so the kernel says ENOSPC.
const work = await mkdtemp(join(tmpdir(), "lifeboat-full-disk-"));
const small = join(work, "small-disk");
mkdirSync(small);
function mountSmallDisk(): boolean {
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", small], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
const mounted = mountSmallDisk();

// Mounting needs root; a developer's machine may not allow it. CI runs as root, and there a failed mount is a failure.
describe.skipIf(!mounted && !process.env.CI)("backup to a filesystem target whose disk fills up", () => {
  let project: { config: string };
  beforeAll(async () => {
    expect(mounted, `mount -t tmpfs on ${small} failed: the test needs root`).toBe(true);
    const key = await makeKey();
    const data = join(work, "data");
    mkdirSync(data);
    // Incompressible, so the encrypted snapshot (~3 MiB) cannot fit in 1 MiB.
    for (let i = 0; i < 3; i++) writeFileSync(join(data, `part-${i}.bin`), randomBytes(1024 * 1024));
    project = writeProject({
      "backup.config.ts": `import { defineConfig } from "lifeboat";
export default defineConfig({ encryption: { recipients: ["${key.recipient}"] }, targets: { nas: { type: "filesystem", path: "${small}", boundary: "nas" } } });
`,
      "jobs/files.ts": `import { defineJob } from "lifeboat";
export default defineJob({ name: "files", source: { type: "volume", path: "${data}", boundary: "app-disk" }, targets: ["nas"] });
`,
    });
  });
  afterAll(() => {
    if (mounted) execFileSync("umount", [small]);
  });

  it("fails with exit 1 naming the full disk, and leaves nothing on it", async () => {
    const r = await runCli(["--config", project.config, "backup", "files"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`disk full at ${small}`);
    expect(r.stderr).toMatch(/hint: /);
    // No temp file, no manifest, no empty snapshot folder: the disk is as it was.
    expect(readdirSync(small)).toEqual([]);
    const listed = await runCli(["--config", project.config, "snapshots", "files", "--json"]);
    expect(listed.status).toBe(0);
    expect(listed.json).toMatchObject({ snapshots: [] });
  });
});
