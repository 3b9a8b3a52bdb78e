/**
 * The admin API as a Hono app: Envoy's built-in endpoints plus the routes other subsystems
 * contribute (AdminDeps.endpoints). State-changing endpoints are POST-only (GET answers 405).
 */
import { type Context, Hono } from "hono";
import { formatStatsJson, formatStatsText, parseStatsQuery, type StatsQuery } from "../stats/format.ts";
import { formatPrometheus } from "../stats/prometheus.ts";
import { clustersJson, formatClustersText } from "./clusters.ts";
import { certsJson } from "./certs.ts";
import { buildConfigDump, selectConfigDump } from "./config_dump.ts";
import type { AdminDeps, AdminEndpoint, ListenerInfo, ServerInfo } from "./types.ts";

const TEXT = "text/plain; charset=UTF-8";
const JSON_TYPE = "application/json";
const PROMETHEUS = "text/plain; version=0.0.4; charset=UTF-8";

function text(body: string, status = 200, type = TEXT): Response {
  return new Response(body, { status, headers: { "content-type": type } });
}

function json(value: unknown, status = 200): Response {
  return text(JSON.stringify(value, null, 2) + "\n", status, JSON_TYPE);
}

/** The query of a stats request, or a 400 response. */
function statsQuery(c: Context): StatsQuery | Response {
  const q = parseStatsQuery(new URL(c.req.url).searchParams);
  return typeof q === "string" ? text(q + "\n", 400) : q;
}

async function handleStats(c: Context, deps: AdminDeps): Promise<Response> {
  const q = statsQuery(c);
  if (q instanceof Response) return q;
  const format = c.req.query("format") ?? "text";
  if (format !== "text" && format !== "json" && format !== "prometheus") {
    return text(`Unsupported format "${format}" (text, json or prometheus)\n`, 400);
  }
  const snap = await deps.stats();
  if (format === "json") return text(formatStatsJson(snap, q), 200, JSON_TYPE);
  if (format === "prometheus") return text(formatPrometheus(snap, q), 200, PROMETHEUS);
  return text(formatStatsText(snap, q));
}

async function handlePrometheus(c: Context, deps: AdminDeps): Promise<Response> {
  const q = statsQuery(c);
  if (q instanceof Response) return q;
  return text(formatPrometheus(await deps.stats(), q), 200, PROMETHEUS);
}

function splitAddress(addr: string): { address: string; port_value: number } {
  const m = /^\[(.*)\]:(\d+)$/.exec(addr) ?? /^(.*):(\d+)$/.exec(addr);
  return m ? { address: m[1], port_value: Number(m[2]) } : { address: addr, port_value: 0 };
}

function listenersResponse(c: Context, listeners: ListenerInfo[]): Response {
  if (c.req.query("format") === "json") {
    return json({
      listener_statuses: listeners.map((l) => ({
        name: l.name,
        local_address: { socket_address: splitAddress(l.address) },
      })),
    });
  }
  return text(listeners.map((l) => `${l.name}::${l.address}\n`).join(""));
}

function serverInfoJson(i: ServerInfo): Record<string, unknown> {
  return {
    version: i.version,
    state: i.state,
    hot_restart_version: i.hot_restart_version,
    command_line_options: i.command_line_options,
    node: i.node,
    uptime_current_epoch: `${Math.floor(i.uptime_current_epoch)}s`,
    uptime_all_epochs: `${Math.floor(i.uptime_all_epochs)}s`,
  };
}

function loggingList(deps: AdminDeps): string {
  const loggers = deps.loggers?.() ?? { default: deps.getLogLevel() };
  return `active loggers:\n${Object.entries(loggers).map(([n, l]) => `  ${n}: ${l}\n`).join("")}`;
}

/** The loggers a /logging query names: `?level=` (all), `?paths=a:l,b:l`, or one `?<logger>=<level>`. */
function loggerLevels(params: URLSearchParams): Record<string, string> | string {
  const keys = [...params.keys()];
  if (keys.length !== 1) {
    return "Use one of /logging?level=<level>, ?<logger>=<level>, ?paths=<logger>:<level>,...";
  }
  const [k] = keys;
  const v = params.get(k) ?? "";
  if (k !== "paths") return { [k]: v };
  const out: Record<string, string> = {};
  for (const item of v.split(",")) {
    const [name, level, extra] = item.split(":");
    if (!name || level === undefined || extra !== undefined) {
      return `Bad paths item "${item}" (want logger:level)`;
    }
    out[name] = level;
  }
  return out;
}

async function handleLogging(c: Context, deps: AdminDeps): Promise<Response> {
  const params = new URL(c.req.url).searchParams;
  if (c.req.method === "POST" && params.size > 0) {
    const levels = loggerLevels(params);
    if (typeof levels === "string") return text(`${levels}\n`, 400);
    try {
      if ("level" in levels && params.has("level")) await deps.setLogLevel(levels.level);
      else if (deps.setLoggerLevels) await deps.setLoggerLevels(levels);
      else {
        const k = Object.keys(levels)[0];
        return text(`Per-logger levels ("${k}") are not supported: use /logging?level=<level>\n`, 400);
      }
    } catch (e) {
      return text(`${(e as Error).message}\n`, 400);
    }
  } else if (params.size > 0) {
    return text("Changing the log level requires POST\n", 405, TEXT);
  }
  return text(loggingList(deps));
}

function handleConfigDump(c: Context, deps: AdminDeps): Promise<Response> | Response {
  if (c.req.query("name_regex") !== undefined) return text("/config_dump?name_regex is not supported\n", 400);
  const includeEds = c.req.query("include_eds") !== undefined;
  return Promise.resolve(deps.configDump()).then((src) => {
    const picked = selectConfigDump(
      buildConfigDump(src, { includeEds }),
      c.req.query("resource"),
      c.req.query("mask"),
    );
    return typeof picked === "string" ? text(`${picked}\n`, 400) : json(picked);
  });
}

const RUNTIME_MODIFY_USAGE = "usage: /runtime_modify?key1=value1&key2=value2&keyN=valueN\n" +
  "       or send the parameters as form values\n" +
  "use an empty value to remove a previously added override";

/**
 * /runtime_modify (Envoy's handlerRuntimeModify): query parameters, else a form-urlencoded body; the first value
 * of a repeated key wins; no admin layer answers 503.
 */
async function handleRuntimeModify(c: Context, deps: AdminDeps): Promise<Response> {
  let params = [...new URL(c.req.url).searchParams];
  if (params.length === 0) {
    const type = (c.req.header("content-type") ?? "").toLowerCase();
    if (type.startsWith("application/x-www-form-urlencoded")) {
      params = [...new URLSearchParams(await c.req.text())];
    }
    if (params.length === 0) return text(RUNTIME_MODIFY_USAGE, 400);
  }
  const first = new Map<string, string>();
  for (const [k, v] of params) if (!first.has(k)) first.set(k, v);
  if (!deps.runtime) return text("No admin layer specified", 503);
  try {
    await deps.runtime.modify([...first]);
  } catch (e) {
    return text((e as Error).message, 503);
  }
  return text("OK\n");
}

/** Envoy's built-in endpoints, wired to `deps`. */
function builtinEndpoints(deps: AdminDeps, help: () => string): AdminEndpoint[] {
  const eps: AdminEndpoint[] = [
    { path: "/", method: "GET", help: "Admin home page", handler: () => text(help()) },
    { path: "/help", method: "GET", help: "print out list of admin commands", handler: () => text(help()) },
    {
      path: "/stats",
      method: "GET",
      help: "print server stats (?format=json|prometheus, ?filter=REGEX, ?usedonly)",
      handler: (c) => handleStats(c, deps),
    },
    {
      path: "/stats/prometheus",
      method: "GET",
      help: "print server stats in prometheus format (?filter=REGEX, ?usedonly)",
      handler: (c) => handlePrometheus(c, deps),
    },
    {
      path: "/clusters",
      method: "GET",
      help: "upstream cluster status (?format=json)",
      handler: async (c) => {
        const cl = await deps.clusters();
        return c.req.query("format") === "json" ? json(clustersJson(cl)) : text(formatClustersText(cl));
      },
    },
    {
      path: "/config_dump",
      method: "GET",
      help: "dump current Envoy configs",
      handler: (c) => handleConfigDump(c, deps),
    },
    {
      path: "/certs",
      method: "GET",
      help: "print certs on machine",
      handler: async () => json(await certsJson(await deps.configDump())),
    },
    {
      path: "/listeners",
      method: "GET",
      help: "print listener info (?format=json)",
      handler: (c) => listenersResponse(c, deps.listeners()),
    },
    {
      path: "/server_info",
      method: "GET",
      help: "print server version/status information",
      handler: () => json(serverInfoJson(deps.serverInfo())),
    },
    {
      path: "/ready",
      method: "GET",
      help: "print server state, return 200 if LIVE, otherwise return 503",
      handler: () => (deps.ready() ? text("LIVE\n") : text(`${deps.serverInfo().state}\n`, 503)),
    },
    {
      path: "/runtime",
      method: "GET",
      help: "print runtime values",
      handler: () => json(deps.runtime ? deps.runtime.view() : { entries: {}, layers: [] }),
    },
    {
      path: "/runtime_modify",
      method: "POST",
      help: "Adds or modifies existing runtime values (?key1=value1&key2=value2; an empty value removes)",
      handler: (c) => handleRuntimeModify(c, deps),
    },
    {
      path: "/logging",
      method: "POST",
      help: "query/change logging levels (?level=LEVEL, ?<logger>=LEVEL, ?paths=<logger>:LEVEL,...)",
      handler: (c) => handleLogging(c, deps),
    },
    {
      path: "/reset_counters",
      method: "POST",
      help: "reset all counters to zero",
      handler: async () => {
        await deps.resetCounters();
        return text("OK\n");
      },
    },
    {
      path: "/quitquitquit",
      method: "POST",
      help: "exit the server",
      handler: () => {
        queueMicrotask(() => deps.quit());
        return text("OK\n");
      },
    },
  ];
  if (deps.setHealthCheckFailed) {
    const set = deps.setHealthCheckFailed.bind(deps);
    eps.push(
      {
        path: "/healthcheck/fail",
        method: "POST",
        help: "cause the server to fail health checks",
        handler: () => {
          set(true);
          return text("OK\n");
        },
      },
      {
        path: "/healthcheck/ok",
        method: "POST",
        help: "cause the server to pass health checks",
        handler: () => {
          set(false);
          return text("OK\n");
        },
      },
    );
  }
  if (deps.reopenLogs) {
    const reopen = deps.reopenLogs.bind(deps);
    eps.push({
      path: "/reopen_logs",
      method: "POST",
      help: "reopen access logs",
      handler: async () => {
        await reopen();
        return text("OK\n");
      },
    });
  }
  return eps;
}

/** Builds the admin Hono app (once per server); throws when two endpoints claim the same path. */
export function createAdminApp(deps: AdminDeps): Hono {
  const all: AdminEndpoint[] = [];
  const help = () =>
    "admin commands are:\n" +
    [...all].sort((a, b) => (a.path < b.path ? -1 : 1))
      .map((e) => `  ${e.path}${e.method === "POST" ? " (POST)" : ""}: ${e.help}\n`).join("");
  const seen = new Set<string>();
  for (const e of [...builtinEndpoints(deps, help), ...(deps.endpoints ?? [])]) {
    if (seen.has(e.path)) throw new Error(`Admin endpoint ${e.path} registered twice`);
    seen.add(e.path);
    all.push(e);
  }

  const app = new Hono();
  for (const e of all) {
    if (e.method === "POST") {
      app.post(e.path, e.handler);
      // /logging lists levels on GET without parameters, like Envoy's POST without parameters.
      if (e.path === "/logging") app.get(e.path, e.handler);
    } else {
      app.on(["GET", "POST"], e.path, e.handler);
    }
    app.all(e.path, (c) => methodNotAllowed(c, e));
  }
  app.notFound(() => text(`invalid path. ${help()}`, 404));
  app.onError((err) => text(`Admin handler failed: ${err.message}\n`, 500));
  return app;
}

function methodNotAllowed(c: Context, e: AdminEndpoint): Response {
  const allow = e.method === "POST" ? "POST" : "GET, HEAD, POST";
  const body = e.method === "POST"
    ? `Method ${c.req.method} not allowed: ${e.path} changes server state and requires POST\n`
    : `Method ${c.req.method} not allowed on ${e.path} (use GET)\n`;
  return new Response(body, { status: 405, headers: { "content-type": TEXT, allow } });
}
