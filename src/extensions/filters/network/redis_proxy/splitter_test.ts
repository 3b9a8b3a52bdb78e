/**
 * The splitter and the session without sockets: a downstream test double feeds pipelined requests; upstream
 * "servers" are in-memory connections that answer GET/SET/DEL/EXISTS from a Map (through raw_io's fallback to
 * conn.read/conn.write).
 */
import assert from "node:assert/strict";
import { StatsStore } from "../../../../stats/store.ts";
import { TimerWheel } from "../../../../common/timer_wheel.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import { redisProxySchema } from "./config.ts";
import { RedisProxyFactory } from "./filter.ts";
import { OutBuf, RequestArgs, text } from "./resp.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A Deno.Conn double: `feed` makes bytes readable, writes go to `onWrite`. */
class FakeConn {
  #chunks: Uint8Array[] = [];
  #waiter: ((n: number | null) => void) | null = null;
  #waitBuf: Uint8Array | null = null;
  closed = false;
  constructor(readonly onWrite: (data: Uint8Array) => void) {}
  feed(data: Uint8Array): void {
    if (this.#waiter) {
      const n = Math.min(data.length, this.#waitBuf!.length);
      this.#waitBuf!.set(data.subarray(0, n));
      if (n < data.length) this.#chunks.push(data.slice(n));
      const w = this.#waiter;
      this.#waiter = null;
      w(n);
    } else this.#chunks.push(data.slice());
  }
  read(buf: Uint8Array): Promise<number | null> {
    if (this.closed) return Promise.resolve(null);
    const c = this.#chunks.shift();
    if (c) {
      const n = Math.min(c.length, buf.length);
      buf.set(c.subarray(0, n));
      if (n < c.length) this.#chunks.unshift(c.slice(n));
      return Promise.resolve(n);
    }
    return new Promise((r) => {
      this.#waiter = r;
      this.#waitBuf = buf;
    });
  }
  write(data: Uint8Array): Promise<number> {
    if (this.closed) return Promise.reject(new Error("closed"));
    this.onWrite(data.slice());
    return Promise.resolve(data.length);
  }
  close(): void {
    this.closed = true;
    const w = this.#waiter;
    this.#waiter = null;
    w?.(null);
  }
}

/** An in-memory redis answering GET/SET/DEL/EXISTS/AUTH; `dead` refuses connections. */
class FakeRedis {
  readonly data = new Map<string, string>();
  readonly commands: string[][] = [];
  dead = false;
  /** Never answers (op_timeout tests). */
  silent = false;
  /** Sizes of the writes received (batching tests). */
  readonly writes: number[] = [];
  connect(): FakeConn {
    const args = new RequestArgs();
    let pending = new Uint8Array(0);
    const conn: FakeConn = new FakeConn((bytes) => {
      this.writes.push(bytes.length);
      if (this.silent) return;
      const buf = new Uint8Array(pending.length + bytes.length);
      buf.set(pending);
      buf.set(bytes, pending.length);
      let pos = 0;
      const out = new OutBuf();
      while (pos < buf.length) {
        const e = args.parse(buf, pos, buf.length);
        if (e < 0) break;
        const a: string[] = [];
        for (let i = 0; i < args.count; i++) a.push(text(buf, args.starts[i], args.ends[i]));
        this.commands.push(a);
        const cmd = a[0].toLowerCase();
        if (cmd === "get") {
          const v = this.data.get(a[1]);
          if (v === undefined) out.ascii("$-1\r\n");
          else out.bulkAscii(v);
        } else if (cmd === "set") {
          this.data.set(a[1], a[2]);
          out.simple("OK");
        } else if (cmd === "del" || cmd === "exists") {
          let n = 0;
          for (const k of a.slice(1)) {
            if (this.data.has(k)) n++;
            if (cmd === "del") this.data.delete(k);
          }
          out.integer(n);
        } else if (cmd === "auth") out.simple("OK");
        else out.error(`ERR unknown command '${a[0]}'`);
        pos = e;
      }
      pending = buf.slice(pos);
      if (out.len > 0) queueMicrotask(() => conn.feed(out.buf.slice(0, out.len)));
    });
    return conn;
  }
}

function fakeCluster(name: string, store: StatsStore, servers: FakeRedis[]) {
  const hosts = servers.map((s, i) => ({
    address: "10.0.0." + i,
    port: 6379,
    addressString: `10.0.0.${i}:6379`,
    stats: { rq_timeout: 0 },
    server: s,
  }));
  const cs = store.scope(`cluster.${name}`);
  return {
    name,
    stats: {
      upstream_rq_total: cs.counter("upstream_rq_total"),
      upstream_rq_timeout: cs.counter("upstream_rq_timeout"),
      upstream_cx_tx_bytes_total: cs.counter("upstream_cx_tx_bytes_total"),
      upstream_cx_rx_bytes_total: cs.counter("upstream_cx_rx_bytes_total"),
      upstream_cx_none_healthy: cs.counter("upstream_cx_none_healthy"),
    },
    chooseHost: (ctx: { hash: bigint }) => hosts[Number(ctx.hash % BigInt(hosts.length))],
    connectTcp: (host: (typeof hosts)[number]) =>
      Promise.resolve(
        host.server.dead
          ? { ok: false, reason: "connect_failure", detail: "refused" }
          : { ok: true, connection: { conn: host.server.connect(), host } },
      ),
    tcpClosed: () => {},
  };
}

function harness(extra: Record<string, unknown> = {}, nServers = 3) {
  const servers = Array.from({ length: nServers }, () => new FakeRedis());
  const mirror = new FakeRedis();
  const store = new StatsStore();
  const clusters = new Map([
    ["c", fakeCluster("c", store, servers)],
    ["m", fakeCluster("m", store, [mirror])],
  ]);
  const timers = new TimerWheel();
  const ctx = {
    stats: store,
    timers,
    clusterManager: { get: (n: string) => clusters.get(n) },
  } as unknown as FactoryContext;
  const config = redisProxySchema.parse({
    stat_prefix: "t",
    settings: { op_timeout: "1s" },
    prefix_routes: { catch_all_route: { cluster: "c" } },
    ...extra,
  });
  const factory = new RedisProxyFactory(config, ctx);
  let written = "";
  const down = new FakeConn((d) => written += dec.decode(d));
  const session = factory.createFilter({} as never);
  const running = session.run({
    conn: down as unknown as Deno.Conn,
    observed: false,
    close: () => down.close(),
  } as never);
  /** Sends raw bytes and waits until `replies` complete replies were written. */
  const send = async (raw: string, waitFor: string) => {
    written = "";
    down.feed(enc.encode(raw));
    for (let i = 0; i < 200 && !written.endsWith(waitFor); i++) await new Promise((r) => setTimeout(r, 1));
    return written;
  };
  const stop = async () => {
    down.close();
    await running;
    factory.close();
    timers.close();
  };
  const stat = (n: string) => store.snapshot().counters[n] ?? store.snapshot().gauges[n];
  return { servers, mirror, send, stop, stat, factory, session, running };
}

function cmd(...a: string[]): string {
  return `*${a.length}\r\n` + a.map((x) => `$${enc.encode(x).length}\r\n${x}\r\n`).join("");
}

Deno.test("splitter: pipelined simple commands, replies in order, keys spread over servers", async () => {
  const h = harness();
  try {
    // half a request: buffered until the rest arrives
    const set = cmd("SET", "half", "x");
    await h.send(set.slice(0, 10), "never");
    assert.equal(h.stat("redis.t.downstream_cx_rx_bytes_buffered"), 10);
    assert.equal(await h.send(set.slice(10), "+OK\r\n"), "+OK\r\n");
    assert.equal(h.stat("redis.t.downstream_cx_rx_bytes_buffered"), 0);
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    const sets = keys.map((k) => cmd("SET", k, `v${k}`)).join("");
    assert.equal(await h.send(sets, "+OK\r\n".repeat(20)), "+OK\r\n".repeat(20));
    assert.ok(h.servers.every((s) => s.data.size > 0), "every server got keys");
    const gets = keys.map((k) => cmd("get", k)).join("");
    const want = keys.map((k) => `$${k.length + 1}\r\nv${k}\r\n`).join("");
    assert.equal(await h.send(gets, want), want);
    assert.equal(h.stat("redis.t.command.get.total"), 20);
    assert.equal(h.stat("redis.t.command.get.success"), 20);
    assert.equal(h.stat("redis.t.downstream_rq_total"), 41);
    assert.equal(h.stat("redis.t.downstream_rq_active"), 0);
    assert.equal(h.stat("cluster.c.upstream_commands.get.total"), undefined, "enable_command_stats is off");
  } finally {
    await h.stop();
  }
});

Deno.test("splitter: MGET, MSET and DEL/EXISTS are split per key and joined", async () => {
  const h = harness({ settings: { op_timeout: "1s", enable_command_stats: true } });
  try {
    assert.equal(await h.send(cmd("MSET", "a", "1", "b", "2", "c", "3"), "+OK\r\n"), "+OK\r\n");
    const mget = "*4\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n$1\r\n3\r\n";
    assert.equal(await h.send(cmd("MGET", "a", "zz", "b", "c"), mget), mget);
    // every fragment went out as a single-key command
    const upstream = h.servers.flatMap((s) => s.commands.map((c) => c.join(" ")));
    assert.ok(upstream.includes("set a 1") && upstream.includes("get zz"), upstream.join(","));
    assert.equal(await h.send(cmd("EXISTS", "a", "b", "zz"), ":2\r\n"), ":2\r\n");
    assert.equal(await h.send(cmd("DEL", "a", "b", "c", "zz"), ":3\r\n"), ":3\r\n");
    // enable_command_stats: per-cluster upstream command stats, fragments under their own command
    assert.equal(h.stat("cluster.c.upstream_commands.set.total"), 3);
    assert.equal(h.stat("cluster.c.upstream_commands.set.success"), 3);
    assert.equal(h.stat("cluster.c.upstream_commands.get.total"), 4);
    assert.equal(h.stat("cluster.c.upstream_commands.exists.total"), 3);
    assert.equal(
      await h.send(cmd("MSET", "a"), "command\r\n"),
      "-wrong number of arguments for 'MSET' command\r\n",
    );
  } finally {
    await h.stop();
  }
});

Deno.test("splitter: local replies, errors and their stats", async () => {
  const h = harness();
  try {
    assert.equal(await h.send(cmd("PING"), "\r\n"), "+PONG\r\n");
    assert.equal(await h.send(cmd("ECHO", "hey"), "hey\r\n"), "$3\r\nhey\r\n");
    assert.equal(await h.send(cmd("ECHO"), "\r\n"), "-invalid request\r\n");
    assert.equal(await h.send(cmd("GET"), "\r\n"), "-invalid request\r\n");
    assert.equal(await h.send("*2\r\n$3\r\nGET\r\n:1\r\n", "\r\n"), "-invalid request\r\n");
    assert.equal(
      await h.send(cmd("KEYS", "*"), "\r\n"),
      "-ERR unknown command 'KEYS', with args beginning with: *\r\n",
    );
    assert.equal(await h.send(cmd("HELLO", "4"), "\r\n"), "-NOPROTO unsupported protocol version\r\n");
    assert.match(await h.send(cmd("HELLO"), "*0\r\n"), /^\*14\r\n\$6\r\nserver\r\n/);
    assert.equal(
      await h.send(cmd("EVAL", "s", "1"), "\r\n"),
      "-wrong number of arguments for 'EVAL' command\r\n",
    );
    assert.equal(h.stat("redis.t.splitter.invalid_request"), 3);
    assert.equal(h.stat("redis.t.splitter.unsupported_command"), 1);
    // a local reply behind a pending upstream request keeps its place
    const r = await h.send(cmd("GET", "nokey") + cmd("PING"), "+PONG\r\n");
    assert.equal(r, "$-1\r\n+PONG\r\n");
    // HELLO 3: a map, and from then on RESP3 upstream connections (which said HELLO 3 first)
    assert.match(
      await h.send(cmd("HELLO", "3"), "*0\r\n"),
      /^%7\r\n\$6\r\nserver\r\n.*\$5\r\nproto\r\n:3\r\n/s,
    );
    assert.equal(await h.send(cmd("GET", "r3"), "$-1\r\n"), "$-1\r\n");
    assert.ok(h.servers.some((srv) => srv.commands.some((c) => c.join(" ") === "HELLO 3")));
    // QUIT answers OK and closes
    assert.equal(await h.send(cmd("QUIT"), "+OK\r\n"), "+OK\r\n");
  } finally {
    await h.stop();
  }
});

Deno.test("splitter: a malformed request gets 'downstream protocol error' and the connection closes", async () => {
  const h = harness();
  try {
    assert.equal(await h.send("GARBAGE\r\n", "error\r\n"), "-downstream protocol error\r\n");
    assert.equal(h.stat("redis.t.downstream_cx_protocol_error"), 1);
  } finally {
    await h.stop();
  }
});

Deno.test("splitter: downstream AUTH gates every command", async () => {
  const h = harness({
    downstream_auth_password: { inline_string: "pw" },
    downstream_auth_username: { inline_string: "u" },
  });
  try {
    assert.equal(await h.send(cmd("GET", "a"), "\r\n"), "-NOAUTH Authentication required.\r\n");
    assert.equal(await h.send(cmd("AUTH", "nope"), "\r\n"), "-ERR invalid password\r\n");
    assert.equal(
      await h.send(cmd("AUTH", "x", "pw"), "\r\n"),
      "-WRONGPASS invalid username-password pair\r\n",
    );
    assert.equal(await h.send(cmd("AUTH", "u", "pw"), "\r\n"), "+OK\r\n");
    assert.equal(await h.send(cmd("GET", "a"), "\r\n"), "$-1\r\n");
  } finally {
    await h.stop();
  }
});

Deno.test("splitter: an unreachable server fails its keys with 'upstream failure'", async () => {
  const h = harness({}, 2);
  try {
    h.servers[1].dead = true;
    const keys = Array.from({ length: 10 }, (_, i) => `k${i}`);
    const r = await h.send(keys.map((k) => cmd("SET", k, "v")).join(""), "\r\n".repeat(10));
    const lines = r.split("\r\n").filter((l) => l !== "");
    assert.equal(lines.length, 10);
    assert.ok(lines.includes("+OK") && lines.includes("-upstream failure"), r);
    assert.equal(
      await h.send(cmd("MSET", ...keys.flatMap((k) => [k, "v"])), "\r\n"),
      `-finished with ${lines.filter((l) => l !== "+OK").length} error(s)\r\n`,
    );
  } finally {
    await h.stop();
  }
});

Deno.test("splitter: op_timeout closes the connection and fails what it owed", async () => {
  const h = harness({ settings: { op_timeout: "0.05s" } }, 1);
  try {
    h.servers[0].silent = true;
    const t0 = performance.now();
    assert.equal(
      await h.send(cmd("GET", "a") + cmd("GET", "b"), "failure\r\n".repeat(2)),
      "-upstream failure\r\n".repeat(2),
    );
    assert.ok(performance.now() - t0 >= 40);
    assert.equal(h.stat("cluster.c.upstream_rq_timeout"), 1);
    assert.equal(h.stat("redis.t.command.get.error"), 2);
    // the next request reconnects
    h.servers[0].silent = false;
    assert.equal(await h.send(cmd("SET", "a", "1"), "\r\n"), "+OK\r\n");
  } finally {
    await h.stop();
  }
});

Deno.test("splitter: max_buffer_size_before_flush batches upstream writes until the size or the timeout", async () => {
  const h = harness({
    settings: { op_timeout: "1s", max_buffer_size_before_flush: 1000, buffer_flush_timeout: "0.03s" },
  }, 1);
  try {
    const w = h.servers[0].writes;
    assert.equal(await h.send(cmd("SET", "a", "1"), "\r\n"), "+OK\r\n"); // connects: written on connect
    assert.equal(w.length, 1);
    // small: held until buffer_flush_timeout, then one write
    const t0 = performance.now();
    assert.equal(await h.send(cmd("SET", "a", "2"), "\r\n"), "+OK\r\n");
    assert.ok(performance.now() - t0 >= 25, `flushed after ${performance.now() - t0} ms`);
    assert.equal(w.length, 2);
    const big = "x".repeat(600);
    assert.equal(
      await h.send(cmd("SET", "b", big) + cmd("SET", "c", big), "+OK\r\n+OK\r\n"),
      "+OK\r\n+OK\r\n",
    );
    assert.equal(w.length, 3, "two requests over the size went out in one write");
  } finally {
    await h.stop();
  }
});

Deno.test("splitter: request_mirror_policy with exclude_read_commands copies writes only", async () => {
  const h = harness({
    prefix_routes: {
      catch_all_route: {
        cluster: "c",
        request_mirror_policy: [{ cluster: "m", exclude_read_commands: true }],
      },
    },
  });
  try {
    assert.equal(await h.send(cmd("SET", "a", "1") + cmd("GET", "a"), "$1\r\n1\r\n"), "+OK\r\n$1\r\n1\r\n");
    assert.deepEqual(h.mirror.commands, [["SET", "a", "1"]]);
    assert.equal(await h.send(cmd("DEL", "a", "b"), ":1\r\n"), ":1\r\n");
    assert.deepEqual(h.mirror.commands.slice(1), [["DEL", "a"], ["DEL", "b"]]);
  } finally {
    await h.stop();
  }
});

Deno.test("splitter: a prefix route with remove_prefix forwards the key without it", async () => {
  const h = harness({
    prefix_routes: {
      routes: [{ prefix: "app:", remove_prefix: true, cluster: "m" }],
      catch_all_route: { cluster: "c" },
    },
  });
  try {
    assert.equal(await h.send(cmd("SET", "app:k", "v"), "+OK\r\n"), "+OK\r\n");
    assert.deepEqual(h.mirror.commands, [["SET", "k", "v"]]);
    assert.equal(await h.send(cmd("MGET", "app:k", "other"), "$-1\r\n"), "*2\r\n$1\r\nv\r\n$-1\r\n");
    assert.equal(await h.send(cmd("HELLO", "2"), "*0\r\n").then((r) => r.startsWith("*14")), true);
  } finally {
    await h.stop();
  }
});

Deno.test("session: drain closes an idle connection and counts downstream_cx_drain_close", async () => {
  const h = harness();
  try {
    assert.equal(await h.send(cmd("SET", "a", "1"), "+OK\r\n"), "+OK\r\n");
    h.session.drain!();
    await h.running;
    assert.equal(h.stat("redis.t.downstream_cx_drain_close"), 1);
    assert.equal(h.stat("redis.t.downstream_cx_active"), 0);
    assert.equal(h.stat("redis.t.downstream_cx_rx_bytes_buffered"), 0);
    assert.equal(h.stat("redis.t.downstream_cx_tx_bytes_buffered"), 0);
    assert.ok(h.stat("redis.t.downstream_cx_rx_bytes_total") > 0);
    assert.equal(h.stat("redis.t.downstream_cx_tx_bytes_total"), 5);
  } finally {
    await h.stop();
  }
});
