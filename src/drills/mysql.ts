import { code, LifeboatError } from "../errors.ts";
import type { DrillKind, Scratch } from "./kind.ts";

/** Placeholder until mysql drills land: refuses clearly instead of pretending. */
export const mysqlDrillKind: DrillKind = {
  kind: "mysql",
  async createScratch(): Promise<Scratch> {
    throw new LifeboatError(code.config, "drills of mysql jobs are not supported yet");
  },
};
