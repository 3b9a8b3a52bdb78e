/** A fake AdminDeps for tests: real stats store, two clusters, call recording. */
import { StatsStore } from "../stats/store.ts";
import type { AdminDeps, AdminEndpoint, ClusterStatus } from "./types.ts";

/** What the fake records. */
export interface FakeDeps extends AdminDeps {
  store: StatsStore;
  calls: string[];
  level: string;
  isReady: boolean;
}

/** Builds the fake (fresh store each call). */
export function fakeDeps(endpoints: AdminEndpoint[] = []): FakeDeps {
  const store = new StatsStore();
  store.counter("cluster.backend.upstream_rq_total").inc(5);
  store.counter("cluster.backend.upstream_rq_200").inc(5);
  store.gauge("server.live").set(1);
  store.histogram("cluster.backend.upstream_rq_time").record(12);
  const clusters: ClusterStatus[] = [{
    name: "backend",
    addedViaApi: false,
    hosts: [{
      address: "127.0.0.1",
      port: 8080,
      hostname: "",
      weight: 1,
      healthFlags: [],
      stats: {
        cx_total: 3,
        cx_active: 1,
        cx_connect_fail: 0,
        rq_total: 5,
        rq_active: 0,
        rq_success: 4,
        rq_error: 1,
        rq_timeout: 0,
      },
    }, {
      address: "::1",
      port: 8081,
      hostname: "localhost",
      weight: 2,
      healthFlags: ["failed_active_hc", "failed_outlier_check"],
      stats: {
        cx_total: 0,
        cx_active: 0,
        cx_connect_fail: 2,
        rq_total: 0,
        rq_active: 0,
        rq_success: 0,
        rq_error: 0,
        rq_timeout: 0,
      },
    }],
  }];
  const d: FakeDeps = {
    store,
    calls: [],
    level: "info",
    isReady: true,
    stats: () => Promise.resolve(store.snapshot()),
    resetCounters: () => {
      d.calls.push("reset");
      store.resetCounters();
      return Promise.resolve();
    },
    clusters: () => Promise.resolve(clusters),
    configDump: () => ({
      bootstrap: {
        admin: { address: { socket_address: { address: "127.0.0.1", port_value: 9901 } } },
        static_resources: {
          listeners: [{
            name: "l1",
            filter_chains: [{
              filters: [{
                name: "envoy.filters.network.http_connection_manager",
                typed_config: {
                  "@type":
                    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                  route_config: { name: "local_route", virtual_hosts: [] },
                },
              }],
              transport_socket: {
                typed_config: {
                  common_tls_context: { tls_certificates: [{ private_key: { inline_string: "SECRET" } }] },
                },
              },
            }],
          }],
          clusters: [{ name: "backend", connect_timeout: "1s" }],
        },
      },
      bootstrapLoadedMs: Date.UTC(2024, 0, 1),
    }),
    listeners: () => [{ name: "l1", address: "0.0.0.0:10000" }, { name: "l6", address: "[::]:10001" }],
    serverInfo: () => ({
      version: "nuncio/0.1.0",
      state: d.isReady ? "LIVE" : "PRE_INITIALIZING",
      uptime_current_epoch: 12.7,
      uptime_all_epochs: 30,
      hot_restart_version: "disabled",
      command_line_options: { concurrency: 1 },
      node: { id: "n1", cluster: "c1" },
    }),
    ready: () => d.isReady,
    quit: () => {
      d.calls.push("quit");
    },
    getLogLevel: () => d.level,
    setLogLevel: (l: string) => {
      if (!["trace", "debug", "info", "warn", "error", "critical", "off"].includes(l)) {
        throw new Error(`Unknown log level "${l}"`);
      }
      d.level = l;
    },
    reopenLogs: () => {
      d.calls.push("reopen");
    },
    endpoints,
  };
  return d;
}
