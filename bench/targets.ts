/** Config generation and start-up for the benchmark's origin and proxies (all on 127.0.0.1). */

import type { Managed, Supervisor } from "./lib/proc.ts";
import { waitForPort } from "./lib/net.ts";

/** The fixed 32-byte body the origin answers with. */
export const BODY = "nuncio-bench-0123456789abcdefgh\n";

/** A started server: its process and the port clients use. */
export interface Started {
  /** Process (group leader). */
  proc: Managed;
  /** Listening port. */
  port: number;
}

/** Where configs and logs go and which binaries to run. */
export interface Env {
  /** Temporary directory for configs, pid files and logs. */
  dir: string;
  /** Supervisor owning every child. */
  sup: Supervisor;
  /** Absolute paths of nginx and haproxy. */
  bins: { nginx: string; haproxy: string };
  /** Open-files limit for servers. */
  nofile: number;
}

function nginxPrelude(dir: string, name: string, workerConnections: number, nofile: number): string {
  return `worker_processes 1;
daemon off;
master_process on;
pid ${dir}/${name}.pid;
error_log ${dir}/${name}.error.log warn;
worker_rlimit_nofile ${nofile};
events { worker_connections ${workerConnections}; }
`;
}

function nginxHttpCommon(dir: string, name: string): string {
  return `  access_log off;
  keepalive_timeout 300s;
  keepalive_requests 1000000;
  client_body_temp_path ${dir}/${name}.body;
  proxy_temp_path ${dir}/${name}.proxy;
  fastcgi_temp_path ${dir}/${name}.fastcgi;
  uwsgi_temp_path ${dir}/${name}.uwsgi;
  scgi_temp_path ${dir}/${name}.scgi;
`;
}

/** nginx config for the origin: one worker, keep-alive, answers every request with BODY. */
export function originNginxConfig(dir: string, port: number, nofile: number): string {
  return `${nginxPrelude(dir, "origin", 4096, nofile)}http {
${nginxHttpCommon(dir, "origin")}  server {
    listen 127.0.0.1:${port} reuseport backlog=4096;
    location / {
      default_type text/plain;
      return 200 "${BODY.replace("\n", "\\n")}";
    }
  }
}
`;
}

/** nginx reverse-proxy config: one worker, upstream keepalive 64, HTTP/1.1 to the origin. */
export function proxyNginxConfig(dir: string, port: number, originPort: number, nofile: number): string {
  const conns = Math.max(1024, nofile - 256);
  return `${nginxPrelude(dir, "nginx-proxy", conns, nofile)}http {
${nginxHttpCommon(dir, "nginx-proxy")}  upstream origin {
    server 127.0.0.1:${originPort};
    keepalive 64;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/** HAProxy config in HTTP or TCP mode with one thread (http-reuse always in HTTP mode). */
export function haproxyConfig(
  mode: "http" | "tcp",
  ports: { port: number; origin: number },
  limits: { maxconn: number; nofile: number },
): string {
  const reuse = mode === "http" ? "  http-reuse always\n" : "";
  const timeouts = mode === "http" ? "  timeout http-keep-alive 300s\n  timeout http-request 300s\n" : "";
  return `global
  nbthread 1
  maxconn ${limits.maxconn}
  ulimit-n ${limits.nofile}
  no strict-limits

defaults
  mode ${mode}
  timeout connect 5s
  timeout client 300s
  timeout server 300s
${timeouts}
frontend fe
  bind 127.0.0.1:${ports.port}
  default_backend be

backend be
${reuse}  server origin 127.0.0.1:${ports.origin} maxconn ${limits.maxconn}
`;
}

/** Options of `yamlHcmListener`. */
export interface HcmListenerYaml {
  /** stat_prefix (default: the listener name). */
  statPrefix?: string;
  /** Extra HCM fields, each line indented 10 spaces (e.g. codec_type). */
  hcm?: string;
  /** The route action in YAML flow style (default `{cluster: origin}`). */
  route?: string;
  /** HTTP filters before the router, each line indented 10 spaces. */
  filters?: string;
}

/** The admin block of a bench bootstrap. */
export function yamlAdmin(port: number): string {
  return `admin: {address: {socket_address: {address: 127.0.0.1, port_value: ${port}}}}\n`;
}

/** One `static_resources.listeners` entry: HCM (then the router) routing every path to one route action. */
export function yamlHcmListener(name: string, port: number, o: HcmListenerYaml = {}): string {
  return `  - name: ${name}
    address: {socket_address: {address: 127.0.0.1, port_value: ${port}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ${o.statPrefix ?? name}
${o.hcm ?? ""}          route_config:
            virtual_hosts:
            - {name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: ${
    o.route ?? "{cluster: origin}"
  }}]}
          http_filters:
${o.filters ?? ""}          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
`;
}

/** One `static_resources.clusters` entry: STATIC, one host on 127.0.0.1; `extra` lines are indented 4 spaces. */
export function yamlStaticCluster(name: string, port: number, extra = ""): string {
  return `  - name: ${name}
    type: STATIC
    connect_timeout: 1s
${extra}    load_assignment:
      cluster_name: ${name}
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ${port}}}}}]}]
`;
}

/** nuncio bootstrap (Envoy v3 YAML): HTTP listener (HCM -> router) and TCP listener, both to origin. */
export function nuncioConfig(ports: { admin: number; http: number; tcp: number; origin: number }): string {
  return `${yamlAdmin(ports.admin)}static_resources:
  listeners:
${yamlHcmListener("http", ports.http, { statPrefix: "bench" })}  - name: tcp
    address: {socket_address: {address: 127.0.0.1, port_value: ${ports.tcp}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: benchtcp
          cluster: origin
  clusters:
${yamlStaticCluster("origin", ports.origin)}`;
}

async function startNginx(env: Env, name: string, config: string, port: number): Promise<Started> {
  const conf = `${env.dir}/${name}.conf`;
  Deno.writeTextFileSync(conf, config);
  const proc = env.sup.spawn(name, env.bins.nginx, ["-p", env.dir, "-c", conf], {
    nofile: env.nofile,
    logPath: `${env.dir}/${name}.log`,
  });
  await waitForPort(port, { proc });
  return { proc, port };
}

/** Starts the origin nginx on `port`. */
export function startOrigin(env: Env, port: number): Promise<Started> {
  return startNginx(env, "origin", originNginxConfig(env.dir, port, env.nofile), port);
}

/** Starts the nginx reverse proxy on `port` in front of the origin. */
export function startNginxProxy(
  env: Env,
  port: number,
  originPort: number,
  name = "nginx-proxy",
): Promise<Started> {
  return startNginx(env, name, proxyNginxConfig(env.dir, port, originPort, env.nofile), port);
}

/** Starts bench/deno_floor.ts (the least a Deno HTTP/1.1 proxy does, a reference) on `port` before the origin. */
export async function startDenoFloor(env: Env, port: number, originPort: number): Promise<Started> {
  const script = new URL("./deno_floor.ts", import.meta.url).pathname;
  const proc = env.sup.spawn("deno-floor", Deno.execPath(), [
    "run",
    "--allow-net",
    script,
    `${port}`,
    `${originPort}`,
  ], {
    nofile: env.nofile,
    logPath: `${env.dir}/deno-floor.log`,
  });
  await waitForPort(port, { proc });
  return { proc, port };
}

/** Starts HAProxy in `mode` on `port` in front of the origin. */
export async function startHaproxy(
  env: Env,
  mode: "http" | "tcp",
  ports: { port: number; origin: number },
  name = `haproxy-${mode}`,
): Promise<Started> {
  const conf = `${env.dir}/${name}.cfg`;
  // HAProxy budgets two descriptors per connection; with an explicit ulimit-n a larger maxconn only
  // warns, which lets HTTP mode (one descriptor per idle client thanks to http-reuse) hold more.
  const maxconn = Math.floor((env.nofile - 512) / (mode === "tcp" ? 2 : 1.05));
  Deno.writeTextFileSync(conf, haproxyConfig(mode, ports, { maxconn, nofile: env.nofile }));
  const proc = env.sup.spawn(name, env.bins.haproxy, ["-db", "-f", conf], {
    nofile: env.nofile,
    logPath: `${env.dir}/${name}.log`,
  });
  await waitForPort(ports.port, { proc });
  return { proc, port: ports.port };
}

/** How to launch nuncio: a compiled binary, or `deno run --allow-all main.ts` from the repo root. */
export interface NuncioLaunch {
  /** Compiled binary; when unset, main.ts is run with the current deno. */
  bin?: string;
  /** Repository root (holds main.ts and deno.json). */
  root: string;
}

/**
 * Writes `config` to `<dir>/<name>.yaml` and starts nuncio on it with --concurrency 1 (a compiled binary or
 * `deno run main.ts`, as `launch` says); resolves once every port in `waitPorts` accepts.
 */
export async function spawnNuncio(
  env: Env,
  launch: NuncioLaunch,
  name: string,
  config: string,
  waitPorts: number[],
): Promise<Managed> {
  const conf = `${env.dir}/${name}.yaml`;
  Deno.writeTextFileSync(conf, config);
  const flags = ["-c", conf, "--concurrency", "1"];
  const [cmd, args] = launch.bin
    ? [launch.bin, flags]
    : [Deno.execPath(), ["run", "--allow-all", `${launch.root}/main.ts`, ...flags]];
  const proc = env.sup.spawn(name, cmd, args, {
    nofile: env.nofile,
    cwd: launch.root,
    logPath: `${env.dir}/${name}.log`,
  });
  for (const port of waitPorts) await waitForPort(port, { proc, timeoutMs: 30_000 });
  return proc;
}

/** Starts nuncio with --concurrency 1; resolves once both listeners accept. */
export async function startNuncio(
  env: Env,
  launch: NuncioLaunch,
  ports: { admin: number; http: number; tcp: number; origin: number },
  name = "nuncio",
): Promise<{ proc: Managed; http: number; tcp: number }> {
  const proc = await spawnNuncio(env, launch, name, nuncioConfig(ports), [ports.http, ports.tcp]);
  return { proc, http: ports.http, tcp: ports.tcp };
}
