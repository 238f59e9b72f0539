import { code, LifeboatError } from "../errors.ts";
import type { DrillKind, Scratch } from "./kind.ts";

/** PostgreSQL drills (filled in next). */
export const postgresDrillKind: DrillKind = {
  kind: "postgres",
  async createScratch(): Promise<Scratch> {
    throw new LifeboatError(code.config, "drills of postgres jobs are not supported yet");
  },
};
