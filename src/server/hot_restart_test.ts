import assert from "node:assert/strict";
import { StatsStore } from "../stats/store.ts";
import {
  dynamicBaseId,
  HOT_RESTART_VERSION,
  HotRestartServer,
  listenDomainSocket,
  ParentLink,
  ParentStatsMerger,
  socketPathOf,
} from "./hot_restart.ts";

Deno.test("hot restart stats: counters grow by the parent's deltas; its gauges leave with it", () => {
  const child = new StatsStore();
  child.counter("http.edge.downstream_rq_total").inc(5);
  child.gauge("http.edge.downstream_cx_active").set(2);
  const m = new ParentStatsMerger(child);
  const snap = (rq: number, active: number) => ({
    counters: { "http.edge.downstream_rq_total": rq },
    gauges: {
      "http.edge.downstream_cx_active": active,
      "server.uptime": 99,
      "cluster.c.membership_total": 3,
    },
    histograms: {},
    neverImport: ["cluster.c.membership_total"],
  });
  m.merge(snap(100, 7));
  assert.equal(child.counter("http.edge.downstream_rq_total").value, 105);
  assert.equal(child.gauge("http.edge.downstream_cx_active").value, 9);
  m.merge(snap(130, 1));
  assert.equal(child.counter("http.edge.downstream_rq_total").value, 135);
  assert.equal(child.gauge("http.edge.downstream_cx_active").value, 3);
  // never_import and server.* gauges stay the child's own
  assert.equal(child.gauges.get("cluster.c.membership_total"), undefined);
  assert.equal(child.gauges.get("server.uptime"), undefined);
  // a parent /reset_counters: counting resumes from its new value
  m.merge(snap(10, 1));
  m.merge(snap(15, 1));
  assert.equal(child.counter("http.edge.downstream_rq_total").value, 140);
  m.parentGone();
  assert.equal(child.gauge("http.edge.downstream_cx_active").value, 2);
});

Deno.test("hot restart socket: a live one refuses a second process, a stale file is replaced", async () => {
  const dir = await Deno.makeTempDir();
  const prefix = `${dir}/hr`;
  const path = socketPathOf(prefix, 4, 0);
  assert.equal(path, `${prefix}_4_0`);
  const first = await listenDomainSocket(path, 0o600, 4);
  assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
  await assert.rejects(() => listenDomainSocket(path, 0o600, 4), /base id 4 already runs this epoch/);
  assert.equal(await dynamicBaseId(prefix, 4), 5);
  first.close();
  // the file stays behind (a crash): the next process takes the path over
  const again = await listenDomainSocket(path, 0o600, 4);
  again.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("hot restart protocol: hello, admin, stats, drain and the last stats", async () => {
  const dir = await Deno.makeTempDir();
  const prefix = `${dir}/hr`;
  const path = socketPathOf(prefix, 0, 0);
  const events: string[] = [];
  let finish!: () => void;
  const drained = new Promise<void>((r) => finish = r);
  const server = new HotRestartServer(await listenDomainSocket(path, 0o600, 0), path, {
    epoch: 0,
    generation: 4,
    startedAt: 1234,
    closeAdmin: () => {
      events.push("admin closed");
      return Promise.resolve();
    },
    reopenAdmin: () => {
      events.push("admin reopened");
      return Promise.resolve();
    },
    stats: () => Promise.resolve({ counters: { a: 1 }, gauges: {}, histograms: {} }),
    drain: async () => {
      events.push("draining");
      await drained;
      return { counters: { a: 9 }, gauges: {}, histograms: {} };
    },
  });
  // a successor that goes away before the drain: admin is served again
  const early = await ParentLink.connect(prefix, 0, 1);
  assert.ok(early);
  assert.equal(early.hello.version, HOT_RESTART_VERSION);
  await early.shutdownAdmin();
  early.close();
  for (let i = 0; i < 100 && !events.includes("admin reopened"); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.deepEqual(events, ["admin closed", "admin reopened"]);

  const link = await ParentLink.connect(prefix, 0, 1);
  assert.ok(link);
  assert.equal(link.hello.generation, 4);
  assert.equal(link.hello.startedAt, 1234);
  assert.equal((await link.stats()).counters.a, 1);
  await link.drain();
  // its socket is gone: nobody else takes over from a draining process
  assert.throws(() => Deno.statSync(path));
  const seen: number[] = [];
  const following = link.follow((s) => seen.push(s.counters.a), 20);
  await new Promise((r) => setTimeout(r, 70));
  finish();
  assert.equal(await following, true);
  await server.handedOver;
  assert.ok(seen.length >= 2, `${seen}`);
  assert.equal(seen.at(-1), 9);
  assert.ok(seen.slice(0, -1).every((v) => v === 1));
  // no process at an epoch: the successor starts on its own
  assert.equal(await ParentLink.connect(prefix, 0, 5), undefined);
  await Deno.remove(dir, { recursive: true });
});
