// Child-process plumbing shared by the sources that drive database tools (pg_dump, pg_restore, mariadb-dump, …).
import { type ChildProcess, execFile } from "node:child_process";
import { PassThrough, pipeline, type Readable, type Writable } from "node:stream";

const STDERR_LIMIT = 64 * 1024;

/** Keeps the last bytes a child writes to stderr, bounded. */
export function stderrTail(stream: Readable): () => string {
  let buf = Buffer.alloc(0);
  stream.on("data", (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    if (buf.length > STDERR_LIMIT) buf = buf.subarray(buf.length - STDERR_LIMIT);
  });
  return () => buf.toString("utf8").trim();
}

let stdbufWorks: Promise<boolean> | undefined;

/**
 * What to put before a dump tool's command line so that it writes its standard output in 1 MiB blocks. Into a pipe,
 * C's stdio writes 4 KiB at a time: pg_dump made about 225,000 writes per GB, each one a wake-up of zstd on the other
 * end; through coreutils' stdbuf it makes about 900, and the pair takes about a tenth less CPU (docs/BENCHMARK.md).
 * The bytes are the same. Where stdbuf is missing or cannot preload its library (not Linux, say), the tool runs as is.
 */
export function blockBufferPrefix(): Promise<string[]> {
  stdbufWorks ??= new Promise((resolve) => execFile("stdbuf", ["-o", "1M", "true"], { timeout: 10_000 }, (err) => resolve(!err)));
  return stdbufWorks.then((works) => (works ? ["stdbuf", "-o", "1M"] : []));
}

/** How a child ended. */
export interface Exit {
  status: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/** Resolves once the child is gone; never rejects. */
export function exitOf(child: ChildProcess): Promise<Exit> {
  return new Promise((resolve) => {
    child.on("error", (error) => {
      if (child.pid === undefined) resolve({ status: null, signal: null, error });
    });
    child.on("close", (status, signal) => resolve({ status, signal }));
  });
}

/** Says how a child ended: "exited with code 2", "was killed by SIGTERM", "could not run (…)". */
export function exitWhy(exit: Exit): string {
  if (exit.error) return `could not run (${exit.error.message})`;
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.status}`;
}

/** Kills a child with SIGTERM, then SIGKILL if it lingers. */
export function terminate(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"), 5000).unref();
}

/** How a restore tool ended, and what went wrong on the way in. */
export interface Fed {
  exit: Exit;
  /** The input's own error (reading or rewriting the dump), not a mere broken pipe; the tool was stopped. */
  inputError?: unknown;
  /** The signal fired: the tool was stopped. */
  aborted: boolean;
}

/**
 * Feeds a restore tool: pipes the stages (the dump, then any rewriting) into its stdin, stops it on the input's own
 * error or on abort, and resolves once it is gone. Without stages the tool reads its input itself.
 */
export async function feedTool(
  child: ChildProcess,
  stages: (Readable | NodeJS.ReadWriteStream)[],
  signal: AbortSignal | undefined,
): Promise<Fed> {
  const exited = exitOf(child);
  let inputError: unknown;
  if (stages.length > 0 && child.stdin) {
    pipeline([...stages, child.stdin as Writable], (err) => {
      // EPIPE and friends only mean the tool stopped reading; its exit code says why.
      if (err && !benignPipeError(err)) {
        inputError = err;
        terminate(child);
      }
    });
  }
  const onAbort = () => terminate(child);
  signal?.addEventListener("abort", onAbort, { once: true });
  const exit = await exited;
  signal?.removeEventListener("abort", onAbort);
  return { exit, inputError, aborted: signal?.aborted ?? false };
}

/** Errors of feeding a child's stdin that only mean the child stopped reading; its exit status says why. */
function benignPipeError(err: unknown): boolean {
  const c = (err as { code?: string } | undefined)?.code ?? "";
  return ["EPIPE", "ERR_STREAM_PREMATURE_CLOSE", "ERR_STREAM_DESTROYED"].includes(c);
}

/** The libuv side of a child's stdout pipe (net.Socket's `_handle`), as far as reading goes. */
interface PipeHandle {
  reading?: boolean;
  readStop?(): number;
  readStart?(): number;
}

/**
 * Stops Node reading a child's stdout, which it starts doing as soon as the child is spawned: up to 64 KiB land in
 * the socket's buffer unasked, and bytes Node holds never reach a process the pipe is handed to. No public stream
 * call undoes that first read, so this stops the socket's handle, as net.Socket's own pauseOnCreate does. Called in
 * the tick of the spawn, before any byte can have been read. Returns the function that starts reading again, or
 * undefined where the handle is not what it should be (the pipe is then never handed off).
 */
function holdPipe(stdout: Readable): (() => void) | undefined {
  const handle = (stdout as unknown as { _handle?: PipeHandle })._handle;
  if (!handle?.reading || typeof handle.readStop !== "function" || typeof handle.readStart !== "function") return undefined;
  if (handle.readStop() !== 0) return undefined;
  handle.reading = false;
  return () => {
    if (handle.reading) return;
    // The stream's first read is still pending (it never got its bytes): restarting the handle completes it.
    handle.reading = true;
    handle.readStart?.();
  };
}

/**
 * A dump tool's stdout, offered two ways: `stream`, a Node stream that ends only once the tool's exit was judged clean
 * (settle), or `handOff()`, the pipe itself, for another process (zstd) to read with no byte passing through Node.
 * Whichever is used first excludes the other; until then nothing reads the pipe. A source that must see the bytes
 * itself passes `watch`: the output is then a stream from the start, and is never handed off.
 */
export class ToolOutput {
  readonly #child: ChildProcess;
  #stream?: PassThrough;
  #handedOff = false;
  #settled?: { err?: Error };
  #consumerGone = false;
  /** Starts Node reading the held pipe again; undefined when the pipe is not held (it is then never handed off). */
  #release?: () => void;

  /** Must be called in the tick of the spawn: only then is the pipe known to be unread. */
  constructor(child: ChildProcess, watch?: (chunk: Buffer) => void) {
    this.#child = child;
    if (watch) {
      // On the pipe, beside the stream: a listener on the stream itself would set it flowing before its consumer came.
      child.stdout?.on("data", watch);
      this.#open();
    } else if (child.stdout) {
      this.#release = holdPipe(child.stdout);
    }
  }

  /** Whether the stream was closed before the tool ended (the tool is then terminated). */
  get consumerGone(): boolean {
    return this.#consumerGone;
  }

  get stream(): Readable {
    if (this.#handedOff) throw new Error("the dump tool's output was handed to another process");
    return this.#open();
  }

  #open(): PassThrough {
    if (!this.#stream) {
      const stream = new PassThrough({ highWaterMark: 1024 * 1024 });
      // The error is also the dump's done rejection: a consumer that only awaits done must not crash on it.
      stream.on("error", () => {});
      this.#child.stdout?.pipe(stream, { end: false });
      this.#release?.();
      stream.on("close", () => {
        const child = this.#child;
        if (child.exitCode === null && child.signalCode === null) {
          this.#consumerGone = true;
          terminate(child);
        }
      });
      this.#stream = stream;
      if (this.#settled) this.#finish(this.#settled.err);
    }
    return this.#stream;
  }

  /**
   * The tool's stdout, unread, for passing to another process as its stdin; undefined once `stream` is in use. The
   * receiver closes Node's copy after spawning, and trusts the end of the data only once the tool's exit is judged.
   */
  handOff(): Readable | undefined {
    const stdout = this.#child.stdout;
    // Not held, or bytes already in Node: handing the pipe off would lose those bytes.
    if (this.#stream || this.#settled || !stdout || !this.#release || stdout.readableLength > 0) return undefined;
    this.#handedOff = true;
    return stdout;
  }

  /** The tool's exit was judged: the stream ends, or is destroyed with err. */
  settle(err?: Error): void {
    this.#settled = { err };
    if (this.#stream) this.#finish(err);
  }

  #finish(err?: Error): void {
    if (err) this.#stream?.destroy(err);
    else this.#stream?.end();
  }
}
