/** `--log-level debug` explains a request's decisions on stderr; at info nothing of it is printed. */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { scriptedOrigin } from "./fault_peers.ts";
import {
  anyHost,
  curlStatus,
  httpListener,
  refusedPort,
  spawnNuncio,
  staticCluster,
  waitForPort,
} from "./helpers.ts";

const LRL_TYPE = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";

function config(port: number, origin: number): string {
  const listener = httpListener({
    virtualHosts: [anyHost([{
      name: "retry_route",
      match: { prefix: "/" },
      route: { cluster: "web", retry_policy: { retry_on: "5xx", num_retries: 1 } },
    }])],
  });
  (listener.address as { socket_address: { port_value: number } }).socket_address.port_value = port;
  const chain = (listener.filter_chains as Record<string, unknown>[])[0];
  chain.name = "main_chain";
  const hcm = (chain.filters as { typed_config: { http_filters: unknown[] } }[])[0].typed_config;
  // a local rate limit without a token bucket: it skips every request
  hcm.http_filters.unshift({
    name: "envoy.filters.http.local_ratelimit",
    typed_config: { "@type": LRL_TYPE, stat_prefix: "lrl" },
  });
  return stringify({
    static_resources: { listeners: [listener], clusters: [staticCluster("web", [origin])] },
  }).replaceAll("$LOG", "/dev/null");
}

/** Runs main.ts at `level`, sends one request that is retried once, returns stderr. */
async function runOnce(level: string): Promise<string> {
  await using origin = scriptedOrigin([{ status: 503 }, { status: 200, body: "ok" }]);
  const port = refusedPort();
  const path = await Deno.makeTempFile({ prefix: "nuncio_debug_", suffix: ".yaml" });
  await Deno.writeTextFile(path, config(port, origin.port));
  const child = spawnNuncio(["-c", path, "--concurrency", "1", "--log-level", level]);
  try {
    await waitForPort(port);
    const r = await curlStatus(`http://127.0.0.1:${port}/x`);
    assert.equal(r.stdout, "200");
    assert.equal(origin.requests.length, 2);
  } finally {
    child.proc.kill("SIGTERM");
    await child.proc.status;
    await Deno.remove(path);
  }
  return await child.stderr;
}

Deno.test("debug log: a request's decisions, with connection and stream ids", async (t) => {
  await t.step(
    "debug names the chain, vhost, route, cluster, host, the retry and the filter skip",
    async () => {
      const err = await runOnce("debug");
      const has = (re: RegExp) => assert.match(err, re, err);
      has(
        /\[C\d+\] new connection from 127\.0\.0\.1:\d+ on listener 'http'; filter chain 'main_chain' chosen/,
      );
      has(/\[C\d+\]\[S\d+\] new stream: GET \/x HTTP\/1\.1/);
      has(
        /\[C\d+\]\[S\d+\] virtual host 'any' route 'retry_route' \(#0 prefix '\/'\) route matched URL '\/x'/,
      );
      has(
        /\[C\d+\]\[S\d+\] local_ratelimit \(envoy\.filters\.http\.local_ratelimit\) skips the request: no token bucket/,
      );
      has(/\[C\d+\]\[S\d+\] cluster 'web' match for URL '\/x'/);
      has(
        /\[C\d+\]\[S\d+\] host 127\.0\.0\.1:\d+ chosen by the load balancer of cluster 'web' \(attempt 1\)/,
      );
      has(
        /\[C\d+\]\[S\d+\] performing retry: retry_on '5xx' matched upstream status 503, retry 1, backoff \d+ ms/,
      );
      has(
        /\[C\d+\]\[S\d+\] host 127\.0\.0\.1:\d+ chosen by the load balancer of cluster 'web' \(attempt 2\)/,
      );
    },
  );

  await t.step("info prints none of it", async () => {
    const err = await runOnce("info");
    assert.doesNotMatch(err, /\[debug\]|\[C\d+\]/, err);
  });
});
