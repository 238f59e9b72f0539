import { code, LifeboatError } from "../errors.ts";
import type { DrillKind, Scratch } from "./kind.ts";

/** Placeholder until sqlite drills land: refuses clearly instead of pretending. */
export const sqliteDrillKind: DrillKind = {
  kind: "sqlite",
  async createScratch(): Promise<Scratch> {
    throw new LifeboatError(code.config, "drills of sqlite jobs are not supported yet");
  },
};
