import type { VolumeSourceConfig } from "../config/schema.ts";
import { code, LifeboatError } from "../errors.ts";
import type { Dump, Source } from "./source.ts";

/** Placeholder until the volume source lands: refuses clearly instead of pretending. */
export class VolumeSource implements Source {
  readonly kind = "volume";
  constructor(readonly config: VolumeSourceConfig) {}
  async dump(_signal: AbortSignal): Promise<Dump> {
    throw new LifeboatError(code.config, "volume sources are not supported yet");
  }
}
