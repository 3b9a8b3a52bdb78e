/**
 * Stats sinks end to end, with two workers: the real statsd daemon (npm:statsd, run under Deno with a backend
 * that prints what it aggregated) receives nuncio's counters, gauges and timers; a UDP socket checks the
 * DogStatsD lines byte for byte (stats_flush_on_admin makes the flush deterministic); /stats/prometheus with
 * custom tags, the stats matcher and custom buckets passes `promtool check metrics`.
 */
import assert from "node:assert/strict";
import { anyHost, bootstrapYaml, httpListener, startOrigin, staticCluster } from "./helpers.ts";
import { ADMIN, freePort, startServer, waitFor } from "./health_helpers.ts";
import { formatConfigError } from "../src/config/errors.ts";
import { loadConfigText } from "../src/config/load.ts";
import { checkClusterReferences } from "../src/server/cross_check.ts";

/** The statsd daemon nuncio's tests run (npm:statsd; deno.json imports pins the same version). */
const STATSD = "npm:statsd@0.9.0/stats.js";
const BACKEND = new URL("./fixtures/statsd/backend.cjs", import.meta.url).pathname;

interface StatsdFlush {
  counters: Record<string, number>;
  gauges: Record<string, number>;
  timers: Record<string, number[]>;
}

/** A free UDP port on 127.0.0.1. */
function freeUdpPort(): number {
  const s = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const p = (s.addr as Deno.NetAddr).port;
  s.close();
  return p;
}

/** Starts the statsd daemon on a UDP (or TCP) port; resolves once it flushed once (listening). */
async function startStatsd(tcp = false): Promise<
  { port: number; flushes: StatsdFlush[]; close(): Promise<void> } & AsyncDisposable
> {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_statsd_" });
  const port = tcp ? freePort() : freeUdpPort();
  const server = tcp ? `, servers: [{ server: "./servers/tcp", port: ${port}, address: "127.0.0.1" }]` : "";
  const config = `{ port: ${port}, address: "127.0.0.1", mgmt_port: ${freePort()}, mgmt_address: "127.0.0.1",
    flushInterval: 100, backends: [${JSON.stringify(BACKEND)}]${server} }`;
  await Deno.writeTextFile(`${dir}/config.js`, config);
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", STATSD, `${dir}/config.js`],
    stdout: "piped",
    stderr: "null",
    cwd: new URL("..", import.meta.url).pathname,
  }).spawn();
  const flushes: StatsdFlush[] = [];
  const reading = (async () => {
    let buf = "";
    for await (const chunk of proc.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith("FLUSH ")) flushes.push(JSON.parse(line.slice(6)));
      }
    }
  })();
  const close = async () => {
    try {
      proc.kill("SIGTERM");
    } catch {
      // exited
    }
    await proc.status;
    await reading.catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    // the first start may fetch the package into Deno's cache
    await waitFor("statsd listening", () => flushes.length > 0, 60_000);
  } catch (e) {
    await close();
    throw e;
  }
  return { port, flushes, close, [Symbol.asyncDispose]: close };
}

/** Sums what statsd received for a counter over every flush. */
function counterTotal(flushes: StatsdFlush[], name: string): number {
  return flushes.reduce((n, f) => n + (f.counters[name] ?? 0), 0);
}

function listenerOn(port: number, cluster: string | undefined): Record<string, unknown> {
  const route = cluster
    ? { match: { prefix: "/" }, route: { cluster } }
    : { match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "ok" } } };
  const l = httpListener({ virtualHosts: [anyHost([route])] });
  (l.address as { socket_address: { port_value: number } }).socket_address.port_value = port;
  return JSON.parse(JSON.stringify(l).replaceAll("$LOG", "/dev/null"));
}

async function get(url: string): Promise<number> {
  const r = await fetch(url);
  await r.body?.cancel();
  return r.status;
}

Deno.test("statsd sink: the statsd daemon receives counters, gauges and timers from every worker", async () => {
  await using statsd = await startStatsd();
  await using origin = startOrigin("web");
  const port = freePort();
  const yaml = bootstrapYaml([listenerOn(port, "web")], [staticCluster("web", [origin.port])], {
    admin: ADMIN,
    stats_flush_interval: "0.1s",
    stats_sinks: [{
      name: "envoy.stat_sinks.statsd",
      typed_config: {
        "@type": "type.googleapis.com/envoy.config.metrics.v3.StatsdSink",
        address: { socket_address: { address: "127.0.0.1", port_value: statsd.port } },
      },
    }],
  });
  await using s = await startServer(yaml, 2);
  for (let i = 0; i < 5; i++) assert.equal(await get(`http://127.0.0.1:${port}/x`), 200);
  await waitFor(
    "statsd got 5 requests",
    () => counterTotal(statsd.flushes, "envoy.cluster.web.upstream_rq_200") === 5,
    10_000,
  );
  // a few more flushes: used counters keep coming with 0, nothing is counted twice
  const seen = statsd.flushes.length;
  await waitFor("more flushes", () => statsd.flushes.length >= seen + 3, 5000);
  const f = statsd.flushes;
  assert.equal(counterTotal(f, "envoy.cluster.web.upstream_rq_200"), 5);
  assert.equal(counterTotal(f, "envoy.cluster.web.upstream_rq_total"), 5);
  assert.equal(counterTotal(f, "envoy.http.ingress.downstream_rq_total"), 5);
  assert.equal(counterTotal(f, "envoy.http.ingress.downstream_rq_2xx"), 5);
  // a declared counter never incremented is not sent
  assert.ok(!f.some((x) => "envoy.cluster.web.upstream_rq_timeout" in x.counters));
  const last = f[f.length - 1];
  assert.equal(last.gauges["envoy.server.concurrency"], 2);
  assert.equal(last.gauges["envoy.cluster.web.membership_total"], 1);
  // each recorded value, as a timer, from the worker that served the request
  const timers = f.flatMap((x) => x.timers["envoy.http.ingress.downstream_rq_time"] ?? []);
  assert.equal(timers.length, 5);
  const upstream = f.flatMap((x) => x.timers["envoy.cluster.web.upstream_rq_time"] ?? []);
  assert.equal(upstream.length, 5);
  assert.ok(upstream.every((v) => Number.isInteger(v) && v >= 0));
  await s.close();
});

Deno.test("statsd sink over TCP through a cluster (tcp_cluster_name)", async () => {
  await using statsd = await startStatsd(true);
  const port = freePort();
  const yaml = bootstrapYaml([listenerOn(port, undefined)], [staticCluster("statsd", [statsd.port])], {
    admin: ADMIN,
    stats_flush_interval: "0.1s",
    stats_sinks: [{
      name: "envoy.stat_sinks.statsd",
      typed_config: {
        "@type": "type.googleapis.com/envoy.config.metrics.v3.StatsdSink",
        tcp_cluster_name: "statsd",
        prefix: "edge",
      },
    }],
  });
  await using s = await startServer(yaml, 2);
  for (let i = 0; i < 4; i++) assert.equal(await get(`http://127.0.0.1:${port}/`), 200);
  await waitFor(
    "statsd got 4 requests over TCP",
    () => counterTotal(statsd.flushes, "edge.http.ingress.downstream_rq_2xx") === 4,
    10_000,
  );
  await waitFor(
    "4 timers",
    () => statsd.flushes.flatMap((x) => x.timers["edge.http.ingress.downstream_rq_time"] ?? []).length === 4,
  );
  assert.equal(statsd.flushes[statsd.flushes.length - 1].gauges["edge.server.concurrency"], 2);
  await s.close();
});

Deno.test("stats sink config errors name the field", () => {
  const errors = (sink: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    const yaml = bootstrapYaml([], [], {
      stats_sinks: [{
        name: "envoy.stat_sinks.statsd",
        typed_config: { "@type": "type.googleapis.com/envoy.config.metrics.v3.StatsdSink", ...sink },
      }],
      ...extra,
    });
    const r = loadConfigText(yaml, "b.yaml", { crossCheck: checkClusterReferences });
    assert.ok(!r.ok);
    return r.errors.map(formatConfigError).join("\n");
  };
  const e = errors({ tcp_cluster_name: "nope" });
  assert.match(e, /stats_sinks\[0\]\.typed_config\.tcp_cluster_name/);
  assert.match(e, /nope/);
  assert.match(
    errors({ tcp_cluster_name: "nope" }, { stats_flush_interval: "5s", stats_flush_on_admin: true }),
    /stats_flush_on_admin: Only one of stats_flush_interval or stats_flush_on_admin may be set/,
  );
  assert.match(errors({}), /Exactly one of address, tcp_cluster_name must be set/);
  assert.match(
    errors({ address: { socket_address: { address: "localhost", port_value: 8125 } } }),
    /stats_sinks\[0\]\.typed_config\.address\.socket_address\.address: malformed IP address/,
  );
});

/** A UDP socket collecting DogStatsD datagrams. */
function dogReceiver(): { port: number; got: string[] } & Disposable {
  const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const got: string[] = [];
  (async () => {
    try {
      for await (const [d] of sock) got.push(new TextDecoder().decode(d));
    } catch {
      // closed
    }
  })();
  return { port: (sock.addr as Deno.NetAddr).port, got, [Symbol.dispose]: () => sock.close() };
}

Deno.test("dog_statsd, tags, stats_matcher and buckets: exact lines and promtool-clean Prometheus", async () => {
  using dog = dogReceiver();
  const port = freePort();
  const yaml = bootstrapYaml([listenerOn(port, undefined)], [], {
    admin: ADMIN,
    stats_flush_on_admin: true,
    stats_config: {
      stats_tags: [
        { tag_name: "env", fixed_value: "test" },
        { tag_name: "envoy.worker_id" },
      ],
      stats_matcher: { exclusion_list: { patterns: [{ prefix: "runtime." }, { suffix: "_rq_1xx" }] } },
      histogram_bucket_settings: [{ match: { suffix: "downstream_rq_time" }, buckets: [1000, 5, 50] }],
    },
    stats_sinks: [{
      name: "envoy.stat_sinks.dog_statsd",
      typed_config: {
        "@type": "type.googleapis.com/envoy.config.metrics.v3.DogStatsdSink",
        address: { socket_address: { address: "127.0.0.1", port_value: dog.port } },
        prefix: "nuncio",
        max_bytes_per_datagram: 512,
      },
    }],
  });
  await using s = await startServer(yaml, 2);
  for (let i = 0; i < 3; i++) assert.equal(await get(`http://127.0.0.1:${port}/`), 200);
  // histogram values go out as they are recorded, one per datagram
  const timer =
    /^nuncio\.http\.downstream_rq_time:\d+\|ms\|#env:test,envoy\.http_conn_manager_prefix:ingress$/;
  await waitFor("3 timers", () => dog.got.filter((d) => timer.test(d)).length === 3);
  assert.equal(dog.got.length, 3);
  // no flush timer: admin reading stats flushes
  const text = await s.admin("/stats");
  assert.ok(!text.includes("runtime."), "stats_matcher: runtime.* is never instantiated");
  assert.ok(!text.includes("downstream_rq_1xx"));
  await waitFor("the flush", () => dog.got.length > 3);
  await new Promise((r) => setTimeout(r, 100));
  const datagrams = dog.got.slice(3);
  assert.ok(datagrams.every((d) => new TextEncoder().encode(d).length <= 512), "datagrams fit the budget");
  const lines = datagrams.flatMap((d) => d.split("\n"));
  for (
    const want of [
      "nuncio.http.downstream_rq_total:3|c|#env:test,envoy.http_conn_manager_prefix:ingress",
      "nuncio.http.downstream_rq_xx:3|c|#envoy.response_code_class:2,env:test,envoy.http_conn_manager_prefix:ingress",
      "nuncio.http.downstream_rq_completed:3|c|#env:test,envoy.http_conn_manager_prefix:ingress",
      "nuncio.server.concurrency:2|g|#env:test",
    ]
  ) assert.ok(lines.includes(want), `missing ${want} in\n${lines.join("\n")}`);
  const cx = new RegExp(
    String
      .raw`^nuncio\.listener\.downstream_cx_total:\d+\|c\|#env:test,envoy\.listener_address:127\.0\.0\.1_${port}$`,
  );
  assert.ok(lines.some((l) => cx.test(l)), "listener address tag");
  assert.ok(
    !lines.some((l) => l.startsWith("nuncio.http.downstream_rq_timeout:")),
    "unused counters stay home",
  );
  assert.ok(!lines.some((l) => l.includes("runtime.")));

  const prom = await s.admin("/stats/prometheus");
  assert.ok(
    prom.includes('envoy_http_downstream_rq_total{env="test",envoy_http_conn_manager_prefix="ingress"} 3\n'),
  );
  assert.ok(
    prom.includes(
      'envoy_http_downstream_rq_time_bucket{env="test",envoy_http_conn_manager_prefix="ingress",le="5"}',
    ),
  );
  assert.ok(
    prom.includes(
      'envoy_http_downstream_rq_time_bucket{env="test",envoy_http_conn_manager_prefix="ingress",le="1000"} 3\n',
    ),
  );
  assert.ok(
    !prom.includes(
      'envoy_http_downstream_rq_time_bucket{env="test",envoy_http_conn_manager_prefix="ingress",le="0.5"}',
    ),
  );
  await promtoolCheck(prom);
  await s.close();
});

/** `promtool check metrics` on the text: clean, or only lints about Envoy's names. */
async function promtoolCheck(text: string): Promise<void> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    })
      .spawn();
  } catch {
    if (Deno.env.get("CI") === "true") assert.fail("promtool is missing (apt-get install prometheus)");
    console.warn("promtool not found: skipping");
    return;
  }
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(text));
  await w.close();
  const out = await child.output();
  const report = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.ok(out.code === 0 || out.code === 3, `promtool exit ${out.code}: ${report}`);
  // exit 3 is lint findings only; the ones accepted are about Envoy's stat names (counters without `_total`,
  // `_ms` in histogram names), never the format
  for (const line of report.split("\n").filter((l) => l.trim())) {
    assert.match(
      line,
      /(counter metrics should have "_total" suffix|should not contain abbreviated units)$/,
      line,
    );
  }
}
