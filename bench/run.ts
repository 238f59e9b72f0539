// Runs one command and measures it from the outside: wall time, CPU time and memory of its process tree.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";

const GNU_TIME = "/usr/bin/time";
const POLL_MS = 50;

/** Whether GNU time is there to report CPU time and peak RSS exactly (at exit, from wait4). */
export const haveGnuTime = existsSync(GNU_TIME);

/** What one run cost. */
export interface Measured {
  /** Exit status (null: killed by a signal). */
  status: number | null;
  wallS: number;
  /** CPU seconds of the process tree (GNU time; includes children it waited for). undefined without GNU time. */
  userS?: number;
  sysS?: number;
  /** GNU time %M: peak RSS of the largest single process of the tree, KiB. */
  maxRssKiB?: number;
  /** VmHWM of the command's own process (not its children), KiB, last value sampled before it exited. */
  mainHwmKiB?: number;
  /** Largest sum of VmRSS over the whole process tree seen while sampling every 50 ms, KiB. */
  treeRssKiB: number;
  /** CPU seconds per program name in the tree (last sample of each process: a process's final 50 ms may be missed). */
  cpuByCommand: Record<string, number>;
  stdout: string;
  stderr: string;
}

/** Options of measure. */
export interface MeasureOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** A file descriptor for the command's stdout (e.g. /dev/null); default: captured. */
  stdoutFd?: number;
  /** Where GNU time writes its figures. */
  timeFile: string;
  /**
   * Other processes whose CPU belongs to this run (e.g. the PostgreSQL backends serving it), by command line; their
   * CPU is reported under `name`. Scanned every 200 ms, so a process that lives less than that may be missed.
   */
  servers?: { name: string; match: RegExp };
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").split(" ").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** VmRSS and VmHWM of a process in KiB, or undefined once it is gone (or a zombie). */
function memory(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = /VmRSS:\s+(\d+)/.exec(s)?.[1];
    const hwm = /VmHWM:\s+(\d+)/.exec(s)?.[1];
    return rss && hwm ? { rss: Number(rss), hwm: Number(hwm) } : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) a running process has used so far, and its program name, from /proc/<pid>/stat. */
function stat(pid: number): { comm: string; cpu: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The program name is in parentheses and may contain spaces; the fields after it are plain.
    const close = text.lastIndexOf(")");
    const fields = text.slice(close + 2).split(" ");
    const comm = text.slice(text.indexOf("(") + 1, close);
    // Node names its main thread, and so the process, "MainThread".
    return { comm: comm === "MainThread" ? "node" : comm, cpu: (Number(fields[11]) + Number(fields[12])) / clockTicks() };
  } catch {
    return undefined;
  }
}

/** Processes (other than ours) whose command line matches. */
function matching(match: RegExp): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (match.test(readFileSync(`/proc/${entry}/cmdline`, "latin1"))) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** CPU seconds (user + system) a running process has used so far. */
export function cpuSeconds(pid: number): number {
  return stat(pid)?.cpu ?? 0;
}

let ticks: number | undefined;
function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

/**
 * Runs command (asynchronously: this process's event loop stays free) under GNU time when available, sampling
 * /proc every 50 ms for the memory of the command's process and of its whole tree.
 */
export function measure(command: string, args: readonly string[], opts: MeasureOptions): Promise<Measured> {
  const argv = haveGnuTime ? [GNU_TIME, "-f", "%e %U %S %M", "-o", opts.timeFile, command, ...args] : [command, ...args];
  const t0 = performance.now();
  const child = spawn(argv[0] as string, argv.slice(1), {
    cwd: opts.cwd,
    env: opts.env,
    stdio: ["ignore", opts.stdoutFd ?? "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-64 * 1024);
  });
  let mainHwm: number | undefined;
  let treeRss = 0;
  const cpuByPid = new Map<number, { comm: string; cpu: number }>();
  const sample = () => {
    const top = child.pid;
    if (top === undefined) return;
    // Under GNU time the command is time's only child.
    const main = haveGnuTime ? children(top)[0] : top;
    if (main === undefined) return;
    const m = memory(main);
    if (m) mainHwm = Math.max(mainHwm ?? 0, m.hwm);
    let sum = 0;
    const stack = [main];
    while (stack.length) {
      const pid = stack.pop() as number;
      sum += memory(pid)?.rss ?? 0;
      const st = stat(pid);
      if (st) cpuByPid.set(pid, st);
      stack.push(...children(pid));
    }
    treeRss = Math.max(treeRss, sum);
  };
  const serverCpu = new Map<number, number>();
  const scanServers = () => {
    if (!opts.servers) return;
    for (const pid of matching(opts.servers.match)) {
      const st = stat(pid);
      if (st) serverCpu.set(pid, st.cpu);
    }
  };
  // Backends started before this run (none, for a fresh connection) would carry earlier CPU: subtract it.
  const serverBase = new Map<number, number>();
  if (opts.servers) for (const pid of matching(opts.servers.match)) serverBase.set(pid, stat(pid)?.cpu ?? 0);
  const timer = setInterval(sample, POLL_MS);
  const serverTimer = setInterval(scanServers, 200);
  return new Promise((resolve, reject) => {
    child.on("error", (err) => {
      clearInterval(timer);
      clearInterval(serverTimer);
      reject(err);
    });
    child.on("close", (status) => {
      clearInterval(timer);
      clearInterval(serverTimer);
      const wallS = (performance.now() - t0) / 1000;
      const cpuByCommand: Record<string, number> = {};
      for (const { comm, cpu } of cpuByPid.values()) cpuByCommand[comm] = (cpuByCommand[comm] ?? 0) + cpu;
      if (opts.servers) {
        let total = 0;
        for (const [pid, cpu] of serverCpu) total += cpu - (serverBase.get(pid) ?? 0);
        cpuByCommand[opts.servers.name] = total;
      }
      const out: Measured = { status, wallS, mainHwmKiB: mainHwm, treeRssKiB: treeRss, cpuByCommand, stdout, stderr };
      if (haveGnuTime) {
        // GNU time may prefix "Command exited with non-zero status N" on its own line.
        const text = existsSync(opts.timeFile) ? readFileSync(opts.timeFile, "utf8").trim().split("\n") : [];
        const nums = (text[text.length - 1] ?? "").split(" ").map(Number);
        if (nums.length === 4 && nums.every((n) => Number.isFinite(n))) {
          [, out.userS, out.sysS, out.maxRssKiB] = nums;
        }
      }
      resolve(out);
    });
  });
}
