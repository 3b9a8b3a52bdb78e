import assert from "node:assert/strict";
import { findExecutable, findFreePorts, Supervisor } from "./lib.ts";
import { h2loadArgs, parseH2load, runH2load } from "./lib/h2load.ts";
import { GrpcServer } from "../src/grpc/server.ts";
import { startEchoServer } from "./grpc_origin.ts";
import { formatH2Report, h2Ratios, type H2Target } from "./h2_bench.ts";
import {
  GRPC_HEADERS,
  grpcUrl,
  haproxyH2Config,
  nuncioH2Config,
  probeGrpc,
  probeH2,
  startHaproxyH2,
  startNuncioH2,
  writeGrpcBody,
} from "./h2_targets.ts";
import { BODY, type Env } from "./targets.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

const H2LOAD_OUTPUT = `starting benchmark...
spawning thread #0: 32 total client(s). Timing-based test with 0s of warm-up time and 3s of main duration for measurements.
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Application protocol: h2c
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 3.01s, 75900.00 req/s, 4.92MB/s
requests: 227700 total, 228020 started, 227700 done, 227700 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 227700 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 14.77MB (15485904) total, 445.10KB (455784) headers (space savings 94.73%), 8.25MB (8652600) data
                     min         max         mean         sd        +/- sd
time for request:      252us     55.99ms      3.73ms      3.56ms    93.57%
time for connect:       70us       549us       320us       143us    59.38%
time to 1st byte:     7.09ms     22.40ms     15.74ms      4.58ms    56.25%
req/s           :    2276.01     2458.95     2367.63       45.28    71.88%
`;

Deno.test("parseH2load", async (t) => {
  await t.step("reads req/s, totals, status classes and request times", () => {
    const r = parseH2load(H2LOAD_OUTPUT);
    assert.equal(r.rps, 75900);
    assert.equal(r.requests, 227700);
    assert.equal(r.ok2xx, 227700);
    assert.equal(r.non2xx, 0);
    assert.equal(r.failed, 0);
    assert.equal(r.meanUs, 3730);
    assert.equal(r.maxUs, 55990);
  });
  await t.step("counts non-2xx answers and failed, errored and timed-out requests", () => {
    const bad = H2LOAD_OUTPUT
      .replace("0 failed, 0 errored, 0 timeout", "3 failed, 2 errored, 1 timeout")
      .replace("227700 2xx, 0 3xx, 0 4xx, 0 5xx", "227600 2xx, 1 3xx, 40 4xx, 59 5xx");
    const r = parseH2load(bad);
    assert.equal(r.ok2xx, 227600);
    assert.equal(r.non2xx, 100);
    assert.equal(r.failed, 6);
  });
  await t.step("throws on output without a report", () => {
    assert.throws(() => parseH2load("connect to 127.0.0.1 failed\n"), /Unrecognized h2load output/);
  });
  await t.step("builds the argument list", () => {
    assert.deepEqual(
      h2loadArgs({
        url: "http://x/",
        clients: 4,
        streams: 2,
        durationS: 1,
        dataPath: "/b",
        headers: ["a: b"],
      }),
      ["-c4", "-m2", "-t1", "-D", "1", "-d", "/b", "-H", "a: b", "http://x/"],
    );
  });
});

Deno.test("gRPC echo origin: curl probe and h2load calls", async (t) => {
  const dir = Deno.makeTempDirSync({ prefix: "nuncio-h2-test-" });
  const { server, port } = startEchoServer(0);
  const empty = new GrpcServer();
  const emptyPort = empty.listen({ port: 0 }).port;
  try {
    const body = writeGrpcBody(dir);
    await t.step("the probe sees grpc-status 0 and the echoed message", async () => {
      assert.equal(await probeGrpc(dir, port, body), "");
    });
    await t.step("the probe reports a non-zero grpc-status", async () => {
      assert.match(await probeGrpc(dir, emptyPort, body), /grpc-status: 12/);
    });
    await t.step("h2load posts framed calls that all answer 200", async () => {
      const r = await runH2load({
        url: grpcUrl(port),
        clients: 2,
        streams: 4,
        durationS: 1,
        dataPath: body,
        headers: GRPC_HEADERS,
      });
      assert.ok(r.requests > 100, `${r.requests} calls`);
      assert.equal(r.ok2xx, r.requests);
      assert.equal(r.non2xx + r.failed, 0);
    });
  } finally {
    await server.shutdown(100);
    await empty.shutdown(100);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("nuncio h2c listeners and HAProxy h2 in front of real origins", async (t) => {
  const dir = Deno.makeTempDirSync({ prefix: "nuncio-h2-test-" });
  const sup = new Supervisor();
  const ac = new AbortController();
  const origin = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    () => new Response(BODY),
  );
  const grpc = startEchoServer(0);
  const env: Env = {
    dir,
    sup,
    bins: { nginx: "nginx", haproxy: findExecutable("haproxy") ?? "haproxy" },
    nofile: 4096,
  };
  const [admin, h2, grpcPort, haproxy] = findFreePorts(4);
  try {
    const body = writeGrpcBody(dir);
    await startNuncioH2(env, { root: ROOT }, {
      admin,
      h2,
      grpc: grpcPort,
      origin: origin.addr.port,
      grpcOrigin: grpc.port,
    });
    await t.step("h2c GET through nuncio reaches the HTTP/1.1 origin", async () => {
      assert.equal(await probeH2(dir, h2), "");
    });
    await t.step("a gRPC call through nuncio ends with grpc-status 0 and the echo", async () => {
      assert.equal(await probeGrpc(dir, grpcPort, body), "");
    });
    await t.step("h2load through nuncio: every request 2xx", async () => {
      const a = await runH2load({ url: `http://127.0.0.1:${h2}/`, clients: 2, streams: 4, durationS: 1 });
      const b = await runH2load({
        url: grpcUrl(grpcPort),
        clients: 2,
        streams: 4,
        durationS: 1,
        dataPath: body,
        headers: GRPC_HEADERS,
      });
      for (const r of [a, b]) {
        assert.ok(r.requests > 50, `${r.requests} requests`);
        // with -D, h2load also counts the status of streams still open when the time is up
        assert.ok(r.ok2xx >= r.requests, JSON.stringify(r));
        assert.equal(r.non2xx + r.failed, 0, JSON.stringify(r));
      }
      const stats = await (await fetch(`http://127.0.0.1:${admin}/stats`)).text();
      const calls = Number(/cluster\.grpc\.upstream_rq_total: (\d+)/.exec(stats)?.[1] ?? "0");
      assert.ok(calls >= b.requests, `cluster.grpc.upstream_rq_total ${calls} < ${b.requests}`);
    });
    await t.step("HAProxy proto h2 answers h2c GETs from the origin", async () => {
      const cfg = haproxyH2Config({ port: haproxy, origin: origin.addr.port }, {
        maxconn: 100,
        nofile: 4096,
      });
      assert.match(cfg, /bind 127\.0\.0\.1:\d+ proto h2/);
      await startHaproxyH2(env, { port: haproxy, origin: origin.addr.port });
      assert.equal(await probeH2(dir, haproxy), "");
    });
  } finally {
    await sup.dispose();
    await grpc.server.shutdown(100);
    ac.abort();
    await origin.finished;
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("nuncioH2Config leaves out a listener whose port is 0", () => {
  const only = nuncioH2Config({ admin: 1, h2: 0, grpc: 3, origin: 4, grpcOrigin: 5 });
  assert.doesNotMatch(only, /name: h2\n/);
  assert.match(only, /name: grpc\n/);
  assert.match(only, /explicit_http_config: \{http2_protocol_options: \{\}\}/);
  assert.doesNotMatch(only, /name: origin\n/);
});

Deno.test("h2 report: ratios are medians of per-round ratios", () => {
  const mk = (key: string, rps: number[]): H2Target => ({
    key,
    label: key,
    port: 1,
    kind: key.includes("grpc") ? "grpc" : "h2",
    runs: rps.map((v) => ({
      rps: v,
      meanUs: 100,
      maxUs: 200,
      requests: 10,
      ok2xx: 10,
      non2xx: 0,
      failed: 0,
    })),
    median: { rps: rps[0], meanUs: 100 },
    errors: 0,
  });
  const targets = [
    mk("haproxy-h2", [100, 100, 100]),
    mk("nuncio-h2", [40, 60, 70]),
    mk("grpc-direct", [200, 200, 200]),
    mk("nuncio-grpc", [50, 100, 150]),
  ];
  const r = h2Ratios(targets);
  assert.equal(r.h2.value, 0.6);
  assert.ok(r.h2.pass);
  assert.equal(r.grpc.value, 0.5);
  const text = formatH2Report(targets, { clients: 32, streams: 10, durationS: 8, warmupS: 3, rounds: 3 });
  assert.match(text, /ratio h2 nuncio\/haproxy-h2 = 0\.60 \(target >= 0\.50\) PASS/);
  assert.match(text, /ratio grpc nuncio\/direct = 0\.50 {2}\(50 vs 200 calls\/s\)/);
});
