/** The CLI as a subprocess: --version, --help, --mode validate, and --concurrency 2 serving real traffic. */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import {
  anyHost,
  curl,
  httpListener,
  refusedPort,
  run,
  sleep,
  startOrigin,
  staticCluster,
} from "./helpers.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const deno = (args: string[]) =>
  run(Deno.execPath(), ["run", "-A", MAIN, ...args], undefined, { NO_COLOR: "1" });

async function tempConfig(text: string): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "nuncio_cli_", suffix: ".yaml" });
  await Deno.writeTextFile(path, text);
  return path;
}

const GOOD = stringify({
  static_resources: {
    listeners: [
      httpListener({ virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "web" } }])] }),
    ],
    clusters: [staticCluster("web", [8080])],
  },
}).replaceAll("$LOG", "/dev/null");

Deno.test("cli: --version and --help", async () => {
  const v = await deno(["--version"]);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^nuncio version: ([0-9a-f]{40}|unknown)\/\d+\.\d+\.\d+\/dev\/RELEASE \(deno /);
  const h = await deno(["--help"]);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /Usage:/);
  assert.match(h.stdout, /--mode serve\|validate/);
  const bad = await deno(["--bogus"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /Unknown argument "--bogus"/);
});

Deno.test("cli: --mode validate", async (t) => {
  await t.step("a good config exits 0", async () => {
    const path = await tempConfig(GOOD);
    try {
      const r = await deno(["--mode", "validate", "-c", path]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /OK/);
    } finally {
      await Deno.remove(path);
    }
  });

  await t.step("a bad lb_policy exits 1 with file:line:col and the field path", async () => {
    const path = await tempConfig(GOOD.replace("type: STATIC", "type: STATIC\n      lb_policy: BOGUS"));
    try {
      const r = await deno(["--mode", "validate", "-c", path]);
      assert.equal(r.code, 1);
      const line = GOOD.split("\n").findIndex((l) => l.includes("type: STATIC")) + 2;
      assert.match(r.stderr, new RegExp(`${path.replaceAll("/", "\\/")}:${line}:\\d+`), r.stderr);
      assert.match(r.stderr, /static_resources\.clusters\[0\]\.lb_policy/);
    } finally {
      await Deno.remove(path);
    }
  });
});

/** Polls until something accepts on `port` (bounded). */
async function waitForPort(port: number, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`Nothing listens on ${port}`);
      await sleep(50);
    }
  }
}

Deno.test("cli: --concurrency 2 serves requests and aggregates stats", async () => {
  await using origin = startOrigin("web");
  const port = refusedPort();
  const adminPort = refusedPort();
  const listener = httpListener({
    statPrefix: "ingress",
    virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "web" } }])],
  });
  (listener.address as { socket_address: { port_value: number } }).socket_address.port_value = port;
  const text = stringify({
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: adminPort } } },
    static_resources: { listeners: [listener], clusters: [staticCluster("web", [origin.port])] },
  }).replaceAll("$LOG", "/dev/null");
  const path = await tempConfig(text);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "-c", path, "--concurrency", "2", "--log-level", "warn"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  try {
    await waitForPort(port);
    for (let i = 0; i < 20; i++) {
      const r = await curl(["-o", "/dev/null", "-w", "%{http_code}", `http://127.0.0.1:${port}/r${i}`]);
      assert.equal(r.stdout, "200");
    }
    assert.equal(origin.requests.length, 20);
    await waitForPort(adminPort);
    let counters: Record<string, number> = {};
    for (let i = 0; i < 50; i++) {
      const r = await curl([`http://127.0.0.1:${adminPort}/stats?format=json`]);
      const doc = JSON.parse(r.stdout) as { stats: { name?: string; value?: number }[] };
      counters = Object.fromEntries(doc.stats.filter((s) => s.name).map((s) => [s.name!, s.value!]));
      if (counters["http.ingress.downstream_rq_2xx"] === 20) break;
      await sleep(100); // worker stats are merged periodically
    }
    assert.equal(counters["http.ingress.downstream_rq_2xx"], 20);
    assert.equal(counters["cluster.web.upstream_rq_200"], 20);
    // 20 curl connections plus the readiness probe of waitForPort
    assert.equal(counters["http.ingress.downstream_cx_total"], 21);
  } finally {
    child.kill("SIGTERM");
    const status = await child.status;
    const err = await stderr;
    await Deno.remove(path);
    assert.equal(status.code, 0, err);
  }
});
