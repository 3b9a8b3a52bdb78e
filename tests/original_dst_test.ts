/**
 * Transparent capture as a sidecar does it: iptables REDIRECT (nat OUTPUT) sends curl's connections to a
 * nuncio listener whose `envoy.filters.listener.original_dst` filter reads SO_ORIGINAL_DST; ORIGINAL_DST clusters
 * then connect where the client meant to go (HTTP and TCP), `original_dst_lb_config.use_http_header` overrides
 * the destination, and `use_original_dst` hands a captured connection to the `bind_to_port: false` listener of
 * its original address. The rules match only connections from a source address of this test's own (curl
 * --interface), so nuncio's own upstream connections to the same ports are not captured again.
 */
import assert from "node:assert/strict";
import {
  accessLog,
  anyHost,
  bootstrapYaml,
  curl,
  httpListener,
  run,
  startOrigin,
  startProxy,
} from "./helpers.ts";

type Obj = Record<string, unknown>;

const FORMAT = "%DOWNSTREAM_LOCAL_ADDRESS%|%UPSTREAM_HOST%|%UPSTREAM_CLUSTER%\n";
const ORIGINAL_DST_FILTER = {
  name: "envoy.filters.listener.original_dst",
  typed_config: {
    "@type": "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
  },
};

function originalDstCluster(name: string, extra: Obj = {}): Obj {
  return { name, type: "ORIGINAL_DST", lb_policy: "CLUSTER_PROVIDED", connect_timeout: "1s", ...extra };
}

/** A listener on a free port that reads the original destination and tcp-proxies to `cluster`. */
function captureListener(name: string, cluster: string, extra: Obj = {}): Obj {
  return {
    name,
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    ...extra,
    listener_filters: [ORIGINAL_DST_FILTER],
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.tcp_proxy",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
          stat_prefix: cluster,
          cluster,
        },
      }],
    }],
  };
}

/** nat OUTPUT rules redirecting `source`'s connections to the given ports to `to`; removed by dispose. */
async function redirect(source: string, ports: number[], to: number): Promise<AsyncDisposable> {
  const rules = ports.map((p) => [
    "-p",
    "tcp",
    "-s",
    source,
    "-d",
    "127.0.0.1",
    "--dport",
    String(p),
    "-j",
    "REDIRECT",
    "--to-ports",
    String(to),
  ]);
  for (const r of rules) {
    const out = await run("iptables", ["-w", "-t", "nat", "-A", "OUTPUT", ...r]);
    assert.equal(out.code, 0, `iptables: ${out.stderr}`);
  }
  return {
    async [Symbol.asyncDispose]() {
      for (const r of rules) await run("iptables", ["-w", "-t", "nat", "-D", "OUTPUT", ...r]);
    },
  };
}

const root = Deno.uid() === 0;

/** The access log's lines once it has `n` (bounded wait). */
async function logLines(path: string, n: number): Promise<string[]> {
  let lines: string[] = [];
  for (let i = 0; i < 200 && lines.length < n; i++) {
    lines = (await Deno.readTextFile(path)).split("\n").filter((l) => l !== "");
    if (lines.length < n) await new Promise((r) => setTimeout(r, 10));
  }
  return lines;
}

Deno.test({
  name: "original_dst: captured HTTP and TCP reach the address the client dialled; the header overrides it",
  ignore: !root,
  async fn() {
    await using a = startOrigin("origin-a");
    await using b = startOrigin("origin-b");
    const http = httpListener({
      name: "capture",
      virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "passthrough" } }])],
      // the client is internal (loopback), so its x-envoy-* headers are kept
      hcm: { access_log: [accessLog("$LOG", FORMAT)], use_remote_address: true },
    });
    http.listener_filters = [ORIGINAL_DST_FILTER];
    const tcp = captureListener("tcp-capture", "tcp_passthrough");
    const plain = httpListener({
      name: "plain",
      virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "passthrough" } }])],
    });
    await using proxy = await startProxy(bootstrapYaml([http, tcp, plain], [
      originalDstCluster("passthrough", { original_dst_lb_config: { use_http_header: true } }),
      originalDstCluster("tcp_passthrough"),
    ]));
    await using _http = await redirect("127.0.0.5", [a.port, b.port], proxy.port("capture"));
    await using _tcp = await redirect("127.0.0.6", [a.port], proxy.port("tcp-capture"));

    for (const o of [a, b]) {
      const r = await curl(["-sS", "--interface", "127.0.0.5", `http://127.0.0.1:${o.port}/x`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `hello from ${o.name}`);
    }
    assert.deepEqual(await logLines(proxy.logPath, 2), [
      `127.0.0.1:${a.port}|127.0.0.1:${a.port}|passthrough`,
      `127.0.0.1:${b.port}|127.0.0.1:${b.port}|passthrough`,
    ]);
    // use_http_header: x-envoy-original-dst-host names the destination instead
    const h = await curl([
      "-sS",
      "--interface",
      "127.0.0.5",
      "-H",
      `x-envoy-original-dst-host: 127.0.0.1:${b.port}`,
      `http://127.0.0.1:${a.port}/h`,
    ]);
    assert.equal(h.stdout, "hello from origin-b");
    assert.deepEqual(b.requests.map((r) => r.path), ["/x", "/h"]);
    // a listener without original_dst restores nothing: the cluster has no destination, 503 no healthy upstream
    const direct = await curl(["-sS", "-o", "/dev/null", "-w", "%{http_code}", proxy.url("/", "plain")]);
    assert.equal(direct.stdout, "503");
    assert.equal(proxy.stat("cluster.passthrough.upstream_cx_none_healthy"), 1);
    // the cluster holds the two destinations it was asked for
    assert.equal(proxy.stat("cluster.passthrough.membership_total"), 2);

    // TCP: the bytes go to origin a through tcp_proxy
    const t = await curl(["-sS", "--interface", "127.0.0.6", `http://127.0.0.1:${a.port}/tcp`]);
    assert.equal(t.stdout, "hello from origin-a");
    assert.deepEqual(a.requests.map((r) => r.path), ["/x", "/tcp"]);
    assert.equal(proxy.stat("cluster.tcp_passthrough.upstream_cx_total"), 1);
  },
});

Deno.test({
  name:
    "original_dst: use_original_dst hands a captured connection to the bind_to_port: false listener of its address",
  ignore: !root,
  async fn() {
    await using a = startOrigin("origin-a");
    await using b = startOrigin("origin-b");
    const capture = captureListener("virtual-outbound", "passthrough", { use_original_dst: true });
    // the per-service listener: never bound, it serves what virtual-outbound hands it
    const service = httpListener({
      name: "service-a",
      virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "passthrough" } }], {
        response_headers_to_add: [{ header: { key: "x-served-by", value: "service-a" } }],
      })],
      hcm: { access_log: [accessLog("$LOG", FORMAT)] },
    });
    service.address = { socket_address: { address: "0.0.0.0", port_value: a.port } };
    service.bind_to_port = false;
    await using proxy = await startProxy(
      bootstrapYaml([capture, service], [originalDstCluster("passthrough")]),
    );
    await using _r = await redirect("127.0.0.7", [a.port, b.port], proxy.port("virtual-outbound"));

    // port a has a listener: HTTP with its route config; port b has none: the capture listener's own tcp_proxy
    const ra = await curl(["-sS", "-i", "--interface", "127.0.0.7", `http://127.0.0.1:${a.port}/a`]);
    assert.match(ra.stdout, /x-served-by: service-a/i);
    assert.match(ra.stdout, /hello from origin-a$/);
    const rb = await curl(["-sS", "-i", "--interface", "127.0.0.7", `http://127.0.0.1:${b.port}/b`]);
    assert.doesNotMatch(rb.stdout, /x-served-by/i);
    assert.match(rb.stdout, /hello from origin-b$/);
    assert.deepEqual(await logLines(proxy.logPath, 1), [
      `127.0.0.1:${a.port}|127.0.0.1:${a.port}|passthrough`,
    ]);
    // the hand-off counts the connection on the listener that served it, as Envoy
    assert.equal(proxy.stat("listener.0.0.0.0_" + a.port + ".downstream_cx_total"), 1);
    assert.equal(proxy.stat("tcp.passthrough.downstream_cx_total"), 1);
    // (service-a never bound 0.0.0.0:<a>: origin a holds that port without reusePort, so a bind would have failed)
  },
});
