import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { beforeAll, describe, expect, it } from "vitest";
import { makeKey } from "../helpers/age.ts";
import { runCli } from "../helpers/cli.ts";
import { writeProject } from "../helpers/project.ts";

// `drill --all` where one drill cannot run at all (its target is gone): the others still run and record.
let key: Awaited<ReturnType<typeof makeKey>>;
let project: { config: string };
const cli = (...args: string[]) => runCli(["--config", project.config, ...args], { LIFEBOAT_IDENTITY_FILE: key.identityFile });

beforeAll(async () => {
  key = await makeKey();
  const work = mkdtempSync(join(tmpdir(), "lifeboat-drill-all-"));
  mkdirSync(join(work, "nas"));
  mkdirSync(join(work, "app"));
  const db = new DatabaseSync(join(work, "app", "app.db"));
  db.exec("create table notes (body text); insert into notes values ('a'), ('b');");
  db.close();
  project = writeProject({
    "backup.config.ts": `import { defineConfig } from "lifeboat";
export default defineConfig({ encryption: { recipients: ["${key.recipient}"] },
  targets: { nas: { type: "filesystem", path: "${join(work, "nas")}", boundary: "nas" }, gone: { type: "filesystem", path: "${join(work, "unmounted")}", boundary: "usb" } },
  scratch: { directory: "${join(work, "scratch")}" } });
`,
    "jobs/notes.ts": `import { defineJob } from "lifeboat";
export default defineJob({ name: "notes", source: { type: "sqlite", path: "${join(work, "app", "app.db")}", boundary: "app" }, targets: ["nas", "gone"] });
`,
    "restore-drills/a-from-gone.ts": `import { defineDrill } from "lifeboat";
export default defineDrill({ name: "a-from-gone", job: "notes", from: "gone" });
`,
    "restore-drills/b-from-nas.ts": `import { defineDrill } from "lifeboat";
export default defineDrill({ name: "b-from-nas", job: "notes", from: "nas" });
`,
  });
});

describe("drill --all", () => {
  it("runs every drill it can when one cannot run, then exits with that drill's error", async () => {
    const b = await cli("backup", "notes");
    expect(b.status).toBe(1); // the "gone" target is missing; the nas copy is complete
    const text = await cli("drill", "--all");
    expect(text.status).toBe(1);
    expect(text.stderr).toMatch(/^error: drill a-from-gone: target "gone": directory .*unmounted does not exist$/m);
    expect(text.stdout).toMatch(/drill b-from-nas: PASS/);
    const json = await cli("--json", "drill", "--all");
    expect(json.status).toBe(1);
    const out = json.json as {
      ok: boolean;
      drills: { record: { drill: string; verdict: string } }[];
      errors: { drill: string; code: string }[];
    };
    expect(out.ok).toBe(false);
    expect(out.drills.map((d) => [d.record.drill, d.record.verdict])).toEqual([["b-from-nas", "pass"]]);
    expect(out.errors).toEqual([expect.objectContaining({ drill: "a-from-gone", code: "STORAGE" })]);
  });
});
