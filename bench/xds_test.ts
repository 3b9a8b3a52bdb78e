import assert from "node:assert/strict";
import { findExecutable, findFreePorts, Supervisor } from "./lib.ts";
import type { Env } from "./targets.ts";
import {
  formatXdsReport,
  runXdsBench,
  startMultiOrigin,
  type XdsBenchResult,
  xdsBootstrap,
  xdsChurnRatio,
} from "./xds_bench.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

Deno.test("xds report lines", () => {
  const run = (rps: number) => ({ rps, p50Us: 1, p99Us: 2, requests: 1, socketErrors: 0, non2xx: 0 });
  const target = (key: string, rps: number[]) => ({
    key,
    label: key,
    port: 1,
    runs: rps.map(run),
    median: { rps: rps[0], p50Us: 1, p99Us: 2 },
    errors: 0,
  });
  const r: XdsBenchResult = {
    clusters: 1000,
    endpoints: 10000,
    warm: { ms: 1234.4, edsRequestMs: 100, edsAckMs: 1000, rssKiB: 102400 },
    updates: { done: 1000, cds: 100, eds: 900, ms: 20000, firstRssKiB: 100 * 1024, lastRssKiB: 105 * 1024 },
    static: target("nuncio-eds-static", [1000, 1000]),
    churn: target("nuncio-eds-churn", [950, 870]),
    churnPushed: 20,
    churnAcked: 20,
    churnMs: 100,
    errors: [],
  };
  assert.ok(Math.abs(xdsChurnRatio(r).value - 0.91) < 1e-9);
  const text = formatXdsReport(r);
  assert.match(text, /^xds warm 1000 clusters \/ 10000 endpoints \(ADS\) = 1234 ms, RSS after = 100\.0 MB/);
  assert.match(
    text,
    /ratio xds nuncio-eds-churn\/nuncio-eds-static = 0\.91 \(target >= 0\.90\) PASS {2}\[rounds: 0.95 0.87\]/,
  );
  assert.match(text, /xds RSS after 1000 updates \/ after first = 1\.05 \(target <= 1\.10\) PASS/);
  assert.match(xdsBootstrap(9901, 18000), /port_value: 18000/);
});

// A small end-to-end run: ADS server, nuncio, warm, a few versions, one short churn round.
const tools = findExecutable("nginx") && findExecutable("wrk");
Deno.test({
  name: "xds bench smoke (20 clusters, 10 versions, one 1 s round)",
  ignore: !tools,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "nuncio-xds-test-" });
    const sup = new Supervisor();
    try {
      const env: Env = {
        dir,
        sup,
        bins: { nginx: findExecutable("nginx")!, haproxy: "haproxy" },
        nofile: 4096,
      };
      const origins = findFreePorts(3);
      await startMultiOrigin(env, origins);
      const r = await runXdsBench(env, {
        launch: { root: ROOT },
        root: ROOT,
        clusters: 20,
        endpoints: 60,
        updates: 10,
        origins,
        rounds: 1,
        durationS: 1,
        warmupS: 0,
        connections: 8,
        threads: 1,
      });
      assert.deepEqual(r.errors, []);
      assert.ok(r.warm && r.warm.ms > 0 && r.warm.rssKiB > 0);
      assert.equal(r.updates?.done, 10);
      assert.equal(r.static?.runs.length, 1);
      assert.equal(r.churn?.runs.length, 1);
      assert.ok(r.churnPushed > 0, "EDS versions were pushed during the churn round");
      assert.equal((r.static?.errors ?? 0) + (r.churn?.errors ?? 0), 0);
      assert.deepEqual(sup.live().map((p) => p.name), ["xds-origin"], "nuncio and the ADS server stopped");
    } finally {
      await sup.dispose();
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
