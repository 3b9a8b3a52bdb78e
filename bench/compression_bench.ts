/**
 * The compression line of `deno task bench` (key `compression`): compressed responses per second of nuncio's
 * envoy.filters.http.compressor with Envoy's default gzip library (level 6 = DEFAULT_COMPRESSION, window_bits 12,
 * memory_level 5) against nginx's gzip filter set to the same zlib parameters (gzip_comp_level 6, gzip_window 4k,
 * gzip_hash 16k), both in front of one nginx origin serving a 16 KiB JSON document, in the same run, with wrk
 * sending `Accept-Encoding: gzip` in interleaved rounds. Each target is probed first: 200,
 * `content-encoding: gzip` and the document once decompressed.
 */

import { gunzipSync } from "node:zlib";
import { type Managed, runTool } from "./lib/proc.ts";
import { findFreePorts, waitForPort } from "./lib/net.ts";
import { median, parseWrk } from "./lib/wrk.ts";
import { formatRatio, type Ratio, ratio, type TargetResult } from "./report.ts";
import {
  type Env,
  type NuncioLaunch,
  spawnNuncio,
  yamlAdmin,
  yamlHcmListener,
  yamlStaticCluster,
} from "./targets.ts";

/** Goal of `ratio compression nuncio/nginx`. */
export const COMPRESSION_RATIO_TARGET = 0.6;

/** Size of the JSON document the origin serves. */
const DOC_BYTES = 16 * 1024;

/** Load settings of the compression line. */
export interface CompressionBenchOptions {
  launch: NuncioLaunch;
  /** Interleaved rounds. */
  rounds: number;
  /** Seconds per measurement. */
  durationS: number;
  /** Warm-up seconds per target. */
  warmupS: number;
  /** wrk connections and threads. */
  connections: number;
  threads: number;
}

/** What the line measured. */
export interface CompressionBenchResult {
  /** nginx gzip and nuncio gzip, in that order. */
  targets: TargetResult[];
  /** Size of the document. */
  docBytes: number;
  /** Compressed body bytes of one response, per target key (from the probe). */
  compressedBytes: Record<string, number>;
  /** Settings as run. */
  options: Omit<CompressionBenchOptions, "launch">;
}

/** A JSON document of about `n` bytes (repetitive like real API output, not trivially so). */
export function jsonDocument(n: number): string {
  const items: string[] = [];
  let size = 2;
  for (let i = 0; size < n; i++) {
    const item = JSON.stringify({
      id: i,
      name: `customer ${(i * 7919) % 1000}`,
      email: `user${(i * 104729) % 9973}@example.com`,
      active: i % 3 !== 0,
      balance: ((i * 7351) % 100000) / 100,
      tags: ["alpha", "beta", "gamma", "delta"].slice(0, 1 + (i % 4)),
    });
    items.push(item);
    size += item.length + 1;
  }
  return `[${items.join(",")}]`;
}

function nginxPrelude(env: Env, name: string): string {
  return `worker_processes 1;
daemon off;
master_process on;
pid ${env.dir}/${name}.pid;
error_log ${env.dir}/${name}.error.log warn;
worker_rlimit_nofile ${env.nofile};
events { worker_connections 4096; }
`;
}

function nginxHttpCommon(env: Env, name: string): string {
  return `  access_log off;
  keepalive_timeout 300s;
  keepalive_requests 1000000;
  client_body_temp_path ${env.dir}/${name}.body;
  proxy_temp_path ${env.dir}/${name}.proxy;
  fastcgi_temp_path ${env.dir}/${name}.fastcgi;
  uwsgi_temp_path ${env.dir}/${name}.uwsgi;
  scgi_temp_path ${env.dir}/${name}.scgi;
`;
}

/** nginx origin serving `<dir>/compression/doc.json` (application/json, no etag) for every path. */
export function docOriginConfig(env: Env, port: number): string {
  // the worker must read the bench's temp dir (mode 0700): it runs as the same user as the master (root when
  // the bench runs as root; a non-root master ignores the directive)
  return `user ${Deno.uid() === 0 ? "root" : "nobody"};
${nginxPrelude(env, "doc-origin")}http {
${nginxHttpCommon(env, "doc-origin")}  server {
    listen 127.0.0.1:${port} reuseport backlog=4096;
    root ${env.dir}/compression;
    etag off;
    default_type application/json;
    location / { try_files /doc.json =404; }
  }
}
`;
}

/**
 * nginx reverse proxy with gzip on JSON responses at Envoy's default zlib parameters (level 6, a 4 KiB window =
 * window_bits 12, a 16 KiB hash = memory_level 5), keep-alive to the origin as bench/targets.ts.
 */
export function nginxGzipConfig(env: Env, port: number, origin: number): string {
  return `${nginxPrelude(env, "nginx-gzip")}http {
${nginxHttpCommon(env, "nginx-gzip")}  upstream origin {
    server 127.0.0.1:${origin};
    keepalive 64;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    gzip on;
    gzip_comp_level 6;
    gzip_window 4k;
    gzip_hash 16k;
    gzip_types application/json;
    gzip_proxied any;
    gzip_min_length 30;
    gzip_vary on;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/** nuncio bootstrap: HCM -> compressor (gzip library with Envoy's defaults) -> router -> origin. */
export function nuncioGzipConfig(ports: { admin: number; http: number; origin: number }): string {
  const filters = `          - name: envoy.filters.http.compressor
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor
              response_direction_config: {common_config: {content_type: [application/json]}}
              compressor_library:
                name: gzip
                typed_config: {"@type": type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip}
`;
  return `${yamlAdmin(ports.admin)}static_resources:
  listeners:
${yamlHcmListener("http", ports.http, { statPrefix: "bench", filters })}  clusters:
${yamlStaticCluster("origin", ports.origin)}`;
}

async function startNginx(env: Env, name: string, config: string, port: number): Promise<Managed> {
  const conf = `${env.dir}/${name}.conf`;
  Deno.writeTextFileSync(conf, config);
  const proc = env.sup.spawn(name, env.bins.nginx, ["-p", env.dir, "-c", conf], {
    nofile: env.nofile,
    logPath: `${env.dir}/${name}.log`,
  });
  await waitForPort(port, { proc });
  return proc;
}

/** One GET with `accept-encoding: gzip` over a raw socket: status, content-encoding and the body as sent. */
async function gzipGet(port: number): Promise<{ status: number; encoding: string; body: Uint8Array }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => conn.close(), 5000);
  try {
    const req = "GET /doc HTTP/1.1\r\nHost: bench\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n";
    await conn.write(new TextEncoder().encode(req));
    const parts: Uint8Array[] = [];
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      parts.push(buf.slice(0, n));
    }
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      all.set(p, off);
      off += p.length;
    }
    const text = new TextDecoder("latin1").decode(all);
    const headEnd = text.indexOf("\r\n\r\n");
    const head = text.slice(0, headEnd).toLowerCase();
    const status = Number(head.split(" ")[1]);
    const encoding = /\r\ncontent-encoding:\s*([^\r]+)/.exec(head)?.[1].trim() ?? "";
    let body: Uint8Array = all.subarray(headEnd + 4);
    if (/\r\ntransfer-encoding:\s*chunked/.test(head)) body = dechunk(body);
    return { status, encoding, body };
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // already closed by the timer
    }
  }
}

function dechunk(b: Uint8Array): Uint8Array {
  const out: Uint8Array[] = [];
  let off = 0;
  let total = 0;
  while (off < b.length) {
    let eol = off;
    while (eol + 1 < b.length && !(b[eol] === 13 && b[eol + 1] === 10)) eol++;
    const size = parseInt(new TextDecoder().decode(b.subarray(off, eol)), 16);
    if (!(size > 0)) break;
    out.push(b.subarray(eol + 2, eol + 2 + size));
    total += size;
    off = eol + 2 + size + 2;
  }
  const r = new Uint8Array(total);
  let o = 0;
  for (const p of out) {
    r.set(p, o);
    o += p.length;
  }
  return r;
}

/** Probes a target: an error message, or "" with its compressed body size recorded. */
async function probe(t: TargetResult, doc: string, sizes: Record<string, number>): Promise<string> {
  try {
    const r = await gzipGet(t.port);
    if (r.status !== 200) return `probe answered ${r.status}`;
    if (r.encoding !== "gzip") return `probe got content-encoding "${r.encoding}", not gzip`;
    const plain = new TextDecoder().decode(gunzipSync(r.body));
    if (plain !== doc) return `probe body does not decompress to the document (${plain.length} bytes)`;
    sizes[t.key] = r.body.length;
    return "";
  } catch (e) {
    return `probe failed: ${(e as Error).message}`;
  }
}

/** Runs wrk against `port` with `Accept-Encoding: gzip`. */
async function wrkGzip(port: number, o: CompressionBenchOptions, durationS: number) {
  const args = [
    `-t${Math.min(o.threads, o.connections)}`,
    `-c${o.connections}`,
    `-d${durationS}s`,
    "--latency",
    "-H",
    "Accept-Encoding: gzip",
    `http://127.0.0.1:${port}/doc`,
  ];
  const out = await runTool("wrk", args, durationS + 30);
  if (!out.success) throw new Error(`wrk failed (code ${out.code}): ${out.stderr}${out.stdout}`);
  return parseWrk(out.stdout);
}

/**
 * Starts the document origin, nginx with gzip and nuncio with the compressor (stopping none of the caller's
 * processes), probes both, then measures them in interleaved rounds. Never throws for a target: failures go to
 * its `error`.
 */
export async function runCompressionBench(
  env: Env,
  o: CompressionBenchOptions,
): Promise<CompressionBenchResult> {
  const doc = jsonDocument(DOC_BYTES);
  Deno.mkdirSync(`${env.dir}/compression`, { recursive: true });
  Deno.writeTextFileSync(`${env.dir}/compression/doc.json`, doc);
  const [origin, nginx, nuncio, admin] = findFreePorts(4);
  const targets: TargetResult[] = [
    { key: "nginx-gzip", label: "nginx gzip", port: nginx, runs: [], errors: 0 },
    { key: "nuncio-gzip", label: "nuncio gzip", port: nuncio, runs: [], errors: 0 },
  ];
  const sizes: Record<string, number> = {};
  const { launch, ...options } = o;
  const result = { targets, docBytes: doc.length, compressedBytes: sizes, options };
  const procs: Managed[] = [];
  try {
    try {
      procs.push(await startNginx(env, "doc-origin", docOriginConfig(env, origin), origin));
    } catch (e) {
      for (const t of targets) t.error = `origin: ${(e as Error).message.split("\n")[0]}`;
      return result;
    }
    const starts: [TargetResult, () => Promise<Managed>][] = [
      [targets[0], () => startNginx(env, "nginx-gzip", nginxGzipConfig(env, nginx, origin), nginx)],
      [
        targets[1],
        () =>
          spawnNuncio(env, launch, "nuncio-gzip", nuncioGzipConfig({ admin, http: nuncio, origin }), [
            nuncio,
          ]),
      ],
    ];
    for (const [t, start] of starts) {
      try {
        procs.push(await start());
        t.error = await probe(t, doc, sizes) || undefined;
      } catch (e) {
        t.error = (e as Error).message.split("\n").slice(0, 6).join(" | ");
      }
    }
    const live = targets.filter((t) => !t.error);
    for (const t of live) {
      if (o.warmupS <= 0) break;
      console.error(`warm-up ${t.label} (${o.warmupS}s)`);
      await wrkGzip(t.port, o, o.warmupS).catch((e) => (t.error = (e as Error).message));
    }
    for (let round = 1; round <= o.rounds; round++) {
      for (const t of round % 2 === 1 ? live : [...live].reverse()) {
        if (t.error) continue;
        try {
          const r = await wrkGzip(t.port, o, o.durationS);
          t.runs.push(r);
          t.errors += r.socketErrors + r.non2xx;
          console.error(`round ${round}/${o.rounds} ${t.label}: ${Math.round(r.rps)} compressed responses/s`);
        } catch (e) {
          t.error = (e as Error).message;
        }
      }
    }
    for (const t of targets) {
      if (t.runs.length === 0) continue;
      t.median = {
        rps: median(t.runs.map((r) => r.rps)),
        p50Us: median(t.runs.map((r) => r.p50Us)),
        p99Us: median(t.runs.map((r) => r.p99Us)),
      };
    }
    return result;
  } finally {
    for (const p of procs.reverse()) await p.stop();
  }
}

/** `ratio compression nuncio/nginx` of a run. */
export function compressionRatio(r: CompressionBenchResult): Ratio {
  return ratio("compression nuncio/nginx", r.targets[1], r.targets[0], COMPRESSION_RATIO_TARGET);
}

/** The report lines: one row per target, then the ratio. */
export function formatCompression(r: CompressionBenchResult): string {
  const o = r.options;
  const lines = [
    `compression: GET of a ${r.docBytes}-byte JSON document with Accept-Encoding: gzip (level 6, window 4 KiB), ` +
    `wrk -t${o.threads} -c${o.connections} -d${o.durationS}s, median of ${o.rounds} round(s)`,
  ];
  for (const t of r.targets) {
    if (!t.median) {
      lines.push(`${t.label.padEnd(14)} ${t.error ?? "no data"}`);
      continue;
    }
    const bytes = r.compressedBytes[t.key];
    lines.push(
      `${t.label.padEnd(14)} ${String(Math.round(t.median.rps)).padStart(8)} responses/s  ` +
        `${bytes} bytes each (${((bytes / r.docBytes) * 100).toFixed(1)}%)  errors ${t.errors}`,
    );
  }
  lines.push(formatRatio(compressionRatio(r)));
  return lines.join("\n");
}
