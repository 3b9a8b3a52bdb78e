/**
 * The filter's BSON scanner against npm `bson` on what the filter does per message (validate a document and
 * read a few top-level fields), and the whole filter on a find and its reply.
 * `deno bench -A src/extensions/filters/network/mongo_proxy/bson_bench.ts`
 */
import { deserialize, serialize } from "bson";
import { harness, opMsg } from "./test_frames.ts";
import { BsonType, findField, firstKey, foundValue, key, stringValue, validateDocument } from "./bson.ts";

const find = serialize({
  find: "users",
  filter: { _id: 12345, status: "active" },
  comment: JSON.stringify({ callingFunction: "getUser", hostname: "web-1" }),
  limit: 1,
  lsid: { id: new Uint8Array(16) },
  $clusterTime: { clusterTime: 7n, signature: { hash: new Uint8Array(20), keyId: 1n } },
  $db: "app",
});
const reply = serialize({
  cursor: {
    firstBatch: Array.from(
      { length: 20 },
      (_, i) => ({ _id: i, name: `user${i}`, tags: ["a", "b"], score: i * 1.5 }),
    ),
    id: 0n,
    ns: "app.users",
  },
  ok: 1,
});
const K_COMMENT = key("comment");
const K_DB = key("$db");

Deno.bench("scanner: find command (validate, name, comment, $db)", { group: "find", baseline: true }, () => {
  validateDocument(find, 0, find.length);
  firstKey(find, 0);
  if (findField(find, 0, K_COMMENT, BsonType.String)) stringValue(find, foundValue);
  if (findField(find, 0, K_DB, BsonType.String)) stringValue(find, foundValue);
});

Deno.bench("npm bson: find command (deserialize, read fields)", { group: "find" }, () => {
  const d = deserialize(find);
  Object.keys(d)[0];
  void d.comment;
  void d.$db;
});

Deno.bench("scanner: 20-document reply (validate)", { group: "reply", baseline: true }, () => {
  validateDocument(reply, 0, reply.length);
});

Deno.bench("npm bson: 20-document reply (deserialize)", { group: "reply" }, () => {
  deserialize(reply);
});

const h = harness();
const findMsg = opMsg(1, deserialize(find));
const replyMsg = opMsg(2, deserialize(reply), { responseTo: 1 });

Deno.bench("filter: find request + 20-document reply (stats, no log)", { group: "filter" }, () => {
  h.filter.onData(findMsg, false);
  h.filter.onWrite(replyMsg, false);
});
