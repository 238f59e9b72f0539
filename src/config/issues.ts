import type { z } from "zod";

/** A config file's validation problems: one "file: field…" line per issue, and one hint for them all. */
export interface Described {
  message: string;
  hint: string;
}

/** Where an issue's path leads in the value that was parsed: the value there, and whether its key was written at all. */
function lookup(input: unknown, path: readonly PropertyKey[]): { value: unknown; written: boolean } {
  let cur = input;
  let written = true;
  for (const key of path) {
    if (typeof cur !== "object" || cur === null || typeof key === "symbol") return { value: undefined, written: false };
    written = Object.hasOwn(cur, key);
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return { value: cur, written };
}

/**
 * Formats zod issues as "file: field.path: message" lines, so every problem names the file and the field. Zod's own
 * words are replaced where they would puzzle a user: a required value that is undefined reads "field is missing"
 * (and, when the key is there with the value undefined, says why that usually happens: an unset environment variable),
 * and a bad record key (a target name) states the naming rule instead of "Invalid key in record".
 */
export function describeIssues(file: string, error: z.ZodError, input: unknown): Described {
  let absent = false;
  let unset = false;
  const lines = error.issues.map((i) => {
    const field = i.path.length ? i.path.map(String).join(".") : "(top level)";
    const at = lookup(input, i.path);
    if ((i.code === "invalid_type" || i.code === "invalid_union") && at.value === undefined && i.path.length) {
      const options = "options" in i && Array.isArray(i.options) ? ` (one of ${i.options.map((o) => JSON.stringify(o)).join(", ")})` : "";
      if (at.written) unset = true;
      else absent = true;
      const why = at.written ? " (it is undefined: an environment variable read with process.env may be unset)" : "";
      return `${file}: ${field} is missing${options}${why}`;
    }
    if (i.code === "invalid_key") {
      const rule = i.issues.map((x) => x.message).join("; ");
      return `${file}: ${field}: the name ${JSON.stringify(String(i.path.at(-1)))} is not allowed: ${rule}`;
    }
    return `${file}: ${field}: ${i.message}`;
  });
  const hints: string[] = [];
  if (absent) hints.push("add the missing field(s)");
  if (unset)
    hints.push(
      "a value read with process.env.NAME is undefined when NAME is not set in lifeboat's environment: set it (or give a default with ??)",
    );
  hints.push("docs/CONFIG.md lists every field");
  return { message: lines.join("\n"), hint: hints.join("; ") };
}
