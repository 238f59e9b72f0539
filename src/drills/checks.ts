import type { Drill } from "../config/schema.ts";
import type { CheckResult } from "./kind.ts";

/**
 * Compares restored row counts with the inventory captured at backup time. Exact counts must be equal; approximate
 * ones (taken without a consistent snapshot) may differ by the tolerance. Missing and extra tables always fail.
 */
export function compareCounts(
  expected: Record<string, number>,
  actual: Record<string, number>,
  mode: "exact" | "approximate" = "exact",
  tolerance = 0.05,
): CheckResult {
  const mismatches: NonNullable<CheckResult["mismatches"]> = [];
  for (const [table, want] of Object.entries(expected)) {
    const got = actual[table];
    if (got === undefined) mismatches.push({ item: table, expected: want, actual: "missing" });
    else if (mode === "exact" ? got !== want : Math.abs(got - want) > Math.max(1, want * tolerance)) {
      mismatches.push({ item: table, expected: want, actual: got });
    }
  }
  for (const [table, got] of Object.entries(actual)) {
    if (!(table in expected)) mismatches.push({ item: table, expected: "absent", actual: got });
  }
  const total = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
  return {
    kind: "rowCounts",
    name: mode === "exact" ? "row counts equal the backup's snapshot" : `row counts within ${tolerance * 100}% (approximate inventory)`,
    ok: mismatches.length === 0,
    expected: { tables: Object.keys(expected).length, rows: total(expected) },
    actual: { tables: Object.keys(actual).length, rows: total(actual) },
    ...(mismatches.length ? { mismatches } : {}),
  };
}

/** One user query of a drill. */
export type DrillQuery = Drill["checks"]["queries"][number];

/** Judges a user query's result against its min/max/equals; a query that failed carries the database's message. */
export function evaluateQuery(q: DrillQuery, result: { value: number } | { error: string }): CheckResult {
  const expected = {
    ...(q.min !== undefined ? { min: q.min } : {}),
    ...(q.max !== undefined ? { max: q.max } : {}),
    ...(q.equals !== undefined ? { equals: q.equals } : {}),
  };
  if ("error" in result) return { kind: "query", name: q.name, ok: false, expected, detail: result.error };
  const v = result.value;
  const ok = (q.min === undefined || v >= q.min) && (q.max === undefined || v <= q.max) && (q.equals === undefined || v === q.equals);
  return { kind: "query", name: q.name, ok, expected, actual: v, ...(ok ? {} : { detail: `${v} is outside ${JSON.stringify(expected)}` }) };
}

/** Decimal text as databases print numbers ("42", "-1.5", "1e3"): never "0x10", " ", "Infinity". */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/**
 * Turns a query's single row of one column into a number, or explains why it cannot. Rows are arrays of values, so
 * columns of the same name stay apart.
 */
export function singleNumber(rows: readonly unknown[][]): { value: number } | { error: string } {
  if (rows.length !== 1) return { error: `the query returned ${rows.length} rows; it must return exactly one row with one number` };
  const values = rows[0] as unknown[];
  if (values.length !== 1) {
    return { error: `the query returned one row of ${values.length} columns; it must return exactly one row with one number` };
  }
  const first = values[0];
  const n =
    typeof first === "bigint" ? Number(first) : typeof first === "string" && DECIMAL.test(first.trim()) ? Number(first.trim()) : first;
  if (typeof n !== "number" || !Number.isFinite(n)) return { error: `the query returned ${JSON.stringify(first)}, not a number` };
  return { value: n };
}
