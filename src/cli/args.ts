import { isSnapshotId } from "../catalog/snapshot-id.ts";
import { code, LifeboatError } from "../errors.ts";

/**
 * Checks a snapshot id given on the command line before it becomes part of an object key: anything else ("../x", a
 * typo) is a usage error naming the format, rather than an invalid key deep in a target or a snapshot that seems gone.
 */
export function snapshotIdArg(id: string | undefined, where: string, job?: string): void {
  if (id === undefined || isSnapshotId(id)) return;
  throw new LifeboatError(code.usage, `${where}: "${id}" is not a snapshot id (format YYYYMMDDTHHMMSSZ-xxxx, e.g. 20261124T215300Z-3fa9)`, {
    hint: job ? `list the snapshots with: lifeboat snapshots ${job}` : "lifeboat snapshots <job> lists them",
  });
}
