/** mongo_proxy config (Envoy's MongoProxy fields, errors naming the field) and the access log's JSON lines. */
import assert from "node:assert/strict";
import { mongoProxySchema } from "./config.ts";
import { mongoProxy } from "./mod.ts";
import { registry } from "../../../../registry/registry.ts";
import "../../../../registry/builtin.ts";
import { harness, opGetMore, opInsert, opKillCursors, opMsg, opQuery, opReply } from "./test_frames.ts";

function errors(input: unknown): string {
  const r = mongoProxySchema.safeParse(input);
  return r.success ? "" : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n");
}

Deno.test("mongo_proxy config: Envoy's fields; unknown and unsupported ones named", () => {
  assert.equal(errors({ stat_prefix: "m" }), "");
  assert.equal(
    errors({
      stat_prefix: "m",
      access_log: "/tmp/x.log",
      delay: { fixed_delay: "0.1s", percentage: { numerator: 50 } },
      emit_dynamic_metadata: true,
      commands: ["find", "getMore"],
    }),
    "",
  );
  assert.match(errors({}), /^stat_prefix: /);
  assert.match(errors({ stat_prefix: "" }), /^stat_prefix: /);
  assert.match(errors({ stat_prefix: "m", extra: 1 }), /Unrecognized key.*"extra"/);
  assert.match(errors({ stat_prefix: "m", delay: {} }), /^delay\.fixed_delay: /);
  assert.match(
    errors({ stat_prefix: "m", delay: { fixed_delay: "1s", nope: 1 } }),
    /^delay: Unrecognized key.*nope/,
  );
  assert.equal(
    errors({ stat_prefix: "m", delay: { fixed_delay: "1s", header_delay: {} } }),
    "delay.header_delay: Field not supported by nuncio",
  );
  assert.match(errors({ stat_prefix: "m", commands: [""] }), /^commands\.0: /);
  // registered by Envoy's name and type URL
  assert.equal(
    registry.find("network_filter", "envoy.filters.network.mongo_proxy", undefined),
    mongoProxy,
  );
  assert.equal(
    registry.find(
      "network_filter",
      undefined,
      "type.googleapis.com/envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy",
    ),
    mongoProxy,
  );
  assert.deepEqual(
    mongoProxy.preflight!({ stat_prefix: "m", access_log: "/nonexistent/dir/x.log" }).map((i) => i.path),
    [
      ["access_log"],
    ],
  );
});

Deno.test("mongo_proxy access log: one JSON line per message in Envoy's shape", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/mongo.log`;
  try {
    const h = harness({ access_log: path });
    h.conn.streamInfo!.upstreamHost = "10.0.0.1:27017";
    h.filter.onData(
      opQuery(1, "app.users", { _id: { $oid: "x" }, n: 1.5, s: 'q"\\\n', b: true, z: null }, {
        flags: 4,
        fields: { a: 1 },
      }),
      false,
    );
    h.filter.onWrite(opReply(2, 1, [{ a: 1 }], { cursorId: 123456789012n, flags: 8 }), false);
    h.filter.onData(opGetMore(3, "app.users", 5, 7n), false);
    h.filter.onData(opInsert(4, "app.users", [{ a: [1, 2] }]), false);
    h.filter.onData(opKillCursors(5, [7n, 8n]), false);
    h.filter.onData(
      opMsg(6, { find: "users", $db: "app" }, { sequences: [{ id: "documents", docs: [{ x: 1 }] }] }),
      false,
    );
    h.filter.onWrite(opMsg(7, { ok: 1 }, { responseTo: 6 }), false);
    await h.factory.close();
    const lines = (await Deno.readTextFile(path)).trimEnd().split("\n");
    assert.equal(lines.length, 7);
    const parsed = lines.map((l) => JSON.parse(l));
    for (const p of parsed) {
      assert.match(p.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal(p.upstream_host, "10.0.0.1:27017");
    }
    const msg = (i: number) =>
      lines[i].slice(lines[i].indexOf('"message": ') + 11, lines[i].lastIndexOf(', "upstream_host"'));
    assert.equal(
      msg(0),
      '{"opcode": "OP_QUERY", "id": 1, "response_to": 0, "flags": "0x4", "collection": "app.users", "skip": 0, ' +
        '"return": 0, "query": {"_id": {"$oid": "x"}, "n": 1.500000, "s": "q\\"\\\\\\n", "b": true, "z": null}, ' +
        '"fields": {"a": 1}}',
    );
    assert.equal(
      msg(1),
      '{"opcode": "OP_REPLY", "id": 2, "response_to": 1, "flags": "0x8", "cursor": "123456789012", "from": 0, ' +
        '"returned": 1, "documents": 1}',
    );
    assert.equal(
      msg(2),
      '{"opcode": "OP_GET_MORE", "id": 3, "response_to": 0, "collection": "app.users", "return": 5, "cursor": 7}',
    );
    assert.equal(
      msg(3),
      '{"opcode": "OP_INSERT", "id": 4, "response_to": 0, "flags": "0x0", "collection": "app.users", ' +
        '"documents": [{"a": {"0": 1, "1": 2}}]}',
    );
    assert.equal(
      msg(4),
      '{"opcode": "KILL_CURSORS", "id": 5, "response_to": "0x0", "num_cursors": "2", "cursors": [7, 8]}',
    );
    assert.equal(
      msg(5),
      '{"opcode": "OP_MSG", "id": 6, "response_to": 0, "flags": "0x0", "body": {"find": "users", "$db": "app"}, ' +
        '"sequences": ["documents"], "documents": [{"x": 1}]}',
    );
    assert.equal(
      msg(6),
      '{"opcode": "OP_MSG", "id": 7, "response_to": 6, "flags": "0x0", "body": "{...}", "sequences": [], ' +
        '"documents": 0}',
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
