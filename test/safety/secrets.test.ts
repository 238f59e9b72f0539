import { chmodSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.ts";
import { RefusedError } from "../../src/errors.ts";
import { loadIdentities } from "../../src/safety/identity.ts";
import { makeKey } from "../helpers/age.ts";
import { type CliResult, runCli } from "../helpers/cli.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/pg.ts";
import { writeProject } from "../helpers/project.ts";
import { type S3TestServer, startS3Server } from "../helpers/s3.ts";

// Secrets hygiene, checked through every output path of the real CLI: text and --json, success and failure.
// The test PostgreSQL trusts loopback, so a URL may carry any password; s3rver checks the access key id, not the
// secret, so the secret keys below are accepted, and a wrong key id gives a real refusal.
const PG_PASSWORD = "pg-Pa55word-do-not-print";
const S3_SECRET = "s3-secret-access-key-do-not-print";
const ROLE_SECRETS = ["writer-secret-do-not-print", "reader-secret-do-not-print", "pruner-secret-do-not-print"];
const SECRETS = [PG_PASSWORD, encodeURIComponent(PG_PASSWORD), S3_SECRET, ...ROLE_SECRETS];

let db: TestDatabase;
let s3: S3TestServer;
let key: Awaited<ReturnType<typeof makeKey>>;

beforeAll(async () => {
  [db, s3, key] = await Promise.all([createTestDatabase(), startS3Server(), makeKey()]);
  const c = await db.client();
  await c.query("create table t (id int); insert into t values (1), (2), (3);");
  await c.end();
});
afterAll(async () => {
  await Promise.allSettled([db?.drop(), s3?.stop()]);
});

interface Variant {
  pgUrl?: string;
  bucket?: string;
  accessKeyId?: string;
  roles?: boolean;
}

function project(v: Variant = {}) {
  const url = new URL(v.pgUrl ?? db.url);
  url.password = PG_PASSWORD;
  const creds = { accessKeyId: v.accessKeyId ?? "S3RVER", secretAccessKey: S3_SECRET };
  const roles = v.roles
    ? {
        writer: { accessKeyId: "S3RVER", secretAccessKey: ROLE_SECRETS[0] },
        reader: { accessKeyId: "S3RVER", secretAccessKey: ROLE_SECRETS[1] },
        pruner: { accessKeyId: "S3RVER", secretAccessKey: ROLE_SECRETS[2] },
      }
    : {};
  const t = { ...s3.config("secrets"), credentials: creds, roles, ...(v.bucket ? { bucket: v.bucket } : {}) };
  return writeProject({
    "backup.config.ts": `import { defineConfig } from "lifeboat";
export default defineConfig({ encryption: { recipients: ["${key.recipient}"] }, targets: { offsite: ${JSON.stringify(t)} } });
`,
    "jobs/shop.ts": `import { defineJob } from "lifeboat";
export default defineJob({ name: "shop", source: { type: "postgres", url: ${JSON.stringify(url.toString())}, boundary: "test:postgres" },
  targets: ["offsite"], retention: { keepLast: 1 } });
`,
  });
}

function expectClean(r: CliResult, what: string): void {
  for (const s of SECRETS) {
    expect(r.stdout, `${what}: stdout`).not.toContain(s);
    expect(r.stderr, `${what}: stderr`).not.toContain(s);
  }
}

const commands = [["backup", "shop"], ["snapshots", "shop"], ["doctor"], ["prune", "shop", "--dry-run"]];

/**
 * Runs the CLI's main() in this process with stdout and stderr captured: the same code as bin/lifeboat.js without
 * a process start per run (a few seconds each), so the whole matrix stays fast. The other CLI tests start processes.
 */
async function runMain(args: string[]): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const out = process.stdout.write;
  const err = process.stderr.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  let status: number;
  try {
    status = await main(["node", "lifeboat", ...args]);
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
  return { status, signal: null, stdout, stderr };
}

/** Runs every command in text and JSON, checking each output. */
async function runAll(p: { config: string }, what: string): Promise<CliResult[]> {
  const results: CliResult[] = [];
  for (const args of commands) {
    for (const json of [false, true]) {
      const r = await runMain(["--config", p.config, ...(json ? ["--json"] : []), ...args]);
      expectClean(r, `${what}: ${args.join(" ")}${json ? " --json" : ""}`);
      results.push(r);
    }
  }
  return results;
}

describe("connection strings and keys never appear in output", () => {
  it.each([
    ["one credential", false],
    ["a credential per role", true],
  ])("on success, in text and JSON, with %s", async (_name, roles) => {
    const results = await runAll(project({ roles }), "success");
    for (const r of results) expect(r.status, r.stderr).toBe(0);
  });

  it.each<[string, Variant]>([
    ["a wrong database host", { pgUrl: "postgres://postgres@127.0.0.1:1/nowhere" }],
    ["a wrong bucket", { bucket: "no-such-bucket-here" }],
    ["a key the server refuses", { accessKeyId: "NOT-A-KEY" }],
  ])("on failure: %s", async (name, v) => {
    const results = await runAll(project(v), name);
    expect(results[0]?.status, `${name}: backup fails`).toBe(1);
    expect(results[1]?.status, `${name}: backup --json fails`).toBe(1);
  });
});

describe("secret material the config must not hold", () => {
  it("an age secret key written inline as a recipient is a config error (exit 2) that does not print it", async () => {
    const p = writeProject({
      "backup.config.ts": `import { defineConfig } from "lifeboat";
export default defineConfig({ encryption: { recipients: ["${key.identity}"] }, targets: { nas: { type: "filesystem", path: "/tmp", boundary: "b" } } });
`,
    });
    for (const json of [false, true]) {
      const r = await runCli(["--config", p.config, ...(json ? ["--json"] : []), "doctor"]);
      expect(r.status).toBe(2);
      expect(r.stdout + r.stderr).toMatch(/this is an age secret key, not a recipient/);
      expect(r.stdout + r.stderr).not.toContain(key.identity);
    }
  });

  it("an identity file readable by group or others is refused (exit 3)", async () => {
    const k = await makeKey();
    const loose = join(k.identityFile, "..", "loose.txt");
    writeFileSync(loose, `${k.identity}\n`);
    chmodSync(loose, 0o640);
    expect(() => loadIdentities(loose)).toThrow(RefusedError);
    expect(() => loadIdentities(loose)).toThrow(/readable by group or others \(mode 640\)/);
    const p = project();
    const r = await runCli(["--config", p.config, "verify", "shop", "--identity", loose]);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/chmod 600/);
    expect(r.stdout + r.stderr).not.toContain(k.identity);
    chmodSync(loose, 0o600);
    expect(loadIdentities(loose)).toEqual([k.identity]);
  });

  it("an identity file with a bad line names the line, never its content", async () => {
    const k = await makeKey();
    const file = join(k.identityFile, "..", "bad-lines.txt");
    const cases: [string, RegExp][] = [
      [`# mine\n${k.identity}\nAGE-SECRET-KEY-1NOTAKEY\n`, /: line 3 is not a valid age identity \(wrong length or characters\)$/],
      [`${k.identity}\n${k.identity.toLowerCase()}\n`, /: line 2 is not an age identity$/],
      ["# only a comment\n\n", /holds no age identity$/],
    ];
    for (const [text, message] of cases) {
      writeFileSync(file, text, { mode: 0o600 });
      const err = (() => {
        try {
          loadIdentities(file);
        } catch (e) {
          return e as Error;
        }
      })();
      expect(err?.message).toMatch(message);
      expect(err?.message).toContain(file);
      expect(err?.message).not.toContain(k.identity.slice(20));
    }
  });

  it("an identity path that is not a regular file is a usage error, not a chmod hint", () => {
    for (const path of ["/dev/null", tmpdir()]) {
      expect(() => loadIdentities(path)).toThrow(/is not a regular file/);
      expect(() => loadIdentities(path)).toThrow(expect.objectContaining({ code: "USAGE" }));
    }
  });
});
