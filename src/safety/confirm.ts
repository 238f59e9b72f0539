import { createInterface } from "node:readline";

/** What a destructive operation shows a person before asking. */
export interface ConfirmRequest {
  /** What will be destroyed or overwritten, line by line. */
  summary: string[];
  /** The exact text the person must type (e.g. the database name). */
  expected: string;
  /** How to describe expected in the question ("the database name"). */
  what: string;
}

/** The outcome of asking. */
export type ConfirmResult = { confirmed: true; by: string } | { confirmed: false; reason: string };

/**
 * Asks a person to confirm a destructive operation. The terminal prompt is the first implementation; a code sent
 * through the notification channel (which a caller cannot read) can be another, behind this same interface.
 */
export interface Confirmer {
  confirm(req: ConfirmRequest): Promise<ConfirmResult>;
}

/** Streams a terminal confirmer talks to. */
export interface TerminalIO {
  input: NodeJS.ReadStream;
  output: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

/**
 * Asks at an interactive terminal for the target's name. Refuses without asking when stdin or stdout is not a TTY
 * or CI is set: scripts, CI jobs and agents piping input must not be able to answer. Input typed before the question
 * appears is discarded (as sudo does), so a pre-filled buffer cannot answer either.
 */
export class TerminalConfirmer implements Confirmer {
  readonly #io: TerminalIO;
  constructor(io: TerminalIO = { input: process.stdin, output: process.stdout, env: process.env }) {
    this.#io = io;
  }

  async confirm(req: ConfirmRequest): Promise<ConfirmResult> {
    const { input, output, env } = this.#io;
    if (!input.isTTY || !output.isTTY) return { confirmed: false, reason: "standard input and output are not an interactive terminal" };
    if (env.CI && env.CI !== "false" && env.CI !== "0") return { confirmed: false, reason: "CI is set" };
    output.write(`${req.summary.join("\n")}\n\n`);
    await discardPending(input);
    const rl = createInterface({ input, output, terminal: true });
    try {
      const answer = await new Promise<string>((resolve) =>
        rl.question(`Type ${req.what} (${req.expected}) to continue, anything else to stop: `, resolve),
      );
      return answer.trim() === req.expected
        ? { confirmed: true, by: "terminal" }
        : { confirmed: false, reason: "the typed name did not match" };
    } finally {
      rl.close();
    }
  }
}

/** Reads and drops whatever is already buffered on a TTY, so only what is typed after the question counts. */
async function discardPending(input: NodeJS.ReadStream): Promise<void> {
  const wasRaw = input.isRaw;
  if (input.setRawMode) input.setRawMode(true);
  input.resume();
  await new Promise<void>((resolve) => {
    const drop = () => {};
    input.on("data", drop);
    setTimeout(() => {
      input.off("data", drop);
      resolve();
    }, 150);
  });
  input.pause();
  if (input.setRawMode) input.setRawMode(wasRaw ?? false);
}
