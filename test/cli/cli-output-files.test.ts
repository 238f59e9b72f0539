import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { makeKey } from "../helpers/age.ts";
import { runCli } from "../helpers/cli.ts";
import { writeProject } from "../helpers/project.ts";

// Files the user names on the command line (keygen --out, report --html): a wrong folder or an existing file is said
// plainly, with the fix, never as a bare ENOENT or EEXIST.
const dir = mkdtempSync(join(tmpdir(), "lifeboat-out-"));
let key: Awaited<ReturnType<typeof makeKey>>;
beforeAll(async () => {
  key = await makeKey();
});

describe("keygen --out", () => {
  it("a folder that does not exist is a usage error naming it (exit 2), and nothing is written", async () => {
    const out = join(dir, "nodir", "id.txt");
    const r = await runCli(["keygen", "--out", out]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`error: --out ${out}: the folder ${join(dir, "nodir")} does not exist`);
    expect(r.stderr).toContain(`hint: create it first (mkdir -p ${join(dir, "nodir")}), or pass another --out path`);
    expect(r.stderr).not.toMatch(/ENOENT/);
  });

  it("a dangling symlink is refused like any existing file (exit 3), and its target is not created", async () => {
    const link = join(dir, "link.txt");
    symlinkSync(join(dir, "elsewhere.txt"), link);
    const r = await runCli(["keygen", "--out", link]);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain(`error: ${link} already exists (a symlink); refusing to overwrite an identity`);
    expect(existsSync(join(dir, "elsewhere.txt"))).toBe(false);
  });

  it("--json prints indented JSON like every other command, with --out and without", async () => {
    const r = await runCli(["--json", "keygen"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\{\n {2}"recipient": "age1/);
    expect((r.json as { identity: string }).identity).toMatch(/^AGE-SECRET-KEY-1/);
    const out = join(dir, "id.txt");
    const w = await runCli(["--json", "keygen", "--out", out]);
    expect(w.stdout).toMatch(/^\{\n {2}"recipient": "age1/);
    expect(readFileSync(out, "utf8")).toContain((w.json as { recipient: string }).recipient);
  });
});

describe("report --html", () => {
  const project = () => {
    const store = mkdtempSync(join(tmpdir(), "lifeboat-store-"));
    return writeProject({
      "backup.config.ts": `import { defineConfig } from "lifeboat";
export default defineConfig({ encryption: { recipients: ["${key.recipient}"] }, targets: { nas: { type: "filesystem", path: ${JSON.stringify(store)}, boundary: "nas" } } });
`,
      "jobs/orders-db.ts": `import { defineJob } from "lifeboat";
export default defineJob({ name: "orders-db", source: { type: "postgres", url: "postgres://u@db/orders", boundary: "db" }, targets: ["nas"] });
`,
    });
  };

  it("a folder that does not exist is a usage error naming it (exit 2), before any target is read", async () => {
    const html = join(dir, "nodir", "r.html");
    const r = await runCli(["--config", project().config, "report", "--html", html]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`error: --html ${html}: the folder ${join(dir, "nodir")} does not exist`);
    expect(r.stderr).not.toMatch(/ENOENT/);
  });

  it("a page that cannot be written still leaves the report printed", async () => {
    const html = join(dir, "a-directory");
    mkdirSync(html);
    const r = await runCli(["--config", project().config, "report", "--html", html]);
    expect(r.status).toBe(2);
    expect(r.stdout).toMatch(/^JOB +TARGET +STATUS/);
    expect(r.stdout).toMatch(/orders-db +nas +NEVER/);
    expect(r.stderr).toContain(`error: --html ${html} is a directory`);
  });
});
