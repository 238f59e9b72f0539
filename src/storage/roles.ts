import type { S3TargetConfig, TargetConfig } from "../config/schema.ts";
import { createTarget, type TargetOptions } from "./index.ts";
import type { Target } from "./target.ts";

// Role selection lives here and only here: every command opens its targets through openTargetAs with the one role
// it needs, so a backup host never needs the pruner's key and a drill host never needs the writer's.

/** The roles a target's credentials can play: backup writes, drills and restores read, retention deletes. */
export const ROLES = ["writer", "reader", "pruner"] as const;

/** One role: "writer" (backup: put only), "reader" (snapshots, verify, drill, restore, report), "pruner" (retention). */
export type Role = (typeof ROLES)[number];

/** Static S3 credentials as the config holds them. */
export type S3Credentials = NonNullable<S3TargetConfig["credentials"]>;

/** Which credential a role uses on one target, and how to name it without showing it. */
export interface RoleCredential {
  role: Role;
  /** Where the credential comes from, fit for output: "roles.writer", "credentials", "default chain", "local user". */
  label: string;
  /**
   * Compares credentials without revealing them: the access key id, "default chain" or "local user". Two roles with
   * the same identity are one credential, whatever the config calls them.
   */
  identity: string;
  /** The static credentials, when the config gives some. */
  credentials?: S3Credentials;
}

/**
 * Picks the credential a role uses on a target: `roles.<role>`, else the target's `credentials`, else the SDK's
 * default chain (environment, profile, instance role). Filesystem targets have one: the local user running lifeboat.
 */
export function credentialFor(config: TargetConfig, role: Role): RoleCredential {
  if (config.type !== "s3") return { role, label: "local user", identity: "local user" };
  const own = config.roles[role];
  if (own) return { role, label: `roles.${role}`, identity: `key:${own.accessKeyId}`, credentials: own };
  if (config.credentials)
    return { role, label: "credentials", identity: `key:${config.credentials.accessKeyId}`, credentials: config.credentials };
  return { role, label: "default chain", identity: "default chain" };
}

/**
 * The target's config as one role sees it: the role's credentials in `credentials` and no other role's secrets,
 * so a target opened as writer cannot use (or leak in a message) the pruner's key.
 */
export function configForRole<C extends TargetConfig>(config: C, role: Role): C {
  if (config.type !== "s3") return config;
  const { credentials } = credentialFor(config, role);
  return { ...config, credentials: credentials ? { ...credentials } : undefined, roles: {} };
}

/** Opens a target with the credential of one role; the one function every command's target goes through. */
export function openTargetAs(name: string, config: TargetConfig, role: Role, options?: TargetOptions): Target {
  return createTarget(name, configForRole(config, role), options);
}

/** The line a command prints (stderr, text mode) to say which role and credential it uses on a target. */
export function roleLine(name: string, config: TargetConfig, role: Role): string {
  return `using target "${name}" as ${role} (credentials: ${credentialFor(config, role).label})`;
}

/**
 * Says when roles share a credential on an S3 target, as a warning, or undefined when each role has its own.
 * Sharing means the backup host holds a key that can also delete (or read) what it wrote.
 */
export function sharedCredentialWarning(name: string, config: TargetConfig): string | undefined {
  if (config.type !== "s3") return undefined;
  const [writer, reader, pruner] = ROLES.map((r) => credentialFor(config, r));
  if (!writer || !reader || !pruner) return undefined;
  const shown = (c: RoleCredential) => c.label;
  if (writer.identity === reader.identity && reader.identity === pruner.identity) {
    return (
      `target "${name}": one credential (${shown(writer)}) serves writer, reader and pruner, so the backup host holds every ` +
      "role's permissions, the pruner's deletes included. Give each role its own key under roles (see docs/SECURITY.md)"
    );
  }
  if (writer.identity === pruner.identity) {
    return `target "${name}": writer and pruner share a credential (${shown(writer)}); the backup host holds a key that can delete backups`;
  }
  if (writer.identity === reader.identity) {
    return `target "${name}": writer and reader share a credential (${shown(writer)}); the backup host holds a key that can read backups`;
  }
  return undefined;
}

/** Every secret a target's config holds (secret keys, session tokens), for redacting messages. */
export function targetSecrets(config: TargetConfig): string[] {
  if (config.type !== "s3") return [];
  const creds = [config.credentials, config.roles.writer, config.roles.reader, config.roles.pruner];
  return creds.flatMap((c) => (c ? [c.secretAccessKey, c.sessionToken].filter((s): s is string => s !== undefined) : []));
}
