import { code, LifeboatError } from "../errors.ts";
import type { DrillKind, Scratch } from "./kind.ts";

/** Placeholder until volume drills land: refuses clearly instead of pretending. */
export const volumeDrillKind: DrillKind = {
  kind: "volume",
  async createScratch(): Promise<Scratch> {
    throw new LifeboatError(code.config, "drills of volume jobs are not supported yet");
  },
};
