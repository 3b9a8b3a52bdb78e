/**
 * envoy.filters.network.redis_proxy end to end: real redis-server processes behind an in-process nuncio, driven
 * by redis-cli and redis-benchmark. Placement is checked against the ring the test computes from the same key
 * hash (Envoy's MurmurHash2 of the key or its hash tag) and the same RING_HASH load balancer.
 */
import assert from "node:assert/strict";
import { bootstrapYaml, startProxy, staticCluster } from "./helpers.ts";
import { keyHash } from "../src/extensions/filters/network/redis_proxy/hash.ts";
import { RingHashLb } from "../src/upstream/lb/ring_hash.ts";
import type { Host } from "../src/upstream/types.ts";

const dec = new TextDecoder();

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  throw new Error(`port ${port} never opened`);
}

interface RedisServer {
  port: number;
  proc: Deno.ChildProcess;
}

async function startRedis(extra: string[] = []): Promise<RedisServer> {
  const port = freePort();
  const proc = new Deno.Command("redis-server", {
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...extra],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitPort(port);
  return { port, proc };
}

async function stopRedis(r: RedisServer): Promise<void> {
  try {
    r.proc.kill("SIGKILL");
  } catch {
    // gone
  }
  await r.proc.status;
}

/** Runs redis-cli against `port` and returns its raw output (trailing newline removed). */
async function cli(port: number, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("redis-cli", {
    args: ["-h", "127.0.0.1", "-p", String(port), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return (dec.decode(out.stdout) + dec.decode(out.stderr)).replace(/\n+$/, "");
}

function redisListener(name: string, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    name,
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.redis_proxy",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy",
          stat_prefix: name,
          settings: { op_timeout: "2s", enable_hashtagging: true },
          ...extra,
        },
      }],
    }],
  };
}

Deno.test("redis_proxy: sharding, splitting, auth, failures, redis-benchmark", async (t) => {
  const servers = [await startRedis(), await startRedis(), await startRedis()];
  const secured = await startRedis(["--requirepass", "upw"]);
  const all = [...servers, secured];
  try {
    const yaml = bootstrapYaml([
      redisListener("redis", {
        prefix_routes: {
          routes: [{ prefix: "secure:", remove_prefix: true, cluster: "secured" }],
          catch_all_route: { cluster: "shards" },
        },
      }),
      redisListener("redis_auth", {
        prefix_routes: { catch_all_route: { cluster: "shards" } },
        downstream_auth_password: { inline_string: "secret" },
      }),
    ], [
      staticCluster("shards", servers.map((s) => s.port), { lb_policy: "RING_HASH" }),
      staticCluster("secured", [secured.port], {
        typed_extension_protocol_options: {
          "envoy.filters.network.redis_proxy": {
            "@type":
              "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProtocolOptions",
            auth_password: { inline_string: "upw" },
          },
        },
      }),
    ]);
    await using proxy = await startProxy(yaml);
    const port = proxy.port("redis");
    const hosts = servers.map((s) =>
      ({ addressString: `127.0.0.1:${s.port}`, weight: 1 }) as unknown as Host
    );
    const ring = new RingHashLb(hosts, Math.random);
    const ownerOf = (key: string) => {
      const h = ring.choose({ hash: keyHash(key, true) }, 0)!;
      return servers[hosts.indexOf(h)];
    };
    const keys = Array.from({ length: 30 }, (_, i) => `key:${i}`);

    await t.step("keys land on the server the ring hash picks", async () => {
      for (const k of keys) assert.equal(await cli(port, "SET", k, `v-${k}`), "OK");
      const used = new Set<number>();
      for (const k of keys) {
        const owner = ownerOf(k);
        used.add(owner.port);
        for (const s of servers) {
          assert.equal(await cli(s.port, "GET", k), s === owner ? `v-${k}` : "", `${k} on ${s.port}`);
        }
        assert.equal(await cli(port, "GET", k), `v-${k}`);
      }
      assert.equal(used.size, 3, "30 keys spread over all three servers");
    });

    await t.step("MGET across shards keeps order; MSET and DEL sum", async () => {
      assert.equal(
        await cli(port, "MGET", "key:0", "nosuch", ...keys.slice(1, 10)),
        ["v-key:0", "", ...keys.slice(1, 10).map((k) => `v-${k}`)].join("\n"),
      );
      assert.equal(await cli(port, "MSET", "m1", "a", "m2", "b", "m3", "c", "m4", "d"), "OK");
      assert.equal(await cli(port, "MGET", "m1", "m2", "m3", "m4"), "a\nb\nc\nd");
      assert.equal(await cli(port, "EXISTS", "m1", "m2", "nosuch", "m3"), "3");
      assert.equal(await cli(port, "DEL", "m1", "m2", "m3", "m4", "nosuch"), "4");
      assert.equal(await cli(port, "MSET", "odd"), "wrong number of arguments for 'MSET' command");
    });

    await t.step("hash tags co-locate", async () => {
      const tagged = ["{user1000}.following", "{user1000}.followers", "{user1000}.x", "{user1000}"];
      for (const k of tagged) assert.equal(await cli(port, "SET", k, "1"), "OK");
      const owner = ownerOf("user1000");
      for (const k of tagged) {
        assert.equal(ownerOf(k), owner);
        assert.equal(await cli(owner.port, "EXISTS", k), "1");
      }
    });

    await t.step("local commands, unsupported and invalid requests", async () => {
      assert.equal(await cli(port, "PING"), "PONG");
      assert.equal(await cli(port, "ECHO", "hi there"), "hi there");
      assert.equal(
        await cli(port, "FLUSHALL"),
        "ERR unknown command 'FLUSHALL', with args beginning with: ",
      );
      assert.equal(
        await cli(port, "CONFIG", "SET", "x"),
        "ERR unknown command 'CONFIG', with args beginning with: SET",
      );
      assert.equal(await cli(port, "GET"), "invalid request");
      assert.equal(await cli(port, "HELLO", "4"), "NOPROTO unsupported protocol version");
      assert.equal(await cli(port, "EVAL", "return redis.call('get', KEYS[1])", "1", "key:3"), "v-key:3");
      assert.equal(proxy.stat("redis.redis.splitter.unsupported_command"), 2);
      assert.equal(proxy.stat("redis.redis.splitter.invalid_request"), 1);
    });

    await t.step("RESP3: HELLO 3 clients get the servers' RESP3 replies", async () => {
      assert.equal(await cli(port, "HSET", "h:1", "f", "v"), "1");
      // redis-cli -3 sends HELLO 3 first; a map reply prints as `1# "f" => "v"` only when it really is a map
      assert.equal(await cli(port, "-3", "--no-raw", "HGETALL", "h:1"), '1# "f" => "v"');
      assert.equal(await cli(port, "-3", "--no-raw", "GET", "nosuch"), "(nil)");
      assert.equal(await cli(port, "-3", "--no-raw", "MGET", "h:nosuch", "key:1"), '1) (nil)\n2) "v-key:1"');
      assert.equal(
        await cli(port, "--no-raw", "HGETALL", "h:1"),
        '1) "f"\n2) "v"',
        "RESP2 clients unchanged",
      );
    });

    await t.step("MULTI/EXEC run on one server connection", async () => {
      const out = await new Deno.Command("redis-cli", {
        args: ["-h", "127.0.0.1", "-p", String(port)],
        stdin: "piped",
        stdout: "piped",
      }).spawn();
      const w = out.stdin.getWriter();
      await w.write(new TextEncoder().encode("MULTI\nSET tx:a 5\nINCR tx:a\nEXEC\nEXEC\nMULTI\nDISCARD\n"));
      await w.close();
      const text = dec.decode((await out.output()).stdout).trim().split("\n").filter((l) => l !== "");
      assert.deepEqual(text, ["OK", "QUEUED", "QUEUED", "OK", "6", "EXEC without MULTI", "OK", "OK"]);
      assert.equal(await cli(ownerOf("tx:a").port, "GET", "tx:a"), "6");
    });

    await t.step("prefix route with remove_prefix to a cluster with upstream auth", async () => {
      assert.equal(await cli(port, "SET", "secure:token", "t1"), "OK");
      assert.equal(await cli(secured.port, "-a", "upw", "--no-auth-warning", "GET", "token"), "t1");
      assert.equal(await cli(port, "GET", "secure:token"), "t1");
    });

    await t.step("downstream AUTH", async () => {
      const ap = proxy.port("redis_auth");
      assert.equal(await cli(ap, "GET", "key:1"), "NOAUTH Authentication required.");
      assert.equal(await cli(ap, "AUTH", "wrong"), "ERR invalid password");
      assert.equal(await cli(ap, "-a", "secret", "--no-auth-warning", "GET", "key:1"), "v-key:1");
      assert.equal(await cli(port, "AUTH", "x"), "ERR Client sent AUTH, but no password is set");
    });

    await t.step("redis-benchmark -t get,set through the proxy completes without errors", async () => {
      const out = await new Deno.Command("redis-benchmark", {
        args: [
          "-h",
          "127.0.0.1",
          "-p",
          String(port),
          "-t",
          "get,set",
          "-n",
          "5000",
          "-c",
          "20",
          "-P",
          "4",
          "-q",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = dec.decode(out.stdout) + dec.decode(out.stderr);
      assert.equal(out.code, 0, text);
      assert.match(text, /SET: [\d.]+ requests per second/);
      assert.match(text, /GET: [\d.]+ requests per second/);
      assert.doesNotMatch(text, /ERR|error/i);
    });

    await t.step("a dead server: its keys fail cleanly, the others keep working", async () => {
      const victim = servers[0];
      await stopRedis(victim);
      const dead = keys.filter((k) => ownerOf(k) === victim);
      const alive = keys.filter((k) => ownerOf(k) !== victim);
      assert.ok(dead.length > 0 && alive.length > 0);
      for (const k of dead.slice(0, 3)) assert.equal(await cli(port, "GET", k), "upstream failure");
      for (const k of alive.slice(0, 5)) assert.equal(await cli(port, "GET", k), `v-${k}`);
      // redis-cli prints an error element of an array followed by an empty line
      const mget = (await cli(port, "MGET", dead[0], alive[0])).split("\n").filter((l) => l !== "");
      assert.deepEqual(mget, ["upstream failure", `v-${alive[0]}`]);
      assert.equal(await cli(port, "DEL", dead[0], alive[0]), "finished with 1 error(s)");
    });

    await t.step("stats", () => {
      assert.ok(proxy.stat("redis.redis.command.get.total") > 5000 / 2);
      assert.ok(proxy.stat("redis.redis.command.get.error") >= 3);
      assert.ok(proxy.stat("redis.redis.command.set.success") >= 30);
      assert.equal(proxy.stat("redis.redis.command.mget.total"), 4);
      assert.equal(proxy.stat("redis.redis.command.mget.error"), 1);
      assert.equal(proxy.stat("redis.redis.command.mset.error"), 1);
      assert.ok(proxy.stat("redis.redis.downstream_cx_total") > 40);
      assert.ok(proxy.stat("redis.redis.downstream_rq_total") > 10_000);
      assert.equal(proxy.stat("redis.redis.downstream_rq_active"), 0);
      assert.ok(proxy.stat("redis.redis_auth.downstream_cx_total") >= 3);
      assert.ok(proxy.stat("cluster.shards.upstream_rq_total") > 10_000);
    });
  } finally {
    for (const s of all) await stopRedis(s);
  }
});
