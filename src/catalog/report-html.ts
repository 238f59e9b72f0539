import { bytes as size } from "../format.ts";
import { formatAge, type Report, type ReportRow, type Status, type TimelineEvent } from "./report.ts";

const colors: Record<Status, string> = { ok: "#1a7f37", stale: "#9a6700", unproven: "#8250df", failing: "#cf222e", never: "#57606a" };

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

const css = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#1f2328;background:#fff}
h1{font-size:1.4rem;margin:0 0 .2rem}.sub{color:#57606a;margin-bottom:1.2rem}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:1rem;color:#fff;font-weight:600;font-size:.8rem}
.summary span{margin-right:.6rem}
table{border-collapse:collapse;width:100%;margin-top:1rem}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #d0d7de;vertical-align:top}
th{font-size:.8rem;color:#57606a;text-transform:uppercase;letter-spacing:.03em}
td.num{white-space:nowrap}.reasons{color:#57606a;font-size:.85rem;margin:.2rem 0 0;padding-left:1rem}
.tl{position:relative;height:26px;background:#f6f8fa;border:1px solid #d0d7de;border-radius:4px;min-width:320px}
.ev{position:absolute;top:3px;width:3px;height:18px;margin-left:-1px;border-radius:1px}
.ev.snapshot{background:#1a7f37}.ev.failed-backup{background:#cf222e;height:22px;top:1px}
.ev.drill-pass{background:#0969da;width:9px;height:9px;top:8px;margin-left:-4px;transform:rotate(45deg);border-radius:0}
.ev.drill-fail{background:#cf222e;width:9px;height:9px;top:8px;margin-left:-4px;transform:rotate(45deg);border-radius:0}
.axis{display:flex;justify-content:space-between;gap:1rem;font-weight:400;text-transform:none;letter-spacing:0}
.legend span{margin-right:1rem;font-size:.8rem;color:#57606a}.legend i{display:inline-block;width:10px;height:10px;margin-right:.3rem;vertical-align:middle}
code{font-size:.85em}
`;

function timelineHtml(events: readonly TimelineEvent[], from: number, to: number): string {
  const span = Math.max(1, to - from);
  const marks = events
    .map((e) => {
      const left = ((Date.parse(e.at) - from) / span) * 100;
      const label = `${e.kind} ${e.drill ? `${e.drill} ` : ""}${e.id} at ${e.at}`;
      return `<span class="ev ${e.kind}" style="left:${Math.min(100, Math.max(0, left)).toFixed(3)}%" title="${esc(label)}"></span>`;
    })
    .join("");
  return `<div class="tl">${marks}</div>`;
}

function rowHtml(r: ReportRow, from: number, to: number): string {
  const newest = r.newest
    ? `${esc(r.newest.finishedAt)}<br><small>${formatAge(r.newest.ageMs)} ago · ${size(r.newest.storedBytes)}</small>`
    : "—";
  const drill = r.drill
    ? `${esc(r.drill.finishedAt)}<br><small>${formatAge(r.drill.ageMs)} ago · ${esc(r.drill.drill)} · RTO ${formatAge(r.drill.rtoMs)}<br>proved <code>${esc(r.drill.snapshotId)}</code></small>`
    : "—";
  const good = r.lastGood
    ? `<code>${esc(r.lastGood.snapshotId)}</code><br><small>${formatAge(r.lastGood.ageMs)} old${r.lastGood.available ? "" : " · no longer on target"}</small>`
    : "—";
  const reasons = r.reasons.length ? `<ul class="reasons">${r.reasons.map((x) => `<li>${esc(x)}</li>`).join("")}</ul>` : "";
  return `<tr>
<td><strong>${esc(r.job)}</strong><br><small>${esc(r.target)}</small></td>
<td><span class="badge" style="background:${colors[r.status]}">${r.status}</span>${reasons}</td>
<td class="num">${newest}</td><td class="num">${drill}</td><td class="num">${good}</td><td>${esc(r.rpo ?? "—")}</td>
<td>${timelineHtml(r.timeline, from, to)}</td>
</tr>`;
}

/**
 * Renders the report as one self-contained HTML page (inline CSS, no scripts, fonts or images from elsewhere), with a
 * timeline of snapshots, failed backups and drills per job and target so gaps are visible at a glance.
 */
export function renderReportHtml(report: Report): string {
  const to = Date.parse(report.generatedAt);
  // The window starts at the oldest event shown (at least a day back), the same for every row so rows compare.
  let oldest = to - 86_400_000;
  for (const r of report.rows) for (const e of r.timeline) oldest = Math.min(oldest, Date.parse(e.at));
  const from = oldest - (to - oldest) * 0.02;
  const mid = new Date((from + to) / 2).toISOString().slice(0, 16).replace("T", " ");
  const summary = (Object.entries(report.summary) as [Status, number][])
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `<span><span class="badge" style="background:${colors[s]}">${s}</span> ${n}</span>`)
    .join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>lifeboat: ${report.ok ? "all backups ok" : "backups need attention"}</title>
<style>${css}</style></head>
<body>
<h1>Last good backups: ${report.ok ? "all ok" : "attention needed"}</h1>
<div class="sub">Read from the targets at ${esc(report.generatedAt)}</div>
<div class="summary">${summary}</div>
<table>
<thead><tr><th>Job / target</th><th>Status</th><th>Newest snapshot</th><th>Newest passing drill</th><th>Last good</th><th>RPO</th><th>Timeline<div class="axis"><span>${esc(new Date(from).toISOString().slice(0, 16).replace("T", " "))}</span><span>${esc(mid)}</span><span>now</span></div></th></tr></thead>
<tbody>
${report.rows.map((r) => rowHtml(r, from, to)).join("\n")}
</tbody></table>
<div class="legend" style="margin-top:.4rem"><span><i style="background:#1a7f37"></i>snapshot</span><span><i style="background:#cf222e"></i>failed backup / drill</span><span><i style="background:#0969da"></i>passing drill</span></div>
</body></html>
`;
}
