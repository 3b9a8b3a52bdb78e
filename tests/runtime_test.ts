/**
 * The runtime end to end, nuncio as a subprocess with --concurrency 2 (every worker must follow the main
 * thread's snapshot): a disk layer flipped by an atomic symlink swap changes a fault abort percent and a
 * runtime_fraction route split without a restart; /runtime_modify overrides them (and the reply comes once every
 * worker has the override); two hops sampling their access logs at 10 % with runtime_filter (request-id based)
 * log exactly the same request ids.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { freePort, get, waitFor } from "./health_helpers.ts";
import {
  curl,
  type NuncioProcess,
  sleep,
  spawnNuncio,
  startOrigin,
  staticCluster,
  waitForPort,
} from "./helpers.ts";

type Obj = Record<string, unknown>;

const HCM =
  "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = {
  name: "envoy.filters.http.router",
  typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
};

function admin(port: number): Obj {
  return { address: { socket_address: { address: "127.0.0.1", port_value: port } } };
}

function listener(port: number, hcm: Obj): Obj {
  return {
    name: "ingress",
    address: { socket_address: { address: "127.0.0.1", port_value: port } },
    filter_chains: [{
      filters: [{ name: "envoy.filters.network.http_connection_manager", typed_config: hcm }],
    }],
  };
}

/** Starts nuncio on `doc` (written to `dir`), waits for its admin port; stops it on dispose. */
async function nuncio(
  dir: string,
  name: string,
  doc: Obj,
  adminPort: number,
): Promise<AsyncDisposable & NuncioProcess> {
  const path = `${dir}/${name}.yaml`;
  await Deno.writeTextFile(path, stringify(doc));
  const p = spawnNuncio(["-c", path, "--concurrency", "2", "--log-level", "warn", "--drain-time-s", "0"]);
  try {
    await Promise.race([
      waitForPort(adminPort, 30_000),
      p.done.then((d) => {
        throw new Error(`nuncio ${name} exited (${d.code}): ${d.stderr}`);
      }),
    ]);
  } catch (e) {
    try {
      p.proc.kill("SIGKILL");
    } catch { /* exited already */ }
    await p.done;
    throw e;
  }
  return {
    ...p,
    async [Symbol.asyncDispose]() {
      try {
        p.proc.kill("SIGTERM");
      } catch { /* already gone */ }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        p.done,
        new Promise<void>((r) =>
          timer = setTimeout(() => {
            p.proc.kill("SIGKILL");
            r();
          }, 15_000)
        ),
      ]);
      clearTimeout(timer);
      await p.done;
    },
  };
}

async function adminGet(
  port: number,
  path: string,
  method = "GET",
): Promise<{ status: number; body: string }> {
  const r = await curl(["-s", "-X", method, "-w", "\n%{http_code}", `http://127.0.0.1:${port}${path}`]);
  const i = r.stdout.lastIndexOf("\n");
  return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
}

/** `n` requests, each on a new connection (so both workers serve some), their statuses or origins. */
async function burst(n: number, url: string, headers: Record<string, string> = {}): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await get(url, headers);
    out.push(r.status === 200 ? r.origin ?? "200" : String(r.status));
  }
  return out;
}

/** Polls until `n` consecutive requests all give `want` (the swap reached every worker), bounded. */
async function converges(url: string, headers: Record<string, string>, want: string, n = 20): Promise<void> {
  await waitFor(
    `${n} x ${want} from ${url}`,
    async () => (await burst(n, url, headers)).every((s) => s === want),
    15_000,
  );
}

async function tree(dir: string, files: Record<string, string>): Promise<void> {
  for (const [p, text] of Object.entries(files)) {
    const full = `${dir}/${p}`;
    await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(full, text);
  }
}

Deno.test("runtime: a disk layer's symlink swap and /runtime_modify change fault aborts and a route split", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_runtime_e2e_" });
  await using one = startOrigin("one");
  await using two = startOrigin("two");
  try {
    await tree(`${dir}/srv`, {
      "v1/envoy/fault/http/abort/abort_percent": "# no aborts yet\n0\n",
      "v1/envoy/routing/traffic_shift/split": "100\n",
      "v2/envoy/fault/http/abort/abort_percent": "100\n",
      "v2/envoy/routing/traffic_shift/split": "0\n",
    });
    await Deno.symlink(`${dir}/srv/v1`, `${dir}/srv/current`);
    const adminPort = freePort(), port = freePort();
    const hcm = {
      "@type": HCM,
      stat_prefix: "ingress",
      route_config: {
        virtual_hosts: [{
          name: "all",
          domains: ["*"],
          routes: [
            {
              match: {
                prefix: "/split",
                runtime_fraction: {
                  default_value: { numerator: 50, denominator: "HUNDRED" },
                  runtime_key: "routing.traffic_shift.split",
                },
              },
              route: { cluster: "one" },
            },
            { match: { prefix: "/" }, route: { cluster: "two" } },
          ],
        }],
      },
      http_filters: [
        {
          name: "envoy.filters.http.fault",
          typed_config: {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
            // only requests asking for it, so the split requests are never faulted
            headers: [{ name: "x-fault", string_match: { exact: "yes" } }],
            abort: { http_status: 503, percentage: { numerator: 0, denominator: "HUNDRED" } },
          },
        },
        ROUTER,
      ],
    };
    await using _proxy = await nuncio(dir, "proxy", {
      admin: admin(adminPort),
      static_resources: {
        listeners: [listener(port, hcm)],
        clusters: [staticCluster("one", [one.port]), staticCluster("two", [two.port])],
      },
      layered_runtime: {
        layers: [
          { name: "static", static_layer: { routing: { traffic_shift: { split: 50 } } } },
          { name: "disk", disk_layer: { symlink_root: `${dir}/srv/current`, subdirectory: "envoy" } },
          { name: "admin", admin_layer: {} },
        ],
      },
    }, adminPort);
    await waitForPort(port);
    const fault = `http://127.0.0.1:${port}/fault`;
    const split = `http://127.0.0.1:${port}/split`;
    const yes = { "x-fault": "yes" };

    // v1: no aborts, every /split request on the runtime_fraction route
    assert.deepEqual(new Set(await burst(20, fault, yes)), new Set(["two"]));
    assert.deepEqual(new Set(await burst(20, split)), new Set(["one"]));
    const view = JSON.parse((await adminGet(adminPort, "/runtime")).body);
    assert.deepEqual(view.layers, ["static", "disk", "admin"]);
    assert.deepEqual(view.entries["routing.traffic_shift.split"], {
      final_value: "100",
      layer_values: ["50", "100", ""],
    });
    assert.equal(view.entries["fault.http.abort.abort_percent"].final_value, "0");

    // the atomic swap (ln -s v2 new && mv -T new current): every worker follows, no restart
    await Deno.symlink(`${dir}/srv/v2`, `${dir}/srv/new`);
    await Deno.rename(`${dir}/srv/new`, `${dir}/srv/current`);
    await converges(fault, yes, "503");
    await converges(split, {}, "two");
    assert.equal(
      JSON.parse((await adminGet(adminPort, "/runtime")).body).entries["fault.http.abort.abort_percent"]
        .final_value,
      "100",
    );

    // /runtime_modify: answered once every worker has the override, so the next requests all see it
    const mod = await adminGet(
      adminPort,
      "/runtime_modify?fault.http.abort.abort_percent=0&routing.traffic_shift.split=50",
      "POST",
    );
    assert.deepEqual(mod, { status: 200, body: "OK\n" });
    assert.deepEqual(new Set(await burst(20, fault, yes)), new Set(["two"]));
    const halves = await burst(40, split);
    assert.ok(halves.includes("one") && halves.includes("two"), `both routes at 50 %: ${halves}`);
    const v2 = JSON.parse((await adminGet(adminPort, "/runtime")).body);
    assert.deepEqual(v2.entries["fault.http.abort.abort_percent"], {
      final_value: "0",
      layer_values: ["", "100", "0"],
    });
    // an empty value removes the override: the disk layer's 100 % is back at once
    assert.equal(
      (await adminGet(adminPort, "/runtime_modify?fault.http.abort.abort_percent=", "POST")).status,
      200,
    );
    assert.deepEqual(new Set(await burst(20, fault, yes)), new Set(["503"]));
    assert.equal((await adminGet(adminPort, "/runtime_modify", "POST")).status, 400);

    const stats = (await adminGet(adminPort, "/stats?filter=^runtime\\.")).body;
    assert.match(stats, /runtime\.admin_overrides_active: 1\n/);
    assert.match(stats, /runtime\.num_layers: 3\n/);
    assert.match(stats, /runtime\.num_keys: 2\n/);
    const loads = Number(/runtime\.load_success: (\d+)/.exec(stats)?.[1]);
    assert.ok(loads >= 4, `start, swap, two modifies: ${loads}`);
    assert.match(stats, /runtime\.load_error: 0\n/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runtime: two hops sample their access logs by runtime_filter from the request id: the same ids", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_runtime_hops_" });
  await using origin = startOrigin("origin");
  try {
    const sampled = (log: string, cluster: string, edge: boolean): Obj => ({
      "@type": HCM,
      stat_prefix: "hop",
      // the edge appends x-forwarded-for, so the next hop trusts the request as internal and keeps its id
      use_remote_address: edge,
      access_log: [{
        name: "envoy.access_loggers.file",
        filter: {
          runtime_filter: {
            runtime_key: "access_log.sample",
            percent_sampled: { numerator: 0, denominator: "HUNDRED" },
            use_independent_randomness: false,
          },
        },
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
          path: log,
          log_format: { text_format_source: { inline_string: "%REQ(X-REQUEST-ID)%\n" } },
        },
      }],
      route_config: {
        virtual_hosts: [{
          name: "all",
          domains: ["*"],
          routes: [{ match: { prefix: "/" }, route: { cluster } }],
        }],
      },
      http_filters: [ROUTER],
    });
    // 10 % from the static layer of each hop
    const runtimeLayers = { layers: [{ name: "static", static_layer: { access_log: { sample: 10 } } }] };
    const a2 = freePort(), p2 = freePort(), a1 = freePort(), p1 = freePort();
    await using _hop2 = await nuncio(dir, "hop2", {
      admin: admin(a2),
      static_resources: {
        listeners: [listener(p2, sampled(`${dir}/hop2.log`, "origin", false))],
        clusters: [staticCluster("origin", [origin.port])],
      },
      layered_runtime: runtimeLayers,
    }, a2);
    await using _hop1 = await nuncio(dir, "hop1", {
      admin: admin(a1),
      static_resources: {
        listeners: [listener(p1, sampled(`${dir}/hop1.log`, "hop2", true))],
        clusters: [staticCluster("hop2", [p2])],
      },
      layered_runtime: runtimeLayers,
    }, a1);
    await waitForPort(p1);
    await waitForPort(p2);
    const N = 300;
    const statuses = await burst(N, `http://127.0.0.1:${p1}/x`);
    assert.deepEqual(new Set(statuses), new Set(["origin"]));
    assert.equal(origin.requests.length, N);
    const all = new Set(origin.requests.map((r) => r.headers.get("x-request-id")));
    assert.equal(all.size, N, "hop1 gave every request its own id and hop2 kept it");
    const read = async (p: string) => {
      try {
        return (await Deno.readTextFile(p)).split("\n").filter((l) => l !== "");
      } catch {
        return [];
      }
    };
    // the ids whose first 8 hex digits modulo 100 are under 10: exactly those, on both hops
    const want = [...all].filter((id) => parseInt(id!.slice(0, 8), 16) % 100 < 10).sort();
    await waitFor(
      "both access logs written",
      async () =>
        (await read(`${dir}/hop1.log`)).length >= want.length &&
        (await read(`${dir}/hop2.log`)).length >= want.length,
    );
    await sleep(200);
    const h1 = (await read(`${dir}/hop1.log`)).sort();
    const h2 = (await read(`${dir}/hop2.log`)).sort();
    assert.ok(want.length > 5 && want.length < 80, `about 10 % of ${N}: ${want.length}`);
    assert.deepEqual(h1, want);
    assert.deepEqual(h2, want);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
