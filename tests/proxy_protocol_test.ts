/**
 * The proxy_protocol listener filter and default_filter_chain with real peers: curl --haproxy-protocol (v1),
 * HAProxy 2.6 in TCP mode with `send-proxy` (v1) and `send-proxy-v2` in front of nuncio (plain HTTP and a TLS
 * chain), and hand-written headers on real sockets for the cases those peers cannot send (TCP6, UNKNOWN,
 * malformed, a header whose destination port picks the filter chain). Checks the downstream addresses nuncio
 * takes from the header (%DOWNSTREAM_REMOTE_ADDRESS%, %DOWNSTREAM_LOCAL_ADDRESS%, x-forwarded-for at the
 * origin, the access log), the stats, allow_requests_without_proxy_protocol, disallowed_versions and the
 * listener_filters_timeout.
 */
import assert from "node:assert/strict";
import {
  anyHost,
  bootstrapYaml,
  curl,
  httpListener,
  run,
  startOrigin,
  startProxy,
  staticCluster,
} from "./helpers.ts";
import { downstreamTls, makePki } from "./tls_certs.ts";

type Obj = Record<string, unknown>;

const ADDRS_FORMAT = "%DOWNSTREAM_REMOTE_ADDRESS%|%DOWNSTREAM_LOCAL_ADDRESS%|%REQ(X-FORWARDED-FOR)%\n";

/** The proxy_protocol listener filter entry. */
function pp(config: Obj = {}): Obj {
  return {
    name: "envoy.filters.listener.proxy_protocol",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol",
      ...config,
    },
  };
}

/** An HTTP listener to the origin that answers the addresses it saw in response headers. */
function addrListener(name: string, extra: Obj = {}, log = false): Obj {
  const l = httpListener({
    name,
    statPrefix: name,
    virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "origin" } }])],
    routeConfig: {
      response_headers_to_add: [
        { header: { key: "x-remote", value: "%DOWNSTREAM_REMOTE_ADDRESS%" } },
        { header: { key: "x-local", value: "%DOWNSTREAM_LOCAL_ADDRESS%" } },
      ],
    },
    hcm: {
      use_remote_address: true,
      ...(log
        ? {
          access_log: [{
            name: "envoy.access_loggers.file",
            typed_config: {
              "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
              path: "$LOG",
              log_format: { text_format: ADDRS_FORMAT },
            },
          }],
        }
        : {}),
    },
  });
  return { ...l, ...extra };
}

/** A listener answering `body` itself, from its filter chain (or default chain). */
function answer(body: string): Obj {
  const l = httpListener({
    virtualHosts: [
      anyHost([{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: body } } }]),
    ],
  });
  return (l.filter_chains as Obj[])[0];
}

/** A free TCP port on 127.0.0.1 (bound and released). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

/** HAProxy in TCP mode: one frontend per entry, each to `target` with the given `server` options. */
async function startHaproxy(routes: { port: number; target: number; send: string }[]) {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_haproxy_" });
  // readiness is probed on a frontend of its own: a probe through the others would reach nuncio
  const ready = freePort();
  const conf = [
    "global",
    "  maxconn 200",
    "defaults",
    "  mode tcp",
    "  timeout connect 5s",
    "  timeout client 30s",
    "  timeout server 30s",
    "frontend ready",
    "  mode http",
    `  bind 127.0.0.1:${ready}`,
    "  http-request return status 200",
    ...routes.flatMap((r, i) => [
      `frontend f${i}`,
      `  bind 127.0.0.1:${r.port}`,
      `  default_backend b${i}`,
      `backend b${i}`,
      `  server s${i} 127.0.0.1:${r.target} ${r.send}`,
    ]),
  ].join("\n") + "\n";
  await Deno.writeTextFile(`${dir}/haproxy.cfg`, conf);
  const child = new Deno.Command("haproxy", {
    args: ["-db", "-f", `${dir}/haproxy.cfg`],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // HAProxy binds every frontend before it serves any
  for (let i = 0;; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port: ready })).close();
      break;
    } catch (e) {
      if (i > 400) throw new Error(`HAProxy did not start: ${e}`);
      await new Promise((res) => setTimeout(res, 25));
    }
  }
  const close = async () => {
    child.kill("SIGTERM");
    await child.stderr.cancel();
    await child.status;
    await Deno.remove(dir, { recursive: true });
  };
  return { close, [Symbol.asyncDispose]: close };
}

/** Sends `head` then an HTTP/1.1 GET on a real socket; resolves the raw response ("" when closed unanswered). */
async function rawRequest(port: number, head: Uint8Array | string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const h = typeof head === "string" ? new TextEncoder().encode(head) : head;
    const req = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const all = new Uint8Array(h.length + req.length);
    all.set(h);
    all.set(req, h.length);
    await conn.write(all).catch(() => 0);
    const parts: Uint8Array[] = [];
    const buf = new Uint8Array(16384);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      parts.push(buf.slice(0, n));
    }
    return new TextDecoder().decode(new Uint8Array(parts.flatMap((p) => [...p])));
  } finally {
    try {
      conn.close();
    } catch {
      // closed
    }
  }
}

function header(raw: string, name: string): string | undefined {
  return new RegExp(`^${name}: (.*)\\r$`, "mi").exec(raw)?.[1];
}

Deno.test("proxy_protocol listener filter and default_filter_chain with curl, HAProxy and raw sockets", async (t) => {
  await using origin = startOrigin(
    "origin",
    (_req, seen) => new Response(`xff=${seen.headers.get("x-forwarded-for")}`),
  );
  await using pki = await makePki();
  await pki.leaf("localhost", "localhost", ["DNS:localhost"]);
  await using proxy = await startProxy(bootstrapYaml([
    addrListener("pp", { listener_filters: [pp()] }, true),
    addrListener("allow", {
      listener_filters: [pp({ allow_requests_without_proxy_protocol: true, stat_prefix: "allow" })],
    }),
    addrListener("v1only", {
      listener_filters: [pp({ disallowed_versions: ["V2"], stat_prefix: "v1only" })],
    }),
    addrListener("quick", {
      listener_filters: [pp({ stat_prefix: "quick" })],
      listener_filters_timeout: "0.3s",
    }),
    {
      ...addrListener("tls", {
        listener_filters: [pp({ stat_prefix: "tls" }), { name: "envoy.filters.listener.tls_inspector" }],
      }),
      filter_chains: [{
        ...(addrListener("x").filter_chains as Obj[])[0],
        transport_socket: downstreamTls(pki, ["localhost"]),
      }],
    },
    {
      name: "chains",
      address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
      listener_filters: [pp({ stat_prefix: "chains" })],
      filter_chains: [{ ...answer("port 7777 chain"), filter_chain_match: { destination_port: 7777 } }],
      default_filter_chain: answer("default chain"),
    },
    {
      name: "only_default",
      address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
      default_filter_chain: answer("only the default chain"),
    },
  ], [staticCluster("origin", [origin.port])]));

  const [h1, h2, h3, h4] = [freePort(), freePort(), freePort(), freePort()];
  await using _haproxy = await startHaproxy([
    { port: h1, target: proxy.port("pp"), send: "send-proxy" },
    { port: h2, target: proxy.port("pp"), send: "send-proxy-v2" },
    { port: h3, target: proxy.port("v1only"), send: "send-proxy-v2" },
    { port: h4, target: proxy.port("tls"), send: "send-proxy-v2" },
  ]);

  await t.step("curl --haproxy-protocol (v1) is accepted; its addresses are the socket's", async () => {
    const r = await curl(["-i", "--haproxy-protocol", proxy.url("/", "pp")]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^HTTP\/1.1 200/);
    assert.match(header(r.stdout, "x-remote") ?? "", /^127\.0\.0\.1:\d+$/);
    assert.equal(header(r.stdout, "x-local"), `127.0.0.1:${proxy.port("pp")}`);
    assert.equal(proxy.stat("proxy_proto.versions.v1.found"), 1);
    // HTTP/2 with prior knowledge: the preface arrives right behind the header
    const h2 = await curl(["-s", "--haproxy-protocol", "--http2-prior-knowledge", proxy.url("/", "pp")]);
    assert.equal(h2.code, 0, h2.stderr);
    assert.equal(h2.stdout, "xff=127.0.0.1");
  });

  for (const [name, port, version] of [["send-proxy", h1, "v1"], ["send-proxy-v2", h2, "v2"]] as const) {
    await t.step(
      `HAProxy ${name}: the client's address from the header (XFF, operators, access log)`,
      async () => {
        const before = proxy.stat(`proxy_proto.versions.${version}.found`);
        const r = await curl(["-i", "--interface", "127.0.0.9", `http://127.0.0.1:${port}/`]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^HTTP\/1.1 200/);
        // nuncio's TCP peer is HAProxy (127.0.0.1); the header names curl's 127.0.0.9 and HAProxy's frontend
        assert.match(header(r.stdout, "x-remote") ?? "", /^127\.0\.0\.9:\d+$/);
        assert.equal(header(r.stdout, "x-local"), `127.0.0.1:${port}`);
        assert.match(r.stdout, /xff=127\.0\.0\.9$/);
        assert.equal(proxy.stat(`proxy_proto.versions.${version}.found`), before + 1);
      },
    );
  }

  await t.step("the access log prints the addresses from the header", async () => {
    const deadline = Date.now() + 10_000;
    let lines: string[] = [];
    while (Date.now() < deadline) {
      lines = (await Deno.readTextFile(proxy.logPath)).trim().split("\n").filter((l) => l !== "");
      if (lines.length >= 4) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    // curl's two requests, then HAProxy's two
    assert.equal(lines.length, 4);
    assert.match(lines[2], new RegExp(`^127\\.0\\.0\\.9:\\d+\\|127\\.0\\.0\\.1:${h1}\\|127\\.0\\.0\\.9$`));
    assert.match(lines[3], new RegExp(`^127\\.0\\.0\\.9:\\d+\\|127\\.0\\.0\\.1:${h2}\\|127\\.0\\.0\\.9$`));
  });

  await t.step("without a header the connection is closed (not_found_disallowed)", async () => {
    const r = await curl([proxy.url("/", "pp")]);
    assert.notEqual(r.code, 0);
    assert.equal(proxy.stat("proxy_proto.not_found_disallowed"), 1);
    assert.equal(proxy.stat("downstream_cx_proxy_proto_error"), 1);
  });

  await t.step("allow_requests_without_proxy_protocol: with or without a header", async () => {
    const plain = await curl(["-i", proxy.url("/", "allow")]);
    assert.match(plain.stdout, /^HTTP\/1.1 200/);
    assert.match(plain.stdout, /xff=127\.0\.0\.1$/);
    const withHeader = await rawRequest(proxy.port("allow"), "PROXY TCP4 203.0.113.5 127.0.0.1 4000 80\r\n");
    assert.equal(header(withHeader, "x-remote"), "203.0.113.5:4000");
    assert.equal(proxy.stat("proxy_proto.allow.not_found_allowed"), 1);
    assert.equal(proxy.stat("proxy_proto.allow.versions.v1.found"), 1);
  });

  await t.step("disallowed_versions: HAProxy's v2 header is refused", async () => {
    const r = await curl([`http://127.0.0.1:${h3}/`]);
    assert.notEqual(r.code, 0);
    assert.equal(proxy.stat("proxy_proto.v1only.versions.v2.found"), 1);
    assert.equal(proxy.stat("proxy_proto.v1only.versions.v2.disallowed"), 1);
    const v1 = await rawRequest(proxy.port("v1only"), "PROXY TCP4 203.0.113.6 127.0.0.1 4001 80\r\n");
    assert.equal(header(v1, "x-remote"), "203.0.113.6:4001");
  });

  await t.step("TCP6, UNKNOWN and malformed v1 lines", async () => {
    const six = await rawRequest(proxy.port("pp"), "PROXY TCP6 2001:db8::7 2001:db8::1 5555 8443\r\n");
    assert.equal(header(six, "x-remote"), "[2001:db8::7]:5555");
    assert.equal(header(six, "x-local"), "[2001:db8::1]:8443");
    assert.match(six, /xff=2001:db8::7$/);
    const unknown = await rawRequest(proxy.port("pp"), "PROXY UNKNOWN\r\n");
    assert.match(header(unknown, "x-remote") ?? "", /^127\.0\.0\.1:\d+$/);
    const errors = proxy.stat("proxy_proto.versions.v1.error");
    assert.equal(await rawRequest(proxy.port("pp"), "PROXY TCP4 203.0.113.5 4000\r\n"), "");
    assert.equal(proxy.stat("proxy_proto.versions.v1.error"), errors + 1);
  });

  await t.step("a header that never completes is closed after listener_filters_timeout", async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port("quick") });
    await conn.write(new TextEncoder().encode("PROXY TCP4 "));
    const started = Date.now();
    const n = await conn.read(new Uint8Array(10)).catch(() => null);
    conn.close();
    assert.equal(n, null);
    assert.ok(Date.now() - started >= 200, `closed after ${Date.now() - started} ms`);
    // the listener's stats scope is named from its configured address (port 0 here)
    assert.equal(proxy.stat("listener.127.0.0.1_0.downstream_pre_cx_timeout"), 1);
  });

  await t.step("PROXY v2 then TLS (HAProxy send-proxy-v2 in front of a TLS chain)", async () => {
    const r = await curl([
      "-i",
      "--interface",
      "127.0.0.9",
      "--cacert",
      pki.caPath,
      "--resolve",
      `localhost:${h4}:127.0.0.1`,
      `https://localhost:${h4}/`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^HTTP\/1.1 200/);
    assert.match(header(r.stdout, "x-remote") ?? "", /^127\.0\.0\.9:\d+$/);
    assert.equal(proxy.stat("proxy_proto.tls.versions.v2.found"), 1);
  });

  await t.step("default_filter_chain: the header's destination port picks the chain", async () => {
    const seven = await rawRequest(proxy.port("chains"), "PROXY TCP4 203.0.113.5 198.51.100.1 4000 7777\r\n");
    assert.match(seven, /port 7777 chain$/);
    const other = await rawRequest(proxy.port("chains"), "PROXY TCP4 203.0.113.5 198.51.100.1 4000 80\r\n");
    assert.match(other, /default chain$/);
    const r = await curl([proxy.url("/", "only_default")]);
    assert.equal(r.stdout, "only the default chain");
    assert.equal(proxy.stat("listener.127.0.0.1_0.no_filter_chain_match"), 0);
  });
});

Deno.test("listener config: default_filter_chain alone with the original_dst listener filter validates", async () => {
  const r = await run(Deno.execPath(), [
    "run",
    "-A",
    new URL("../main.ts", import.meta.url).pathname,
    "--mode",
    "validate",
    "--config-yaml",
    JSON.stringify({
      static_resources: {
        listeners: [{
          address: { socket_address: { address: "127.0.0.1", port_value: 1 } },
          listener_filters: [{ name: "envoy.filters.listener.original_dst" }],
          default_filter_chain: answer("x"),
        }],
      },
    }),
  ]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
});

/**
 * The timer of each established 127.0.0.1 socket whose peer port is `port`, from the kernel's /proc/net/tcp
 * (`tr` column: 0 none, 1 retransmit, 2 keepalive, ...; `when`: time to expiry).
 */
async function socketTimers(port: number): Promise<{ timer: number; whenS: number }[]> {
  // through cat: reading /proc needs --allow-all in Deno, and the suite runs with narrower permissions
  const cat = await new Deno.Command("cat", { args: ["/proc/net/tcp"], stdout: "piped" }).output();
  const rows = new TextDecoder().decode(cat.stdout).trim().split("\n").slice(1);
  const out: { timer: number; whenS: number }[] = [];
  for (const row of rows) {
    const f = row.trim().split(/\s+/);
    // f[2] remote "0100007F:1F90", f[3] state (01 established), f[5] "tr:when"
    if (parseInt(f[2].split(":")[1], 16) === port && f[3] === "01") {
      const [timer, when] = f[5].split(":");
      out.push({ timer: parseInt(timer, 16), whenS: parseInt(when, 16) / 100 }); // jiffies (USER_HZ 100)
    }
  }
  return out;
}

Deno.test("cluster upstream_connection_options.tcp_keepalive turns SO_KEEPALIVE on (seen in /proc/net/tcp)", async () => {
  await using ka = startOrigin("ka");
  await using plain = startOrigin("plain");
  await using timed = startOrigin("timed");
  await using proxy = await startProxy(bootstrapYaml([
    httpListener({
      virtualHosts: [anyHost([
        { match: { prefix: "/ka" }, route: { cluster: "ka" } },
        { match: { prefix: "/timed" }, route: { cluster: "timed" } },
        { match: { prefix: "/" }, route: { cluster: "plain" } },
      ])],
    }),
  ], [
    staticCluster("ka", [ka.port], { upstream_connection_options: { tcp_keepalive: {} } }),
    staticCluster("timed", [timed.port], {
      upstream_connection_options: { tcp_keepalive: { keepalive_time: 4242, keepalive_interval: 7 } },
    }),
    staticCluster("plain", [plain.port]),
  ]));
  for (const path of ["/ka", "/timed", "/plain"]) assert.equal((await curl([proxy.url(path)])).code, 0);
  // the pooled upstream connections stay open: the kernel runs a keepalive timer only where SO_KEEPALIVE is set
  assert.deepEqual((await socketTimers(ka.port)).map((t) => t.timer), [2]);
  assert.deepEqual((await socketTimers(plain.port)).map((t) => t.timer), [0]);
  // keepalive_time is the idle time before the first probe: the timer fires in ~4242 s, not the kernel's 7200 s
  const [t] = await socketTimers(timed.port);
  assert.equal(t.timer, 2);
  assert.ok(t.whenS > 4200 && t.whenS <= 4242, `keepalive timer in ${t.whenS} s`);
});
