/** One job's source and the targets it ships to, as the boundary rule sees them. */
export interface BoundaryRoute {
  job: string;
  sourceBoundary: string;
  targets: { name: string; boundary: string }[];
}

/** A job that would keep its backup inside its source's blast radius. */
export interface BoundaryViolation {
  job: string;
  target: string;
  boundary: string;
}

/**
 * Finds every job whose target shares its source's boundary. A backup that fails together with its source
 * is not a backup, so this is a config error, not a warning. Labels compare case-insensitively and trimmed,
 * because "AWS:eu-central-1" and "aws:eu-central-1 " are the same place.
 */
export function findBoundaryViolations(routes: readonly BoundaryRoute[]): BoundaryViolation[] {
  const norm = (b: string) => b.trim().toLowerCase();
  const out: BoundaryViolation[] = [];
  for (const r of routes) {
    for (const t of r.targets) {
      if (norm(t.boundary) === norm(r.sourceBoundary)) out.push({ job: r.job, target: t.name, boundary: t.boundary });
    }
  }
  return out;
}
