import assert from "node:assert/strict";
import { RedisBackend } from "./redis_backend.ts";
import { parseRedisUrl, RedisClient, RedisError } from "./redis_client.ts";
import { RedisReplyError } from "./resp.ts";
import { startRedis } from "./test_redis.ts";

Deno.test("parseRedisUrl", () => {
  assert.deepEqual(parseRedisUrl("redis://u:p%40ss@example.com:7000/3"), {
    hostname: "example.com",
    port: 7000,
    username: "u",
    password: "p@ss",
    db: 3,
  });
  assert.equal(parseRedisUrl("localhost").port, 6379);
  assert.throws(() => parseRedisUrl("http://x"), /scheme/);
});

Deno.test("RedisClient against redis-server", async (t) => {
  await using redis = await startRedis();
  const states: boolean[] = [];
  const client = new RedisClient(redis.url, {
    commandTimeoutMs: 200,
    backoffBaseMs: 10,
    backoffMaxMs: 50,
    onStateChange: (up) => states.push(up),
  });
  client.start();
  try {
    assert.equal(await client.ready(2000), true);

    await t.step("commands, pipelines, nil, arrays, error replies, big and unicode values", async () => {
      assert.equal(await client.command(["SET", "k", "välue ✓"]), "OK");
      assert.equal(await client.command(["GET", "k"]), "välue ✓");
      assert.equal(await client.command(["GET", "missing"]), null);
      const big = "x".repeat(300_000);
      const replies = await client.pipeline([
        ["SET", "big", big],
        ["GET", "big"],
        ["INCRBY", "n", 5],
        ["RPUSH", "l", "a", "b"],
        ["LRANGE", "l", 0, -1],
        ["NOSUCHCMD"],
      ]);
      assert.equal(replies[0], "OK");
      assert.equal(replies[1], big);
      assert.equal(replies[2], 5);
      assert.equal(replies[3], 2);
      assert.deepEqual(replies[4], ["a", "b"]);
      assert.ok(replies[5] instanceof RedisReplyError);
      // many concurrent pipelines keep their order
      const all = await Promise.all(
        Array.from({ length: 500 }, (_, i) => client.command(["INCRBY", "c", i])),
      );
      let sum = 0;
      all.forEach((v, i) => {
        sum += i;
        assert.equal(v, sum);
      });
    });

    await t.step("a slow reply times out, drops the connection, and the client reconnects", async () => {
      await assert.rejects(
        client.command(["DEBUG", "SLEEP", "0.5"]),
        (e: Error) => e instanceof RedisError && /timed out/.test(e.message),
      );
      assert.equal(client.connected, false);
      await assert.rejects(client.command(["PING"]), /not connected/);
      assert.equal(await client.ready(3000), true);
      await new Promise((r) => setTimeout(r, 500)); // the server is still asleep
      assert.equal(await client.command(["PING"]), "PONG");
    });

    await t.step("server restart: fails fast while down, reconnects when back", async () => {
      await redis.stop();
      await assert.rejects(client.command(["PING"]), RedisError);
      assert.equal(client.connected, false);
      await redis.restart();
      assert.equal(await client.ready(3000), true);
      assert.equal(await client.command(["GET", "k"]), null); // no persistence
      assert.deepEqual(states.slice(0, 1), [true]);
      assert.ok(states.filter((s) => !s).length >= 2);
    });

    await t.step("AUTH and database from the URL", async () => {
      assert.equal(await client.command(["CONFIG", "SET", "requirepass", "s3cret"]), "OK");
      const authed = new RedisClient(`redis://:s3cret@127.0.0.1:${redis.port}/2`);
      authed.start();
      assert.equal(await authed.ready(2000), true);
      await authed.command(["SET", "in2", "yes"]);
      assert.equal(await authed.command(["GET", "in2"]), "yes");
      assert.equal(await authed.command(["CONFIG", "SET", "requirepass", ""]), "OK");
      await authed.close();
      const wrong = new RedisClient(`redis://127.0.0.1:${redis.port}/2`);
      wrong.start();
      assert.equal(await wrong.ready(2000), true);
      assert.equal(await wrong.command(["GET", "in2"]), "yes");
      await wrong.close();
    });

    await t.step("RedisBackend: MULTI/EXEC INCRBY + EXPIRE per window key", async () => {
      const backend = new RedisBackend(redis.url, { keyPrefix: "p:" });
      assert.equal(await backend.client.ready(2000), true);
      const batch = { keys: ["d_k_v_", "d_k2_v2_"], hits: [2, 1], windows: [1000, 960], ttls: [1, 60] };
      assert.deepEqual(await backend.increment(batch), [2, 1]);
      assert.deepEqual(await backend.increment(batch), [4, 2]);
      assert.equal(await client.command(["GET", "p:d_k_v_1000"]), "4");
      const ttl = await client.command(["TTL", "p:d_k2_v2_960"]);
      assert.ok(typeof ttl === "number" && ttl > 50 && ttl <= 60);
      assert.equal(backend.healthy(), true);
      await backend.close();
      assert.equal(backend.healthy(), false);
    });
  } finally {
    await client.close();
  }
});
