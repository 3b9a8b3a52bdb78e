/**
 * Issue 4's bench targets: HTTP/2 (h2c, prior knowledge) in front of the HTTP/1.1 nginx origin through
 * nuncio and through HAProxy configured the same way, and gRPC unary calls to an echo server
 * (bench/grpc_origin.ts, its own process) directly and through nuncio (h2c -> HTTP/2 cluster).
 * Config generators, start functions and the curl probes that check each target before it is measured.
 */

import type { Managed } from "./lib/proc.ts";
import { waitForPort } from "./lib/net.ts";
import {
  BODY,
  type Env,
  type NuncioLaunch,
  spawnNuncio,
  yamlAdmin,
  yamlHcmListener,
  yamlStaticCluster,
} from "./targets.ts";
import { GRPC_METHOD, grpcRequestBody } from "./grpc_origin.ts";

/** Headers h2load and the probe send with every gRPC call. */
export const GRPC_HEADERS = ["content-type: application/grpc", "te: trailers"];

/** Ports of nuncio's h2 and gRPC listeners and of their upstreams (0 for a listener leaves it out). */
export interface NuncioH2Ports {
  admin: number;
  /** h2c listener in front of the HTTP/1.1 origin (0: none). */
  h2: number;
  /** h2c listener in front of the gRPC origin (0: none). */
  grpc: number;
  /** HTTP/1.1 nginx origin. */
  origin: number;
  /** gRPC echo server (HTTP/2). */
  grpcOrigin: number;
}

/** HAProxy: one thread, `mode http`, `bind ... proto h2`, `http-reuse always`, HTTP/1.1 to the origin. */
export function haproxyH2Config(
  ports: { port: number; origin: number },
  limits: { maxconn: number; nofile: number },
): string {
  return `global
  nbthread 1
  maxconn ${limits.maxconn}
  ulimit-n ${limits.nofile}
  no strict-limits

defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
  timeout http-request 300s

frontend fe
  bind 127.0.0.1:${ports.port} proto h2
  default_backend be

backend be
  http-reuse always
  server origin 127.0.0.1:${ports.origin} maxconn ${limits.maxconn}
`;
}

const H2_UPSTREAM = `    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
`;

/**
 * nuncio bootstrap: an h2c listener (codec_type AUTO) -> HTTP/1.1 STATIC cluster `origin`, and an h2c
 * listener -> HTTP/2 STATIC cluster `grpc`; a listener whose port is 0 is left out.
 */
export function nuncioH2Config(ports: NuncioH2Ports): string {
  const hcm = "          codec_type: AUTO\n          http2_protocol_options: {}\n";
  const listeners = (ports.h2 ? yamlHcmListener("h2", ports.h2, { hcm }) : "") +
    (ports.grpc ? yamlHcmListener("grpc", ports.grpc, { hcm, route: "{cluster: grpc}" }) : "");
  const clusters = (ports.h2 ? yamlStaticCluster("origin", ports.origin) : "") +
    (ports.grpc ? yamlStaticCluster("grpc", ports.grpcOrigin, H2_UPSTREAM) : "");
  return `${yamlAdmin(ports.admin)}static_resources:
  listeners:
${listeners}  clusters:
${clusters}`;
}

/** Starts the HTTP/2 HAProxy on `ports.port` in front of the origin. */
export async function startHaproxyH2(
  env: Env,
  ports: { port: number; origin: number },
): Promise<{ proc: Managed; port: number }> {
  const conf = `${env.dir}/haproxy-h2.cfg`;
  const maxconn = Math.floor((env.nofile - 512) / 1.05);
  Deno.writeTextFileSync(conf, haproxyH2Config(ports, { maxconn, nofile: env.nofile }));
  const proc = env.sup.spawn("haproxy-h2", env.bins.haproxy, ["-db", "-f", conf], {
    nofile: env.nofile,
    logPath: `${env.dir}/haproxy-h2.log`,
  });
  await waitForPort(ports.port, { proc });
  return { proc, port: ports.port };
}

/** Starts bench/grpc_origin.ts (the echo server) in its own process on `port`. */
export async function startGrpcOrigin(env: Env, launch: NuncioLaunch, port: number): Promise<Managed> {
  const script = `${launch.root}/bench/grpc_origin.ts`;
  const proc = env.sup.spawn("grpc-origin", Deno.execPath(), ["run", "--allow-net", script, String(port)], {
    nofile: env.nofile,
    cwd: launch.root,
    logPath: `${env.dir}/grpc-origin.log`,
  });
  await waitForPort(port, { proc, timeoutMs: 30_000 });
  return proc;
}

/** Starts nuncio with --concurrency 1 and the listeners of `ports`; resolves once they accept. */
export function startNuncioH2(
  env: Env,
  launch: NuncioLaunch,
  ports: NuncioH2Ports,
): Promise<Managed> {
  const wait = [ports.h2, ports.grpc].filter((p): p is number => !!p);
  return spawnNuncio(env, launch, "nuncio-h2", nuncioH2Config(ports), wait);
}

/** Writes the framed gRPC request body h2load posts; returns its path. */
export function writeGrpcBody(dir: string): string {
  const path = `${dir}/grpc-request.bin`;
  Deno.writeFileSync(path, grpcRequestBody());
  return path;
}

/** URL h2load and the probe call on a gRPC target. */
export function grpcUrl(port: number): string {
  return `http://127.0.0.1:${port}${GRPC_METHOD}`;
}

async function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("curl", {
    args: ["-sS", "--http2-prior-knowledge", "--max-time", "5", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr).trim() };
}

/** One h2c GET with curl: "" when it answers 200 over HTTP/2 with BODY, else why not. */
export async function probeH2(dir: string, port: number): Promise<string> {
  const bodyPath = `${dir}/probe-h2-${port}.out`;
  const r = await curl(["-o", bodyPath, "-w", "%{http_code} %{http_version}", `http://127.0.0.1:${port}/`]);
  if (r.code !== 0) return `h2 probe failed: curl exit ${r.code} ${r.stderr}`;
  let body = "";
  try {
    body = Deno.readTextFileSync(bodyPath);
  } catch {
    // No body written.
  }
  if (r.stdout !== "200 2" || body !== BODY) {
    return `h2 probe answered "${r.stdout}" (status, HTTP version) with ${body.length} body bytes ` +
      `(want "200 2" and ${BODY.length})`;
  }
  return "";
}

/**
 * One gRPC unary call with curl (which prints trailers with the headers): "" when it answers 200 over
 * HTTP/2 with grpc-status 0 in the trailers and the echoed message, else why not.
 */
export async function probeGrpc(dir: string, port: number, bodyPath: string): Promise<string> {
  const outPath = `${dir}/probe-grpc-${port}.out`;
  const args = ["-X", "POST", "--data-binary", `@${bodyPath}`, "-D", "-", "-o", outPath];
  for (const h of GRPC_HEADERS) args.push("-H", h);
  const r = await curl([...args, grpcUrl(port)]);
  if (r.code !== 0) return `gRPC probe failed: curl exit ${r.code} ${r.stderr}`;
  const status = /^HTTP\/2 (\d+)/m.exec(r.stdout)?.[1];
  const grpcStatus = [...r.stdout.matchAll(/^grpc-status: *(\d+)/gim)].map((m) => m[1]);
  let echoed = false;
  try {
    const got = Deno.readFileSync(outPath);
    const want = Deno.readFileSync(bodyPath);
    echoed = got.length === want.length && got.every((b, i) => b === want[i]);
  } catch {
    // No body written.
  }
  if (status !== "200" || grpcStatus.length !== 1 || grpcStatus[0] !== "0" || !echoed) {
    const head = r.stdout.replace(/\r?\n/g, " | ").slice(0, 300);
    return `gRPC probe: want HTTP/2 200, grpc-status 0 and the echoed message; got ${head}` +
      (echoed ? "" : " (body differs)");
  }
  return "";
}
