import assert from "node:assert/strict";
import { ManualClock } from "../common/clock.ts";
import { StatsStore } from "../stats/store.ts";
import { type AgentLog, RegistrationAgent } from "./agent.ts";
import type { RegistrationOptions } from "./options.ts";

interface Call {
  method: string;
  url: string;
  body?: Record<string, unknown>;
  at: number;
}

/** A scripted registry + health endpoint behind an injected fetch; time from the manual clock. */
function harness(over: Partial<RegistrationOptions> = {}, random: () => number = () => 0.5) {
  const clock = new ManualClock();
  const calls: Call[] = [];
  const lines: string[] = [];
  let registry: number | "hang" | "error" = 200;
  let health: number | "error" = 200;
  const fetch = (url: string, init: RequestInit): Promise<Response> => {
    const method = init.method ?? "GET";
    calls.push({
      method,
      url,
      body: init.body ? JSON.parse(String(init.body)) : undefined,
      at: clock.monotonic(),
    });
    const answer = url.startsWith("http://svc") ? health : registry;
    if (answer === "error") return Promise.reject(new TypeError("Connection refused"));
    if (answer === "hang") {
      return new Promise((_, reject) =>
        init.signal!.addEventListener("abort", () => reject(init.signal!.reason))
      );
    }
    const body = answer === 204 ? null : answer === 200 ? "{}" : "unavailable";
    return Promise.resolve(new Response(body, { status: answer }));
  };
  const log: AgentLog = {
    debug: () => {},
    info: (m) => lines.push(`info ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
  };
  const stats = new StatsStore();
  const agent = new RegistrationAgent({
    service: "users",
    port: 9211,
    ip: "10.0.0.7",
    registryUrl: "http://registry:8080/",
    everyMs: 60_000,
    jitter: 0.1,
    ...over,
  }, { clock, fetch, random, log, stats });
  return {
    clock,
    calls,
    lines,
    agent,
    stats,
    posts: () => calls.filter((c) => c.method === "POST"),
    setRegistry: (a: number | "hang" | "error") => registry = a,
    setHealth: (a: number | "error") => health = a,
    /** Advances time, then lets the attempt that fired finish. */
    advance: async (ms: number) => {
      clock.advance(ms);
      await agent.settled();
    },
  };
}

Deno.test("register agent: checks in at start, then every interval; the body follows the v1 API", async () => {
  const h = harness({ revision: "abc123", repo: "users-svc", tags: { az: "us-east-1a", canary: false } });
  h.agent.start();
  await h.agent.settled();
  assert.equal(h.agent.state, "registered");
  assert.deepEqual(h.calls, [{
    method: "POST",
    url: "http://registry:8080/v1/registration/users",
    body: {
      ip: "10.0.0.7",
      port: 9211,
      revision: "abc123",
      service_repo_name: "users-svc",
      tags: { az: "us-east-1a", canary: false },
    },
    at: 0,
  }]);
  // random 0.5 = no jitter: exactly every 60 s
  await h.advance(59_999);
  assert.equal(h.posts().length, 1);
  await h.advance(1);
  await h.advance(60_000);
  assert.deepEqual(h.posts().map((c) => c.at), [0, 60_000, 120_000]);
  assert.equal(h.stats.counter("register.check_in_ok").value, 3);
  assert.equal(h.stats.gauge("register.registered").value, 1);
  // one line for the start and one for the first check-in, not one per check-in
  assert.equal(h.lines.length, 2);
  assert.match(
    h.lines[0],
    /^info registering users at 10\.0\.0\.7:9211 with http:\/\/registry:8080 every 60s ± 10%/,
  );
  assert.equal(h.lines[1], "info checked in users at 10.0.0.7:9211");
  await h.agent.stop();
});

Deno.test("register agent: jitter keeps each interval within every ± jitter and spreads it", async () => {
  // the extremes first: random 0 -> every - 10 %, random ~1 -> every + 10 %
  const seq = [0, 0.999999];
  let i = 0;
  const h = harness({}, () => seq[i++ % 2]);
  h.agent.start();
  await h.agent.settled();
  await h.advance(54_000);
  await h.advance(66_000);
  assert.deepEqual(h.posts().map((c) => c.at), [0, 54_000, 120_000]);
  await h.agent.stop();

  const r = harness({ everyMs: 10_000, jitter: 0.2 }, Math.random);
  r.agent.start();
  await r.agent.settled();
  // 100 ms steps: an attempt that fires inside a step schedules the next one from the step's end
  for (let n = 0; n < 3000; n++) await r.advance(100);
  const at = r.posts().map((c) => c.at);
  const gaps = at.slice(1).map((t, k) => t - at[k]);
  assert.ok(gaps.length >= 25, `${gaps.length} check-ins`);
  for (const g of gaps) assert.ok(g >= 8000 && g <= 12_100, `interval ${g} outside 10 s ± 20 %`);
  assert.ok(Math.min(...gaps) < 9500 && Math.max(...gaps) > 10_500, `no spread: ${gaps}`);
  await r.agent.stop();
});

Deno.test("register agent: failures back off exponentially up to the interval, logged once, never give up", async () => {
  const h = harness({ jitter: 0, everyMs: 10_000, backoffBaseMs: 1000 });
  h.setRegistry(503);
  h.agent.start();
  await h.agent.settled();
  assert.equal(h.agent.state, "failing");
  for (let n = 0; n < 8; n++) await h.advance(1000);
  // attempts at 0, 1, 3, 7 s (gaps 1, 2, 4 s)
  assert.deepEqual(h.posts().map((c) => c.at), [0, 1000, 3000, 7000]);
  for (let n = 0; n < 40; n++) await h.advance(1000);
  // then 8 s, then capped at the interval (10 s)
  assert.deepEqual(h.posts().map((c) => c.at), [0, 1000, 3000, 7000, 15_000, 25_000, 35_000, 45_000]);
  assert.equal(h.agent.failures, 8);
  assert.equal(h.stats.counter("register.check_in_failed").value, 8);
  assert.equal(h.stats.gauge("register.registered").value, 0);
  const warns = h.lines.filter((l) => l.startsWith("warn"));
  assert.deepEqual(warns, [
    "warn check-in to http://registry:8080 failed (HTTP 503: unavailable): retrying with backoff",
  ]);
  // a refused connection is a failure like any other
  h.setRegistry("error");
  await h.advance(10_000);
  assert.equal(h.agent.state, "failing");
  h.setRegistry(200);
  await h.advance(10_000);
  assert.equal(h.agent.state, "registered");
  assert.equal(h.agent.failures, 0);
  assert.equal(h.lines.at(-1), "info checked in users at 10.0.0.7:9211 after 9 failed attempt(s)");
  // back to the normal interval; the next failure starts the backoff at the base again
  await h.advance(10_000);
  h.setRegistry(500);
  await h.advance(10_000);
  const before = h.posts().length;
  await h.advance(1000);
  assert.equal(h.posts().length, before + 1);
  await h.agent.stop();
});

Deno.test("register agent: a registry that does not answer times out on the injected clock", async () => {
  const h = harness({ jitter: 0, requestTimeoutMs: 5000 });
  h.setRegistry("hang");
  h.agent.start();
  h.clock.advance(4999);
  assert.equal(h.agent.state, "starting");
  await h.advance(1);
  assert.equal(h.agent.state, "failing");
  assert.match(h.lines.at(-1)!, /failed \(No answer within 5000 ms\)/);
  h.setRegistry(200);
  await h.advance(1000);
  assert.equal(h.agent.state, "registered");
  await h.agent.stop();
});

Deno.test("register agent: checks in only while the health URL answers 2xx", async () => {
  const h = harness({ healthUrl: "http://svc/healthcheck", jitter: 0, everyMs: 10_000 });
  h.agent.start();
  await h.agent.settled();
  assert.deepEqual(h.calls.map((c) => `${c.method} ${c.url}`), [
    "GET http://svc/healthcheck",
    "POST http://registry:8080/v1/registration/users",
  ]);
  h.setHealth(503);
  await h.advance(10_000);
  assert.equal(h.agent.state, "unhealthy");
  h.setHealth("error");
  for (let n = 0; n < 30; n++) await h.advance(1000);
  // the service is down: no check-in at all (the registry's TTL sweeps the host), health polled with backoff
  assert.equal(h.posts().length, 1);
  assert.deepEqual(h.calls.filter((c) => c.method === "GET").map((c) => c.at), [
    0,
    10_000,
    11_000,
    13_000,
    17_000,
    25_000,
    35_000,
  ]);
  assert.deepEqual(h.lines.filter((l) => l.startsWith("warn")), [
    "warn http://svc/healthcheck is unhealthy (HTTP 503): not checking in until it answers 2xx",
  ]);
  assert.equal(h.stats.counter("register.health_check_failed").value, 6);
  h.setHealth(204);
  await h.advance(10_000);
  assert.equal(h.agent.state, "registered");
  assert.equal(h.posts().length, 2);
  await h.agent.stop();
});

Deno.test("register agent: stop deregisters once, cancels the loop and an attempt in flight", async () => {
  const h = harness({ ip: "fd00::7" });
  h.agent.start();
  await h.agent.settled();
  await h.agent.stop();
  await h.agent.stop();
  assert.equal(h.agent.state, "stopped");
  assert.deepEqual(h.calls.map((c) => `${c.method} ${c.url}`), [
    "POST http://registry:8080/v1/registration/users",
    "DELETE http://registry:8080/v1/registration/users/fd00%3A%3A7",
  ]);
  assert.equal(h.lines.at(-1), "info deregistered users at fd00::7 from http://registry:8080");
  h.clock.advance(600_000);
  assert.equal(h.calls.length, 2);

  // stopped while a check-in hangs: the check-in is aborted at once, the DELETE still goes out
  const s = harness();
  s.setRegistry("hang");
  s.agent.start();
  const stopped = s.agent.stop();
  s.setRegistry(404);
  await stopped;
  assert.deepEqual(s.calls.map((c) => c.method), ["POST", "DELETE"]);
  // 404: the registry no longer knows the host, which is what we wanted
  assert.equal(s.stats.counter("register.deregister_ok").value, 1);
  assert.equal(s.lines.filter((l) => l.startsWith("warn")).length, 0);

  // a failed DELETE is logged, not thrown: the TTL removes the host eventually
  const f = harness();
  f.agent.start();
  await f.agent.settled();
  f.setRegistry("error");
  await f.agent.stop();
  assert.match(
    f.lines.at(-1)!,
    /^warn deregistration failed \(the registry's TTL will remove the host\): Connection refused/,
  );
  assert.equal(f.stats.counter("register.deregister_failed").value, 1);

  // stopped before start: only the DELETE
  const n = harness();
  await n.agent.stop();
  n.agent.start();
  assert.deepEqual(n.calls.map((c) => c.method), ["DELETE"]);
});
