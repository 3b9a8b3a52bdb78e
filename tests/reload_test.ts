/**
 * SIGHUP and POST /reload re-read the bootstrap and apply what changed through the xDS update path (a bad
 * file or a change that needs a hot restart leaves the running config serving), and admin /drain_listeners
 * (`inboundonly`, `graceful`, `skip_exit`) stops listeners as Envoy's does. nuncio runs as a subprocess with
 * two workers.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import {
  anyHost,
  curl,
  httpListener,
  refusedPort,
  sleep,
  spawnNuncio,
  startOrigin,
  staticCluster,
  waitForPort,
} from "./helpers.ts";

type Obj = Record<string, unknown>;

function listener(name: string, port: number, cluster: string, version: string, extra: Obj = {}): Obj {
  const l = httpListener({
    name,
    statPrefix: name,
    virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster } }])],
    routeConfig: { response_headers_to_add: [{ header: { key: "x-config", value: version } }] },
    hcm: { access_log: [] },
  });
  (l.address as { socket_address: Obj }).socket_address.port_value = port;
  return { ...l, ...extra };
}

/** `curl -si` and the x-config header and status of the answer ("refused" when nothing listens). */
async function get(port: number): Promise<string> {
  const r = await curl(["-s", "-D", "-", "-o", "/dev/null", `http://127.0.0.1:${port}/`]);
  if (r.code === 7) return "refused";
  const status = /^HTTP\/1\.1 (\d+)/.exec(r.stdout)?.[1];
  const config = /^x-config: (\S+)/mi.exec(r.stdout)?.[1];
  return `${status} ${config}`;
}

async function until(what: string, f: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await f()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function post(admin: number, path: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${admin}${path}`, { method: "POST" });
  return { status: r.status, body: await r.text() };
}

Deno.test("SIGHUP and POST /reload apply a changed bootstrap; a bad one is rejected; /drain_listeners", async () => {
  await using one = startOrigin("one");
  await using two = startOrigin("two");
  const dir = await Deno.makeTempDir({ prefix: "nuncio_reload_" });
  const path = `${dir}/bootstrap.yaml`;
  const [pa, pb, admin] = [refusedPort(), refusedPort(), refusedPort()];
  const write = (listeners: Obj[], clusters: Obj[], extra: Obj = {}) =>
    Deno.writeTextFileSync(
      path,
      stringify({
        admin: { address: { socket_address: { address: "127.0.0.1", port_value: admin } } },
        static_resources: { listeners, clusters },
        ...extra,
      }),
    );
  write([listener("a", pa, "one", "v1", { traffic_direction: "INBOUND" })], [
    staticCluster("one", [one.port]),
  ]);
  const p = spawnNuncio(["-c", path, "--concurrency", "2", "--drain-time-s", "1"]);
  try {
    await waitForPort(admin);
    await waitForPort(pa);
    assert.equal(await get(pa), "200 v1");

    // SIGHUP: listener a changes its routes, listener b and cluster two are new
    write([
      listener("a", pa, "one", "v2", { traffic_direction: "INBOUND" }),
      listener("b", pb, "two", "v2"),
    ], [staticCluster("one", [one.port]), staticCluster("two", [two.port])]);
    p.proc.kill("SIGHUP");
    await until("v2 on both listeners", async () => await get(pa) === "200 v2" && await get(pb) === "200 v2");
    assert.equal(two.requests.length > 0, true);

    // a file that does not validate: the error is logged with file:line:col, nothing changes
    Deno.writeTextFileSync(path, Deno.readTextFileSync(path).replace("type: STATIC", "type: STATIK"));
    const bad = await post(admin, "/reload");
    assert.equal(bad.status, 400);
    assert.match(bad.body, /config rejected, the running config stays/);
    assert.match(bad.body, /bootstrap\.yaml:\d+:\d+: static_resources\.clusters\[0\]\.type/);
    p.proc.kill("SIGHUP"); // logged, not fatal
    await sleep(200);
    assert.equal(await get(pa), "200 v2");

    // a change that cannot be applied in place: refused whole
    write(
      [listener("a", pa, "one", "v3", { traffic_direction: "INBOUND" }), listener("b", pb, "two", "v3")],
      [staticCluster("one", [one.port]), staticCluster("two", [two.port])],
      { node: { id: "renamed" } },
    );
    const restart = await post(admin, "/reload");
    assert.equal(restart.status, 400);
    assert.match(restart.body, /"node" changed, which needs a hot restart/);
    assert.equal(await get(pa), "200 v2");

    // POST /reload: listener b and cluster two go, a moves to v3
    write([listener("a", pa, "one", "v3", { traffic_direction: "INBOUND" })], [
      staticCluster("one", [one.port]),
    ]);
    const ok = await post(admin, "/reload");
    assert.equal(ok.status, 200, ok.body);
    assert.match(ok.body, /listeners 1 changed, 1 removed; clusters 0 changed, 1 removed/);
    await until("b gone", async () => await get(pb) === "refused");
    assert.equal(await get(pa), "200 v3");
    const stats = await (await fetch(`http://127.0.0.1:${admin}/stats`)).text();
    assert.match(stats, /listener_manager\.listener_removed: [1-9]/);
    assert.match(stats, /cluster_manager\.cluster_removed: [1-9]/);

    // /drain_listeners: skip_exit needs graceful; graceful keeps accepting for --drain-time-s, then stops
    assert.equal((await post(admin, "/drain_listeners?skip_exit")).status, 400);
    assert.equal((await post(admin, "/drain_listeners?inboundonly&graceful&skip_exit")).status, 200);
    const ready = await fetch(`http://127.0.0.1:${admin}/ready`);
    assert.equal(ready.status, 503);
    assert.match(await ready.text(), /DRAINING/);
    // during the drain: still served, each response asks the client to close
    const during = await curl(["-s", "-D", "-", "-o", "/dev/null", `http://127.0.0.1:${pa}/`]);
    assert.match(during.stdout, /^HTTP\/1\.1 200/);
    assert.match(during.stdout, /^connection: close/mi);
    await until("a stops accepting", async () => await get(pa) === "refused");
    // skip_exit: the process stays up
    const info = await fetch(`http://127.0.0.1:${admin}/server_info`);
    assert.equal(info.status, 200);
    assert.equal((await info.json()).state, "DRAINING");
  } finally {
    p.proc.kill("SIGTERM");
    const done = await p.done;
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stderr, /caught SIGHUP: reloading the config/);
    assert.match(done.stderr, /reloaded: listeners 2 changed, 0 removed; clusters 1 changed, 0 removed/);
    assert.match(done.stderr, /bootstrap\.yaml:\d+:\d+: static_resources\.clusters\[0\]\.type/);
    await Deno.remove(dir, { recursive: true });
  }
});
