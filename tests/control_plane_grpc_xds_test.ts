/**
 * The control plane's xDS wire format, proven with a client that is not nuncio: gRPC's proxyless xDS
 * (@grpc/grpc-js-xds) resolving `xds:///greeter` over ADS from `startControlPlane` (in this process, with its
 * embedded registry). The client's node is `web` (its manifest lists `greeter` as an upstream), so it gets the
 * API listener `greeter` (LDS by name), cluster `greeter` (CDS) and its ClusterLoadAssignment (EDS, from the
 * registry). Backends (grpc-js servers on 127.0.0.2-4) are registered through the registry's v1 API; the test
 * checks calls succeed and round-robin over the registered backends, follow a registration and a
 * deregistration within seconds, and that the mesh report shows every type ACKed by node `web-1`, no NACK.
 *
 * The gRPC peers run as subprocesses (tests/grpc_xds_client.ts): grpc-js's global state and the xDS bootstrap
 * (an environment variable) stay out of the test process.
 */
import assert from "node:assert/strict";
import { startControlPlane } from "../src/control_plane/run.ts";

const PEER = new URL("./grpc_xds_client.ts", import.meta.url).pathname;

// deno-lint-ignore no-explicit-any -- JSON events of the peers
type Json = any;

/** A peer subprocess speaking JSON lines (see tests/grpc_xds_client.ts). */
class Peer {
  readonly events: Json[] = [];
  readonly stderr: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #readers: Promise<void>[];
  #waiters: (() => void)[] = [];

  constructor(args: string[], env: Record<string, string> = {}) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", PEER, ...args],
      env,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#readers = [
      lines(this.#child.stdout, (l) => {
        if (!l.startsWith("{")) return;
        this.events.push(JSON.parse(l));
        for (const w of this.#waiters.splice(0)) w();
      }),
      lines(this.#child.stderr, (l) => this.stderr.push(l)),
    ];
  }

  /** Waits for the first event named `name` at or after index `from`. */
  async next(name: string, from: number, ms: number): Promise<Json> {
    const end = Date.now() + ms;
    for (;;) {
      const e = this.events.slice(from).find((x) => x.event === name);
      if (e) return e;
      const left = end - Date.now();
      if (left <= 0) {
        throw new Error(`no "${name}" event within ${ms} ms; stderr:\n${this.stderr.slice(-30).join("\n")}`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        timer = setTimeout(r, Math.min(left, 200));
      });
      clearTimeout(timer);
    }
  }

  async send(cmd: Json): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(JSON.stringify(cmd) + "\n"));
  }

  /** Asks it to exit; kills it after 3 s. */
  async close(): Promise<void> {
    await this.send({ cmd: "exit" }).catch(() => {});
    await this.#stdin.close().catch(() => {});
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 3000);
    await this.#child.status;
    clearTimeout(timer);
    await Promise.all(this.#readers);
  }
}

async function lines(stream: ReadableStream<Uint8Array>, f: (line: string) => void): Promise<void> {
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of stream) {
    buf += dec.decode(chunk, { stream: true });
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      f(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  }
  if (buf) f(buf);
}

/** The proxyless client: `calls(n)` makes n unary calls, one after another, and returns their results. */
class Client {
  readonly peer: Peer;
  constructor(target: string, bootstrap: Json) {
    // GRPC_XDS_BOOTSTRAP (a file) would win over the config: empty, it is ignored
    const env: Record<string, string> = {
      GRPC_XDS_BOOTSTRAP: "",
      GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(bootstrap),
    };
    // GRPC_TRACE=xds_client,xds_resolver,... GRPC_VERBOSITY=DEBUG: grpc-js's traces in the failure message
    for (const k of ["GRPC_TRACE", "GRPC_VERBOSITY"]) {
      const v = Deno.env.get(k);
      if (v !== undefined) env[k] = v;
    }
    this.peer = new Peer(["client", target], env);
  }
  async calls(n: number, timeoutMs = 5000): Promise<Json[]> {
    const from = this.peer.events.length;
    await this.peer.send({ cmd: "call", n, timeoutMs });
    return (await this.peer.next("calls", from, timeoutMs * n + 20_000)).results;
  }
  /** `calls(n)`, tallied by backend; a failed call throws (with the client's last stderr lines). */
  async batch(n: number, timeoutMs = 5000): Promise<Map<string, number>> {
    const results = await this.calls(n, timeoutMs);
    try {
      return tally(results);
    } catch (e) {
      const tail = this.peer.stderr.slice(-40).join("\n");
      throw new Error(`${(e as Error).message}${tail ? `\nclient stderr:\n${tail}` : ""}`);
    }
  }
}

/** How many calls each backend answered; throws on a failed call. */
function tally(results: Json[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of results) {
    if (r.error !== undefined) throw new Error(`call failed: code ${r.code}: ${r.error}`);
    assert.deepEqual(r.authority, "greeter", "the :authority of an xds:///greeter call");
    m.set(r.backend, (m.get(r.backend) ?? 0) + 1);
  }
  return m;
}

/** Makes batches of `n` calls until `ok` holds for one batch's tally (within `ms`); returns that tally. */
async function until(
  client: Client,
  what: string,
  ok: (t: Map<string, number>) => boolean,
  n = 12,
  ms = 8000,
): Promise<Map<string, number>> {
  const end = Date.now() + ms;
  let last: Map<string, number> | undefined;
  while (Date.now() < end) {
    last = await client.batch(n);
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}; last batch: ${JSON.stringify([...last ?? []])}`);
}

const DEFAULTS = `
ingress_port: 9211
egress_port: 9001
connect_timeout: 1s
retry_on: 5xx,connect-failure,refused-stream
limits:
  timeout: { default: 15s, min: 100ms, max: 60s }
  per_try_timeout: { max: 30s }
  retries: { default: 1, max: 3 }
  max_connections: { default: 1024, max: 10000 }
  max_pending_requests: { default: 1024, max: 10000 }
  max_requests: { default: 1024, max: 10000 }
  max_retries: { default: 3, max: 10 }
  consecutive_5xx: { default: 5, min: 2, max: 100 }
  base_ejection_time: { default: 30s, min: 1s, max: 5m }
  max_ejection_percent: { default: 10, max: 50 }
`;

const GREETER = `
service: greeter
owner: test-team
port: 50051
protocol: grpc
`;

const WEB = `
service: web
owner: test-team
port: 8080
upstreams:
  - service: greeter
    timeout: 2s
    retries: 2
`;

Deno.test("grpc-js-xds (proxyless gRPC) resolves xds:///greeter from the control plane: LDS, CDS, EDS", async () => {
  const started = Date.now();
  const dir = await Deno.makeTempDir({ prefix: "nuncio_cp_grpc_xds_" });
  await Deno.mkdir(`${dir}/manifests`);
  await Deno.writeTextFile(`${dir}/defaults.yaml`, DEFAULTS);
  await Deno.writeTextFile(`${dir}/manifests/greeter.yaml`, GREETER);
  await Deno.writeTextFile(`${dir}/manifests/web.yaml`, WEB);
  const cp = await startControlPlane({
    paths: { manifests: `${dir}/manifests`, defaults: `${dir}/defaults.yaml` },
    port: 0,
    grpcPort: 0,
    watchIntervalMs: 0,
  });
  const base = `http://127.0.0.1:${cp.port}`;
  let backends: Peer | undefined;
  let client: Client | undefined;
  try {
    assert.deepEqual(cp.controlPlane.errors, []);
    backends = new Peer(["backends", "a=127.0.0.2", "b=127.0.0.3", "c=127.0.0.4"]);
    const listening = await backends.next("listening", 0, 20_000);
    const port = Object.fromEntries(
      (listening.backends as Json[]).map((b) => [b.name, { ip: b.ip, port: b.port }]),
    ) as Record<string, { ip: string; port: number }>;
    const register = async (name: string) => {
      const r = await fetch(`${base}/v1/registration/greeter`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          ip: port[name].ip,
          port: port[name].port,
          revision: "r1",
          service_repo_name: "greeter",
          tags: { az: "zone-a" },
        }),
      });
      assert.deepEqual([r.status, await r.text()], [200, "OK"]);
    };
    await register("a");
    await register("b");

    client = new Client("xds:///greeter", {
      xds_servers: [{
        server_uri: `127.0.0.1:${cp.grpcPort}`,
        channel_creds: [{ type: "insecure" }],
        server_features: ["xds_v3"],
      }],
      node: { id: "web-1", cluster: "web", locality: { zone: "zone-a" } },
    });
    // the first calls wait for LDS, CDS and EDS (and for both backends to connect); then 20 calls
    // round-robin over a and b
    await client.batch(1, 15_000);
    await until(client, "a and b to both get traffic", (t) => t.has("a") && t.has("b"));
    const first = await client.batch(20);
    assert.deepEqual([...first.keys()].sort(), ["a", "b"], JSON.stringify([...first]));
    assert.deepEqual(first.get("a"), 10, "round robin: a gets every other call");
    assert.deepEqual(first.get("b"), 10);

    // a third backend registered gets traffic within seconds
    const t0 = Date.now();
    await register("c");
    await until(client, "c to get traffic", (t) => t.has("c"));
    const tRegister = Date.now() - t0;
    const three = await client.batch(30);
    assert.deepEqual([...three.keys()].sort(), ["a", "b", "c"], JSON.stringify([...three]));
    for (const n of ["a", "b", "c"]) {
      assert.deepEqual(three.get(n), 10, `${n}: ${JSON.stringify([...three])}`);
    }

    // a deregistered backend (the registry keys hosts by ip: a is alone on 127.0.0.2) stops getting traffic
    const t1 = Date.now();
    const d = await fetch(`${base}/v1/registration/greeter/${port.a.ip}`, { method: "DELETE" });
    assert.deepEqual(await d.json(), { removed: 1 });
    await until(client, "a to stop getting traffic", (t) => !t.has("a"));
    const tDeregister = Date.now() - t1;
    const two = await client.batch(20);
    assert.deepEqual([...two.keys()].sort(), ["b", "c"], JSON.stringify([...two]));

    // the mesh report: web-1 ACKed the Listener, Cluster and ClusterLoadAssignment it was sent, no NACK
    let report: Json;
    let proxy: Json;
    const end = Date.now() + 5000;
    for (;;) {
      report = await (await fetch(`${base}/mesh?format=json`)).json();
      proxy = report.proxies.find((p: Json) => p.id === "web-1");
      const types = ["Listener", "Cluster", "ClusterLoadAssignment"];
      if (proxy && types.every((t) => proxy.types[t]?.up_to_date)) break;
      if (Date.now() > end) {
        throw new Error(`web-1 not up to date in the mesh report: ${JSON.stringify(report, null, 2)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(report.nacks, [], "NACKs");
    assert.deepEqual(proxy.cluster, "web");
    assert.deepEqual(proxy.connected, true);
    assert.deepEqual(proxy.transports, ["ads"]);
    // the API listener's route_config is inline: no RDS
    assert.deepEqual(Object.keys(proxy.types).sort(), ["Cluster", "ClusterLoadAssignment", "Listener"]);
    for (const [t, s] of Object.entries(proxy.types as Record<string, Json>)) {
      assert.ok(s.nacked === undefined, `${t} NACKed: ${JSON.stringify(s.nacked)}`);
      assert.ok(s.acked !== null, `${t} not ACKed`);
    }
    const greeter = report.services.find((s: Json) => s.service === "greeter");
    assert.deepEqual(greeter.hosts, 2);
    console.log(
      `grpc-js-xds (${proxy.user_agent}): types ${Object.keys(proxy.types).join(", ")}; ` +
        `new host served after ${tRegister} ms, removed host gone after ${tDeregister} ms; ` +
        `${Date.now() - started} ms in all`,
    );
  } finally {
    await client?.peer.close();
    await backends?.close();
    await cp.close();
    await Deno.remove(dir, { recursive: true });
  }
});
