import type { SourceConfig } from "../config/schema.ts";
import { ConfigError } from "../errors.ts";
import { MysqlSource } from "./mysql.ts";
import { PostgresSource } from "./postgres.ts";
import type { Source } from "./source.ts";
import { SqliteSource } from "./sqlite.ts";
import { VolumeSource } from "./volume.ts";

/** A source kind, as written in a job's `source.type`. */
export type SourceKind = SourceConfig["type"];

/** Builds a Source from its validated config block. */
export type SourceFactory<K extends SourceKind = SourceKind> = (config: Extract<SourceConfig, { type: K }>) => Source;

const factories = new Map<string, (config: SourceConfig) => Source>();

/** Registers the factory of one source kind. Throws on a second registration of the same kind: one place per kind. */
export function registerSource<K extends SourceKind>(kind: K, factory: SourceFactory<K>): void {
  if (factories.has(kind)) throw new Error(`source kind "${kind}" is registered twice`);
  factories.set(kind, factory as (config: SourceConfig) => Source);
}

/** Creates the Source a job's config describes. Throws ConfigError for a kind nobody registered. */
export function createSource(config: SourceConfig): Source {
  const factory = factories.get(config.type);
  if (!factory) {
    throw new ConfigError(`source type "${config.type}" is not supported`, { hint: `use one of: ${[...factories.keys()].join(", ")}` });
  }
  return factory(config);
}

registerSource("postgres", (config) => new PostgresSource(config));
registerSource("mysql", (config) => new MysqlSource(config));
registerSource("sqlite", (config) => new SqliteSource(config));
registerSource("volume", (config) => new VolumeSource(config));
