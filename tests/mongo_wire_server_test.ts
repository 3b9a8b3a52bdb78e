/**
 * The test Mongo server (mongo_wire_server.ts) against real clients, with no proxy: the node `mongodb` 7.x
 * driver, pymongo 3.11 (Debian's python3-pymongo under /usr/bin/python3, tests/mongo_client.py) and raw wire
 * messages (split across reads, pipelined, checksum, moreToCome, document sequences, legacy ops, OP_COMPRESSED).
 */
import assert from "node:assert/strict";
import { MongoClient, MongoServerError } from "mongodb";
import {
  frame,
  legacy,
  MSG_FLAGS,
  OP,
  PYMONGO_EXPECTED,
  runPymongo,
  startMongoServer,
  WireClient,
} from "./mongo_wire_server.ts";

const GET_USER = JSON.stringify({ callingFunction: "getUser" });

Deno.test("mongo wire server: the node mongodb driver", async (t) => {
  await using server = startMongoServer();
  const client = new MongoClient(`mongodb://127.0.0.1:${server.port}/`, {
    directConnection: true,
    serverSelectionTimeoutMS: 2000,
  });
  try {
    await client.connect();
    const users = client.db("app").collection<{ _id: number; name: string; even: boolean }>("users");

    await t.step("insertMany", async () => {
      const r = await users.insertMany(
        [1, 2, 3, 4, 5, 6, 7].map((i) => ({ _id: i, name: `user${i}`, even: i % 2 === 0 })),
      );
      assert.equal(r.insertedCount, 7);
      assert.equal(server.databases.get("app")?.get("users")?.size, 7);
    });

    await t.step("find with a comment (JSON call site) and with $comment in the filter", async () => {
      const a = await users.find({ _id: 3 }, { comment: GET_USER }).toArray();
      assert.deepEqual(a.map((d) => d.name), ["user3"]);
      const b = await users.find({ name: "user5", $comment: GET_USER }).toArray();
      assert.deepEqual(b.map((d) => d._id), [5]);
      const finds = server.log.filter((l) => l.command === "find");
      assert.equal(finds.at(-2)?.comment, GET_USER);
      assert.equal(finds.at(-2)?.collection, "users");
    });

    await t.step("a cursor with batchSize 2 over 7 documents pages with getMore", async () => {
      const before = server.stats.commands.getMore ?? 0;
      const ids = (await users.find({}).batchSize(2).toArray()).map((d) => d._id);
      assert.deepEqual(ids, [1, 2, 3, 4, 5, 6, 7]);
      assert.equal((server.stats.commands.getMore ?? 0) - before, 3);
    });

    await t.step("a cursor closed early is killed (killCursors)", async () => {
      const cursor = users.find({}).batchSize(2);
      assert.equal((await cursor.next())?._id, 1);
      await cursor.close();
      assert.equal(server.stats.commands.killCursors, 1);
    });

    await t.step(
      "countDocuments, aggregate ($match, $count, $group), distinct, sort/skip/limit",
      async () => {
        assert.equal(await users.countDocuments({ even: true }), 3);
        assert.equal(await users.countDocuments({}), 7);
        assert.equal(await users.estimatedDocumentCount(), 7);
        const [c] = await users.aggregate([{ $match: { even: false } }, { $count: "n" }]).toArray();
        assert.equal(c.n, 4);
        const g = await users.aggregate([{ $group: { _id: "$even", n: { $sum: 1 } } }, { $sort: { _id: 1 } }])
          .toArray();
        assert.deepEqual(g, [{ _id: false, n: 4 }, { _id: true, n: 3 }]);
        assert.deepEqual((await users.distinct("even")).sort(), [false, true]);
        const page = await users.find({ _id: { $gte: 2 } }).sort({ _id: -1 }).skip(1).limit(2).toArray();
        assert.deepEqual(page.map((d) => d._id), [6, 5]);
      },
    );

    await t.step("a duplicate _id is a write error with code 11000", async () => {
      await assert.rejects(users.insertOne({ _id: 1, name: "again", even: false }), (e: unknown) => {
        assert.ok(e instanceof MongoServerError);
        assert.equal(e.code, 11000);
        return true;
      });
    });

    await t.step("an unknown command fails with 59 CommandNotFound", async () => {
      await assert.rejects(client.db("app").command({ noSuchCommand: 1 }), (e: unknown) => {
        assert.ok(e instanceof MongoServerError);
        assert.equal(e.code, 59);
        assert.equal(e.codeName, "CommandNotFound");
        return true;
      });
    });

    await t.step("update, delete, ping, buildInfo, listCollections, listDatabases", async () => {
      assert.equal((await users.updateOne({ _id: 2 }, { $set: { name: "two" } })).modifiedCount, 1);
      assert.equal((await users.findOne({ _id: 2 }))?.name, "two");
      assert.equal(
        (await users.updateOne({ _id: 9 }, { $set: { name: "nine" } }, { upsert: true }))
          .upsertedCount,
        1,
      );
      assert.equal((await users.deleteMany({ even: false })).deletedCount, 4);
      assert.equal((await users.deleteOne({ _id: 9 })).deletedCount, 1);
      assert.deepEqual(await client.db("admin").command({ ping: 1 }), { ok: 1 });
      assert.equal((await client.db("admin").command({ buildInfo: 1 })).version, "4.4.0");
      const colls = await client.db("app").listCollections().toArray();
      assert.deepEqual(colls.map((c) => c.name), ["users"]);
      const dbs = await client.db("admin").admin().listDatabases();
      assert.deepEqual(dbs.databases.map((d) => d.name), ["app"]);
    });
  } finally {
    await client.close();
  }
  // The handshake is the legacy OP_QUERY; everything after it is OP_MSG.
  assert.ok((server.stats.ops.OP_QUERY ?? 0) >= 1);
  assert.ok(
    server.log.filter((l) => l.op === "OP_QUERY").every((l) => /^(ismaster|isMaster|hello)$/.test(l.command)),
  );
  assert.ok((server.stats.ops.OP_MSG ?? 0) > 10);
});

Deno.test("mongo wire server: pymongo 3.11", async () => {
  await using server = startMongoServer();
  const got = await runPymongo(server.port);
  assert.deepEqual(got, PYMONGO_EXPECTED);
  const find = server.log.find((l) => l.command === "find" && l.comment !== undefined);
  assert.equal(find?.comment, GET_USER);
  assert.equal(server.stats.commands.getMore, 3);
  assert.equal(server.stats.commands.endSessions, 1);
  assert.ok((server.stats.ops.OP_QUERY ?? 0) >= 1, "the handshake is OP_QUERY");
});

Deno.test("mongo wire server: raw wire protocol", async (t) => {
  await using server = startMongoServer({ slowMs: 200 });

  await t.step("legacy OP_QUERY handshake on admin.$cmd answers OP_REPLY", async () => {
    using c = await WireClient.connect(server.port);
    const r = await c.roundTrip(
      OP.QUERY,
      legacy.query("admin.$cmd", { isMaster: 1 }, { numberToReturn: -1 }),
    );
    assert.equal(r.opCode, OP.REPLY);
    assert.equal(r.docs.length, 1);
    assert.equal(r.docs[0].ismaster, true);
    assert.equal(r.docs[0].maxWireVersion, 9);
    assert.equal(r.docs[0].minWireVersion, 0);
    assert.equal(r.docs[0].compression, undefined, "no compression advertised");
  });

  await t.step("a message split into 1-byte writes, and two messages in one write", async () => {
    using c = await WireClient.connect(server.port);
    const ping = frame(OP.MSG, 41, legacy.msg({ ping: 1, $db: "admin" }));
    for (const b of ping) await c.write(new Uint8Array([b]));
    const r = await c.read();
    assert.equal(r?.responseTo, 41);
    assert.deepEqual(r?.docs[0], { ok: 1 });
    const two = new Uint8Array([
      ...frame(OP.MSG, 42, legacy.msg({ ping: 1, $db: "admin" })),
      ...frame(
        OP.MSG,
        43,
        legacy.msg({ buildInfo: 1, $db: "admin" }),
      ),
    ]);
    await c.write(two);
    assert.equal((await c.read())?.responseTo, 42);
    const third = await c.read();
    assert.equal(third?.responseTo, 43);
    assert.equal(third?.docs[0].version, "4.4.0");
  });

  await t.step("checksum flag, kind-1 document sequence, moreToCome sends no reply", async () => {
    using c = await WireClient.connect(server.port);
    const body = legacy.msg({ insert: "raw", $db: "t" }, {
      flags: MSG_FLAGS.checksumPresent,
      sequences: [["documents", [{ _id: 1 }, { _id: 2 }, { _id: 3 }]]],
    });
    body.push(new Uint8Array(4)); // the CRC-32C trailer (not verified)
    const r = await c.roundTrip(OP.MSG, body);
    assert.deepEqual(r.docs[0], { n: 3, ok: 1 });
    // w:0 insert with moreToCome: no reply; the next request's reply is the next message
    await c.send(
      OP.MSG,
      legacy.msg({ insert: "raw", documents: [{ _id: 4 }], $db: "t" }, {
        flags: MSG_FLAGS.moreToCome,
      }),
    );
    const count = await c.command("t", { count: "raw" });
    assert.deepEqual(count, { n: 4, ok: 1 });
  });

  await t.step("legacy OP_QUERY on a collection, OP_GET_MORE, OP_KILL_CURSORS, OP_INSERT", async () => {
    using c = await WireClient.connect(server.port);
    await c.send(OP.INSERT, legacy.insert("t.legacy", [1, 2, 3, 4, 5].map((i) => ({ _id: i, k: i % 2 }))));
    const gle = await c.roundTrip(
      OP.QUERY,
      legacy.query("t.$cmd", { getLastError: 1 }, { numberToReturn: -1 }),
    );
    assert.equal(gle.docs[0].err, null);
    const q = await c.roundTrip(
      OP.QUERY,
      legacy.query("t.legacy", { $query: {}, $comment: GET_USER }, { numberToReturn: 2 }),
    );
    assert.deepEqual(q.docs.map((d) => d._id), [1, 2]);
    assert.notEqual(q.cursorId, 0);
    const more = await c.roundTrip(OP.GET_MORE, legacy.getMore("t.legacy", 2, q.cursorId));
    assert.deepEqual(more.docs.map((d) => d._id), [3, 4]);
    assert.equal(more.cursorId, q.cursorId);
    await c.send(OP.KILL_CURSORS, legacy.killCursors([q.cursorId]));
    const gone = await c.roundTrip(OP.GET_MORE, legacy.getMore("t.legacy", 2, q.cursorId));
    assert.equal(gone.flags & 1, 1, "CursorNotFound");
    const one = await c.roundTrip(OP.QUERY, legacy.query("t.legacy", { _id: 5 }, { numberToReturn: -1 }));
    assert.deepEqual(one.docs, [{ _id: 5, k: 1 }]);
    assert.equal(one.cursorId, 0);
    const dup = await c.send(OP.INSERT, legacy.insert("t.legacy", [{ _id: 5 }]));
    void dup;
    const gle2 = await c.roundTrip(
      OP.QUERY,
      legacy.query("t.$cmd", { getLastError: 1 }, { numberToReturn: -1 }),
    );
    assert.equal(gle2.docs[0].code, 11000);
    assert.equal(server.log.find((l) => l.command === "query")?.comment, GET_USER);
  });

  await t.step("OP_COMPRESSED with the noop compressor", async () => {
    using c = await WireClient.connect(server.port);
    const inner = legacy.msg({ ping: 1, $db: "admin" });
    const size = inner.reduce((s, b) => s + b.length, 0);
    const head = new Uint8Array(9);
    const v = new DataView(head.buffer);
    v.setInt32(0, OP.MSG, true);
    v.setInt32(4, size, true);
    head[8] = 0;
    const r = await c.roundTrip(OP.COMPRESSED, [head, ...inner]);
    assert.deepEqual(r.docs[0], { ok: 1 });
  });

  await t.step("unknown command: ok 0, code 59; sleep delays the reply", async () => {
    using c = await WireClient.connect(server.port);
    assert.deepEqual(await c.command("admin", { frobnicate: 1 }), {
      ok: 0,
      errmsg: "no such command: 'frobnicate'",
      code: 59,
      codeName: "CommandNotFound",
    });
    const t0 = performance.now();
    assert.deepEqual(await c.command("admin", { sleep: 1, millis: 150 }), { ok: 1 });
    assert.ok(performance.now() - t0 >= 140);
    const t1 = performance.now();
    await c.command("t", { find: "legacy", filter: {}, comment: "slow" });
    assert.ok(performance.now() - t1 >= 190);
  });

  await t.step("close() ends open connections and pending delays", async () => {
    const c = await WireClient.connect(server.port);
    const pending = c.command("admin", { sleep: 1, millis: 10_000 }).catch(() => "closed");
    for (let i = 0; i < 100 && server.delayed === 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(server.delayed, 1);
    await server.close();
    assert.equal(await pending, "closed");
    assert.equal(server.stats.active, 0);
    c.close();
  });
});
