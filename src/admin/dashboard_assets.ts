/**
 * The dashboard page (HTML, CSS and JS in one string, so `deno compile` embeds it and the page needs nothing from
 * the internet): tables per listener and per cluster, SVG sparklines drawn by hand, live from the admin's
 * `/dashboard/events` server-sent events. Every value cell carries `data-k` (and its row `data-name`) so tests
 * read the DOM.
 */

const CSS = `
:root { --bg:#0f1419; --panel:#171d24; --line:#2a323c; --fg:#d7dde4; --dim:#8793a0; --ok:#3fb950;
  --warn:#d29922; --bad:#f85149; --acc:#58a6ff; --acc2:#bc8cff; }
* { box-sizing: border-box; }
body { margin:0; font:13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--fg); }
header { display:flex; align-items:center; gap:16px; padding:12px 20px; border-bottom:1px solid var(--line); }
header h1 { font-size:16px; margin:0; font-weight:600; }
#status { font-size:12px; padding:2px 8px; border-radius:10px; background:var(--line); color:var(--dim); }
#status.live { background:rgba(63,185,80,.15); color:var(--ok); }
#status.down { background:rgba(248,81,73,.15); color:var(--bad); }
main { padding:16px 20px; display:grid; gap:16px; }
section { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
section h2 { font-size:13px; margin:0 0 8px; color:var(--dim); text-transform:uppercase; letter-spacing:.05em; }
#overview { display:grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap:16px; }
.big { display:flex; flex-direction:column; gap:4px; }
.big .v { font-size:24px; font-weight:600; font-variant-numeric: tabular-nums; }
.big .l { color:var(--dim); font-size:12px; }
table { width:100%; border-collapse:collapse; font-variant-numeric: tabular-nums; }
th, td { text-align:right; padding:5px 8px; border-bottom:1px solid var(--line); white-space:nowrap; }
th:first-child, td:first-child { text-align:left; }
th { color:var(--dim); font-weight:500; font-size:12px; }
td.name small { color:var(--dim); margin-left:6px; }
td.sp { width:110px; padding-left:0; text-align:left; }
svg.spark { width:100px; height:22px; vertical-align:middle; }
svg.spark polyline { fill:none; stroke:var(--acc); stroke-width:1.5; }
svg.spark.lat polyline { stroke:var(--acc2); }
svg.chart { width:100%; height:90px; }
svg.chart polyline { fill:none; stroke-width:2; }
.err { color:var(--bad); }
.warnc { color:var(--warn); }
.okc { color:var(--ok); }
.empty { color:var(--dim); font-style:italic; }
footer { padding:0 20px 16px; color:var(--dim); font-size:11px; }
`;

const JS = `
"use strict";
const N = 60;
const history = new Map();
let frames = 0;
function hist(key) {
  let h = history.get(key);
  if (!h) history.set(key, h = []);
  return h;
}
function push(key, v) {
  const h = hist(key);
  h.push(v == null ? 0 : v);
  if (h.length > N) h.shift();
  return h;
}
function points(h, w, hgt) {
  const max = Math.max(1e-9, ...h);
  // the history so far spans the whole width (a fresh page shows a chart at once)
  const step = w / Math.max(1, h.length - 1);
  return h.map((v, i) => (i * step).toFixed(1) + "," + (hgt - 1 - (v / max) * (hgt - 3)).toFixed(1)).join(" ");
}
function spark(h, cls) {
  return '<svg class="spark ' + (cls || "") + '" viewBox="0 0 100 22" preserveAspectRatio="none"><polyline points="' +
    points(h, 100, 22) + '"/></svg>';
}
function fmt(v, d) {
  if (v == null) return "–";
  if (v >= 1000) return v.toFixed(0);
  return v.toFixed(d == null ? 1 : d);
}
function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
const DIGITS = { p50: 2, p99: 2, connections: 0, active: 0 };
function cell(k, v, cls, extra) {
  return '<td data-k="' + k + '" data-v="' + (v == null ? "" : v) + '"' + (cls ? ' class="' + cls + '"' : "") + ">" +
    esc(fmt(v, k in DIGITS ? DIGITS[k] : 1)) + "</td>" + (extra ? '<td class="sp">' + extra + "</td>" : "");
}
function renderListeners(rows) {
  const body = document.getElementById("listeners-body");
  if (rows.length === 0) {
    body.innerHTML = '<tr><td colspan="10" class="empty">no listeners</td></tr>';
    return;
  }
  body.innerHTML = rows.map((r) => {
    const k = "l:" + r.name;
    const rps = push(k + ":rps", r.rps);
    const p99 = push(k + ":p99", r.p99);
    return '<tr data-kind="listener" data-name="' + esc(r.name) + '"><td class="name">' + esc(r.name) + "<small>" +
      esc(r.address) + "</small></td>" + cell("rps", r.rps, "", spark(rps)) + cell("p50", r.p50) +
      cell("p99", r.p99, "", spark(p99, "lat")) + cell("rate4xx", r.rate4xx, r.rate4xx > 0 ? "warnc" : "") +
      cell("rate5xx", r.rate5xx, r.rate5xx > 0 ? "err" : "") + cell("connections", r.connections) +
      cell("active", r.active) + "</tr>";
  }).join("");
}
function renderClusters(rows) {
  const body = document.getElementById("clusters-body");
  if (rows.length === 0) {
    body.innerHTML = '<tr><td colspan="12" class="empty">no clusters</td></tr>';
    return;
  }
  body.innerHTML = rows.map((r) => {
    const k = "c:" + r.name;
    const rps = push(k + ":rps", r.rps);
    const p99 = push(k + ":p99", r.p99);
    const hc = r.total === 0 ? "" : r.healthy === r.total ? "okc" : r.healthy === 0 ? "err" : "warnc";
    const title = r.hosts.map((h) => h.address + " " + h.health).join("\\n");
    return '<tr data-kind="cluster" data-name="' + esc(r.name) + '"><td class="name">' + esc(r.name) + "</td>" +
      cell("rps", r.rps, "", spark(rps)) + cell("p50", r.p50) + cell("p99", r.p99, "", spark(p99, "lat")) +
      cell("rate4xx", r.rate4xx, r.rate4xx > 0 ? "warnc" : "") + cell("rate5xx", r.rate5xx, r.rate5xx > 0 ? "err" : "") +
      cell("connections", r.connections) + cell("active", r.active) +
      '<td data-k="health" data-v="' + r.healthy + "/" + r.total + '" class="' + hc + '" title="' + esc(title) + '">' +
      r.healthy + " / " + r.total + "</td>" +
      '<td data-k="ejections" data-v="' + r.ejectionsActive + '">' + r.ejectionsActive +
      (r.ejectionRate > 0 ? " (+" + fmt(r.ejectionRate) + "/s)" : "") + "</td></tr>";
  }).join("");
}
function renderOverview(f) {
  const sum = (rows, k) => rows.reduce((a, r) => a + (r[k] || 0), 0);
  const rps = sum(f.listeners, "rps");
  const errs = sum(f.listeners, "rate5xx");
  const cx = sum(f.listeners, "connections");
  const h = push("total:rps", rps);
  const e = push("total:5xx", errs);
  document.getElementById("total-rps").textContent = fmt(rps);
  document.getElementById("total-rps").dataset.v = rps;
  document.getElementById("total-5xx").textContent = fmt(errs);
  document.getElementById("total-5xx").className = "v" + (errs > 0 ? " err" : "");
  document.getElementById("total-cx").textContent = String(cx);
  document.getElementById("chart-rps").innerHTML = '<polyline style="stroke:var(--acc)" points="' + points(h, 600, 90) + '"/>' +
    '<polyline style="stroke:var(--bad)" points="' + points(e.map((v, i) => Math.min(v, Math.max(...h) || 1)), 600, 90) + '"/>';
}
function onFrame(f) {
  frames++;
  document.body.dataset.frames = String(frames);
  document.getElementById("frames").textContent = String(frames);
  document.getElementById("updated").textContent = new Date(f.t).toLocaleTimeString();
  renderOverview(f);
  renderListeners(f.listeners);
  renderClusters(f.clusters);
}
function connect() {
  const st = document.getElementById("status");
  const es = new EventSource("dashboard/events");
  es.addEventListener("open", () => { st.textContent = "live"; st.className = "live"; });
  es.addEventListener("error", () => { st.textContent = "reconnecting"; st.className = "down"; });
  es.addEventListener("frame", (ev) => onFrame(JSON.parse(ev.data)));
}
connect();
`;

/** The whole dashboard page. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nuncio dashboard</title>
<style>${CSS}</style>
</head>
<body data-frames="0">
<header><h1>nuncio</h1><span id="status">connecting</span>
<span style="color:var(--dim);font-size:12px">frames <span id="frames">0</span> · updated <span id="updated">–</span></span>
</header>
<main>
<section id="overview">
  <div class="big"><span class="l">requests / s (all listeners)</span><span class="v" id="total-rps" data-v="0">–</span></div>
  <div class="big"><span class="l">5xx / s</span><span class="v" id="total-5xx">–</span></div>
  <div class="big"><span class="l">downstream connections</span><span class="v" id="total-cx">–</span></div>
  <div><svg class="chart" id="chart-rps" viewBox="0 0 600 90" preserveAspectRatio="none"></svg></div>
</section>
<section>
<h2>Listeners</h2>
<table><thead><tr><th>listener</th><th>req/s</th><th></th><th>p50 ms</th><th>p99 ms</th><th></th><th>4xx/s</th>
<th>5xx/s</th><th>connections</th><th>active rq</th></tr></thead>
<tbody id="listeners-body"><tr><td colspan="10" class="empty">waiting for the first sample…</td></tr></tbody></table>
</section>
<section>
<h2>Clusters</h2>
<table><thead><tr><th>cluster</th><th>req/s</th><th></th><th>p50 ms</th><th>p99 ms</th><th></th><th>4xx/s</th>
<th>5xx/s</th><th>connections</th><th>active rq</th><th>healthy</th><th>ejected</th></tr></thead>
<tbody id="clusters-body"><tr><td colspan="12" class="empty">waiting for the first sample…</td></tr></tbody></table>
</section>
</main>
<footer>Rates over the last second from merged worker stats; latency quantiles of requests finished in that second.</footer>
<script>${JS}</script>
</body>
</html>
`;
