/** Connects the admin API (src/admin) to the running server: AdminDeps backed by the server's state. */
import { logAll } from "../access_log/config.ts";
import type { AccessLogger, AccessLoggerCreate } from "../access_log/types.ts";
import { systemClock } from "../common/clock.ts";
import { componentLogLevels, getLogLevel, setComponentLogLevels, setLogLevel } from "../common/log.ts";
import { createAdminApp } from "../admin/app.ts";
import { startAdminServer } from "../admin/server.ts";
import type { AdminDeps, AdminEndpoint, ClusterStatus } from "../admin/types.ts";
import type { Bootstrap } from "../config/bootstrap.ts";
import { registry } from "../registry/registry.ts";
import { runtimeView } from "../runtime/admin.ts";
import type { StatsStore } from "../stats/store.ts";
import type { DebugAdmin } from "./admin_debug.ts";
import { bindErrorMessage } from "./data_plane.ts";
import { type Server, VERSION } from "./server.ts";

/** A running admin listener. */
export interface AdminHandle {
  address: string;
  port: number;
  close(): Promise<void>;
}

/** Builds AdminDeps over a server; `extra` endpoints join the operations ones (the debug endpoints). */
export function adminDeps(server: Server, bootstrap: Bootstrap, extra: AdminEndpoint[] = []): AdminDeps {
  const loadedAt = Date.now();
  return {
    stats: () => server.stats(),
    resetCounters: () => server.resetCounters(),
    clusters: (): Promise<ClusterStatus[]> => server.clusters(),
    setHealthCheckFailed: (failed: boolean) => server.setHealthCheckFailed(failed),
    reopenLogs: () => server.reopenLogs(),
    configDump: async () => {
      const x = await server.xdsDump();
      return {
        bootstrap: server.opts.raw as Record<string, unknown>,
        bootstrapLoadedMs: loadedAt,
        dynamicListeners: x?.listeners,
        dynamicClusters: x?.clusters,
        dynamicRouteConfigs: x?.routes,
        dynamicEndpoints: x?.endpoints,
        listenersVersion: x?.listenersVersion,
        clustersVersion: x?.clustersVersion,
      };
    },
    listeners: () => server.listeners().map((l) => ({ name: l.name, address: `${l.address}:${l.port}` })),
    serverInfo: () => ({
      version: VERSION,
      state: server.reportedState,
      uptime_current_epoch: Math.floor((Date.now() - server.startedAt) / 1000),
      uptime_all_epochs: Math.floor((Date.now() - server.hotRestart.firstStartedAt) / 1000),
      hot_restart_version: server.hotRestart.version,
      command_line_options: server.opts.commandLineOptions ?? {
        config_path: server.opts.configPath,
        concurrency: server.opts.concurrency,
        log_level: server.opts.logLevel,
        args: server.opts.commandLine,
      },
      node: (bootstrap.node ?? {}) as Record<string, unknown>,
    }),
    ready: () => server.reportedState === "LIVE",
    quit: () => server.quit(),
    getLogLevel: () => getLogLevel(),
    setLogLevel: (level: string) => {
      setLogLevel(level);
      server.syncLogSettings();
    },
    loggers: () => componentLogLevels(),
    setLoggerLevels: (levels: Record<string, string>) => {
      setComponentLogLevels(levels); // all or nothing, as Envoy
      server.syncLogSettings();
    },
    runtime: {
      view: () => runtimeView(server.runtime.snapshot),
      modify: (params) => server.runtime.mergeValues(params),
    },
    endpoints: [...operationsEndpoints(server), ...extra],
  };
}

/** /drain_listeners (Envoy's) and /reload (nuncio's: what SIGHUP does). */
function operationsEndpoints(server: Server): AdminEndpoint[] {
  return [
    {
      path: "/drain_listeners",
      method: "POST",
      help: "drain listeners (?inboundonly: only INBOUND ones; ?graceful: after --drain-time-s; ?skip_exit)",
      handler: (c) => {
        const has = (k: string) => c.req.query(k) !== undefined;
        if (has("skip_exit") && !has("graceful")) {
          return c.text("skip_exit may only be used with graceful\n", 400);
        }
        server.drainListeners({
          inboundOnly: has("inboundonly"),
          graceful: has("graceful"),
          skipExit: has("skip_exit"),
          strategy: server.opts.drainStrategy ?? "immediate",
        });
        return c.text("OK\n");
      },
    },
    {
      path: "/reload",
      method: "POST",
      help: "re-read the bootstrap and apply what changed, as SIGHUP (the running config stays on error)",
      handler: async (c) => {
        const reload = server.reloadConfig;
        if (!reload) return c.text("this server has no config file to re-read\n", 501);
        try {
          return c.text(`${await reload()}\n`);
        } catch (e) {
          return c.text(`${(e as Error).message}\n`, 400);
        }
      },
    },
  ];
}

/** @type of the file access logger that the deprecated `admin.access_log_path` stands for. */
const FILE_ACCESS_LOG_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog";

/**
 * Builds the admin access loggers at start: `admin.access_log` entries, plus a file logger with the default
 * format for the deprecated `admin.access_log_path`. Throws when a logger cannot be created.
 */
export function createAdminAccessLogs(admin: Bootstrap["admin"], stats: StatsStore): AccessLogger[] {
  const ctx = { stats, clock: systemClock };
  const loggers = (admin?.access_log ?? []).map((ref) =>
    (ref.ext.create as AccessLoggerCreate<unknown>)(ref.config, ctx)
  );
  if (admin?.access_log_path) {
    const file = registry.find("access_logger", undefined, FILE_ACCESS_LOG_TYPE);
    if (!file) throw new Error("admin.access_log_path needs the file access logger");
    const config = file.schema.parse({ path: admin.access_log_path });
    loggers.push((file.create as AccessLoggerCreate<unknown>)(config, ctx));
  }
  return loggers;
}

/** The debug endpoints (src/server/admin_debug.ts), listed here so their code loads on their first request. */
export const DEBUG_ENDPOINTS: readonly Omit<AdminEndpoint, "handler">[] = [
  {
    path: "/dashboard",
    method: "GET",
    help: "live dashboard: per listener and cluster rates, latency, errors, connections and health",
  },
  {
    path: "/dashboard/events",
    method: "GET",
    help: "the dashboard's server-sent events: one JSON frame a second while connected",
  },
  {
    path: "/debug/route",
    method: "GET",
    help:
      "explain how a request would be routed (?authority=&path=&method=&header=k:v&listener=name|address)",
  },
  {
    path: "/debug/suggest",
    method: "GET",
    help:
      "suggest timeouts, retry budgets and circuit breakers from observed latency, errors and concurrency",
  },
];

/**
 * The debug endpoints with their implementation (dashboard page, route explain, suggestions) imported on the
 * first request to any of them: a proxy nobody debugs keeps that code out of its memory.
 */
function lazyDebugAdmin(server: Server): DebugAdmin {
  let real: DebugAdmin | undefined;
  let loading: Promise<DebugAdmin> | undefined;
  const load = () => loading ??= import("./admin_debug.ts").then((m) => real = m.createDebugAdmin(server));
  return {
    endpoints: DEBUG_ENDPOINTS.map((meta) => ({
      ...meta,
      handler: async (c) => {
        const e = (await load()).endpoints.find((x) => x.path === meta.path);
        return e ? await e.handler(c) : c.text("not found\n", 404);
      },
    })),
    close: () => real?.close(),
  };
}

/** Starts the admin listener configured in `bootstrap.admin`, or returns null when there is none. */
export function startAdmin(server: Server, bootstrap: Bootstrap): Promise<AdminHandle | null> {
  const sa = bootstrap.admin?.address?.socket_address;
  if (!sa) return Promise.resolve(null);
  const debug = lazyDebugAdmin(server);
  const app = createAdminApp(adminDeps(server, bootstrap, debug.endpoints));
  const loggers = createAdminAccessLogs(bootstrap.admin, server.mainStats);
  let s;
  try {
    s = startAdminServer(app, {
      hostname: sa.address,
      port: sa.port_value,
      onRequest: loggers.length > 0 ? (info) => logAll(loggers, info) : undefined,
    });
  } catch (e) {
    // one line naming the address (`admin cannot bind 127.0.0.1:9901: address already in use`)
    debug.close();
    return Promise.all(loggers.map((l) => l.close())).then(() => {
      throw new Error(bindErrorMessage("admin", sa.address, sa.port_value, e));
    });
  }
  return Promise.resolve({
    address: `${sa.address}:${s.port}`,
    port: s.port,
    close: async () => {
      debug.close(); // ends open /dashboard/events streams, which would hold the server's close
      await s.close();
      await Promise.all(loggers.map((l) => l.close()));
    },
  });
}
