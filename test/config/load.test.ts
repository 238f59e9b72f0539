import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig, resolveConfigPath } from "../../src/config/load.ts";
import { type ConfigError, code } from "../../src/errors.ts";
import { makeKey } from "../helpers/age.ts";
import { writeProject } from "../helpers/project.ts";

const key = await makeKey();
const config = (targets = `{ nas: { type: "filesystem", path: "/tmp/x", boundary: "office-nas" } }`) => `
import { defineConfig } from "lifeboat";
export default defineConfig({ encryption: { recipients: ["${key.recipient}"] }, targets: ${targets} });
`;
const job = (body: string) => `import { defineJob } from "lifeboat";\nexport default defineJob(${body});\n`;
const pgJob = (name: string, boundary = "db-host", targets = `["nas"]`) =>
  job(`{ name: "${name}", source: { type: "postgres", url: "postgres://u@h/db", boundary: "${boundary}" }, targets: ${targets} }`);

describe("loadConfig", () => {
  it("loads the config, discovers jobs and drills, and fills defaults", async () => {
    const p = writeProject({
      "backup.config.ts": config(),
      "jobs/orders.ts": pgJob("orders"),
      "restore-drills/orders.ts": `import { defineDrill } from "lifeboat";\nexport default defineDrill({ name: "orders-weekly", job: "orders" });\n`,
    });
    const loaded = await loadConfig(p.config);
    expect([...loaded.jobs.keys()]).toEqual(["orders"]);
    expect(loaded.drills.get("orders-weekly")?.checks.rowCounts).toBe("exact");
    expect(loaded.config.compression.level).toBe(1);
  });

  it("names the file, the field and the fix for a schema error", async () => {
    const p = writeProject({ "backup.config.ts": config(`{ nas: { type: "filesystem", boundary: "x" } }`) });
    await expect(loadConfig(p.config)).rejects.toMatchObject({
      code: code.config,
      message: expect.stringMatching(/backup\.config\.ts: targets\.nas\.path is missing$/),
      hint: expect.stringMatching(/add the missing field/),
    });
  });

  it.each(["../etc", "Orders", "a/b", "", "x".repeat(80)])("rejects the job name %j", async (name) => {
    const p = writeProject({ "backup.config.ts": config(), "jobs/bad.ts": pgJob(name) });
    await expect(loadConfig(p.config)).rejects.toMatchObject({
      code: code.config,
      message: expect.stringMatching(/jobs\/bad\.ts: name: /),
    });
  });

  it("refuses a job whose target shares the source's boundary, naming job, target and boundary", async () => {
    const p = writeProject({ "backup.config.ts": config(), "jobs/orders.ts": pgJob("orders", "Office-NAS") });
    const err = await loadConfig(p.config).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: code.config });
    expect((err as Error).message).toMatch(/job "orders" ships to target "nas" in its own boundary "office-nas"/);
  });

  it("refuses unknown targets, duplicate jobs, drills of unknown jobs and a secret key as recipient", async () => {
    const unknown = writeProject({ "backup.config.ts": config(), "jobs/a.ts": pgJob("a", "db", `["offsite"]`) });
    await expect(loadConfig(unknown.config)).rejects.toThrow(/target "offsite", which .* does not declare/);
    const dup = writeProject({ "backup.config.ts": config(), "jobs/a.ts": pgJob("a"), "jobs/b.ts": pgJob("a") });
    await expect(loadConfig(dup.config)).rejects.toThrow(/already declared/);
    const drill = writeProject({
      "backup.config.ts": config(),
      "restore-drills/x.ts": `import { defineDrill } from "lifeboat";\nexport default defineDrill({ name: "x", job: "nope" });\n`,
    });
    await expect(loadConfig(drill.config)).rejects.toThrow(/names job "nope"/);
    const secret = writeProject({
      "backup.config.ts": `import { defineConfig } from "lifeboat";\nexport default defineConfig({ encryption: { recipients: ["${key.identity}"] }, targets: { nas: { type: "filesystem", path: "/x", boundary: "b" } } });\n`,
    });
    const err = (await loadConfig(secret.config).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/secret key, not a recipient/);
    expect(err.message).not.toContain(key.identity);
    const typo = writeProject({
      "backup.config.ts": `import { defineConfig } from "lifeboat";\nexport default defineConfig({ encryption: { recipients: ["${key.recipient.slice(0, -2)}"] }, targets: { nas: { type: "filesystem", path: "/x", boundary: "b" } } });\n`,
    });
    await expect(loadConfig(typo.config)).rejects.toThrow(/recipients\.0: .* is not an age recipient/);
  });

  it("reports a missing config file and a TypeScript syntax error clearly", async () => {
    await expect(loadConfig("/nonexistent/backup.config.ts")).rejects.toMatchObject({
      code: code.config,
      hint: expect.stringMatching(/--config/),
    });
    const p = writeProject({ "backup.config.ts": "export default {{{" });
    await expect(loadConfig(p.config)).rejects.toMatchObject({ code: code.config, message: expect.stringMatching(/cannot load/) });
  });

  it("refuses a job that lists a target twice, naming the file and the target", async () => {
    const p = writeProject({ "backup.config.ts": config(), "jobs/a.ts": pgJob("a", "db", `["nas", "nas"]`) });
    await expect(loadConfig(p.config)).rejects.toMatchObject({
      code: code.config,
      message: expect.stringMatching(/jobs\/a\.ts: targets: job "a" lists target "nas" more than once/),
    });
  });

  it("refuses two targets of one job that are the same place, however their prefix or endpoint is spelled", async () => {
    const s3 = (prefix: string, endpoint: string, boundary: string) =>
      `{ type: "s3", bucket: "bkt", prefix: "${prefix}", endpoint: "${endpoint}", forcePathStyle: true, boundary: "${boundary}" }`;
    const p = writeProject({
      "backup.config.ts": config(
        `{ a: ${s3("dup", "http://127.0.0.1:9000", "x")}, b: ${s3("/dup/", "http://127.0.0.1:9000/", "y")}, c: ${s3("other", "http://127.0.0.1:9000", "z")} }`,
      ),
      "jobs/a.ts": pgJob("a", "db", `["a", "b"]`),
    });
    await expect(loadConfig(p.config)).rejects.toMatchObject({
      code: code.config,
      message: expect.stringMatching(
        /jobs\/a\.ts: targets: job "a" ships to targets "a" and "b", which are the same place \(.*\): that is one copy, not two/,
      ),
    });
    const fine = writeProject({
      "backup.config.ts": config(`{ a: ${s3("dup", "http://127.0.0.1:9000", "x")}, c: ${s3("other", "http://127.0.0.1:9000", "z")} }`),
      "jobs/a.ts": pgJob("a", "db", `["a", "c"]`),
    });
    expect([...(await loadConfig(fine.config)).jobs.keys()]).toEqual(["a"]);
  });

  it.each([
    [`{ type: "s3", bucket: "bk/prod", boundary: "x" }`, /targets\.t\.bucket: a bucket name has no "\/" or scheme/],
    [`{ type: "s3", bucket: "s3://bk", boundary: "x" }`, /targets\.t\.bucket: a bucket name has no "\/" or scheme/],
    [`{ type: "s3", bucket: "bk", region: "", boundary: "x" }`, /targets\.t\.region: name the region/],
    [
      `{ type: "s3", bucket: "bk", credentials: { accessKeyId: "AKIA\\n", secretAccessKey: "s" }, boundary: "x" }`,
      /targets\.t\.credentials\.accessKeyId: holds whitespace/,
    ],
  ])("refuses the S3 target %s at load (exit 2), naming the field", async (target, message) => {
    const p = writeProject({ "backup.config.ts": config(`{ t: ${target} }`) });
    await expect(loadConfig(p.config)).rejects.toMatchObject({ code: code.config, message: expect.stringMatching(message) });
  });

  it("refuses an unknown retention time zone at load, naming the file and the field, even without calendar rules", async () => {
    const p = writeProject({
      "backup.config.ts": config(),
      "jobs/a.ts": job(
        `{ name: "a", source: { type: "postgres", url: "postgres://u@h/db", boundary: "db" }, targets: ["nas"], retention: { keepLast: 1, timezone: "Nowhere/City" } }`,
      ),
    });
    await expect(loadConfig(p.config)).rejects.toMatchObject({
      code: code.config,
      message: expect.stringMatching(/jobs\/a\.ts: retention\.timezone: "Nowhere\/City" is not an IANA time zone/),
    });
  });

  it.each(["", "   "])("refuses the boundary %j like a missing one", async (boundary) => {
    const p = writeProject({ "backup.config.ts": config(), "jobs/a.ts": pgJob("a", boundary) });
    await expect(loadConfig(p.config)).rejects.toMatchObject({
      code: code.config,
      message: expect.stringMatching(/jobs\/a\.ts: source\.boundary: declare the blast radius this lives in/),
    });
  });

  it("says a required value is missing, and when it is there but undefined, that an environment variable may be unset", async () => {
    const p = writeProject({
      "backup.config.ts": config(),
      "jobs/a.ts": job(`{ name: "a", source: { type: "postgres", url: process.env.LIFEBOAT_TEST_SURELY_UNSET }, targets: ["nas"] }`),
    });
    const err = (await loadConfig(p.config).catch((e: unknown) => e)) as ConfigError;
    expect(err.message.split("\n").map((l) => l.replace(/^.*jobs\/a\.ts: /, ""))).toEqual([
      "source.url is missing (it is undefined: an environment variable read with process.env may be unset)",
      "source.boundary is missing",
    ]);
    expect(err.hint).toMatch(/add the missing field.*process\.env\.NAME is undefined when NAME is not set/);
  });

  it("states the naming rule for a bad target name", async () => {
    const p = writeProject({ "backup.config.ts": config(`{ Shm: { type: "filesystem", path: "/x", boundary: "b" } }`) });
    await expect(loadConfig(p.config)).rejects.toMatchObject({
      code: code.config,
      message: expect.stringMatching(
        /backup\.config\.ts: targets\.Shm: the name "Shm" is not allowed: use lowercase letters, digits and dashes only/,
      ),
    });
  });

  it("takes an empty --config or LIFEBOAT_CONFIG as unset", () => {
    expect(resolveConfigPath(undefined, { LIFEBOAT_CONFIG: "" })).toBe(resolve("backup.config.ts"));
    expect(resolveConfigPath("", { LIFEBOAT_CONFIG: "/srv/b/backup.config.ts" })).toBe("/srv/b/backup.config.ts");
  });
});
