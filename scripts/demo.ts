// The demo: an embedded S3 server in a temporary folder, a throwaway key, sample data, then backups, listings and
// drills of each sample. It drives the real CLI (bin/lifeboat.js) with a generated backup.config.ts, as a user would.
// SQLite and a directory need no server at all; PostgreSQL and MySQL/MariaDB samples are added when one is reachable.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createBucket, EMBEDDED_S3_CREDENTIALS, startEmbeddedS3 } from "../src/storage/embedded-s3.ts";
import { type Sample, samples } from "./demo-samples.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = join(root, "bin", "lifeboat.js");
const say = (s: string) => process.stdout.write(`\n\x1b[1m==> ${s}\x1b[0m\n`);

/** Runs the CLI as a user would. Asynchronously: the embedded S3 server lives in this process and must keep serving. */
async function lifeboat(dir: string, ...args: string[]): Promise<number> {
  process.stdout.write(`$ lifeboat ${args.join(" ")}\n`);
  const child = spawn(process.execPath, [bin, "--config", join(dir, "backup.config.ts"), ...args], {
    stdio: "inherit",
    cwd: dir,
    env: { ...process.env, LIFEBOAT_IDENTITY_FILE: join(dir, "identity.txt") },
  });
  const [status] = (await once(child, "close")) as [number | null];
  return status ?? 1;
}

function writeConfig(dir: string, endpoint: string, recipient: string, scratch: Record<string, string>): void {
  writeFileSync(
    join(dir, "backup.config.ts"),
    `import { defineConfig } from "lifeboat";
export default defineConfig({
  encryption: { recipients: ["${recipient}"] },
  targets: {
    offsite: {
      type: "s3", bucket: "demo-backups", prefix: "demo", endpoint: "${endpoint}", forcePathStyle: true,
      credentials: { accessKeyId: "${EMBEDDED_S3_CREDENTIALS.accessKeyId}", secretAccessKey: "${EMBEDDED_S3_CREDENTIALS.secretAccessKey}" },
      boundary: "demo-s3",
    },
  },
  scratch: ${JSON.stringify(scratch)},
});
`,
  );
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "lifeboat-demo-"));
  say(`Demo folder: ${dir}`);
  const s3 = await startEmbeddedS3({ directory: join(dir, "s3-data") });
  try {
    await createBucket(s3.endpoint, "demo-backups");
    say(`Embedded S3 server on ${s3.endpoint}, bucket demo-backups`);

    say("Generating a throwaway age key");
    if ((await lifeboat(dir, "keygen", "--out", join(dir, "identity.txt"))) !== 0) return 1;
    const recipient = /public key: (age1[0-9a-z]+)/.exec(readFileSync(join(dir, "identity.txt"), "utf8"))?.[1] as string;

    mkdirSync(join(dir, "jobs"));
    mkdirSync(join(dir, "restore-drills"));
    const ready: Sample[] = [];
    const scratch: Record<string, string> = { directory: join(dir, "scratch") };
    for (const sample of samples) {
      say(`Preparing the ${sample.label} sample`);
      const prepared = await sample.prepare(dir);
      if (!prepared) continue;
      Object.assign(scratch, prepared.scratch ?? {});
      writeFileSync(
        join(dir, "jobs", `${sample.job}.ts`),
        `import { defineJob } from "lifeboat";\nexport default defineJob(${prepared.job});\n`,
      );
      writeFileSync(
        join(dir, "restore-drills", `${sample.job}.ts`),
        `import { defineDrill } from "lifeboat";\nexport default defineDrill(${prepared.drill});\n`,
      );
      ready.push(sample);
    }
    writeConfig(dir, s3.endpoint, recipient, scratch);

    const verdicts: string[] = [];
    for (const sample of ready) {
      say(`Backing up ${sample.job} (${sample.label})`);
      if ((await lifeboat(dir, "backup", sample.job)) !== 0) return 1;
      say(`Listing ${sample.job}'s snapshots, read from the bucket alone`);
      if ((await lifeboat(dir, "snapshots", sample.job)) !== 0) return 1;
      say(`Drilling ${sample.job}: restore into scratch, check everything against the backup's inventory, clean up`);
      const status = await lifeboat(dir, "drill", `${sample.job}-drill`);
      verdicts.push(`  ${sample.job.padEnd(14)} ${status === 0 ? "backed up and proven by a drill" : "DRILL FAILED"}`);
      if (status !== 0) return 1;
    }
    say("Summary");
    process.stdout.write(`${verdicts.join("\n")}\n`);
    process.stdout.write(`\nThe config, the key and the bucket's files are in ${dir}\n`);
    return 0;
  } finally {
    await s3.stop();
  }
}

process.exitCode = await main();
