import { redact } from "../secret.ts";
import type { Logger } from "./log.ts";
import { fetchError } from "./notify.ts";

/** The three signals of a dead-man's switch (healthchecks.io convention). */
export type PingKind = "start" | "success" | "fail";

/** The URL for a ping: `<url>/start`, `<url>`, `<url>/fail`. */
export function pingUrl(base: string, kind: PingKind): string {
  const u = base.replace(/\/+$/, "");
  return kind === "success" ? u : `${u}/${kind}`;
}

/**
 * Tells a dead-man's switch about a run, so a daemon that stops running (or a host that is gone) is noticed by the
 * silence. Short timeout, never rejects: a monitoring service that is down must not fail or delay a backup much.
 * The body of a fail ping carries the (redacted) error, which healthchecks.io shows in its log.
 */
export async function ping(
  base: string,
  kind: PingKind,
  opts: { log: Logger; fetch?: typeof fetch; timeoutMs?: number; message?: string },
): Promise<void> {
  const url = pingUrl(base, kind);
  // The check's UUID in the path is what lets anyone ping it: log the origin only.
  const where = URL.canParse(url) ? new URL(url).origin : "(invalid url)";
  try {
    const res = await (opts.fetch ?? globalThis.fetch)(url, {
      method: "POST",
      headers: { "content-type": "text/plain; charset=utf-8" },
      body: redact(opts.message ?? "").slice(0, 10_000),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 5_000),
    });
    await res.body?.cancel();
    if (!res.ok) opts.log.warn("ping.failed", { kind, endpoint: where, error: `HTTP ${res.status}` });
    else opts.log.debug("ping.sent", { kind, endpoint: where });
  } catch (err) {
    opts.log.warn("ping.failed", { kind, endpoint: where, error: fetchError(err) });
  }
}
