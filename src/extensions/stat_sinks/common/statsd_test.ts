import assert from "node:assert/strict";
import { Logger } from "../../../common/log.ts";
import { StatsStore } from "../../../stats/store.ts";
import { TagProducer } from "../../../stats/tags.ts";
import { flushLines, tagSuffix, udpSinkFactory, UdpStatsdWriter } from "./statsd.ts";

/** A UDP socket collecting datagrams as text. */
function receiver(): { port: number; got: string[]; next(n: number): Promise<string[]>; close(): void } {
  const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const got: string[] = [];
  const dec = new TextDecoder();
  const loop = (async () => {
    try {
      for await (const [data] of sock) got.push(dec.decode(data));
    } catch {
      // closed
    }
  })();
  return {
    port: (sock.addr as Deno.NetAddr).port,
    got,
    async next(n) {
      const deadline = Date.now() + 3000;
      while (got.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      return got.slice(0, n);
    },
    close() {
      sock.close();
      void loop;
    },
  };
}

const tags = new TagProducer({ statsTags: [{ tag_name: "env", fixed_value: "test" }] });
const m = {
  counters: [{ name: "cluster.web.upstream_rq_200", delta: 3 }, {
    name: "http.in.downstream_rq_total",
    delta: 0,
  }],
  gauges: [{ name: "server.live", value: 1 }],
};

Deno.test("statsd lines: full names without tags; dogstatsd: tag-extracted names and |#tags", () => {
  assert.deepEqual(flushLines({ prefix: "envoy", tags: null }, m), [
    "envoy.cluster.web.upstream_rq_200:3|c",
    "envoy.http.in.downstream_rq_total:0|c",
    "envoy.server.live:1|g",
  ]);
  assert.deepEqual(flushLines({ prefix: "p", tags }, m), [
    "p.cluster.upstream_rq:3|c|#envoy.response_code:200,env:test,envoy.cluster_name:web",
    "p.http.downstream_rq_total:0|c|#env:test,envoy.http_conn_manager_prefix:in",
    "p.server.live:1|g|#env:test",
  ]);
  assert.equal(tagSuffix([]), "");
});

Deno.test("UdpStatsdWriter batches lines up to the datagram budget, in order", async () => {
  const r = receiver();
  const w = new UdpStatsdWriter({ hostname: "127.0.0.1", port: r.port }, 20);
  // "a:1|c" (5) + "\n" + "bb:2|c" (6) = 12; + "\n" + "ccc:3|c" (7) = 20: fits exactly
  w.writeAll(["a:1|c", "bb:2|c", "ccc:3|c", "d:4|c", "a_line_much_too_long:1|c", "e:5|c"]);
  const got = await r.next(3);
  await w.close();
  r.close();
  // Envoy's writeBuffer: a line as long as the budget goes alone at once, before what is buffered
  assert.deepEqual(got, ["a:1|c\nbb:2|c\nccc:3|c", "a_line_much_too_long:1|c", "d:4|c\ne:5|c"]);
});

Deno.test("UdpStatsdWriter without a budget sends one line per datagram", async () => {
  const r = receiver();
  const w = new UdpStatsdWriter({ hostname: "127.0.0.1", port: r.port });
  w.writeAll(["a:1|c", "b:2|g"]);
  const got = await r.next(2);
  await w.close();
  r.close();
  assert.deepEqual(got.sort(), ["a:1|c", "b:2|g"]);
});

Deno.test("histogram writer: each recorded value as a |ms timer, whole milliseconds", async () => {
  const r = receiver();
  const f = udpSinkFactory((port: number) => ({
    target: { hostname: "127.0.0.1", port },
    prefix: "",
    useTags: true,
    bufferSize: 0,
  }));
  const s = new StatsStore();
  const w = f.createHistogramWriter!(r.port, {
    tags,
    log: new Logger("stats"),
    stats: s,
    clusters: () => undefined,
  });
  s.configure({ onHistogram: (h, v) => w.record(h, v) });
  s.histogram("cluster.web.upstream_rq_time").record(12.7);
  s.histogram("cluster.web.upstream_rq_time").record(0.2);
  const got = await r.next(2);
  await w.close();
  r.close();
  assert.deepEqual(got.sort(), [
    "envoy.cluster.upstream_rq_time:0|ms|#env:test,envoy.cluster_name:web",
    "envoy.cluster.upstream_rq_time:12|ms|#env:test,envoy.cluster_name:web",
  ]);
});
