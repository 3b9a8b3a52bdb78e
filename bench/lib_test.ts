import assert from "node:assert/strict";
import {
  findFreePort,
  findFreePorts,
  formatUs,
  median,
  parseWrk,
  parseWrkTime,
  probeHttp,
  processTree,
  Supervisor,
  treeRssKiB,
  waitForPort,
} from "./lib.ts";
import { formatRatio, ratio, type TargetResult } from "./report.ts";
import { haproxyConfig, nuncioConfig, originNginxConfig } from "./targets.ts";

const WRK_OUTPUT = `Running 2s test @ http://127.0.0.1:40000/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   481.23us  210.11us   9.80ms   90.12%
    Req/Sec    65.43k     3.21k   70.11k    80.00%
  Latency Distribution
     50%  452.00us
     75%  520.00us
     90%  610.00us
     99%    1.23ms
  130123 requests in 2.00s, 30.12MB read
  Socket errors: connect 0, read 2, write 1, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:  65061.50
Transfer/sec:     15.06MB
`;

Deno.test("parseWrk", async (t) => {
  await t.step("reads req/s, percentiles, totals and errors", () => {
    const r = parseWrk(WRK_OUTPUT);
    assert.equal(r.rps, 65061.5);
    assert.equal(r.p50Us, 452);
    assert.equal(r.p99Us, 1230);
    assert.equal(r.requests, 130123);
    assert.equal(r.socketErrors, 6);
    assert.equal(r.non2xx, 7);
  });
  await t.step("no error lines means zero errors", () => {
    const clean = WRK_OUTPUT.replace(/ {2}Socket errors.*\n/, "").replace(/ {2}Non-2xx.*\n/, "");
    const r = parseWrk(clean);
    assert.equal(r.socketErrors, 0);
    assert.equal(r.non2xx, 0);
  });
  await t.step("throws without a latency distribution", () => {
    assert.throws(() => parseWrk("Requests/sec: 10.0\n"), /Unrecognized wrk output/);
  });
  await t.step("converts every wrk time unit", () => {
    assert.equal(parseWrkTime("12.50us"), 12.5);
    assert.equal(parseWrkTime("1.50ms"), 1500);
    assert.equal(parseWrkTime("2.00s"), 2e6);
    assert.equal(parseWrkTime("1.00m"), 60e6);
    assert.ok(Number.isNaN(parseWrkTime("abc")));
  });
});

Deno.test("median and formatUs", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
  assert.equal(formatUs(87.4), "87us");
  assert.equal(formatUs(1234), "1.23ms");
  assert.equal(formatUs(2.1e6), "2.10s");
});

Deno.test("ratio lines", () => {
  const mk = (rps: number): TargetResult => ({
    key: "x",
    label: "x",
    port: 1,
    runs: [],
    errors: 0,
    median: { rps, p50Us: 1, p99Us: 1 },
  });
  const r = ratio("http1 nuncio/nginx", mk(40), mk(50), 0.6);
  assert.equal(formatRatio(r), "ratio http1 nuncio/nginx = 0.80 (target >= 0.60) PASS");
  const run = (rps: number) => ({ rps, p50Us: 1, p99Us: 1, requests: 1, socketErrors: 0, non2xx: 0 });
  const a = { ...mk(30), runs: [run(10), run(30), run(60)] };
  const b = { ...mk(50), runs: [run(20), run(40), run(50)] };
  const paired = ratio("http1 nuncio/nginx", a, b, 0.6);
  assert.deepEqual(paired.perRound, [0.5, 0.75, 1.2]);
  assert.equal(paired.value, 0.75);
  assert.equal(
    formatRatio(paired),
    "ratio http1 nuncio/nginx = 0.75 (target >= 0.60) PASS  [rounds: 0.50 0.75 1.20]",
  );
  const missing = ratio("tcp nuncio/haproxy-tcp", undefined, mk(50), 0.8);
  assert.equal(formatRatio(missing), "ratio tcp nuncio/haproxy-tcp = n/a (target >= 0.80) FAIL");
  const reference = ratio("http1 deno-floor/nginx", a, b, NaN);
  assert.equal(
    formatRatio(reference),
    "ratio http1 deno-floor/nginx = 0.75 (reference, no target)  [rounds: 0.50 0.75 1.20]",
  );
});

Deno.test("config generators fill in ports", () => {
  const y = nuncioConfig({ admin: 1, http: 2, tcp: 3, origin: 4 });
  assert.match(y, /port_value: 2}/);
  assert.match(y, /port_value: 4}}}}]}]/);
  const h = haproxyConfig("http", { port: 5, origin: 6 }, { maxconn: 100, nofile: 300 });
  assert.match(h, /bind 127\.0\.0\.1:5\n/);
  assert.match(h, /http-reuse always/);
  assert.doesNotMatch(haproxyConfig("tcp", { port: 5, origin: 6 }, { maxconn: 1, nofile: 9 }), /http-reuse/);
  assert.match(originNginxConfig("/tmp/x", 7, 100), /listen 127\.0\.0\.1:7 /);
});

Deno.test("ports, probe and waitForPort against a real listener", async (t) => {
  const ports = findFreePorts(3);
  assert.equal(new Set(ports).size, 3);
  const port = findFreePort();
  await t.step("waitForPort times out when nothing listens", async () => {
    await assert.rejects(waitForPort(port, { timeoutMs: 200 }), /Timed out waiting/);
  });
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port, signal: ac.signal, onListen: () => {} },
    () => new Response("x".repeat(32)),
  );
  try {
    await t.step("waitForPort resolves once listening", async () => {
      await waitForPort(port, { timeoutMs: 2000 });
    });
    await t.step("probeHttp reads status and body length", async () => {
      assert.deepEqual(await probeHttp(port), { status: 200, bodyBytes: 32 });
    });
  } finally {
    ac.abort();
    await server.finished;
  }
});

Deno.test("Supervisor kills the whole process group and RSS is readable", async () => {
  const sup = new Supervisor();
  const log = Deno.makeTempFileSync();
  try {
    const p = sup.spawn("sleeper", "bash", ["-c", "sleep 30 & sleep 30 & echo ready; wait"], {
      logPath: log,
    });
    let tree: number[] = [];
    for (let i = 0; i < 50 && tree.length < 3; i++) {
      await new Promise((r) => setTimeout(r, 50));
      tree = processTree(p.pid);
    }
    assert.equal(tree.length, 3);
    assert.ok(treeRssKiB(p.pid) > 0);
    assert.equal(sup.live().length, 1);
    await p.stop(1000);
    assert.ok(p.exited());
    assert.equal(sup.live().length, 0);
    for (const pid of tree) assert.equal(processTree(pid).length, 0);
    assert.match(Deno.readTextFileSync(log), /ready/);
  } finally {
    await sup.dispose();
    Deno.removeSync(log);
  }
});

Deno.test("parseOptions", async (t) => {
  const { parseOptions } = await import("./options.ts");
  await t.step("defaults are the full run", () => {
    const o = parseOptions([]);
    assert.equal(o.durationS, 6);
    assert.equal(o.rounds, 5);
    assert.equal(o.connections, 64);
    assert.equal(o.idleConns, 10_000);
  });
  await t.step("--quick then explicit flags", () => {
    const o = parseOptions(["--quick", "--duration", "3", "--only", "nginx,direct", "--json", "x.json"]);
    assert.equal(o.durationS, 3);
    assert.equal(o.rounds, 1);
    assert.equal(o.compareMemory, false);
    assert.deepEqual(o.only, ["nginx", "direct"]);
    assert.equal(o.json, "x.json");
  });
  await t.step("rejects unknown flags and bad numbers", () => {
    assert.throws(() => parseOptions(["--bogus"]), /Unknown option --bogus/);
    assert.throws(() => parseOptions(["--duration", "x"]), /Bad value for --duration/);
  });
});

Deno.test("measureIdleConnections holds N keep-alive connections", async () => {
  const { measureIdleConnections } = await import("./lib.ts");
  const { WARM_UP_REQUESTS } = await import("./lib/memory.ts");
  const port = findFreePort();
  const ac = new AbortController();
  let requests = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port, signal: ac.signal, onListen: () => {} }, () => {
    requests++;
    return new Response("ok");
  });
  const sup = new Supervisor();
  try {
    const r = await measureIdleConnections(sup, { pid: Deno.pid, port, count: 50, mode: "request" });
    assert.equal(r.opened, 50);
    assert.equal(r.failed, 0);
    // the warm-up's requests before the baseline, then one per held connection
    assert.equal(requests, WARM_UP_REQUESTS + 50);
    assert.ok(r.beforeKiB > 0 && r.heldKiB > 0);
    assert.equal(sup.live().length, 0);
  } finally {
    await sup.dispose();
    ac.abort();
    await server.finished;
  }
});
