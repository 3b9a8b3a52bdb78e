/**
 * End-to-end test helpers: an in-process proxy built from YAML text (ports 0 resolved after start),
 * Envoy v3 config builders, an access log reader and stats lookups; nuncio (`main.ts`) as a subprocess and
 * port probes for it. Peers (origins, curl, raw sockets) live in peers.ts and are re-exported here.
 */
import { prepareExtensions } from "../src/registry/prepare.ts";
import { loadTlsRuntime } from "../src/transport/cert_store.ts";
import "../src/registry/builtin.ts";
import { stringify } from "yaml";
import { formatConfigError } from "../src/config/errors.ts";
import { loadConfigText } from "../src/config/load.ts";
import { checkClusterReferences } from "../src/server/cross_check.ts";
import { DataPlane } from "../src/server/data_plane.ts";
import { sockoptAvailable } from "../src/transport/sockopt.ts";
import { curl, type RunResult, sleep } from "./peers.ts";

// libc (socket options) stays open for the process: opened here, before any test, so the resource sanitizer
// does not charge it to the first in-process proxy that reads SO_ORIGINAL_DST or sets keepalive timings
sockoptAvailable();

export * from "./peers.ts";

type Obj = Record<string, unknown>;

/** The access log format every helper-built listener uses; parsed back by `LogEntry`. */
export const LOG_FORMAT =
  "%RESPONSE_CODE%|%RESPONSE_FLAGS%|%REQ(:METHOD)%|%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%|%UPSTREAM_HOST%|%UPSTREAM_CLUSTER%|%RESPONSE_CODE_DETAILS%|%BYTES_RECEIVED%|%BYTES_SENT%\n";

/** One parsed access log line (fields of LOG_FORMAT). */
export interface LogEntry {
  code: string;
  flags: string;
  method: string;
  path: string;
  upstreamHost: string;
  cluster: string;
  details: string;
  bytesReceived: string;
  bytesSent: string;
}

/** A running in-process proxy. */
export interface Proxy extends AsyncDisposable {
  plane: DataPlane;
  /** Bound port of the listener called `name` (default: the first listener). */
  port(name?: string): number;
  /** `http://127.0.0.1:<port><path>` of a listener. */
  url(path: string, listener?: string): string;
  /** A counter (or gauge) value from the stats snapshot; 0 when absent. */
  stat(name: string): number;
  /** Access log path of this proxy (one temp file shared by its listeners). */
  logPath: string;
  /** Waits until the access log has at least `n` lines (bounded), returns the parsed entries. */
  log(n: number, timeoutMs?: number): Promise<LogEntry[]>;
  /** Stops the data plane and closes the access log files. */
  close(): Promise<void>;
}

/** The file access log entry for a listener (format LOG_FORMAT unless given). */
export function accessLog(path: string, format = LOG_FORMAT): Obj {
  return {
    name: "envoy.access_loggers.file",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
      path,
      log_format: { text_format: format },
    },
  };
}

/** Options of an HTTP listener built by `httpListener`. */
export interface HttpListenerOptions {
  name?: string;
  statPrefix?: string;
  /** Virtual hosts of the inline route_config. */
  virtualHosts: unknown[];
  /** Extra route_config fields (request_headers_to_add ...). */
  routeConfig?: Obj;
  /** Extra HttpConnectionManager fields. */
  hcm?: Obj;
}

/** A 127.0.0.1:0 listener running http_connection_manager -> router; `$LOG` is replaced by the log path. */
export function httpListener(o: HttpListenerOptions): Obj {
  return {
    name: o.name ?? "http",
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.http_connection_manager",
        typed_config: {
          "@type":
            "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
          stat_prefix: o.statPrefix ?? "ingress",
          access_log: [accessLog("$LOG")],
          route_config: { name: "routes", virtual_hosts: o.virtualHosts, ...o.routeConfig },
          http_filters: [{
            name: "envoy.filters.http.router",
            typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
          }],
          ...o.hcm,
        },
      }],
    }],
  };
}

/** A 127.0.0.1:0 listener running tcp_proxy to `cluster`. */
export function tcpListener(name: string, cluster: string, extra: Obj = {}): Obj {
  return {
    name,
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.tcp_proxy",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
          stat_prefix: name,
          cluster,
          access_log: [accessLog("$LOG", TCP_LOG_FORMAT)],
          ...extra,
        },
      }],
    }],
  };
}

/** tcp_proxy access log format: flags, upstream host, bytes, termination details. */
export const TCP_LOG_FORMAT =
  "%RESPONSE_CODE%|%RESPONSE_FLAGS%|-|-|%UPSTREAM_HOST%|%UPSTREAM_CLUSTER%|%CONNECTION_TERMINATION_DETAILS%|%BYTES_RECEIVED%|%BYTES_SENT%\n";

/** A STATIC cluster of 127.0.0.1 hosts on `ports`. */
export function staticCluster(name: string, ports: number[], extra: Obj = {}): Obj {
  return {
    name,
    type: "STATIC",
    connect_timeout: "1s",
    load_assignment: {
      cluster_name: name,
      endpoints: [{
        lb_endpoints: ports.map((p) => ({
          endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: p } } },
        })),
      }],
    },
    ...extra,
  };
}

/** A virtual host matching every domain with the given routes. */
export function anyHost(routes: unknown[], extra: Obj = {}): Obj {
  return { name: "any", domains: ["*"], routes, ...extra };
}

/** An HTTP listener on 127.0.0.1:`port` answering 200 "ok" itself, access log at `log`. */
export function okListener(name: string, port: number, log = "/dev/null"): Obj {
  const l = httpListener({
    name,
    statPrefix: name,
    virtualHosts: [
      anyHost([{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "ok" } } }]),
    ],
  });
  (l.address as { socket_address: { port_value: number } }).socket_address.port_value = port;
  return JSON.parse(JSON.stringify(l).replaceAll("$LOG", log));
}

/** A bootstrap YAML text from listeners and clusters. */
export function bootstrapYaml(listeners: unknown[], clusters: unknown[], extra: Obj = {}): string {
  return stringify({ static_resources: { listeners, clusters }, ...extra });
}

/** Parses a bootstrap (throwing with file:line:col errors), starts it on one event loop. */
export async function startProxy(yaml: string): Promise<Proxy> {
  const logPath = await Deno.makeTempFile({ prefix: "nuncio_e2e_", suffix: ".log" });
  const loaded = loadConfigText(yaml.replaceAll("$LOG", logPath), "test.yaml", {
    crossCheck: checkClusterReferences,
  });
  if (!loaded.ok) {
    await Deno.remove(logPath);
    throw new Error(`Bad test config:\n${loaded.errors.map(formatConfigError).join("\n")}`);
  }
  await loadTlsRuntime();
  await prepareExtensions(loaded.bootstrap);
  const plane = new DataPlane(loaded.bootstrap);
  try {
    await plane.start(false);
  } catch (err) {
    await plane.stop();
    await Deno.remove(logPath);
    throw err;
  }
  const ports = new Map(plane.addresses().map((a) => [a.name, a.port]));
  const first = plane.addresses()[0]?.name;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await plane.stop();
    await Deno.remove(logPath).catch(() => {});
  };
  const port = (name = first) => {
    const p = ports.get(name);
    if (p === undefined) throw new Error(`No listener ${name}`);
    return p;
  };
  return {
    plane,
    logPath,
    port,
    url: (path, listener) => `http://127.0.0.1:${port(listener)}${path}`,
    stat: (name) => {
      const s = plane.stats.snapshot();
      return s.counters[name] ?? s.gauges[name] ?? 0;
    },
    log: (n, timeoutMs = 3000) => readLog(logPath, n, timeoutMs),
    close,
    [Symbol.asyncDispose]: close,
  };
}

async function readLog(path: string, n: number, timeoutMs: number): Promise<LogEntry[]> {
  const deadline = Date.now() + timeoutMs;
  let lines: string[] = [];
  for (;;) {
    lines = (await Deno.readTextFile(path)).split("\n").filter((l) => l.length > 0);
    if (lines.length >= n || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  return lines.map((l) => {
    const [code, flags, method, p, upstreamHost, cluster, details, bytesReceived, bytesSent] = l.split("|");
    return { code, flags, method, path: p, upstreamHost, cluster, details, bytesReceived, bytesSent };
  });
}

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** nuncio (`deno run -A main.ts <args>`) as a subprocess: stdout dropped, stderr collected, no colours. */
export interface NuncioProcess {
  proc: Deno.ChildProcess;
  /** Everything it wrote to stderr, once it has exited. */
  stderr: Promise<string>;
  /** Its exit code and stderr. */
  done: Promise<{ code: number; stderr: string }>;
}

/** Starts `main.ts` with `args` (and `permissions`, -A unless given); waits for nothing. */
export function spawnNuncio(args: string[], permissions = ["-A"]): NuncioProcess {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, MAIN, ...args],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stderr = new Response(proc.stderr).text();
  const done = Promise.all([proc.status, stderr]).then(([s, e]) => ({ code: s.code, stderr: e }));
  return { proc, stderr, done };
}

/** Waits (bounded) until 127.0.0.1:`port` accepts a connection. */
export async function waitForPort(port: number, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`Nothing listens on ${port}`);
      await sleep(50);
    }
  }
}

/** True when `port` can be bound on 127.0.0.1 right now, without waiting (nobody holds it). */
export function portFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

/** `curl -s -o /dev/null -w %{http_code} <extra> <url>`: stdout is the status code. */
export function curlStatus(url: string, extra: string[] = []): Promise<RunResult> {
  return curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", ...extra, url]);
}
