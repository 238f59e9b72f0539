import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

/** Ways of reading a target: steps 2 and 3 come in one form for each. */
export const STORAGE_VARIANTS = ["aws", "curl", "fs"] as const;
/** Source kinds: steps 5 to 7 come in one form for each. */
export const KIND_VARIANTS = ["postgres", "mysql", "sqlite", "volume"] as const;

/** One copy-pasteable block of docs/RECOVERY.md, as marked by its first line (`# step N` or `# step N (variant)`). */
export interface RunbookStep {
  step: number;
  /** A way of reading the target ("aws", "curl", "fs") or a source kind ("postgres", "mysql", …); undefined for steps every reader runs. */
  variant?: string;
  code: string;
}

/** The runbook's marked blocks: the variables it tells the reader to set, and the steps. */
export interface Runbook {
  /** Names exported by the `# variables` block (commented-out lines excluded). */
  variables: string[];
  steps: RunbookStep[];
}

/** Reads the ```sh blocks of a runbook and keeps those whose first line marks them as variables or a step. */
export function parseRunbook(markdown: string): Runbook {
  const variables: string[] = [];
  const steps: RunbookStep[] = [];
  for (const m of markdown.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
    const code = m[1] as string;
    const first = code.split("\n", 1)[0] ?? "";
    if (/^# variables\b/.test(first)) {
      for (const line of code.split("\n")) {
        const exp = /^export\s+(.*)$/.exec(line.trim());
        if (!exp) continue;
        for (const word of (exp[1] as string).split(/\s+/)) {
          const v = /^([A-Z_][A-Z0-9_]*)=/.exec(word);
          if (v) variables.push(v[1] as string);
          if (word.startsWith("#")) break;
        }
      }
      continue;
    }
    const s = /^# step (\d+)(?: \((\w+)\))?\s*$/.exec(first);
    if (s) steps.push({ step: Number(s[1]), variant: s[2], code });
  }
  return { variables, steps };
}

/**
 * The script a reader runs for one way of reading the target and one source kind: the common steps, the storage
 * variant's and the kind's, in step order, in one shell.
 */
export function scriptFor(runbook: Runbook, storage: string, kind = "postgres"): string {
  const chosen = stepsFor(runbook, storage, kind);
  const parts = chosen.map((s) => `echo "=== step ${s.step}${s.variant ? ` (${s.variant})` : ""}"\n${s.code}`);
  return `set -euo pipefail\n${parts.join("\n")}\n`;
}

/** The blocks a reader of one storage variant and one source kind follows, in step order. */
export function stepsFor(runbook: Runbook, storage: string, kind: string): RunbookStep[] {
  return runbook.steps
    .filter((s) => s.variant === undefined || s.variant === storage || s.variant === kind)
    .sort((a, b) => a.step - b.step);
}

/** What a finished bash run printed. */
export interface BashResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a script with bash as a child process, asynchronously (the embedded S3 server answers from this process, so
 * the event loop must keep running). The environment is exactly `env`: nothing of the test process leaks in.
 */
export function runBash(script: string, opts: { cwd: string; env: Record<string, string> }): Promise<BashResult> {
  return runCommand("bash", ["-c", script], opts);
}

/** Runs a command (no shell) asynchronously and collects its output. */
export function runCommand(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<BashResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** PATH without the repository's node_modules/.bin, so no JavaScript tool of this project is on the recovery path. */
export function stockPath(path = process.env.PATH ?? ""): string {
  return path
    .split(delimiter)
    .filter((p) => p && !p.includes("node_modules"))
    .join(delimiter);
}

// A stand-in for the two AWS CLI commands the runbook uses (there is no aws CLI on the test machine), built on curl
// against $AWS_ENDPOINT_URL with path-style URLs, printing what `aws s3 ls --recursive` prints. It checks the
// runbook's bucket, keys and parsing of the listing; it does not sign requests (the embedded server checks none).
const AWS_SHIM = `#!/usr/bin/env bash
set -euo pipefail
die() { echo "aws (test stand-in): $*" >&2; exit 2; }
[ "\${1:-}" = s3 ] || die "only 'aws s3 ...' is supported"
cmd=\${2:-}; shift 2
recursive=0; args=()
for a in "$@"; do
  case "$a" in
    --recursive) recursive=1 ;;
    --*) die "unsupported option $a" ;;
    *) args+=("$a") ;;
  esac
done
endpoint=\${AWS_ENDPOINT_URL:?aws (test stand-in) needs AWS_ENDPOINT_URL}
[ "$recursive" = 1 ] || die "only --recursive listings and copies are supported"
src=\${args[0]:?missing s3:// URI}
case "$src" in s3://*) ;; *) die "not an s3:// URI: $src" ;; esac
rest=\${src#s3://}; bucket=\${rest%%/*}; prefix=\${rest#"$bucket"}; prefix=\${prefix#/}
listing=$(curl -fsS -G "$endpoint/$bucket" --data-urlencode list-type=2 --data-urlencode "prefix=$prefix")
printf '%s' "$listing" | grep -q '<IsTruncated>false</IsTruncated>' || die "listing truncated: not supported"
entries=$(printf '%s' "$listing" | sed 's#<Contents>#\\n#g' | sed -n 's#^<Key>\\([^<]*\\)</Key><LastModified>\\([0-9-]*\\)T\\([0-9:]*\\)[^<]*</LastModified>.*<Size>\\([0-9]*\\)</Size>.*#\\2 \\3 \\4 \\1#p')
case "$cmd" in
  ls)
    printf '%s\\n' "$entries" | while read -r day time size key; do
      if [ -n "$key" ]; then printf '%s %s %10s %s\\n' "$day" "$time" "$size" "$key"; fi
    done
    ;;
  cp)
    dest=\${args[1]:?missing destination}
    [ -n "$entries" ] || exit 1
    printf '%s\\n' "$entries" | while read -r _ _ _ key; do
      out="$dest/\${key#"$prefix"}"; mkdir -p "$(dirname "$out")"
      curl -fsS -o "$out" "$endpoint/$bucket/$key"
      echo "download: s3://$bucket/$key to $out"
    done
    ;;
  *) die "unsupported command $cmd" ;;
esac
`;

/** Writes the aws stand-in into a new directory and returns that directory, to be put first on PATH. */
export function writeAwsShim(): string {
  const dir = mkdtempSync(join(tmpdir(), "lifeboat-aws-shim-"));
  const file = join(dir, "aws");
  writeFileSync(file, AWS_SHIM);
  chmodSync(file, 0o755);
  return dir;
}

/** Reads docs/RECOVERY.md from the repository. */
export function readRunbook(): Runbook {
  return parseRunbook(readFileSync(new URL("../../docs/RECOVERY.md", import.meta.url), "utf8"));
}
