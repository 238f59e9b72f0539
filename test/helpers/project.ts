import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** Writes a throwaway project (backup.config.ts, jobs/, restore-drills/) from a map of relative path → source. */
export function writeProject(files: Record<string, string>): { dir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), "lifeboat-project-"));
  for (const [rel, text] of Object.entries(files)) {
    const p = join(dir, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, text);
  }
  return { dir, config: join(dir, "backup.config.ts") };
}
