/**
 * The thin client end to end: three services chained A -> B -> C (-> D) through nuncio egress listeners,
 * each calling the next with `Host: <service>`:
 * - A: Hono in Deno (src/client/examples/hono_service.ts) with the TS client's middleware;
 * - B: Python 3.11 stdlib WSGI (src/client/python/example_service.py) with nuncio_client.py;
 * - C: Node 20 (src/client/examples/node_service.mjs) importing the same client files as A;
 * - D: a recording origin.
 * The x-request-id and trace headers given to A arrive unchanged at B, C and D; the client's timeout and
 * retry headers reach nuncio and take effect (a 503 once is retried for GET, not for POST; timeouts fire).
 */
import assert from "node:assert/strict";
import { build } from "../src/control_plane/builder.ts";
import { defaultsSchema, manifestSchema } from "../src/control_plane/inputs.ts";
import { NuncioClient, withIncoming } from "../src/client/index.js";
import { createApp } from "../src/client/examples/hono_service.ts";
import {
  bootstrapYaml,
  httpListener,
  type Origin,
  restartablePort,
  startOrigin,
  startProxy,
  staticCluster,
} from "./helpers.ts";

const PYTHON = "/usr/bin/python3";
const B_SERVICE = new URL("../src/client/python/example_service.py", import.meta.url).pathname;
const C_SERVICE = new URL("../src/client/examples/node_service.mjs", import.meta.url).pathname;

const TRACE: Record<string, string> = {
  "x-request-id": "4bf92f35-77b3-4da6-a3ce-929d0e0e4736",
  "x-b3-traceid": "463ac35c9f6413ad48485a3953bb6124",
  "x-b3-spanid": "a2fb4a1d1a96d312",
  "x-b3-parentspanid": "0020000000000001",
  "x-b3-sampled": "1",
  "b3": "463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-1",
  "traceparent": "00-463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-01",
  "tracestate": "rojo=00f067aa0ba902b7",
  "x-ot-span-context": "463ac35c9f6413ad;a2fb4a1d1a96d312;0000000000000000;cs",
  "x-client-trace-id": "client-42",
  "x-envoy-force-trace": "true",
};

/** A service in a subprocess that prints `PORT <n>` once listening. */
interface Service extends AsyncDisposable {
  port: number;
  stderr(): string;
}

async function spawnService(
  cmd: string,
  args: string[],
  env: Record<string, string>,
): Promise<Service> {
  const proc = new Deno.Command(cmd, {
    args,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let err = "";
  const errDone = proc.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (c) => void (err += c) }),
  );
  const lines = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  let port = 0;
  const deadline = setTimeout(() => proc.kill("SIGKILL"), 15_000);
  while (!port) {
    const { value, done } = await lines.read();
    if (done) break;
    out += value;
    const m = /PORT (\d+)/.exec(out);
    if (m) port = Number(m[1]);
  }
  clearTimeout(deadline);
  const outDone = (async () => {
    while (!(await lines.read()).done) { /* drain */ }
  })();
  const close = async () => {
    try {
      proc.kill("SIGTERM");
    } catch { /* already gone */ }
    await proc.status;
    await outDone;
    await errDone;
  };
  if (!port) {
    await close();
    throw new Error(`${cmd} ${args.join(" ")} did not start:\n${err}`);
  }
  return { port, stderr: () => err, [Symbol.asyncDispose]: close };
}

/** D: answers the headers it received as JSON (`received`), like the other services. */
function startD(): Origin {
  return startOrigin("d", (_req, seen) => {
    if (seen.path.startsWith("/fail")) {
      return new Response("nope", { status: 503 });
    }
    return Response.json({
      service: "d",
      received: Object.fromEntries(seen.headers),
    });
  });
}

/** The egress listener as the control plane shapes it: one virtual host per upstream, routing by Host. */
function egressListener(upstreams: string[], hcm: Record<string, unknown>) {
  const l = httpListener({
    name: "egress",
    statPrefix: "egress",
    virtualHosts: upstreams.map((s) => ({
      name: s,
      domains: [s],
      routes: [{
        match: { prefix: "/" },
        // a route retry policy the client's x-envoy-max-retries: 0 must override for a POST
        route: {
          cluster: s,
          timeout: "5s",
          retry_policy: { retry_on: "5xx", num_retries: 3 },
        },
      }],
    })),
    hcm,
  });
  return l;
}

Deno.test("thin client: A (Hono/Deno) -> B (Python) -> C (Node) -> D through nuncio keeps ids and trace headers; retries and timeouts take effect", async () => {
  const egressPort = restartablePort();
  const egress = `127.0.0.1:${egressPort}`;
  await using d = startD();
  await using c = await spawnService("node", [C_SERVICE], {
    NUNCIO_EGRESS: egress,
    NEXT_SERVICE: "d",
    SERVICE_NAME: "c",
    PORT: "0",
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
  });
  await using b = await spawnService(PYTHON, ["-B", B_SERVICE], {
    NUNCIO_EGRESS: egress,
    NEXT_SERVICE: "c",
    SERVICE_NAME: "b",
    PORT: "0",
  });
  const listener = egressListener(["b", "c", "d"], {
    use_remote_address: true,
  });
  (listener.address as { socket_address: { port_value: number } })
    .socket_address.port_value = egressPort;
  await using proxy = await startProxy(bootstrapYaml(
    [listener],
    [
      staticCluster("b", [b.port]),
      staticCluster("c", [c.port]),
      staticCluster("d", [d.port]),
    ],
  ));
  const aClient = new NuncioClient({ egress });
  const a = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    createApp(aClient, "b").fetch,
  );
  try {
    const aUrl = `http://127.0.0.1:${a.addr.port}`;

    // 1. the chain: every hop gets the ids and trace context given to A
    const res = await fetch(`${aUrl}/chain/items?id=7`, { headers: TRACE });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.request_id, TRACE["x-request-id"]);
    const atB = body.next;
    const atC = atB.next;
    const atD = atC.next;
    assert.deepEqual([atB.service, atC.service, atD.service], ["b", "c", "d"]);
    assert.match(atC.runtime, /^node v20\./);
    for (const [k, v] of Object.entries(TRACE)) {
      assert.equal(atB.received[k], v, `B: ${k}`);
      assert.equal(atC.received[k], v, `C: ${k}`);
      assert.equal(atD.received[k], v, `D: ${k}`);
    }
    assert.equal(atB.request_id, TRACE["x-request-id"]);
    assert.equal(atC.request_id, TRACE["x-request-id"]);
    // the policy headers steered nuncio and stopped there (the router removes them)
    for (
      const h of [
        "x-envoy-max-retries",
        "x-envoy-retry-on",
        "x-envoy-upstream-rq-timeout-ms",
      ]
    ) {
      assert.equal(atD.received[h], undefined, h);
      assert.equal(atC.received[h], undefined, h);
    }
    // each hop came through the egress listener with its Host
    assert.equal(atD.received.host, "d");
    assert.equal(atD.received["x-envoy-internal"], "true");

    // 2. GET: B answers 503 once; the client's x-envoy-max-retries/x-envoy-retry-on make nuncio retry it
    const before = proxy.stat("cluster.b.upstream_rq_retry");
    const retried = await fetch(`${aUrl}/chain/retry?fail_once=g1`, {
      headers: { "x-request-id": "retry-1" },
    });
    const rb = await retried.json();
    assert.equal(retried.status, 200, JSON.stringify(rb));
    assert.equal(rb.next.attempts, 2, "B saw the failed attempt and the retry");
    assert.equal(rb.next.request_id, "retry-1");
    assert.equal(rb.next.next.next.received["x-request-id"], "retry-1");
    assert.equal(proxy.stat("cluster.b.upstream_rq_retry") - before, 1);

    // 3. POST: not idempotent, so x-envoy-max-retries: 0 beats the route's retry_policy (num_retries 3)
    const posted = await fetch(`${aUrl}/orders?fail_once=p1`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ item: 1 }),
    });
    const pb = await posted.json();
    assert.equal(posted.status, 502);
    assert.equal(pb.next_status, 503);
    assert.equal(
      pb.outcome.reason,
      "upstream",
      "B's own 503, passed on by nuncio",
    );
    assert.equal(
      proxy.stat("cluster.b.upstream_rq_retry") - before,
      1,
      "no retry for the POST",
    );

    // 4. timeouts from the client's headers: global and per try, answered by nuncio (504, no service time)
    const t0 = performance.now();
    const timedOut = await aClient.call("c", "/slow?ms=3000", {
      timeoutMs: 300,
    });
    await timedOut.body?.cancel();
    const { proxyOutcome } = await import("../src/client/index.js");
    assert.equal(timedOut.status, 504);
    assert.equal(proxyOutcome(timedOut).reason, "timeout");
    assert.ok(
      performance.now() - t0 < 2500,
      "the 300 ms timeout, not the route's 5 s",
    );
    assert.equal(proxy.stat("cluster.c.upstream_rq_timeout"), 1);

    const perTry = await aClient.call("c", "/slow?ms=3000", {
      timeoutMs: 4000,
      perTryTimeoutMs: 200,
      retries: 1,
    });
    await perTry.body?.cancel();
    assert.equal(perTry.status, 504);
    assert.equal(
      proxy.stat("cluster.c.upstream_rq_per_try_timeout"),
      2,
      "first try and its retry",
    );
  } finally {
    aClient.close();
    await a.shutdown();
  }
  assert.equal(b.stderr(), "");
  assert.equal(c.stderr(), "");
});

Deno.test("thin client: through the egress listener the control plane generates", async () => {
  const egressPort = restartablePort();
  await using target = startOrigin("b", (_req, seen) => {
    const n = target.requests.filter((r) => r.path === seen.path).length;
    if (seen.path.startsWith("/fail-once") && n === 1) {
      return new Response("not yet", { status: 503 });
    }
    return Response.json({ received: Object.fromEntries(seen.headers) });
  });
  const built = build({
    defaults: defaultsSchema.parse({ egress_port: egressPort }),
    manifests: new Map([
      [
        "a",
        manifestSchema.parse({
          service: "a",
          port: 1,
          upstreams: [{ service: "b" }],
        }),
      ],
      ["b", manifestSchema.parse({ service: "b", port: 2 })],
    ]),
  });
  const node = built.nodes.get("a")!;
  const generated = structuredClone(
    node.listeners.find((l) => l.name === "egress")!,
  );
  const route = node.routes.find((r) => r.name === "egress")!;
  // as configgen does: the RDS reference becomes the inline route configuration; the EDS cluster a static one
  // deno-lint-ignore no-explicit-any
  const hcm = (generated as any).filter_chains[0].filters[0].typed_config;
  delete hcm.rds;
  hcm.route_config = route;
  const run = async (path: string, client: NuncioClient) =>
    await withIncoming(
      { "x-request-id": "gen-1", traceparent: "00-ab-cd-01" },
      async () => {
        const res = await client.call("b", path);
        return { status: res.status, body: await res.json().catch(() => null) };
      },
    );

  const client = new NuncioClient({ egress: `127.0.0.1:${egressPort}` });
  try {
    // the builder's egress has use_remote_address: true, so the local service's loopback address is internal
    // and its policy headers and request id go through (without it both would be dropped as external)
    assert.equal(hcm.use_remote_address, true);
    await using proxy = await startProxy(
      bootstrapYaml([generated], [staticCluster("b", [target.port])]),
    );
    const r = await run("/fail-once/2", client);
    assert.equal(r.status, 200);
    assert.equal(r.body.received["x-request-id"], "gen-1");
    assert.equal(r.body.received.traceparent, "00-ab-cd-01");
    assert.equal(r.body.received.host, "b");
    assert.equal(proxy.stat("cluster.b.upstream_rq_retry"), 1);
  } finally {
    client.close();
  }
});
