/**
 * envoy.filters.network.mongo_proxy end to end: real clients (the node `mongodb` 7.x driver, pymongo 3.11 and raw
 * wire messages for the legacy ops Envoy decodes) -> nuncio (local_ratelimit -> mongo_proxy -> tcp_proxy) -> the
 * test Mongo server (mongo_wire_server.ts). The stats under `mongo.<stat_prefix>.` are checked against what the
 * server received, message by message (Envoy's rules: `find` is a query on its collection, typed scatter_get /
 * multi_get by its `_id`, with a call site from a JSON comment's `callingFunction`; every other command is
 * `cmd.<name>` when listed in `commands` (default delete, insert, update), else `cmd.unknown_command`; replies
 * are matched by responseTo and charged to the reply_* histograms). Also: the delay fault, the access log, Lyft's
 * connection discipline (circuit breaker max_connections, local rate limit on new connections) and drain, which
 * closes a connection at a reply boundary once nothing is in flight.
 */
import assert from "node:assert/strict";
import { MongoClient, MongoServerError } from "mongodb";
import {
  accessLog,
  bootstrapYaml,
  type Proxy,
  sleep,
  startProxy,
  staticCluster,
  TCP_LOG_FORMAT,
} from "./helpers.ts";
import { BSON } from "bson";
import {
  frame,
  legacy,
  type MongoServer,
  OP,
  PYMONGO_EXPECTED,
  runPymongo,
  type SeenOp,
  startMongoServer,
  WireClient,
} from "./mongo_wire_server.ts";

type Obj = Record<string, unknown>;

const MONGO_TYPE = "type.googleapis.com/envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy";
const GET_USER = JSON.stringify({ callingFunction: "getUser" });
/** Envoy's default `commands`. */
const DEFAULT_COMMANDS = ["delete", "insert", "update"];
/**
 * nuncio counts an OP_MSG request also as `op_query` and its reply also as `op_reply` (the stats the same
 * operation gives when a legacy driver sends it by OP_QUERY on `<db>.$cmd`; filter.ts, header comment), besides
 * `op_msg` / `op_msg_reply`. Envoy's docs define op_query and op_reply as OP_QUERY and OP_REPLY messages only, but
 * Envoy decodes no OP_MSG at all. false would expect the strict reading.
 */
const MSG_COUNTS_AS_QUERY = true;
/** The commands the driver tests give their own stats. */
const DRIVER_COMMANDS = ["insert", "update", "delete", "getMore", "aggregate"];

// ---- config ---------------------------------------------------------------------------------------------------

/** The mongo_proxy filter entry. */
function mongoFilter(statPrefix: string, extra: Obj = {}): Obj {
  return {
    name: "envoy.filters.network.mongo_proxy",
    typed_config: { "@type": MONGO_TYPE, stat_prefix: statPrefix, ...extra },
  };
}

/** A 127.0.0.1:0 listener: [local_ratelimit] -> mongo_proxy -> tcp_proxy (stat prefix `tcp_<name>`) to `cluster`. */
function mongoListener(
  name: string,
  o: { cluster?: string; mongo?: Obj; localRateLimit?: Obj } = {},
): Obj {
  const filters: Obj[] = [];
  if (o.localRateLimit) {
    filters.push({
      name: "envoy.filters.network.local_ratelimit",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit",
        ...o.localRateLimit,
      },
    });
  }
  filters.push(mongoFilter(name, o.mongo));
  filters.push({
    name: "envoy.filters.network.tcp_proxy",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
      stat_prefix: `tcp_${name}`,
      cluster: o.cluster ?? "mongo",
      access_log: [accessLog("$LOG", TCP_LOG_FORMAT)],
    },
  });
  return {
    name,
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    filter_chains: [{ filters }],
  };
}

async function startMongoProxy(server: MongoServer, listener: Obj, cluster: Obj = {}): Promise<Proxy> {
  return await startProxy(bootstrapYaml([listener], [staticCluster("mongo", [server.port], cluster)]));
}

// ---- expectations from what the server received ---------------------------------------------------------------

const ALIASES: Record<string, string> = {
  collstats: "collStats",
  dbstats: "dbStats",
  findandmodify: "findAndModify",
  getlasterror: "getLastError",
  ismaster: "isMaster",
};

/** Envoy's query type from a query's `_id`: none -> scatter_get, a document or array -> multi_get, else a primary key. */
function queryType(filter: Obj | undefined): "scatter_get" | "multi_get" | undefined {
  if (!filter || !("_id" in filter)) return "scatter_get";
  const id = filter._id;
  const isDoc = id !== null && typeof id === "object" && !(id as { _bsontype?: string })._bsontype &&
    !(id instanceof Date);
  return isDoc ? "multi_get" : undefined;
}

/** `callingFunction` of a comment that is a JSON string, else "". */
function callsite(comment: unknown): string {
  if (typeof comment !== "string") return "";
  try {
    const v = JSON.parse(comment);
    return typeof v?.callingFunction === "string" ? v.callingFunction : "";
  } catch {
    return "";
  }
}

/**
 * The counters mongo_proxy must show (without the `mongo.<prefix>.` part) for the requests the server logged:
 * op_* per opcode, `find` commands and legacy queries as collection (and call site) queries, other commands as
 * `cmd.<name>.total` or `cmd.unknown_command.total`; and `replied`: per stat base (`cmd.<c>`,
 * `collection.<c>.query`, ...) the requests that expect a reply (not moreToCome), which is how many samples each
 * reply_* histogram must hold.
 */
function expectedStats(
  log: SeenOp[],
  commands: string[],
): { counters: Record<string, number>; replied: Record<string, number> } {
  const out: Record<string, number> = {};
  const replied: Record<string, number> = {};
  const inc = (k: string) => {
    out[k] = (out[k] ?? 0) + 1;
    if (!k.endsWith(".total") || l?.moreToCome) return;
    const base = k.slice(0, -".total".length);
    replied[base] = (replied[base] ?? 0) + 1;
  };
  let l: SeenOp | undefined;
  for (l of log) {
    const op = l.op.replace("(compressed)", "");
    if (op === "OP_GET_MORE") inc("op_get_more");
    else if (op === "OP_INSERT") inc("op_insert");
    else if (op === "OP_KILL_CURSORS") inc("op_kill_cursors");
    if (op !== "OP_MSG" && op !== "OP_QUERY") continue;
    inc(op === "OP_MSG" ? "op_msg" : "op_query");
    if (op === "OP_MSG" && MSG_COUNTS_AS_QUERY) inc("op_query");
    if (l.command === "find" || l.command === "query") {
      const type = queryType(l.filter);
      const cs = callsite(l.comment);
      const scopes = [`collection.${l.collection}`];
      if (cs) scopes.push(`collection.${l.collection}.callsite.${cs}`);
      for (const s of scopes) {
        inc(`${s}.query.total`);
        if (type) inc(`${s}.query.${type}`);
      }
      if (type) inc(`op_query_${type}`);
    } else {
      const name = ALIASES[l.command] ?? l.command;
      inc(`cmd.${commands.includes(name) ? name : "unknown_command"}.total`);
    }
  }
  return { counters: out, replied };
}

/** Retries `check` (assertions) for up to `ms`: the proxy counts a reply as it forwards it. */
async function eventually(check: () => void, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(20);
    }
  }
}

/**
 * Asserts every mongo_proxy stat against the server's log and reply counts: the expected counters exactly, no
 * cmd/collection counter that was not expected, one reply_* histogram sample per answered command or query
 * (replies matched by responseTo), and no active query left.
 */
async function assertStatsMatchServer(
  proxy: Proxy,
  server: MongoServer,
  prefix: string,
  commands: string[],
): Promise<Record<string, number>> {
  const p = `mongo.${prefix}.`;
  let expected: Record<string, number> = {};
  // recomputed on each try: a request sent without waiting (endSessions at close) may reach the server late
  await eventually(() => {
    const e = expectedStats(server.log, commands);
    expected = e.counters;
    const snap = proxy.plane.stats.snapshot();
    const got: Record<string, number> = {};
    for (const [k, v] of Object.entries(snap.counters)) {
      if (!k.startsWith(p) || v === 0) continue;
      const rest = k.slice(p.length);
      if (/^(cmd|collection)\./.test(rest) || /^op_(msg|query|get_more|insert|kill_cursors)$/.test(rest)) {
        got[rest] = v;
      }
      if (/^op_query_(scatter_get|multi_get)$/.test(rest)) got[rest] = v;
    }
    assert.deepEqual(got, expected, "mongo_proxy counters vs what the server received");
    const msgReplies = server.stats.replyOps.OP_MSG ?? 0;
    const legacyReplies = server.stats.replyOps.OP_REPLY ?? 0;
    assert.equal(snap.counters[`${p}op_msg_reply`] ?? 0, msgReplies, "op_msg_reply vs OP_MSG replies sent");
    assert.equal(
      snap.counters[`${p}op_reply`] ?? 0,
      legacyReplies + (MSG_COUNTS_AS_QUERY ? msgReplies : 0),
      "op_reply vs replies sent",
    );
    // base: cmd.<name> | collection.<c>.query | collection.<c>.callsite.<s>.query
    for (const [base, n] of Object.entries(e.replied)) {
      for (const h of ["reply_num_docs", "reply_size", "reply_time_ms"]) {
        assert.equal(snap.histograms[`${p}${base}.${h}`]?.count ?? 0, n, `${p}${base}.${h} samples`);
      }
    }
    assert.equal(snap.gauges[`${p}op_query_active`] ?? 0, 0, "op_query_active after every reply");
    assert.equal(snap.counters[`${p}decoding_error`] ?? 0, 0, "decoding_error");
  });
  return expected;
}

// ---- raw clients ------------------------------------------------------------------------------------------------

/** Connects through the proxy and pings; "refused" when the proxy closes the connection instead. */
async function pingThrough(port: number): Promise<{ result: "ok" | "refused"; client?: WireClient }> {
  const c = await WireClient.connect(port);
  try {
    const r = await c.command("admin", { ping: 1 });
    assert.deepEqual(r, { ok: 1 });
    return { result: "ok", client: c };
  } catch {
    c.close();
    return { result: "refused" };
  }
}

// ---- tests ------------------------------------------------------------------------------------------------------

Deno.test("mongo_proxy: the node mongodb driver through nuncio", async (t) => {
  await using server = startMongoServer();
  await using proxy = await startMongoProxy(
    server,
    mongoListener("app", { mongo: { commands: DRIVER_COMMANDS } }),
  );
  const client = new MongoClient(`mongodb://127.0.0.1:${proxy.port()}/`, {
    directConnection: true,
    serverSelectionTimeoutMS: 3000,
    heartbeatFrequencyMS: 60_000,
  });
  const stat = (name: string) => proxy.stat(`mongo.app.${name}`);
  try {
    await client.connect();
    const users = client.db("app").collection<{ _id: number; name: string; even: boolean }>("users");

    await t.step("insertMany: one insert command", async () => {
      const r = await users.insertMany(
        [1, 2, 3, 4, 5, 6, 7].map((i) => ({ _id: i, name: `user${i}`, even: i % 2 === 0 })),
      );
      assert.equal(r.insertedCount, 7);
      await eventually(() => assert.equal(stat("cmd.insert.total"), 1));
    });

    await t.step(
      "finds: by _id with a JSON comment (call site getUser), by $in (multi_get), scatter",
      async () => {
        const one = await users.find({ _id: 3 }, { comment: GET_USER }).toArray();
        assert.deepEqual(one.map((d) => d.name), ["user3"]);
        await eventually(() => {
          assert.equal(stat("collection.users.query.total"), 1);
          assert.equal(stat("collection.users.callsite.getUser.query.total"), 1);
          assert.equal(stat("collection.users.query.scatter_get"), 0, "an _id query is a primary-key get");
        });
        const multi = await users.find({ _id: { $in: [1, 2] } }, { comment: GET_USER }).toArray();
        assert.equal(multi.length, 2);
        const scatter = await users.find({ even: true }, { comment: "not json" }).toArray();
        assert.equal(scatter.length, 3);
        await eventually(() => {
          assert.equal(stat("collection.users.query.total"), 3);
          assert.equal(stat("collection.users.query.multi_get"), 1);
          assert.equal(stat("collection.users.query.scatter_get"), 1);
          assert.equal(stat("collection.users.callsite.getUser.query.total"), 2);
          assert.equal(stat("collection.users.callsite.getUser.query.multi_get"), 1);
        });
      },
    );

    await t.step("a cursor with batchSize 2 over 7 documents: one find, three getMores", async () => {
      const ids = (await users.find({}).batchSize(2).toArray()).map((d) => d._id);
      assert.deepEqual(ids, [1, 2, 3, 4, 5, 6, 7]);
      await eventually(() => {
        assert.equal(stat("cmd.getMore.total"), 3);
        assert.equal(stat("collection.users.query.scatter_get"), 2);
      });
    });

    await t.step("countDocuments and aggregate", async () => {
      assert.equal(await users.countDocuments({ even: true }), 3);
      const [c] = await users.aggregate([{ $match: { even: false } }, { $count: "n" }]).toArray();
      assert.equal(c.n, 4);
      await eventually(() => assert.equal(stat("cmd.aggregate.total"), 2));
    });

    await t.step("errors: a duplicate _id (11000) and an unknown command (59) pass through", async () => {
      const unknownBefore = stat("cmd.unknown_command.total");
      await assert.rejects(users.insertOne({ _id: 1, name: "again", even: false }), (e: unknown) => {
        assert.ok(e instanceof MongoServerError);
        assert.equal(e.code, 11000);
        return true;
      });
      await assert.rejects(client.db("app").command({ noSuchCommand: 1 }), (e: unknown) => {
        assert.ok(e instanceof MongoServerError);
        assert.equal(e.code, 59);
        return true;
      });
      await eventually(() => {
        assert.equal(stat("cmd.insert.total"), 2);
        assert.equal(stat("cmd.unknown_command.total"), unknownBefore + 1);
      });
    });

    await t.step("update and delete", async () => {
      assert.equal((await users.updateOne({ _id: 2 }, { $set: { name: "two" } })).modifiedCount, 1);
      assert.equal((await users.deleteMany({ even: false })).deletedCount, 4);
      await eventually(() => {
        assert.equal(stat("cmd.update.total"), 1);
        assert.equal(stat("cmd.delete.total"), 1);
      });
    });
  } finally {
    await client.close();
  }

  await t.step("every stat matches what the server received and answered", async () => {
    const expected = await assertStatsMatchServer(proxy, server, "app", DRIVER_COMMANDS);
    // the driver's handshakes are legacy OP_QUERY (isMaster); the rest is OP_MSG
    assert.ok((expected.op_query ?? 0) >= 1);
    assert.ok((expected.op_msg ?? 0) >= 14);
    assert.ok((expected["cmd.unknown_command.total"] ?? 0) >= 2);
  });
});

Deno.test("mongo_proxy: pymongo 3.11 through nuncio", async (t) => {
  await using server = startMongoServer();
  await using proxy = await startMongoProxy(
    server,
    mongoListener("py", { mongo: { commands: DRIVER_COMMANDS } }),
  );
  const stat = (name: string) => proxy.stat(`mongo.py.${name}`);

  await t.step("the pymongo scenario works through nuncio", async () => {
    assert.deepEqual(await runPymongo(proxy.port()), PYMONGO_EXPECTED);
  });

  await t.step("stats: inserts, finds with the getUser call site, getMores, aggregates, errors", async () => {
    await eventually(() => {
      assert.equal(stat("cmd.insert.total"), 2, "insert_many and the duplicate");
      assert.equal(stat("collection.users.callsite.getUser.query.total"), 1);
      assert.equal(stat("cmd.getMore.total"), 3);
      assert.equal(stat("cmd.aggregate.total"), 2, "count_documents and aggregate");
      assert.equal(stat("cmd.update.total"), 1);
      assert.equal(stat("cmd.delete.total"), 1);
      assert.equal(stat("collection.users.query.total"), 3);
    });
    await assertStatsMatchServer(proxy, server, "py", DRIVER_COMMANDS);
  });
});

Deno.test("mongo_proxy: legacy ops (what Envoy decodes), flags, call sites, decoding_error", async (t) => {
  await using server = startMongoServer({ slowMs: 300 });
  await using proxy = await startMongoProxy(server, mongoListener("legacy"));
  const stat = (name: string) => proxy.stat(`mongo.legacy.${name}`);
  using c = await WireClient.connect(proxy.port());

  await t.step("OP_INSERT, then getLastError over OP_QUERY $cmd (cmd.unknown_command)", async () => {
    await c.send(OP.INSERT, legacy.insert("db.items", [1, 2, 3, 4, 5].map((i) => ({ _id: i, k: i % 2 }))));
    const gle = await c.roundTrip(
      OP.QUERY,
      legacy.query("db.$cmd", { getlasterror: 1 }, { numberToReturn: -1 }),
    );
    assert.equal(gle.docs[0].ok, 1);
    await eventually(() => {
      assert.equal(stat("op_insert"), 1);
      assert.equal(stat("op_query"), 1);
      assert.equal(stat("op_reply"), 1);
      assert.equal(stat("cmd.unknown_command.total"), 1);
    });
  });

  await t.step("a $cmd insert command is cmd.insert", async () => {
    const r = await c.roundTrip(
      OP.QUERY,
      legacy.query("db.$cmd", { insert: "items", documents: [{ _id: 6 }] }, { numberToReturn: -1 }),
    );
    assert.equal(r.docs[0].n, 1);
    await eventually(() => assert.equal(stat("cmd.insert.total"), 1));
  });

  await t.step(
    "a scatter query with a $comment call site, a valid cursor, getMore, killCursors",
    async () => {
      const q = await c.roundTrip(
        OP.QUERY,
        legacy.query("db.items", { $query: { k: { $gte: 0 } }, $comment: GET_USER }, { numberToReturn: 2 }),
      );
      assert.deepEqual(q.docs.map((d) => d._id), [1, 2]);
      assert.notEqual(q.cursorId, 0);
      const more = await c.roundTrip(OP.GET_MORE, legacy.getMore("db.items", 2, q.cursorId));
      assert.deepEqual(more.docs.map((d) => d._id), [3, 4]);
      await c.send(OP.KILL_CURSORS, legacy.killCursors([q.cursorId]));
      const gone = await c.roundTrip(OP.GET_MORE, legacy.getMore("db.items", 2, q.cursorId));
      assert.equal(gone.flags & 1, 1);
      await eventually(() => {
        assert.equal(stat("op_query"), 3);
        assert.equal(stat("collection.items.query.total"), 1);
        assert.equal(stat("collection.items.query.scatter_get"), 1);
        assert.equal(stat("collection.items.callsite.getUser.query.total"), 1);
        assert.equal(stat("collection.items.callsite.getUser.query.scatter_get"), 1);
        assert.equal(stat("op_query_scatter_get"), 1);
        assert.equal(stat("op_query_no_max_time"), 1);
        assert.equal(stat("op_get_more"), 2);
        assert.equal(stat("op_kill_cursors"), 1);
        assert.equal(stat("op_reply"), 5);
        assert.equal(stat("op_reply_valid_cursor"), 2, "the query's and the first getMore's replies");
        assert.equal(stat("op_reply_cursor_not_found"), 1);
      });
      const h = proxy.plane.stats.snapshot().histograms;
      assert.equal(h["mongo.legacy.collection.items.query.reply_num_docs"]?.count, 1);
      assert.equal(
        h["mongo.legacy.collection.items.query.reply_num_docs"]?.sum,
        2,
        "two documents in the reply",
      );
      assert.equal(h["mongo.legacy.collection.items.callsite.getUser.query.reply_num_docs"]?.sum, 2);
      assert.ok((h["mongo.legacy.collection.items.query.reply_size"]?.sum ?? 0) > 0);
    },
  );

  await t.step(
    "query types: _id scalar (primary key), _id $in (multi_get), $maxTimeMS, tailable flag",
    async () => {
      await c.roundTrip(OP.QUERY, legacy.query("db.items", { _id: 5 }, { numberToReturn: -1 }));
      await c.roundTrip(OP.QUERY, legacy.query("db.items", { _id: { $in: [1, 2] } }, { numberToReturn: -2 }));
      await c.roundTrip(
        OP.QUERY,
        legacy.query("db.items", { $query: {}, $maxTimeMS: 1000, $comment: "free text" }, {
          numberToReturn: -1,
        }),
      );
      await c.roundTrip(OP.QUERY, legacy.query("db.items", { k: 1 }, { numberToReturn: -1, flags: 2 }));
      await eventually(() => {
        assert.equal(stat("collection.items.query.total"), 5);
        assert.equal(stat("collection.items.query.multi_get"), 1);
        assert.equal(stat("collection.items.query.scatter_get"), 3);
        assert.equal(stat("op_query_multi_get"), 1);
        assert.equal(stat("op_query_no_max_time"), 4);
        assert.equal(stat("op_query_tailable_cursor"), 1);
        assert.equal(stat("collection.items.callsite.getUser.query.total"), 1, "free text is no call site");
      });
    },
  );

  await t.step("a query failure reply", async () => {
    const r = await c.roundTrip(
      OP.QUERY,
      legacy.query("db.items", { k: { $bogus: 1 } }, { numberToReturn: -1 }),
    );
    assert.equal(r.flags & 2, 2);
    await eventually(() => assert.equal(stat("op_reply_query_failure"), 1));
  });

  await t.step("op_query_active counts a query until its reply", async () => {
    const pending = c.roundTrip(OP.QUERY, legacy.query("db.items", { $query: {}, $comment: "slow" }));
    await eventually(() => assert.equal(server.delayed, 1));
    assert.equal(stat("op_query_active"), 1);
    const r = await pending;
    assert.equal(r.docs.length, 6);
    await eventually(() => assert.equal(stat("op_query_active"), 0));
  });

  await t.step(
    "OP_MSG: moreToCome expects no reply (no active query); a message in 1-byte writes",
    async () => {
      const inserts = stat("cmd.insert.total");
      await c.send(OP.MSG, legacy.msg({ insert: "items", documents: [{ _id: 7 }], $db: "db" }, { flags: 2 }));
      const ping = frame(OP.MSG, 77, legacy.msg({ ping: 1, $db: "admin" }));
      for (const b of ping) await c.write(new Uint8Array([b]));
      const r = await c.read();
      assert.equal(r?.responseTo, 77);
      await eventually(() => {
        assert.equal(stat("cmd.insert.total"), inserts + 1);
        assert.equal(stat("op_msg"), 2);
        assert.equal(stat("op_msg_reply"), 1);
        assert.equal(stat("op_query_active"), 0, "the moreToCome insert is not waiting for a reply");
      });
    },
  );

  await t.step("two OP_MSG requests in one write: replies matched by responseTo", async () => {
    const before = stat("collection.items.callsite.getUser.query.total");
    await c.write(
      new Uint8Array([
        ...frame(OP.MSG, 81, legacy.msg({ find: "items", filter: { _id: 1 }, comment: GET_USER, $db: "db" })),
        ...frame(OP.MSG, 82, legacy.msg({ buildInfo: 1, $db: "admin" })),
      ]),
    );
    assert.equal((await c.read())?.responseTo, 81);
    assert.equal((await c.read())?.responseTo, 82);
    await eventually(() => {
      assert.equal(stat("collection.items.callsite.getUser.query.total"), before + 1);
      assert.equal(stat("op_query_active"), 0);
    });
  });

  await t.step("OP_COMPRESSED with the noop compressor is decoded as the message it holds", async () => {
    const inner = legacy.msg({ ping: 1, $db: "admin" });
    const head = new Uint8Array(9);
    const v = new DataView(head.buffer);
    v.setInt32(0, OP.MSG, true);
    v.setInt32(4, inner.reduce((n, b) => n + b.length, 0), true);
    const r = await c.roundTrip(OP.COMPRESSED, [head, ...inner]);
    assert.deepEqual(r.docs[0], { ok: 1 });
    await eventually(() => {
      assert.equal(stat("op_compressed"), 1);
      assert.equal(stat("op_msg"), 5);
    });
  });

  await t.step("a 300-document reply spanning many reads: reply_num_docs and reply_size", async () => {
    const pad = "x".repeat(1000);
    const docs = Array.from({ length: 300 }, (_, i) => ({ _id: i, pad }));
    assert.equal((await c.command("db", { insert: "big", documents: docs })).n, 300);
    const r = await c.roundTrip(OP.QUERY, legacy.query("db.big", {}, { numberToReturn: 300 }));
    assert.equal(r.docs.length, 300);
    const bytes = r.docs.reduce((n, d) => n + BSON.calculateObjectSize(d), 0);
    await eventually(() => {
      const h = proxy.plane.stats.snapshot().histograms;
      assert.equal(h["mongo.legacy.collection.big.query.reply_num_docs"]?.sum, 300);
      assert.equal(h["mongo.legacy.collection.big.query.reply_size"]?.sum, bytes);
    });
  });

  await t.step("every stat matches what the server received", async () => {
    await assertStatsMatchServer(proxy, server, "legacy", DEFAULT_COMMANDS);
  });

  await t.step("a message that does not decode counts decoding_error once; bytes keep flowing", async () => {
    using bad = await WireClient.connect(proxy.port());
    const before = stat("op_msg");
    await bad.send(9999, [new Uint8Array(8)]); // no such opcode: the server ignores it
    const r = await bad.command("admin", { ping: 1 });
    assert.deepEqual(r, { ok: 1 }, "the connection still works");
    await bad.command("admin", { ping: 1 });
    await eventually(() => assert.equal(stat("decoding_error"), 1));
    assert.equal(stat("op_msg"), before, "no more sniffing on that connection");
  });
});

Deno.test("mongo_proxy: delay fault and access log", async () => {
  await using server = startMongoServer();
  const logPath = await Deno.makeTempFile({ prefix: "nuncio_mongo_", suffix: ".log" });
  try {
    await using proxy = await startMongoProxy(
      server,
      mongoListener("slow", {
        mongo: {
          access_log: logPath,
          delay: { fixed_delay: "0.2s", percentage: { numerator: 100, denominator: "HUNDRED" } },
        },
      }),
    );
    using c = await WireClient.connect(proxy.port());
    const t0 = performance.now();
    const r = await c.roundTrip(OP.QUERY, legacy.query("db.things", { _id: 1 }, { numberToReturn: -1 }));
    const took = performance.now() - t0;
    assert.equal(r.opCode, OP.REPLY);
    assert.ok(took >= 180, `the request was delayed (${took.toFixed(0)} ms)`);
    await eventually(() => assert.equal(proxy.stat("mongo.slow.delays_injected"), 1));
    const lines = await (async () => {
      for (let i = 0; i < 100; i++) {
        const text = await Deno.readTextFile(logPath);
        const ls = text.split("\n").filter((l) => l.length > 0);
        if (ls.length >= 2) return ls;
        await sleep(20);
      }
      return [];
    })();
    assert.ok(lines.length >= 2, "the query and its reply are logged");
    for (const l of lines) {
      const entry = JSON.parse(l);
      assert.equal(entry.upstream_host, `127.0.0.1:${server.port}`);
      assert.ok(entry.time && entry.message !== undefined);
    }
  } finally {
    await Deno.remove(logPath).catch(() => {});
  }
});

Deno.test("mongo_proxy: connection discipline (circuit breaker max_connections 2, local rate limit)", async (t) => {
  await t.step(
    "max_connections 2: the driver's monitor and its one pooled connection fit, a third is refused (UO)",
    async () => {
      await using server = startMongoServer();
      await using proxy = await startMongoProxy(server, mongoListener("cb"), {
        circuit_breakers: { thresholds: [{ max_connections: 2 }] },
      });
      const client = new MongoClient(`mongodb://127.0.0.1:${proxy.port()}/`, {
        directConnection: true,
        serverSelectionTimeoutMS: 3000,
        heartbeatFrequencyMS: 60_000,
        maxPoolSize: 1,
      });
      try {
        await client.connect();
        const items = client.db("db").collection<{ _id: number }>("items");
        await items.insertMany([{ _id: 1 }, { _id: 2 }]);
        assert.equal(await items.countDocuments({}), 2);
        await eventually(() => assert.equal(proxy.stat("cluster.mongo.circuit_breakers.default.cx_open"), 1));
        const third = await pingThrough(proxy.port());
        assert.equal(third.result, "refused");
        await eventually(() => assert.equal(proxy.stat("cluster.mongo.upstream_cx_overflow"), 1));
        assert.equal(server.stats.connections, 2, "the server never saw the third connection");
        const log = await proxy.log(1);
        assert.equal(log.at(-1)?.flags, "UO");
        // the driver keeps working within its two connections
        assert.deepEqual((await items.find({ _id: 2 }, { comment: GET_USER }).toArray()).map((d) => d._id), [
          2,
        ]);
        await eventually(() =>
          assert.equal(proxy.stat("mongo.cb.collection.items.callsite.getUser.query.total"), 1)
        );
      } finally {
        await client.close();
      }
      // once the driver's connections are gone, a new one is admitted
      await eventually(() => assert.equal(proxy.stat("cluster.mongo.upstream_cx_active"), 0));
      const again = await pingThrough(proxy.port());
      assert.equal(again.result, "ok");
      again.client?.close();
    },
  );

  await t.step("local_ratelimit max_tokens 3: three connections, then refused and counted", async () => {
    await using server = startMongoServer();
    await using proxy = await startMongoProxy(
      server,
      mongoListener("lrl", {
        localRateLimit: { stat_prefix: "mongo_lrl", token_bucket: { max_tokens: 3, fill_interval: "3600s" } },
      }),
    );
    const results: string[] = [];
    const open: WireClient[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await pingThrough(proxy.port());
      results.push(r.result);
      if (r.client) open.push(r.client);
    }
    for (const c of open) c.close();
    assert.deepEqual(results, ["ok", "ok", "ok", "refused", "refused"]);
    assert.equal(proxy.stat("local_rate_limit.mongo_lrl.rate_limited"), 2);
    assert.equal(server.stats.connections, 3);
    await eventually(() => {
      assert.equal(proxy.stat("tcp.tcp_lrl.downstream_cx_total"), 3);
      assert.equal(proxy.stat("mongo.lrl.op_msg"), 3, "refused connections never reach mongo_proxy");
      assert.equal(proxy.stat("mongo.lrl.cmd.unknown_command.total"), 3);
    });
  });
});

Deno.test("mongo_proxy: drain waits for the in-flight reply, then closes at the reply boundary", async () => {
  await using server = startMongoServer({ slowMs: 400 });
  await using proxy = await startMongoProxy(server, mongoListener("drain"));
  using c = await WireClient.connect(proxy.port());
  await c.command("db", { insert: "items", documents: [{ _id: 1 }, { _id: 2 }] });
  const reply = c.roundTrip(OP.MSG, legacy.msg({ find: "items", filter: {}, comment: "slow", $db: "db" }));
  await eventually(() => assert.equal(server.delayed, 1));
  const t0 = performance.now();
  const stopping = proxy.plane.stop(5000);
  const r = await reply;
  assert.equal(r.docs[0].ok, 1);
  assert.deepEqual((r.docs[0].cursor.firstBatch as { _id: number }[]).map((d) => d._id), [1, 2]);
  // after the reply, with nothing in flight, the proxy closes the connection (Envoy: cx_drain_close)
  let timer: ReturnType<typeof setTimeout> | undefined;
  const next = await Promise.race([
    c.read(),
    new Promise<"timeout">((resolve) => timer = setTimeout(() => resolve("timeout"), 2000)),
  ]);
  clearTimeout(timer);
  assert.equal(next, null, "closed at the reply boundary");
  await stopping;
  const took = performance.now() - t0;
  assert.ok(took < 2500, `the drain ended with the connection, not the 5 s grace (${took.toFixed(0)} ms)`);
  assert.equal(proxy.stat("mongo.drain.cx_drain_close"), 1);
  assert.equal(proxy.stat("mongo.drain.cmd.unknown_command.total"), 0);
  assert.equal(proxy.stat("mongo.drain.collection.items.query.total"), 1);
});
