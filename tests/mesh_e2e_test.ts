/**
 * The whole mesh as separate processes: `nuncio discovery` (the registry, TTL 2 s), `nuncio control-plane`
 * (manifests, defaults and edge from a temp dir; hosts from the registry), three proxies with tiny
 * bootstraps (two edge proxies sharing the edge port, one sidecar of `web`), origins checked in by
 * `nuncio register`. New origins get traffic, silent ones are swept, the control plane dies and traffic
 * goes on, it returns and an edit applies, a bad manifest is rejected and reported while traffic goes on.
 */
import assert from "node:assert/strict";
import { waitFor } from "./health_helpers.ts";
import { adsBootstrap, distinctPorts, getWithHost } from "./mesh_helpers.ts";
import { type NuncioProcess, sleep, spawnNuncio, waitForPort } from "./helpers.ts";

type Obj = Record<string, unknown>;

/** An origin answering its name, on its own loopback address (the registry deregisters by IP); its
 * /healthcheck answers 503 while `sick`. */
function origin(
  name: string,
  ip: string,
): { port: number; server: Deno.HttpServer; state: { sick: boolean } } {
  const state = { sick: false };
  const server = Deno.serve(
    { hostname: ip, port: 0, onListen: () => {} },
    (req) =>
      new URL(req.url).pathname === "/healthcheck"
        ? new Response(state.sick ? "sick" : "ok", { status: state.sick ? 503 : 200 })
        : new Response(name),
  );
  return { port: server.addr.port, server, state };
}

async function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  if (headers.host) return await getWithHost(url, headers.host); // fetch does not send a Host of our choosing
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  try {
    const r = await fetch(url, { headers, client });
    return { status: r.status, body: await r.text() };
  } finally {
    client.close();
  }
}

/** The origins that answered `n` requests to `url` (failures as "status body"). */
async function answers(
  url: string,
  n: number,
  headers: Record<string, string> = {},
): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    let key: string;
    try {
      const r = await get(url, headers);
      key = r.status === 200 ? r.body : `${r.status} ${r.body}`;
    } catch (e) {
      key = `error ${(e as Error).message}`;
    }
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return seen;
}

async function stopProc(p: NuncioProcess, signal: Deno.Signal = "SIGTERM"): Promise<string> {
  try {
    p.proc.kill(signal);
  } catch {
    // gone
  }
  return (await p.done).stderr;
}

Deno.test("mesh: registry + control plane + three proxies + nuncio register, end to end", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_mesh_" });
  const procs: NuncioProcess[] = [];
  const registers = new Map<string, NuncioProcess>();
  const origins: Deno.HttpServer[] = [];
  const [regPort, cpPort, grpcPort, ingress, egress, edgePort, ...admins] = distinctPorts(9);
  const registry = `http://127.0.0.1:${regPort}`;
  const register = (service: string, ip: string, port: number) => {
    const p = spawnNuncio([
      "register",
      `--service=${service}`,
      `--port=${port}`,
      `--ip=${ip}`,
      `--registry=${registry}`,
      "--every=300ms",
      "-l",
      "warn",
    ]);
    registers.set(`${service}/${ip}`, p);
  };
  let cp: NuncioProcess | undefined;
  const startCp = () => {
    cp = spawnNuncio([
      "control-plane",
      `--manifests=${dir}/m`,
      `--defaults=${dir}/defaults.yaml`,
      `--edge=${dir}/edge.yaml`,
      `--registry=${registry}`,
      "--registry-refresh=300ms",
      `--port=${cpPort}`,
      `--grpc-port=${grpcPort}`,
      "--host=127.0.0.1",
      "--watch-interval=200ms",
      "--load-report-interval=500ms",
      "-l",
      "warn",
    ]);
  };
  try {
    await Deno.mkdir(`${dir}/m`);
    await Deno.writeTextFile(
      `${dir}/defaults.yaml`,
      `ingress_port: ${ingress}\ningress_address: 127.0.0.1\negress_port: ${egress}\nconnect_timeout: 1s\n` +
        "limits:\n  timeout: { default: 5s, max: 30s }\n  retries: { default: 1, max: 3 }\n" +
        "health_check: { interval: 300ms, timeout: 1s, unhealthy_threshold: 2, healthy_threshold: 1 }\n" +
        "hds: { checkers_per_endpoint: 2, interval: 300ms }\n",
    );
    const web = origin("web", "127.0.0.1");
    origins.push(web.server);
    await Deno.writeTextFile(
      `${dir}/m/web.yaml`,
      `service: web\nport: ${web.port}\nupstreams:\n  - service: api\n    timeout: 2s\n`,
    );
    await Deno.writeTextFile(
      `${dir}/m/api.yaml`,
      "service: api\nport: 1\nhealth_check: { path: /healthcheck }\n",
    );
    const edgeYaml = (extra = "") =>
      `node_cluster: edge\nport: ${edgePort}\naddress: 127.0.0.1\nroutes:\n` +
      "  - { prefix: /api/, service: api, prefix_rewrite: / }\n" +
      "  - { prefix: /web/, service: web, prefix_rewrite: / }\n" + extra;
    await Deno.writeTextFile(`${dir}/edge.yaml`, edgeYaml());

    procs.push(spawnNuncio([
      "discovery",
      `--port=${regPort}`,
      "--host=127.0.0.1",
      "--ttl=2s",
      "--sweep-interval=500ms",
      "-l",
      "warn",
    ]));
    await waitForPort(regPort);
    const api1 = origin("api-1", "127.0.0.2");
    const api2 = origin("api-2", "127.0.0.3");
    origins.push(api1.server, api2.server);
    register("api", "127.0.0.2", api1.port);
    register("api", "127.0.0.3", api2.port);
    register("web", "127.0.0.1", ingress); // others reach web through its sidecar's ingress
    startCp();
    await waitForPort(grpcPort);

    const proxies = [
      adsBootstrap({ id: "edge-1", cluster: "edge" }, admins[0], grpcPort, {}, true),
      adsBootstrap({ id: "edge-2", cluster: "edge" }, admins[1], grpcPort, {}, true),
      adsBootstrap({ id: "web-1", cluster: "web" }, admins[2], grpcPort, {}, true),
    ];
    for (const [i, b] of proxies.entries()) {
      const file = `${dir}/proxy-${i}.json`;
      await Deno.writeTextFile(file, b);
      procs.push(spawnNuncio(["-c", file, "--concurrency", "1", "-l", "warn"]));
    }
    for (const a of admins) {
      await waitFor(
        `proxy admin ${a} LIVE`,
        () => get(`http://127.0.0.1:${a}/ready`).then((r) => r.body === "LIVE\n").catch(() => false),
        20_000,
      );
    }

    // the edge reaches both api origins, and web through web's sidecar; the sidecar's egress reaches api
    const edgeApi = `http://127.0.0.1:${edgePort}/api/x`;
    await waitFor("edge -> both api origins", async () => {
      const s = await answers(edgeApi, 10);
      return s.has("api-1") && s.has("api-2");
    }, 15_000);
    assert.deepEqual([...(await answers(`http://127.0.0.1:${edgePort}/web/x`, 3))], [["web", 3]]);
    const viaEgress = await answers(`http://127.0.0.1:${egress}/x`, 10, { host: "api" });
    assert.deepEqual([...viaEgress.keys()].sort(), ["api-1", "api-2"], JSON.stringify([...viaEgress]));
    const unknownHost = await get(`http://127.0.0.1:${egress}/x`, { host: "nope" });
    assert.equal(unknownHost.status, 404);

    // a new origin checks in: traffic within the refresh interval (registry read every 300 ms, then a push)
    const api3 = origin("api-3", "127.0.0.4");
    origins.push(api3.server);
    const t0 = Date.now();
    register("api", "127.0.0.4", api3.port);
    await waitFor("api-3 gets traffic", async () => (await answers(edgeApi, 6)).has("api-3"), 10_000);
    const newOriginMs = Date.now() - t0;
    assert.ok(newOriginMs < 5000, `a new origin took ${newOriginMs} ms`);

    // api-1's agent dies without deregistering: swept after the TTL, then no traffic
    await stopProc(registers.get("api/127.0.0.2")!, "SIGKILL");
    registers.delete("api/127.0.0.2");
    await waitFor("api-1 swept", async () => !(await answers(edgeApi, 12)).has("api-1"), 15_000);
    const afterSweep = await answers(edgeApi, 20);
    assert.deepEqual([...afterSweep.keys()].sort(), ["api-2", "api-3"], JSON.stringify([...afterSweep]));

    // central health checking: each api endpoint is checked by two of the three proxies; api-2 turns sick,
    // their reports make it UNHEALTHY in EDS and every proxy stops sending it traffic; it recovers, and is back
    const hdsStatus = async () =>
      (JSON.parse((await get(`http://127.0.0.1:${cpPort}/hds`)).body) as {
        endpoints: { port: number; checkers: string[]; verdict: string | null }[];
      }).endpoints;
    await waitFor("HDS verdicts for api-2 and api-3", async () => {
      const eps = (await hdsStatus()).filter((e) => e.port === api2.port || e.port === api3.port);
      return eps.length === 2 && eps.every((e) => e.checkers.length === 2 && e.verdict === "HEALTHY");
    }, 10_000);
    api2.state.sick = true;
    await waitFor("api-2 out of rotation", async () => {
      const s = await answers(edgeApi, 10);
      return !s.has("api-2") && s.has("api-3");
    }, 10_000);
    assert.equal((await hdsStatus()).find((e) => e.port === api2.port)!.verdict, "UNHEALTHY");
    api2.state.sick = false;
    await waitFor("api-2 back", async () => (await answers(edgeApi, 10)).has("api-2"), 10_000);
    // load reports: the edge proxies' requests to api, as the control plane sums them
    await waitFor("LRS totals for api", async () => {
      const load = JSON.parse((await get(`http://127.0.0.1:${cpPort}/load`)).body) as {
        clusters: Record<string, { totals: { total_issued_requests: number } }>;
      };
      return (load.clusters.api?.totals.total_issued_requests ?? 0) > 50;
    }, 10_000);

    // the control plane dies: traffic goes on with what the proxies have
    await stopProc(cp!, "SIGKILL");
    cp = undefined;
    await sleep(300);
    const noCp = await answers(edgeApi, 20);
    assert.deepEqual([...noCp.keys()].sort(), ["api-2", "api-3"], JSON.stringify([...noCp]));
    assert.deepEqual([...(await answers(`http://127.0.0.1:${egress}/x`, 6, { host: "api" })).keys()].sort(), [
      "api-2",
      "api-3",
    ]);

    // it returns; the proxies reconnect and an edit of the edge routes applies
    startCp();
    await waitForPort(grpcPort);
    await waitFor("three proxies reconnected", async () => {
      const m = await get(`http://127.0.0.1:${cpPort}/mesh?format=json`).catch(() => undefined);
      if (!m || m.status !== 200) return false;
      const ps = (JSON.parse(m.body).proxies as Obj[]).filter((p) => p.connected);
      return ps.length === 3;
    }, 20_000);
    assert.equal((await get(`http://127.0.0.1:${edgePort}/v2/x`)).status, 404);
    await Deno.writeTextFile(
      `${dir}/edge.yaml`,
      edgeYaml("  - { prefix: /v2/, service: api, prefix_rewrite: / }\n"),
    );
    await waitFor("the new edge route applies", async () => {
      const r = await get(`http://127.0.0.1:${edgePort}/v2/x`);
      return r.status === 200 && r.body.startsWith("api-");
    }, 10_000);

    // a bad manifest is rejected and reported; the last good version keeps serving
    await Deno.writeTextFile(
      `${dir}/m/web.yaml`,
      `service: web\nport: ${web.port}\nupstreams:\n  - service: api\n    timeout: 90s\n`,
    );
    await Deno.writeTextFile(`${dir}/m/broken.yaml`, "service: broken\nport: 8080\ncolour: blue\n");
    await waitFor("the errors are reported", async () => {
      const r = JSON.parse((await get(`http://127.0.0.1:${cpPort}/inputs`)).body) as { errors: string[] };
      return r.errors.length === 2;
    }, 10_000);
    const inputs = JSON.parse((await get(`http://127.0.0.1:${cpPort}/inputs`)).body) as {
      errors: string[];
      kept_last_good: string[];
    };
    assert.deepEqual(inputs.errors, [
      `${dir}/m/broken.yaml:3:1: colour: Unknown field`,
      `${dir}/m/web.yaml:5:14: upstreams[0].timeout: timeout 90000ms is above the maximum 30000ms`,
    ]);
    assert.deepEqual(inputs.kept_last_good, [`${dir}/m/web.yaml`]);
    const stillEgress = await answers(`http://127.0.0.1:${egress}/x`, 6, { host: "api" });
    assert.deepEqual([...stillEgress.keys()].sort(), ["api-2", "api-3"]);
    assert.deepEqual([...(await answers(`http://127.0.0.1:${edgePort}/web/x`, 3))], [["web", 3]]);

    // the mesh report: three proxies up to date, no NACK, the errors, web and api covered
    const mesh = JSON.parse((await get(`http://127.0.0.1:${cpPort}/mesh?format=json`)).body);
    assert.deepEqual(mesh.nacks, []);
    assert.equal(mesh.input_errors.length, 2);
    for (const p of mesh.proxies as { id: string; connected: boolean; types: Record<string, Obj> }[]) {
      assert.ok(p.connected, p.id);
      for (const [t, s] of Object.entries(p.types)) {
        assert.ok(s.up_to_date, `${p.id} ${t} ${JSON.stringify(s)}`);
      }
    }
    const api = (mesh.services as Obj[]).find((s) => s.service === "api")!;
    assert.equal(api.hosts, 2);
    const page = await get(`http://127.0.0.1:${cpPort}/mesh`);
    assert.match(page.body, /<h1>Mesh coverage<\/h1>/);
    assert.match(page.body, /broken\.yaml:3:1/);
  } finally {
    for (const p of registers.values()) await stopProc(p);
    if (cp) await stopProc(cp);
    for (const p of procs.reverse()) await stopProc(p);
    for (const s of origins) await s.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
