import type { Command } from "commander";

/** Options every command inherits from the program. */
export interface GlobalOptions {
  config?: string;
  json?: boolean;
}

/** The global options as seen from inside a command's action. */
export function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

let printedJson = false;

/** Whether a command already printed its JSON result (then a later error must not print a second JSON value). */
export function jsonPrinted(): boolean {
  return printedJson;
}

/** Prints a result: JSON on stdout with --json, else the text rendering. */
export function print(json: boolean | undefined, value: unknown, text: () => string): void {
  if (json) {
    printedJson = true;
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  } else process.stdout.write(`${text()}\n`);
}

export { bytes } from "../format.ts";

/** Formats a duration in milliseconds for people. */
export function duration(ms: number): string {
  if (ms < 0) return `-${duration(-ms)}`;
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  const m = s / 60;
  if (m < 120) return `${m.toFixed(1)} min`;
  const h = m / 60;
  return h < 48 ? `${h.toFixed(1)} h` : `${(h / 24).toFixed(1)} d`;
}

/** A throttled one-line progress display on a terminal; silent elsewhere (logs and --json stay clean). */
export function progressLine(enabled: boolean): { update(text: string): void; done(): void } {
  const on = enabled && process.stderr.isTTY === true;
  let last = 0;
  let shown = false;
  return {
    update(text) {
      if (!on) return;
      const t = Date.now();
      if (t - last < 200) return;
      last = t;
      shown = true;
      process.stderr.write(`\r\x1b[2K${text}`);
    },
    done() {
      if (on && shown) process.stderr.write("\r\x1b[2K");
    },
  };
}
