/**
 * Routes from RDS: a connection manager with `rds` reads its table per stream from the data plane's provider,
 * so a RouteConfiguration update reaches open HTTP/1.1 keep-alive and HTTP/2 connections on their next
 * stream; a listener added by LDS with `rds` warms until its routes arrive.
 */
import assert from "node:assert/strict";
import { curl, run, sleep } from "./helpers.ts";
import {
  directRoutes,
  freePort,
  httpListenerResource,
  parseListener,
  parseRoutes,
  startPlane,
} from "./lds_helpers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** One request on an open HTTP/1.1 connection; returns status and body (direct responses are small). */
async function get(conn: Deno.Conn): Promise<{ status: number; body: string; head: string }> {
  await conn.write(enc.encode("GET / HTTP/1.1\r\nhost: x\r\n\r\n"));
  const buf = new Uint8Array(8192);
  let text = "";
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) throw new Error("closed");
    text += dec.decode(buf.subarray(0, n));
    const end = text.indexOf("\r\n\r\n");
    if (end < 0) continue;
    const len = Number(/content-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? "0");
    if (text.length - end - 4 < len) continue;
    return {
      status: Number(text.slice(9, 12)),
      body: text.slice(end + 4, end + 4 + len),
      head: text.slice(0, end),
    };
  }
}

Deno.test("RDS: a route update reaches an open keep-alive connection on its next request", async () => {
  const port = freePort();
  const plane = await startPlane([httpListenerResource("edge", port, { rds: "edge_routes" })], 100);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    // a static listener serves at once: 404 NR until its route configuration arrives
    const before = await get(conn);
    assert.equal(before.status, 404);
    plane.setRouteConfig("edge_routes", parseRoutes(directRoutes("edge_routes", "v1")), "1");
    assert.equal((await get(conn)).body, "v1");
    plane.setRouteConfig("edge_routes", parseRoutes(directRoutes("edge_routes", "v2")), "2");
    const after = await get(conn);
    assert.equal(after.body, "v2");
    assert.doesNotMatch(after.head, /connection: close/i);
    const p = plane.routes.provider("edge_routes");
    assert.equal(p.version, "2");
    assert.equal(plane.stats.snapshot().counters["http.edge.no_route"], 1);
  } finally {
    conn.close();
    await plane.stop();
  }
});

Deno.test("RDS: a route update reaches an open HTTP/2 connection (h2load, one connection)", async () => {
  const port = freePort();
  const plane = await startPlane([httpListenerResource("edge", port, { rds: "r" })], 100);
  const status = (code: number, body: string) => ({
    name: "r",
    virtual_hosts: [{
      name: "any",
      domains: ["*"],
      routes: [{ match: { prefix: "/" }, direct_response: { status: code, body: { inline_string: body } } }],
    }],
  });
  try {
    plane.setRouteConfig("r", parseRoutes(status(200, "v1")), "1");
    // one client, one stream at a time, for a second: v1 answers 200, v2 answers 418
    const load = run("h2load", ["-c", "1", "-m", "1", "-D", "1", `http://127.0.0.1:${port}/`]);
    await sleep(400);
    plane.setRouteConfig("r", parseRoutes(status(418, "v2")), "2");
    const out = (await load).stdout;
    const m = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/
      .exec(out);
    assert.ok(m, out);
    const [started, done, failed] = [Number(m[2]), Number(m[3]), Number(m[5])];
    assert.equal(Number(m[6]), 0, out);
    // h2load counts the 418s as "failed"; every request got a response, first 200s, then 418s. The request in
    // flight when the timed run ends may have its status counted but not be "done".
    const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out)!;
    const [ok, teapot] = [Number(codes[1]), Number(codes[3])];
    assert.ok(ok > 0 && teapot > 0, out);
    assert.ok(ok + teapot >= done && ok + teapot <= started, out);
    assert.ok(teapot - failed >= 0 && teapot - failed <= started - done, out);
    assert.equal(plane.stats.snapshot().counters["http.edge.downstream_cx_http2_total"], 1, "one connection");
  } finally {
    await plane.stop();
  }
});

Deno.test("RDS: an LDS listener with rds warms until its routes arrive, then binds", async () => {
  const plane = await startPlane([], 100);
  try {
    const port = freePort();
    const l = parseListener(httpListenerResource("dyn", port, { rds: "late" }));
    assert.equal(await plane.addOrUpdateListener(l, "1"), "added");
    const snap = () => plane.stats.snapshot().gauges;
    assert.equal(snap()["listener_manager.total_listeners_warming"], 1);
    assert.equal(snap()["listener_manager.total_listeners_active"], 0);
    assert.deepEqual(plane.listenerManager.list().map((x) => x.state), ["warming"]);
    assert.equal((await curl([`http://127.0.0.1:${port}/`])).code, 7, "not bound while warming");

    // an update while warming replaces the warming version
    const l2 = parseListener(httpListenerResource("dyn", port, { rds: "late2" }));
    assert.equal(await plane.addOrUpdateListener(l2, "2"), "updated");
    assert.equal(snap()["listener_manager.total_listeners_warming"], 1);
    plane.setRouteConfig("late", parseRoutes(directRoutes("late", "old")), "1");
    await sleep(10);
    assert.equal(snap()["listener_manager.total_listeners_warming"], 1, "still waits for late2");

    plane.setRouteConfig("late2", parseRoutes(directRoutes("late2", "ok")), "1");
    await plane.whenListenerWarm("dyn");
    assert.equal(snap()["listener_manager.total_listeners_warming"], 0);
    assert.equal(snap()["listener_manager.total_listeners_active"], 1);
    assert.equal((await curl([`http://127.0.0.1:${port}/`])).stdout, "ok");
  } finally {
    await plane.stop();
  }
});

Deno.test("RDS: a route config naming an unknown cluster loads; requests get 503 NC", async () => {
  const port = freePort();
  const plane = await startPlane([httpListenerResource("edge", port, { rds: "r" })], 100);
  try {
    plane.setRouteConfig(
      "r",
      parseRoutes({
        name: "r",
        virtual_hosts: [{
          name: "a",
          domains: ["*"],
          routes: [{ match: { prefix: "/" }, route: { cluster: "later" } }],
        }],
      }),
      "1",
    );
    const r = await curl(["-o", "/dev/null", "-w", "%{http_code}", `http://127.0.0.1:${port}/`]);
    assert.equal(r.stdout, "503");
    assert.equal(plane.stats.snapshot().counters["http.edge.no_cluster"], 1);
  } finally {
    await plane.stop();
  }
});
