import type { MysqlSourceConfig } from "../config/schema.ts";
import { code, LifeboatError } from "../errors.ts";
import type { Dump, Source } from "./source.ts";

/** Placeholder until the mysql source lands: refuses clearly instead of pretending. */
export class MysqlSource implements Source {
  readonly kind = "mysql";
  constructor(readonly config: MysqlSourceConfig) {}
  async dump(_signal: AbortSignal): Promise<Dump> {
    throw new LifeboatError(code.config, "mysql sources are not supported yet");
  }
}
