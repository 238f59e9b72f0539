import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { makeKey } from "../helpers/age.ts";
import { runCli } from "../helpers/cli.ts";
import { writeProject } from "../helpers/project.ts";

// Config mistakes as a user makes them, through the real CLI: the files load through tsx and lifeboat's own module
// hook, where a file without exports is CommonJS and behaves differently than under the test runner.
let key: Awaited<ReturnType<typeof makeKey>>;
beforeAll(async () => {
  key = await makeKey();
});

const configFile = () => `import { defineConfig } from "lifeboat";
export default defineConfig({ encryption: { recipients: ["${key.recipient}"] }, targets: { nas: { type: "filesystem", path: "/srv/nas", boundary: "nas" } } });
`;
const jobFile = (source: string, head = "export default ") =>
  `import { defineJob } from "lifeboat";\n${head}defineJob({ name: "orders-db", source: ${source}, targets: ["nas"] });\n`;
const pg = `{ type: "postgres", url: "postgres://u@db/orders", boundary: "db-host" }`;

describe("config mistakes through the CLI", () => {
  it.each([
    ["a job file that calls defineJob without exporting it", () => ({ "jobs/orders-db.ts": jobFile(pg, "") })],
    ["a job file with only a named export", () => ({ "jobs/orders-db.ts": jobFile(pg, "export const job = ") })],
    ["a config file without a default export", () => ({ "backup.config.ts": configFile().replace("export default ", "") })],
  ])("%s: has no default export, exit 2", async (_what, files) => {
    const p = writeProject({ "backup.config.ts": configFile(), ...files() });
    const r = await runCli(["--config", p.config, "snapshots", "orders-db"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/\.ts: has no default export\nhint: end the file with `export default defineJob/);
    expect(r.stderr).not.toMatch(/Invalid input/);
  });

  it("report with no jobs declared is not ok: exit 1, saying nothing is backed up", async () => {
    const p = writeProject({ "backup.config.ts": configFile() });
    const r = await runCli(["--config", p.config, "report"]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain("no jobs declared (add jobs/<name>.ts): nothing is backed up");
    expect(r.stderr).toMatch(/^error: no jobs declared: nothing is backed up$/m);
    const json = await runCli(["--config", p.config, "--json", "report"]);
    expect(json.status).toBe(1);
    expect(json.json).toMatchObject({ ok: false, rows: [] });
  });

  it("--config naming a directory says so and names the file to pass (exit 2)", async () => {
    const p = writeProject({ "backup.config.ts": configFile() });
    const r = await runCli(["--config", p.dir, "snapshots", "orders-db"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`error: ${p.dir} is a directory; pass the backup.config.ts file (or run from its folder)`);
    expect(r.stderr).toContain(`hint: use --config ${p.config}`);
  });

  it("an empty LIFEBOAT_CONFIG counts as unset: ./backup.config.ts is used", () => {
    const p = writeProject({ "backup.config.ts": configFile(), "jobs/orders-db.ts": jobFile(pg) });
    const bin = fileURLToPath(new URL("../../bin/lifeboat.js", import.meta.url));
    const r = spawnSync(process.execPath, [bin, "--json", "report"], {
      cwd: p.dir,
      env: { ...process.env, LIFEBOAT_CONFIG: "" },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(r.stderr).not.toMatch(/is a directory|not found/);
    expect(r.status, r.stderr).toBe(1); // the target /srv/nas cannot be read: the report ran
    expect(JSON.parse(r.stdout)).toMatchObject({ rows: [{ job: "orders-db", target: "nas", status: "failing" }] });
  });

  it("prints the error texts docs/CONFIG.md shows: a blank boundary, a missing one, an unset environment variable", async () => {
    const doc = readFileSync(new URL("../../docs/CONFIG.md", import.meta.url), "utf8").replace(/\n */g, " ");
    const cases = [
      [
        `{ type: "postgres", url: "postgres://u@db/orders", boundary: "   " }`,
        'source.boundary: declare the blast radius this lives in, e.g. "aws:eu-central-1"',
      ],
      [`{ type: "postgres", url: "postgres://u@db/orders" }`, "source.boundary is missing"],
      [
        `{ type: "postgres", url: process.env.LIFEBOAT_TEST_ORDERS_DB_URL, boundary: "db-host" }`,
        "source.url is missing (it is undefined: an environment variable read with process.env may be unset)",
      ],
    ];
    for (const [source, text] of cases) {
      const p = writeProject({ "backup.config.ts": configFile(), "jobs/orders-db.ts": jobFile(source as string) });
      const r = await runCli(["--config", p.config, "backup", "orders-db"]);
      expect(r.status, r.stderr).toBe(2);
      const line = r.stderr.split("\n").find((l) => l.startsWith("error: "));
      expect(line).toMatch(/^error: \S*jobs\/orders-db\.ts: /);
      expect(line?.replace(/^error: \S*jobs\/orders-db\.ts: /, "")).toBe(text);
      expect(doc).toContain(`\`jobs/orders-db.ts: ${text}\``);
    }
  });
});
