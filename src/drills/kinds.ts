import { ConfigError } from "../errors.ts";
import { directoryDestination } from "./dir-destination.ts";
import type { DrillKind } from "./kind.ts";
import { mysqlDrillKind } from "./mysql.ts";
import { postgresDrillKind } from "./postgres.ts";
import { sqliteDrillKind } from "./sqlite.ts";
import { volumeDrillKind } from "./volume.ts";

const kinds = new Map<string, DrillKind>();

/** Registers how drills restore one source kind; throws on a duplicate. */
export function registerDrillKind(k: DrillKind): void {
  if (kinds.has(k.kind)) throw new Error(`drill kind "${k.kind}" is registered twice`);
  kinds.set(k.kind, k);
}

/** The drill kind for a source kind; ConfigError if none. */
export function drillKindFor(sourceKind: string): DrillKind {
  const k = kinds.get(sourceKind);
  if (!k) throw new ConfigError(`drills of ${sourceKind} jobs are not supported`, { hint: `supported: ${[...kinds.keys()].join(", ")}` });
  return k;
}

registerDrillKind(postgresDrillKind);
registerDrillKind(mysqlDrillKind);
registerDrillKind(sqliteDrillKind);
// The directory destination builds on restoreVolume, so it is joined to the kind here rather than inside volume.ts.
registerDrillKind({ ...volumeDrillKind, openDestination: async (to: string) => directoryDestination(to) } as DrillKind);
