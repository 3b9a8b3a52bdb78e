import assert from "node:assert/strict";
import { escapeLabelValue, formatPrometheus, prometheusName } from "./prometheus.ts";
import { mergeSnapshots, StatsStore } from "./store.ts";

function sample(): StatsStore {
  const s = new StatsStore();
  s.counter("cluster.backend.upstream_rq_total").inc(7);
  s.counter("cluster.backend.upstream_rq_200").inc(5);
  s.counter("cluster.backend.upstream_rq_503").inc(2);
  s.counter("cluster.backend.upstream_rq_2xx").inc(5);
  s.counter("cluster.other.upstream_rq_total").inc(1);
  s.counter("http.ingress.downstream_rq_total").inc(7);
  s.counter("listener.0.0.0.0_8080.downstream_cx_total").inc(4);
  s.counter("weird-name:with$chars").inc();
  s.gauge("cluster.backend.membership_healthy").set(3);
  s.gauge("server.memory_allocated").set(-1);
  const h = s.histogram("cluster.backend.upstream_rq_time");
  for (const v of [0.2, 3, 3, 70, 7000]) h.record(v);
  s.histogram("http.ingress.downstream_rq_time").record(12);
  return s;
}

Deno.test("prometheus conversion", async (t) => {
  const text = formatPrometheus(mergeSnapshots([sample().snapshot(), sample().snapshot()]));
  await t.step("names and labels", () => {
    assert.equal(prometheusName("a.b-c"), "envoy_a_b_c");
    assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
    assert.ok(text.includes("# TYPE envoy_cluster_upstream_rq_total counter\n"));
    assert.ok(text.includes('envoy_cluster_upstream_rq_total{envoy_cluster_name="backend"} 14\n'));
    assert.ok(text.includes('envoy_cluster_upstream_rq_total{envoy_cluster_name="other"} 2\n'));
    assert.ok(
      text.includes('envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="backend"} 10\n'),
    );
    assert.ok(
      text.includes(
        'envoy_cluster_upstream_rq_xx{envoy_response_code_class="2",envoy_cluster_name="backend"} 10\n',
      ),
    );
    assert.ok(text.includes('envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="ingress"} 14\n'));
    assert.ok(text.includes('envoy_listener_downstream_cx_total{envoy_listener_address="0.0.0.0_8080"} 8\n'));
    assert.ok(text.includes("envoy_weird_name_with_chars 2\n"));
    assert.ok(
      text.includes("# TYPE envoy_server_memory_allocated gauge\nenvoy_server_memory_allocated -2\n"),
    );
    assert.equal(text.match(/# TYPE envoy_cluster_upstream_rq_total /g)?.length, 1);
  });
  await t.step("histograms are cumulative with +Inf, sum and count", () => {
    assert.ok(text.includes("# TYPE envoy_cluster_upstream_rq_time histogram\n"));
    const b = (le: string) => {
      const m = new RegExp(
        `envoy_cluster_upstream_rq_time_bucket\\{envoy_cluster_name="backend",le="${
          le.replace("+", "\\+")
        }"\\} (\\S+)`,
      ).exec(text);
      return m ? Number(m[1]) : NaN;
    };
    assert.equal(b("0.5"), 2);
    assert.equal(b("1"), 2);
    assert.equal(b("5"), 6);
    assert.equal(b("100"), 8);
    assert.equal(b("5000"), 8);
    assert.equal(b("10000"), 10);
    assert.equal(b("3600000"), 10);
    assert.equal(b("+Inf"), 10);
    assert.ok(text.includes('envoy_cluster_upstream_rq_time_sum{envoy_cluster_name="backend"} 14152.4\n'));
    assert.ok(text.includes('envoy_cluster_upstream_rq_time_count{envoy_cluster_name="backend"} 10\n'));
  });
  await t.step("filter and usedonly", () => {
    const s = sample();
    s.counter("cluster.backend.unused");
    const f = formatPrometheus(s.snapshot(), { filter: /membership/, usedOnly: true });
    assert.equal(
      f,
      "# HELP envoy_cluster_membership_healthy cluster.membership_healthy\n" +
        "# TYPE envoy_cluster_membership_healthy gauge\n" +
        'envoy_cluster_membership_healthy{envoy_cluster_name="backend"} 3\n',
    );
    assert.ok(!formatPrometheus(s.snapshot(), { usedOnly: true }).includes("unused"));
  });
  await t.step("promtool accepts the output", async () => {
    const promtool = await findPromtool();
    if (!promtool) {
      if (Deno.env.get("CI") === "true") assert.fail("promtool is missing (apt-get install prometheus)");
      console.warn("promtool not found: skipping");
      return;
    }
    const child = new Deno.Command(promtool, {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(text));
    await w.close();
    const out = await child.output();
    const report = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    // Exit 0 = clean; 3 = lint findings only. The one lint we accept is Envoy's counter naming.
    assert.ok(out.code === 0 || out.code === 3, `promtool exit ${out.code}: ${report}`);
    for (const line of report.split("\n").filter((l) => l.trim())) {
      assert.match(line, /counter metrics should have "_total" suffix$/, line);
    }
  });
});

async function findPromtool(): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      const p = `${dir}/promtool`;
      if ((await Deno.stat(p)).isFile) return p;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}
