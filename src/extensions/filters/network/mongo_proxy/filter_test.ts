/** mongo_proxy stats: Envoy's exact names and conditions for legacy opcodes, OP_MSG counted as the same operation. */
import assert from "node:assert/strict";
import { serialize } from "bson";
import { setRuntime } from "../../../../runtime/current.ts";
import { createEntry, EMPTY_SNAPSHOT, RuntimeSnapshot } from "../../../../runtime/snapshot.ts";
import {
  harness,
  opCommand,
  opCommandReply,
  opCompressed,
  opGetMore,
  opInsert,
  opKillCursors,
  opMsg,
  opQuery,
  opReply,
} from "./test_frames.ts";

const size = (d: Record<string, unknown>) => serialize(d).length;

/** Every `mongo.p.` counter with a value (name -> value), sorted. */
function counters(h: ReturnType<typeof harness>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, c] of [...h.stats.counters].sort()) {
    if (k.startsWith("mongo.p.") && c.value) out[k.slice(8)] = c.value;
  }
  return out;
}

Deno.test("mongo_proxy: the fixed stats exist from the start; no traffic, all zero", () => {
  const h = harness();
  for (
    const n of [
      "cx_destroy_local_with_active_rq",
      "cx_destroy_remote_with_active_rq",
      "cx_drain_close",
      "decoding_error",
      "delays_injected",
      "op_command",
      "op_command_reply",
      "op_get_more",
      "op_insert",
      "op_kill_cursors",
      "op_query",
      "op_query_await_data",
      "op_query_exhaust",
      "op_query_multi_get",
      "op_query_no_cursor_timeout",
      "op_query_no_max_time",
      "op_query_scatter_get",
      "op_query_tailable_cursor",
      "op_reply",
      "op_reply_cursor_not_found",
      "op_reply_query_failure",
      "op_reply_valid_cursor",
      "op_msg",
      "op_msg_reply",
      "op_compressed",
      "op_compressed_reply",
    ]
  ) assert.equal(h.counter(n), 0, n);
  assert.equal(h.stats.gauges.get("mongo.p.op_query_active")?.value, 0);
  assert.equal(h.stats.histograms.size, 0);
});

Deno.test("mongo_proxy: legacy handshake (OP_QUERY on admin.$cmd) is a command; its reply records histograms", () => {
  const h = harness();
  const hello = { isMaster: 1, client: { driver: { name: "pymongo", version: "4" } } };
  h.filter.onData(opQuery(1, "admin.$cmd", hello, { ret: -1 }), false);
  assert.equal(h.stats.gauges.get("mongo.p.op_query_active")!.value, 1);
  h.clock.advance(7);
  const reply = { ismaster: true, maxWireVersion: 21, ok: 1 };
  h.filter.onWrite(opReply(2, 1, [reply]), false);
  assert.deepEqual(counters(h), { "cmd.unknown_command.total": 1, op_query: 1, op_reply: 1 });
  assert.deepEqual(h.histogram("cmd.unknown_command.reply_num_docs"), { count: 1, sum: 1 });
  assert.deepEqual(h.histogram("cmd.unknown_command.reply_size"), { count: 1, sum: size(reply) });
  assert.deepEqual(h.histogram("cmd.unknown_command.reply_time_ms"), { count: 1, sum: 7 });
  assert.equal(h.stats.gauges.get("mongo.p.op_query_active")!.value, 0);
  assert.equal(h.stats.histograms.get("mongo.p.cmd.unknown_command.reply_size")!.unit, "bytes");
  assert.equal(h.stats.histograms.get("mongo.p.cmd.unknown_command.reply_num_docs")!.unit, "unspecified");
  // $query-wrapped command, an alias, and a configured command
  const h2 = harness({ commands: ["isMaster", "count"] });
  h2.filter.onData(opQuery(1, "admin.$cmd", { $query: { ismaster: 1 } }), false);
  h2.filter.onData(opQuery(2, "db.$cmd", { count: "c" }), false);
  h2.filter.onData(opQuery(3, "db.$cmd", { insert: "c" }), false);
  assert.equal(h2.counter("cmd.isMaster.total"), 1);
  assert.equal(h2.counter("cmd.count.total"), 1);
  assert.equal(h2.counter("cmd.unknown_command.total"), 1);
  assert.equal(h2.counter("cmd.insert.total"), undefined);
  // an alias counts under its canonical name only; configuring the alias spelling itself counts nothing
  const h3 = harness({ commands: ["collStats", "dbstats"] });
  h3.filter.onData(opMsg(1, { collstats: "c", $db: "d" }), false);
  h3.filter.onData(opMsg(2, { collStats: "c", $db: "d" }), false);
  h3.filter.onData(opMsg(3, { dbstats: 1, $db: "d" }), false);
  assert.equal(h3.counter("cmd.collStats.total"), 2);
  assert.equal(h3.counter("cmd.dbstats.total"), undefined);
  assert.equal(h3.counter("cmd.unknown_command.total"), 1);
});

Deno.test("mongo_proxy: legacy queries by collection, call site, type and flags; reply flags", () => {
  const h = harness();
  const comment = JSON.stringify({ callingFunction: "getUsers", hostname: "h" });
  // multi-get inside $query, with a call site, max time and every counted flag
  h.filter.onData(
    opQuery(1, "app.users", { $query: { _id: { $in: [1, 2] } }, $comment: comment, $maxTimeMS: 100 }, {
      flags: 2 | 16 | 32 | 64,
    }),
    false,
  );
  // scatter-get, no call site (the comment is not JSON), no max time
  h.filter.onData(opQuery(2, "app.users", { name: "x", $comment: "not json" }), false);
  // primary key
  h.filter.onData(opQuery(3, "app.users.archive", { _id: 7, maxTimeMS: 5 }), false);
  h.clock.advance(3);
  h.filter.onWrite(opReply(10, 1, [{ _id: 1 }, { _id: 2 }], { cursorId: 5n, flags: 1 | 2 }), false);
  h.filter.onWrite(opReply(11, 2, []), false);
  assert.deepEqual(counters(h), {
    "collection.users.archive.query.total": 1,
    "collection.users.callsite.getUsers.query.multi_get": 1,
    "collection.users.callsite.getUsers.query.total": 1,
    "collection.users.query.multi_get": 1,
    "collection.users.query.scatter_get": 1,
    "collection.users.query.total": 2,
    op_query: 3,
    op_query_await_data: 1,
    op_query_exhaust: 1,
    op_query_multi_get: 1,
    op_query_no_cursor_timeout: 1,
    op_query_no_max_time: 1,
    op_query_scatter_get: 1,
    op_query_tailable_cursor: 1,
    op_reply: 2,
    op_reply_cursor_not_found: 1,
    op_reply_query_failure: 1,
    op_reply_valid_cursor: 1,
  });
  assert.deepEqual(h.histogram("collection.users.query.reply_num_docs"), { count: 2, sum: 2 });
  assert.deepEqual(h.histogram("collection.users.callsite.getUsers.query.reply_num_docs"), {
    count: 1,
    sum: 2,
  });
  assert.deepEqual(h.histogram("collection.users.callsite.getUsers.query.reply_size"), {
    count: 1,
    sum: 2 * size({ _id: 1 }),
  });
  assert.deepEqual(h.histogram("collection.users.query.reply_time_ms"), { count: 2, sum: 6 });
  assert.equal(h.histogram("collection.users.archive.query.reply_num_docs"), undefined, "no reply yet");
  assert.equal(h.filter.activeQueries, 1);
});

Deno.test("mongo_proxy: OP_MSG counts as the same operation over OP_QUERY, plus op_msg / op_msg_reply", () => {
  const h = harness();
  const comment = JSON.stringify({ callingFunction: "findUser" });
  h.filter.onData(opMsg(1, { find: "users", filter: { _id: 5 }, comment, maxTimeMS: 10, $db: "app" }), false);
  h.filter.onData(opMsg(2, { find: "users", filter: { age: 3 }, $db: "app" }, { checksum: true }), false);
  h.filter.onData(opMsg(3, { find: "users", filter: { _id: { $in: [1] } }, $db: "app" }), false);
  h.filter.onData(
    opMsg(4, { insert: "users", $db: "app" }, {
      sequences: [{ id: "documents", docs: [{ a: 1 }, { a: 2 }] }],
    }),
    false,
  );
  h.filter.onData(opMsg(5, { ping: 1, $db: "admin" }), false);
  // fire and forget: counted, nothing awaits a reply
  h.filter.onData(opMsg(6, { delete: "users", deletes: [], $db: "app" }, { flags: 2 }), false);
  h.filter.onData(opMsg(7, { getMore: 9n, collection: "users", $db: "app" }, { flags: 1 << 16 }), false);
  assert.equal(h.filter.activeQueries, 6);
  h.clock.advance(2);
  const findReply = { cursor: { firstBatch: [{ _id: 5 }], id: 0n, ns: "app.users" }, ok: 1 };
  h.filter.onWrite(opMsg(100, findReply, { responseTo: 1 }), false);
  h.filter.onWrite(opMsg(101, { n: 2, ok: 1 }, { responseTo: 4 }), false);
  assert.deepEqual(counters(h), {
    "cmd.delete.total": 1,
    "cmd.insert.total": 1,
    "cmd.unknown_command.total": 2,
    "collection.users.callsite.findUser.query.total": 1,
    "collection.users.query.multi_get": 1,
    "collection.users.query.scatter_get": 1,
    "collection.users.query.total": 3,
    op_msg: 7,
    op_msg_reply: 2,
    op_query: 7,
    op_query_exhaust: 1,
    op_query_multi_get: 1,
    op_query_no_max_time: 3,
    op_query_scatter_get: 1,
    op_reply: 2,
  });
  assert.deepEqual(h.histogram("collection.users.query.reply_num_docs"), { count: 1, sum: 1 });
  assert.deepEqual(h.histogram("collection.users.query.reply_size"), { count: 1, sum: size(findReply) });
  assert.deepEqual(h.histogram("collection.users.callsite.findUser.query.reply_time_ms"), {
    count: 1,
    sum: 2,
  });
  assert.deepEqual(h.histogram("cmd.insert.reply_num_docs"), { count: 1, sum: 1 });
  assert.equal(h.filter.activeQueries, 4);
  assert.equal(h.stats.gauges.get("mongo.p.op_query_active")!.value, 4);
});

Deno.test("mongo_proxy: get more, insert, kill cursors, OP_COMMAND and compressed messages", () => {
  const h = harness();
  h.filter.onData(opGetMore(1, "app.users", 10, 42n), false);
  h.filter.onData(opInsert(2, "app.users", [{ a: 1 }]), false);
  h.filter.onData(opKillCursors(3, [42n]), false);
  h.filter.onData(opCommand(4, "app", "ping", {}, { ping: 1 }), false);
  h.filter.onWrite(opCommandReply(5, 4, {}, { ok: 1 }), false);
  // noop compression: decoded as the message it holds
  h.filter.onData(opCompressed(opMsg(6, { find: "c", $db: "d" })), false);
  // snappy: header only; its reply ends the query without histograms
  h.filter.onData(opCompressed(opMsg(7, { ping: 1, $db: "d" }), 1), false);
  h.filter.onWrite(opCompressed(opMsg(8, { ok: 1 }, { responseTo: 6 }), 1), false);
  assert.deepEqual(counters(h), {
    "collection.c.query.scatter_get": 1,
    "collection.c.query.total": 1,
    op_command: 1,
    op_command_reply: 1,
    op_compressed: 2,
    op_compressed_reply: 1,
    op_get_more: 1,
    op_insert: 1,
    op_kill_cursors: 1,
    op_msg: 1,
    op_query: 1,
    op_query_no_max_time: 1,
    op_query_scatter_get: 1,
  });
  assert.equal(h.filter.activeQueries, 0);
  assert.equal(h.histogram("collection.c.query.reply_num_docs"), undefined);
});

Deno.test("mongo_proxy: a decoding error is counted once and stops decoding the connection", () => {
  const h = harness();
  h.filter.onData(opMsg(1, { ping: 1, $db: "a" }), false);
  const bad = opMsg(2, { ping: 1, $db: "a" });
  bad[12] = 0x55; // opcode 0x...55
  assert.equal(h.filter.onData(bad, false), undefined);
  h.filter.onData(opMsg(3, { ping: 1, $db: "a" }), false);
  h.filter.onWrite(opMsg(4, { ok: 1 }, { responseTo: 1 }), false);
  assert.equal(h.counter("decoding_error"), 1);
  assert.equal(h.counter("op_msg"), 1);
  assert.equal(h.counter("op_reply"), 0);
  assert.equal(h.filter.bufferedBytes, 0);
  // Envoy's query errors: a collection without a database, an empty command, a find on a non-string
  for (
    const m of [opQuery(1, "nodot", { a: 1 }), opQuery(1, "a.$cmd", {}), opMsg(1, { find: 1, $db: "a" })]
  ) {
    const x = h.another();
    x.filter.onData(m, false);
    x.filter.onClose();
  }
  assert.equal(h.counter("decoding_error"), 4);
  assert.equal(h.stats.gauges.get("mongo.p.op_query_active")!.value, 1);
});

Deno.test("mongo_proxy: closes with queries in flight count local or remote; the gauge comes back", () => {
  const h = harness();
  h.filter.onData(opMsg(1, { ping: 1, $db: "a" }), false);
  h.filter.onData(new Uint8Array(0), true); // the client ended first
  h.filter.onClose();
  const b = h.another();
  b.filter.onData(opMsg(1, { ping: 1, $db: "a" }), false);
  b.filter.onWrite(new Uint8Array(0), true); // the server ended: nuncio closes the client side
  b.filter.onClose();
  const c = h.another();
  c.filter.onData(opMsg(1, { ping: 1, $db: "a" }), false);
  c.filter.onWrite(opMsg(2, { ok: 1 }, { responseTo: 1 }), false);
  c.filter.onData(new Uint8Array(0), true);
  c.filter.onClose();
  assert.equal(h.counter("cx_destroy_remote_with_active_rq"), 1);
  assert.equal(h.counter("cx_destroy_local_with_active_rq"), 1);
  assert.equal(h.stats.gauges.get("mongo.p.op_query_active")!.value, 0);
});

Deno.test("mongo_proxy: drain closes after the reply in flight; an idle connection at once unless keepIdle", () => {
  const h = harness();
  h.filter.onData(opMsg(1, { find: "c", $db: "d" }), false);
  h.filter.onDrain(false);
  assert.equal(h.conn.closed, false);
  h.filter.onWrite(opMsg(2, { ok: 1 }, { responseTo: 1 }), false);
  assert.equal(h.conn.closed, true);
  h.filter.onWrite(opMsg(3, { ok: 1 }, { responseTo: 1 }), false);
  assert.equal(h.counter("cx_drain_close"), 1);
  const idle = h.another();
  idle.filter.onDrain(false);
  assert.equal(idle.conn.closed, true);
  const kept = h.another();
  kept.filter.onDrain(true);
  assert.equal(kept.conn.closed, false);
  kept.filter.onData(opMsg(1, { ping: 1, $db: "d" }), false);
  kept.filter.onWrite(opMsg(2, { ok: 1 }, { responseTo: 1 }), false);
  assert.equal(kept.conn.closed, true);
  assert.equal(h.counter("cx_drain_close"), 3);
  // mongo.drain_close_enabled 0: no drain close
  setRuntime(
    new RuntimeSnapshot([{ name: "t", values: new Map([["mongo.drain_close_enabled", createEntry("0")]]) }]),
  );
  try {
    const off = h.another();
    off.filter.onDrain(false);
    assert.equal(off.conn.closed, false);
  } finally {
    setRuntime(EMPTY_SNAPSHOT);
  }
});

Deno.test("mongo_proxy: a fixed delay holds the read until it fires; one at a time", async () => {
  const h = harness({
    delay: { fixed_delay: "0.05s", percentage: { numerator: 100, denominator: "HUNDRED" } },
  });
  const hold = h.filter.onData(opMsg(1, { ping: 1, $db: "a" }), false);
  assert.ok(hold instanceof Promise);
  assert.equal(h.filter.onData(opMsg(2, { ping: 1, $db: "a" }), false), hold);
  assert.equal(h.counter("delays_injected"), 1);
  let done = false;
  hold.then(() => done = true);
  h.clock.advance(49);
  await Promise.resolve();
  assert.equal(done, false);
  h.clock.advance(1);
  await hold;
  assert.equal(h.filter.onData(opMsg(3, { ping: 1, $db: "a" }), false) instanceof Promise, true);
  assert.equal(h.counter("delays_injected"), 2);
  h.filter.onClose(); // releases the hold
  // no percentage: 0 %, unless the runtime says otherwise
  const none = harness({ delay: { fixed_delay: "0.05s" } });
  assert.equal(none.filter.onData(opMsg(1, { ping: 1, $db: "a" }), false), undefined);
  setRuntime(
    new RuntimeSnapshot([{
      name: "t",
      values: new Map([
        ["mongo.fault.fixed_delay.percent", createEntry("100")],
        ["mongo.fault.fixed_delay.duration_ms", createEntry("0")],
      ]),
    }]),
  );
  try {
    // 100 % but a duration of 0 ms: no delay
    assert.equal(none.filter.onData(opMsg(2, { ping: 1, $db: "a" }), false), undefined);
  } finally {
    setRuntime(EMPTY_SNAPSHOT);
  }
  assert.equal(none.counter("delays_injected"), 0);
});

Deno.test("mongo_proxy: dynamic metadata per message: operation lists by resource, cleared per read", () => {
  const h = harness({ emit_dynamic_metadata: true });
  const md = () =>
    JSON.parse(JSON.stringify(h.conn.streamInfo!.dynamicMetadata?.["envoy.filters.network.mongo_proxy"]));
  h.filter.onData(
    new Uint8Array([
      ...opMsg(1, { find: "users", $db: "app" }),
      ...opMsg(2, { insert: "users", $db: "app" }),
      ...opMsg(3, { ping: 1, $db: "admin" }),
    ]),
    false,
  );
  assert.deepEqual(md(), { "app.users": ["query", "insert"], "admin.$cmd": ["query"] });
  h.filter.onData(opQuery(4, "app.$cmd", { count: "users" }), false);
  h.filter.onData(opInsert(5, "app.logs", [{ a: 1 }]), false);
  assert.deepEqual(md(), { "app.logs": ["insert"] });
  h.filter.onWrite(opMsg(6, { ok: 1 }, { responseTo: 1 }), false);
  assert.deepEqual(md(), {});
  // off by default
  const off = harness();
  off.filter.onData(opMsg(1, { find: "users", $db: "app" }), false);
  assert.equal(off.conn.streamInfo!.dynamicMetadata, null);
});

Deno.test("mongo_proxy: runtime mongo.proxy_enabled 0 decodes nothing", () => {
  const h = harness();
  setRuntime(
    new RuntimeSnapshot([{ name: "t", values: new Map([["mongo.proxy_enabled", createEntry("0")]]) }]),
  );
  try {
    h.filter.onData(opMsg(1, { ping: 1, $db: "a" }), false);
  } finally {
    setRuntime(EMPTY_SNAPSHOT);
  }
  assert.equal(h.counter("op_msg"), 0);
});

Deno.test("mongo_proxy: collections and comments recognised by their bytes stay right past the recent ones", () => {
  const h = harness();
  const names = Array.from({ length: 20 }, (_, i) => `c${i % 2 ? "x".repeat(i) : i}`);
  for (let round = 0; round < 3; round++) {
    for (const [i, n] of names.entries()) {
      const comment = i % 3
        ? JSON.stringify({ callingFunction: `f${i}` })
        : `{"callingFunction": 7, "i": ${i}}`;
      h.filter.onData(opMsg(i, { find: n, comment, $db: "d" }), false);
    }
  }
  for (const [i, n] of names.entries()) {
    assert.equal(h.counter(`collection.${n}.query.total`), 3, n);
    assert.equal(h.counter(`collection.${n}.callsite.f${i}.query.total`), i % 3 ? 3 : undefined, n);
  }
});
