import { hostname } from "node:os";
import { messageOf } from "../errors.ts";
import { redact } from "../secret.ts";
import { VERSION } from "../version.ts";
import { type Clock, systemClock } from "./clock.ts";
import type { Logger } from "./log.ts";

/** What happened. */
export type NotificationEvent = "backup.failed" | "drill.failed" | "job.stale" | "job.unproven" | "job.ok";

/** The webhook body: Slack-compatible `text`, plus structured fields for anything else that reads it. */
export interface Notification {
  text: string;
  event: NotificationEvent;
  severity: "error" | "warning" | "info";
  job: string;
  drill?: string;
  /** Affected targets. */
  targets?: string[];
  runId?: string;
  /** Report status, for job.* events. */
  status?: string;
  reasons?: string[];
  error?: string;
  attempts?: number;
  time: string;
  host: string;
  tool: { name: "lifeboat"; version: string };
}

/** Everything but the fields the notifier fills in. */
export type NotificationInput = Omit<Notification, "time" | "host" | "tool">;

/** Where and how notifications go. */
export interface NotifierOptions {
  webhooks: readonly string[];
  log: Logger;
  clock?: Clock;
  fetch?: typeof fetch;
  /** Tries per webhook. Default 3. */
  attempts?: number;
  /** Wait before the first retry, doubled each time. Default 2000 ms. */
  backoffMs?: number;
  /** Per request. Default 10000 ms. */
  timeoutMs?: number;
}

/** A webhook URL for logs: its origin only, since the path of a Slack or Teams webhook is the credential. */
export function webhookLabel(url: string): string {
  return URL.canParse(url) ? new URL(url).origin : "(invalid url)";
}

/**
 * Sends notifications as JSON POSTs to every configured webhook, each with retries and backoff. Never rejects: a
 * notification that cannot be delivered is logged, and the backup or drill it is about goes on regardless.
 */
export class Notifier {
  readonly #o: Required<Omit<NotifierOptions, "fetch">> & { fetch: typeof fetch };
  readonly #pending = new Set<Promise<void>>();

  constructor(opts: NotifierOptions) {
    this.#o = {
      clock: systemClock,
      attempts: 3,
      backoffMs: 2_000,
      timeoutMs: 10_000,
      ...opts,
      fetch: opts.fetch ?? globalThis.fetch,
    };
  }

  /** Sends to every webhook; resolves when each was delivered or gave up. */
  send(input: NotificationInput): Promise<void> {
    const n: Notification = {
      ...input,
      text: redact(input.text),
      ...(input.error !== undefined ? { error: redact(input.error) } : {}),
      time: this.#o.clock.now().toISOString(),
      host: hostname(),
      tool: { name: "lifeboat", version: VERSION },
    };
    const p = Promise.all(this.#o.webhooks.map((url) => this.#deliver(url, n))).then(() => {});
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
    return p;
  }

  /** Waits for notifications still being sent, at most ms. */
  async drain(ms: number): Promise<void> {
    const timer = new AbortController();
    await Promise.race([Promise.allSettled([...this.#pending]), this.#o.clock.sleep(ms, timer.signal)]);
    timer.abort();
  }

  async #deliver(url: string, n: Notification): Promise<void> {
    const { log, attempts, backoffMs, timeoutMs, clock } = this.#o;
    const body = JSON.stringify(n);
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let problem: string;
      try {
        const res = await this.#o.fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", "user-agent": `lifeboat/${VERSION}` },
          body,
          signal: AbortSignal.timeout(timeoutMs),
        });
        await res.body?.cancel();
        if (res.ok) {
          log.info("notify.sent", { notification: n.event, job: n.job, webhook: webhookLabel(url), attempt });
          return;
        }
        problem = `HTTP ${res.status}`;
      } catch (err) {
        problem = fetchError(err);
      }
      const last = attempt === attempts;
      log[last ? "error" : "warn"]("notify.failed", {
        notification: n.event,
        job: n.job,
        webhook: webhookLabel(url),
        attempt,
        error: problem,
      });
      if (!last) await clock.sleep(backoffMs * 2 ** (attempt - 1));
    }
  }
}

/** fetch rejects with "fetch failed" and keeps the reason (ECONNREFUSED, a timeout) in its cause. */
export function fetchError(err: unknown): string {
  const cause = (err as { cause?: unknown })?.cause;
  return cause === undefined ? messageOf(err) : `${messageOf(err)}: ${messageOf(cause)}`;
}
