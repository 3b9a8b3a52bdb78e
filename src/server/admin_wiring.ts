/** Connects the admin API (src/admin) to the running server: AdminDeps backed by the server's state. */
import { getLogLevel, setLogLevel } from "../common/log.ts";
import { createAdminApp } from "../admin/app.ts";
import { startAdminServer } from "../admin/server.ts";
import type { AdminDeps, ClusterStatus } from "../admin/types.ts";
import type { Bootstrap } from "../config/bootstrap.ts";
import { type Server, VERSION } from "./server.ts";

/** A running admin listener. */
export interface AdminHandle {
  address: string;
  port: number;
  close(): Promise<void>;
}

/** Builds AdminDeps over a server. */
export function adminDeps(server: Server, bootstrap: Bootstrap): AdminDeps {
  const loadedAt = Date.now();
  return {
    stats: () => server.stats(),
    resetCounters: () => server.resetCounters(),
    clusters: (): Promise<ClusterStatus[]> => server.clusters(),
    setHealthCheckFailed: (failed: boolean) => server.setHealthCheckFailed(failed),
    configDump: () => ({
      bootstrap: server.opts.raw as Record<string, unknown>,
      bootstrapLoadedMs: loadedAt,
    }),
    listeners: () => server.listeners().map((l) => ({ name: l.name, address: `${l.address}:${l.port}` })),
    serverInfo: () => ({
      version: VERSION,
      state: server.state,
      uptime_current_epoch: Math.floor((Date.now() - server.startedAt) / 1000),
      uptime_all_epochs: Math.floor((Date.now() - server.startedAt) / 1000),
      hot_restart_version: "disabled",
      command_line_options: {
        config_path: server.opts.configPath,
        concurrency: server.opts.concurrency,
        log_level: server.opts.logLevel,
        args: server.opts.commandLine,
      },
      node: (bootstrap.node ?? {}) as Record<string, unknown>,
    }),
    ready: () => server.state === "LIVE",
    quit: () => server.quit(),
    getLogLevel: () => getLogLevel(),
    setLogLevel: (level: string) => setLogLevel(level),
  };
}

/** Starts the admin listener configured in `bootstrap.admin`, or returns null when there is none. */
export function startAdmin(server: Server, bootstrap: Bootstrap): Promise<AdminHandle | null> {
  const sa = bootstrap.admin?.address?.socket_address;
  if (!sa) return Promise.resolve(null);
  const app = createAdminApp(adminDeps(server, bootstrap));
  const s = startAdminServer(app, { hostname: sa.address, port: sa.port_value });
  return Promise.resolve({ address: `${sa.address}:${s.port}`, port: s.port, close: () => s.close() });
}
