import type { SqliteSourceConfig } from "../config/schema.ts";
import { code, LifeboatError } from "../errors.ts";
import type { Dump, Source } from "./source.ts";

/** Placeholder until the sqlite source lands: refuses clearly instead of pretending. */
export class SqliteSource implements Source {
  readonly kind = "sqlite";
  constructor(readonly config: SqliteSourceConfig) {}
  async dump(_signal: AbortSignal): Promise<Dump> {
    throw new LifeboatError(code.config, "sqlite sources are not supported yet");
  }
}
