import { z } from "zod";
import { isTimeZone } from "./timezone.ts";

/** Names that become object keys: lowercase letters, digits and dashes, starting with a letter or digit. */
export const nameSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9-]{0,62}$/,
    "use lowercase letters, digits and dashes only, starting with a letter or digit, at most 63 characters (it becomes part of object keys)",
  );

/**
 * A blast-radius label: where a thing lives and what fails with it (a provider account, a region, a device). Labels
 * are compared trimmed, so one of only spaces would be the empty label in disguise.
 */
const boundarySchema = z.string().refine((s) => s.trim() !== "", 'declare the blast radius this lives in, e.g. "aws:eu-central-1"');

/** Static S3 credentials (omit to use the SDK's default chain: env, profile, instance role). */
// Read from a secret file, a key often keeps its trailing newline; the SDK then fails with a bare "Invalid character
// in header content". The message names no secret: only that it holds whitespace.
const credentialPart = z
  .string()
  .min(1)
  .refine((s) => !/\s/.test(s), "holds whitespace (a trailing newline from a secret file?): trim it");

export const s3CredentialsSchema = z
  .object({
    accessKeyId: credentialPart,
    secretAccessKey: credentialPart,
    sessionToken: credentialPart.optional(),
  })
  .strict();

/**
 * What a target's configured prefix puts before every key: "prod/" for "/prod/", "" for no prefix. The one reading
 * of `prefix`: the S3 target stores under it, and config checks and doctor name places by it.
 */
export function keyPrefix(prefix: string): string {
  const inner = prefix.split("/").filter(Boolean).join("/");
  return inner === "" ? "" : `${inner}/`;
}

/** An S3-compatible bucket. */
export const s3TargetSchema = z
  .object({
    type: z.literal("s3"),
    bucket: z
      .string()
      .min(3, "name the bucket")
      .refine(
        (b) => !b.includes("/") && !b.includes(":"),
        'a bucket name has no "/" or scheme: put the bucket alone here (no s3://) and any path in prefix',
      ),
    /** Region; S3-compatible servers usually accept any. */
    region: z.string().min(1, 'name the region (any, e.g. "us-east-1", for most S3-compatible servers)').default("us-east-1"),
    /** Key prefix inside the bucket (no leading or trailing slash needed). */
    prefix: z.string().default(""),
    /** Custom endpoint for S3-compatible servers (MinIO, R2, B2, …). */
    endpoint: z.string().url().optional(),
    /** Path-style addressing, needed by most self-hosted servers. */
    forcePathStyle: z.boolean().default(false),
    /** Credentials for every role, unless a role has its own under `roles`. */
    credentials: s3CredentialsSchema.optional(),
    /**
     * Separate credentials per role: writer (backup: put only), reader (drill, verify, report, restore),
     * pruner (retention). A role without its own falls back to `credentials`, then to the SDK's default chain.
     */
    roles: z
      .object({
        writer: s3CredentialsSchema.optional(),
        reader: s3CredentialsSchema.optional(),
        pruner: s3CredentialsSchema.optional(),
      })
      .strict()
      .default({}),
    /** S3 Object Lock retention put on every object written (the bucket must have Object Lock enabled). */
    objectLock: z
      .object({ mode: z.enum(["GOVERNANCE", "COMPLIANCE"]), days: z.number().int().min(1).max(36500) })
      .strict()
      .optional(),
    /** Refuse to back up (exit 3) when the writer credential can delete objects here. */
    requireImmutable: z.boolean().default(false),
    /** First multipart part size in MiB (5–5120); parts double as an upload grows (storage/part-sizes.ts). */
    partSizeMiB: z.number().int().min(5).max(5120).default(8),
    /** Parts uploaded at once per object. */
    queueSize: z.number().int().min(1).max(32).default(4),
    boundary: boundarySchema,
  })
  .strict();

/** A directory on storage that fails separately from the sources (a NAS mount, another disk). */
export const filesystemTargetSchema = z
  .object({
    type: z.literal("filesystem"),
    path: z.string().min(1, "give the directory's absolute path"),
    boundary: boundarySchema,
  })
  .strict();

/** Any storage target. */
export const targetSchema = z.discriminatedUnion("type", [s3TargetSchema, filesystemTargetSchema]);

/** A PostgreSQL database. */
export const postgresSourceSchema = z
  .object({
    type: z.literal("postgres"),
    /** postgres://user:pass@host:port/db */
    url: z.string().min(1, "give the connection URL, e.g. postgres://user@host:5432/db"),
    boundary: boundarySchema,
    /** Extra arguments for pg_dump (e.g. ["--exclude-table=audit_log"]). */
    pgDumpArgs: z.array(z.string()).default([]),
  })
  .strict();

/** A MySQL or MariaDB server: one database (from the URL), several (`databases`) or all (`all: true`). */
export const mysqlSourceSchema = z
  .object({
    type: z.literal("mysql"),
    /** mysql://user:pass@host:3306/db */
    url: z.string().min(1, "give the connection URL, e.g. mysql://user:pass@host:3306/db"),
    boundary: boundarySchema,
    /** Back up these databases instead of the URL's one. */
    databases: z.array(z.string().min(1)).optional(),
    /** Back up every non-system database. */
    all: z.boolean().default(false),
    /** Extra arguments for mariadb-dump/mysqldump. */
    dumpArgs: z.array(z.string()).default([]),
  })
  .strict();

/** A SQLite database file. */
export const sqliteSourceSchema = z
  .object({
    type: z.literal("sqlite"),
    /** Path of the database file. */
    path: z.string().min(1, "give the database file's path"),
    boundary: boundarySchema,
    /** How long to wait for a lock held by a writer before failing, in milliseconds. */
    lockTimeoutMs: z.number().int().positive().default(30_000),
  })
  .strict();

/** A directory tree (uploads, attachments, anything an application keeps on disk). */
export const volumeSourceSchema = z
  .object({
    type: z.literal("volume"),
    /** Absolute path of the directory. */
    path: z.string().min(1, "give the directory's absolute path"),
    boundary: boundarySchema,
    /** Glob patterns (relative to path) left out of the backup, e.g. ["cache/**", "*.tmp"]. */
    exclude: z.array(z.string()).default([]),
    /** An unreadable file fails the backup ("fail", the default) or is skipped with a warning ("warn"). */
    onUnreadable: z.enum(["fail", "warn"]).default("fail"),
  })
  .strict();

/** Any source. */
export const sourceSchema = z.discriminatedUnion("type", [postgresSourceSchema, mysqlSourceSchema, sqliteSourceSchema, volumeSourceSchema]);

/** The top-level backup.config.ts. */
export const configSchema = z
  .object({
    encryption: z
      .object({
        /** age recipients (public keys, age1…). Only public keys belong on the backup host. */
        recipients: z.array(z.string()).min(1, "add at least one age recipient (age1…); run `lifeboat keygen` to make one"),
      })
      .strict(),
    targets: z.record(nameSchema, targetSchema).refine((t) => Object.keys(t).length > 0, "declare at least one target"),
    scratch: z
      .object({
        postgres: z.string().optional(),
        mysql: z.string().optional(),
        directory: z.string().optional(),
      })
      .strict()
      .default({}),
    /** The scheduler (`lifeboat daemon`). */
    daemon: z
      .object({
        /** IANA time zone the cron expressions are read in. */
        timezone: z.string().default("UTC"),
        /** Most jobs and drills running at once. */
        concurrency: z.number().int().min(1).max(64).default(2),
        /** Retries of a failed run, with exponential backoff starting at backoffSeconds. */
        retry: z
          .object({ attempts: z.number().int().min(0).max(20).default(2), backoffSeconds: z.number().min(0).default(30) })
          .strict()
          .default({ attempts: 2, backoffSeconds: 30 }),
        /** Seconds in-flight runs get to finish after SIGTERM before they are aborted. */
        shutdownGraceSeconds: z.number().min(0).default(60),
        /** /metrics and /healthz; loopback by default. Set port 0 to turn the endpoint off. */
        metrics: z
          .object({ host: z.string().default("127.0.0.1"), port: z.number().int().min(0).max(65535).default(9464) })
          .strict()
          .default({ host: "127.0.0.1", port: 9464 }),
        /** Run retention (prune) after each successful backup; off unless turned on. */
        prune: z.boolean().default(false),
      })
      .strict()
      .default({
        timezone: "UTC",
        concurrency: 2,
        retry: { attempts: 2, backoffSeconds: 30 },
        shutdownGraceSeconds: 60,
        metrics: { host: "127.0.0.1", port: 9464 },
        prune: false,
      }),
    /** Where failures and staleness are announced. */
    notifications: z
      .object({
        /** Webhook URLs receiving a JSON body with a Slack-compatible `text` field. */
        webhooks: z.array(z.string().url()).default([]),
      })
      .strict()
      .default({ webhooks: [] }),
    /** zstd level used for every artifact (1 is fast and usually enough). */
    compression: z
      .object({ level: z.number().int().min(1).max(19).default(1) })
      .strict()
      .default({ level: 1 }),
  })
  .strict();

/** A duration like "30m", "6h", "7d", "2w". */
export const durationSchema = z.string().regex(/^\d+(s|m|h|d|w)$/, 'use a duration like "30m", "6h" or "7d"');

/** Which snapshots retention keeps: the newest in each natural calendar period, plus the last N. */
export const retentionSchema = z
  .object({
    keepLast: z.number().int().min(1).default(1),
    keepHourly: z.number().int().min(0).default(0),
    keepDaily: z.number().int().min(0).default(0),
    keepWeekly: z.number().int().min(0).default(0),
    keepMonthly: z.number().int().min(0).default(0),
    keepYearly: z.number().int().min(0).default(0),
    /** Nothing younger than this is ever deleted. */
    minAge: durationSchema.default("1d"),
    /** Days between marking a snapshot for deletion and deleting it (undelete works until then). */
    graceDays: z.number().int().min(0).default(7),
    /** IANA time zone for the calendar periods (default: UTC). Checked at load: a typo must not wait for the first prune. */
    timezone: z
      .string()
      .refine(isTimeZone, { error: (iss) => `"${String(iss.input)}" is not an IANA time zone (e.g. "UTC", "Europe/Berlin")` })
      .default("UTC"),
  })
  .strict();

/** One backup job (jobs/<name>.ts). */
export const jobSchema = z
  .object({
    name: nameSchema,
    source: sourceSchema,
    /** Names of targets from backup.config.ts; every one gets a complete copy. */
    targets: z.array(nameSchema).min(1, "ship the job to at least one target"),
    /** Cron expression for the daemon. */
    schedule: z.string().optional(),
    /** Recovery point objective: the oldest the newest snapshot may be. */
    rpo: durationSchema.optional(),
    /** Snapshots to keep; pruning marks the rest, then deletes them after graceDays (see docs/SECURITY.md). */
    retention: retentionSchema.optional(),
    /** Dead-man's switch: pinged on start (<url>/start), success (<url>) and failure (<url>/fail). */
    ping: z.string().url().optional(),
  })
  .strict();

/** One restore drill (restore-drills/<name>.ts). */
export const drillSchema = z
  .object({
    name: nameSchema,
    job: nameSchema,
    /** Target to restore from; defaults to the job's first target. */
    from: nameSchema.optional(),
    schedule: z.string().optional(),
    /** A passing drill older than this makes the job "unproven". */
    maxAge: durationSchema.default("8d"),
    checks: z
      .object({
        /** Database jobs: every table's restored count must equal the count captured in the dump's snapshot. */
        rowCounts: z.enum(["exact", "off"]).default("exact"),
        /** Volume jobs: every file present with its recorded size and sha256, no extra files, symlinks unchanged. */
        files: z.enum(["exact", "off"]).default("exact"),
        /** Longest a user query may run before it fails its check (a lock or a runaway query must not hang a drill). */
        queryTimeout: durationSchema.default("15m"),
        queries: z
          .array(
            z
              .object({
                name: z.string().min(1),
                sql: z.string().min(1),
                min: z.number().optional(),
                max: z.number().optional(),
                equals: z.number().optional(),
              })
              .strict(),
          )
          .default([]),
      })
      .strict()
      .default({ rowCounts: "exact", files: "exact", queryTimeout: "15m", queries: [] }),
  })
  .strict();

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type JobInput = z.input<typeof jobSchema>;
export type Job = z.output<typeof jobSchema>;
export type DrillInput = z.input<typeof drillSchema>;
export type Drill = z.output<typeof drillSchema>;
export type TargetConfig = z.output<typeof targetSchema>;
export type S3TargetConfig = z.output<typeof s3TargetSchema>;
export type FilesystemTargetConfig = z.output<typeof filesystemTargetSchema>;
export type SourceConfig = z.output<typeof sourceSchema>;
export type Retention = z.output<typeof retentionSchema>;
export type PostgresSourceConfig = z.output<typeof postgresSourceSchema>;
export type MysqlSourceConfig = z.output<typeof mysqlSourceSchema>;
export type SqliteSourceConfig = z.output<typeof sqliteSourceSchema>;
export type VolumeSourceConfig = z.output<typeof volumeSourceSchema>;
