import type { TargetConfig } from "../config/schema.ts";
import { ConfigError, code, LifeboatError } from "../errors.ts";
import { FilesystemTarget } from "./filesystem.ts";
import { S3Target } from "./s3.ts";
import type { Target } from "./target.ts";

/** How a caller wants its connections: a quick check (doctor) must not wait minutes on a server that never answers. */
export interface TargetOptions {
  /** Milliseconds a request may sit without an answer before it fails (S3; default 120000). */
  idleTimeoutMs?: number;
}

/** Builds a Target from its name in backup.config.ts and its validated config block. */
export type TargetFactory<C = TargetConfig> = (name: string, config: C, options?: TargetOptions) => Target;

/** The config block of one target type. */
type ConfigOf<K extends TargetConfig["type"]> = Extract<TargetConfig, { type: K }>;

const factories = new Map<string, TargetFactory>();

/** Registers the factory for one target type; throws on a duplicate, so two backends never claim one type. */
export function registerTarget<K extends TargetConfig["type"]>(kind: K, factory: TargetFactory<ConfigOf<K>>): void;
export function registerTarget(kind: string, factory: TargetFactory<never>): void;
export function registerTarget(kind: string, factory: TargetFactory<never>): void {
  if (factories.has(kind)) {
    throw new LifeboatError(code.failed, `storage backend "${kind}" is registered twice`, {
      hint: "each target type has exactly one factory; this is a bug in lifeboat or a plugin",
    });
  }
  factories.set(kind, factory as TargetFactory);
}

/** Creates the Target for one configured target. Throws ConfigError if no backend handles its type. */
export function createTarget(name: string, config: TargetConfig, options?: TargetOptions): Target {
  const factory = factories.get(config.type);
  if (!factory) {
    throw new ConfigError(`target "${name}": unknown type "${config.type}"`, {
      hint: `use one of: ${[...factories.keys()].join(", ")}`,
    });
  }
  return factory(name, config, options);
}

/**
 * The built-in backends, one line each. The mapped type makes a new type in targetSchema fail to compile until
 * its factory is added here (the exhaustiveness check, without a switch).
 */
const builtins: { [K in TargetConfig["type"]]: TargetFactory<ConfigOf<K>> } = {
  s3: (name, config, options) => new S3Target(name, config, { idleTimeoutMs: options?.idleTimeoutMs }),
  filesystem: (name, config) => new FilesystemTarget(name, config),
};

for (const [kind, factory] of Object.entries(builtins)) registerTarget(kind, factory as TargetFactory<never>);
