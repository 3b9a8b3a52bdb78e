/**
 * The Kafka sniffing codec: every api_key/version of the table, real frames from kafkajs's own protocol encoders,
 * hand-built flexible frames, every split point, unknown and failure cases, and a seeded fuzz.
 */
import assert from "node:assert/strict";
// kafkajs's protocol encoders are internal modules: deno.json maps only the package's entry point ("kafkajs"),
// so they are imported by full specifier at the same pinned version.
// deno-lint-ignore no-import-prefix
import kafkaRequests from "npm:kafkajs@2.2.4/src/protocol/requests/index.js";
// deno-lint-ignore no-import-prefix
import encodeKafkaRequest from "npm:kafkajs@2.2.4/src/protocol/request.js";
import { ALL_APIS, apiFor, type ApiInfo } from "./schema.ts";
import { type KafkaCodecSink, KafkaSession, MAX_FRAME_BYTES, MAX_IN_FLIGHT } from "./codec.ts";
import { concat, frame, prng, randomRequest, randomResponse, Writer } from "./test_frames.ts";

/** Records what the codec reports. */
class Recorder implements KafkaCodecSink {
  requests: string[] = [];
  responses: string[] = [];
  requestUnknown = 0;
  requestFailure = 0;
  responseUnknown = 0;
  responseFailure = 0;
  durations: number[] = [];
  onRequest(api: ApiInfo, version: number): void {
    this.requests.push(`${api.requestStat}/${version}`);
  }
  onRequestUnknown(): void {
    this.requestUnknown++;
  }
  onRequestFailure(): void {
    this.requestFailure++;
  }
  onResponse(api: ApiInfo, version: number, ms: number): void {
    this.responses.push(`${api.responseStat}/${version}`);
    this.durations.push(ms);
  }
  onResponseUnknown(): void {
    this.responseUnknown++;
  }
  onResponseFailure(): void {
    this.responseFailure++;
  }
  /** A compact summary for equality checks. */
  summary(): Record<string, unknown> {
    return {
      requests: this.requests,
      responses: this.responses,
      unknown: [this.requestUnknown, this.responseUnknown],
      failure: [this.requestFailure, this.responseFailure],
    };
  }
}

function session(now = () => 0): { s: KafkaSession; r: Recorder } {
  const r = new Recorder();
  return { s: new KafkaSession(r, now), r };
}

const api = (key: number) => apiFor(key, ALL_APIS.find((a) => a.key === key)!.minVersion)!;

Deno.test("kafka codec: every api_key and version, random well-formed requests and responses", () => {
  const rnd = prng(1);
  let n = 0;
  for (const a of ALL_APIS) {
    for (let v = a.minVersion; v <= a.maxVersion; v++) {
      for (let k = 0; k < 10; k++) {
        const { s, r } = session();
        s.onRequestData(randomRequest(a, v, 1000 + k, rnd));
        s.onResponseData(randomResponse(a, v, 1000 + k, rnd));
        assert.deepEqual(r.summary(), {
          requests: [`${a.requestStat}/${v}`],
          responses: [`${a.responseStat}/${v}`],
          unknown: [0, 0],
          failure: [0, 0],
        }, `${a.requestStat} v${v}`);
        n++;
      }
    }
  }
  const versions = ALL_APIS.reduce((sum, a) => sum + a.maxVersion - a.minVersion + 1, 0);
  assert.equal(n, 10 * versions);
  assert.ok(versions > 300, `${versions} api versions`);
  assert.equal(ALL_APIS.length, 88);
});

/** kafkajs encodes `name` at `version` with `args`; the frame as bytes. */
async function kafkajsFrame(name: string, version: number, args: unknown, cid: number): Promise<Uint8Array> {
  const def = (kafkaRequests as { requests: Record<string, { protocol(o: { version: number }): unknown }> })
    .requests[name];
  const make = def.protocol({ version }) as (a: unknown) => { request: unknown };
  const enc = await (encodeKafkaRequest as (o: unknown) => Promise<{ buffer: Uint8Array }>)({
    correlationId: cid,
    clientId: "kafkajs-test",
    request: make(args).request,
  });
  return new Uint8Array(enc.buffer);
}

const TOPIC_DATA = [{
  topic: "orders",
  partitions: [{ partition: 0, messages: [{ key: "k1", value: "v1" }, { key: null, value: "v2" }] }],
}];

/** kafkajs request names, version ranges and arguments (its client uses these APIs). */
const KAFKAJS_CASES: [name: string, key: number, versions: number[], args: unknown][] = [
  ["Produce", 0, [0, 1, 2, 3, 4, 5, 6, 7], {
    acks: -1,
    timeout: 1000,
    compression: 0,
    topicData: TOPIC_DATA,
  }],
  ["Fetch", 1, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], {
    maxWaitTime: 100,
    minBytes: 1,
    maxBytes: 1 << 20,
    topics: [{ topic: "orders", partitions: [{ partition: 0, fetchOffset: "0", maxBytes: 1 << 20 }] }],
    rackId: "",
  }],
  ["ListOffsets", 2, [0, 1, 2, 3], {
    topics: [{ topic: "orders", partitions: [{ partition: 0, timestamp: -1 }] }],
  }],
  ["Metadata", 3, [0, 1, 2, 3, 4, 5, 6], { topics: ["orders"], allowAutoTopicCreation: true }],
  ["OffsetCommit", 8, [0, 1, 2, 3, 4, 5], {
    groupId: "g",
    groupGenerationId: 1,
    memberId: "m",
    retentionTime: -1,
    topics: [{ topic: "orders", partitions: [{ partition: 0, offset: "3" }] }],
  }],
  ["OffsetFetch", 9, [1, 2, 3, 4], {
    groupId: "g",
    topics: [{ topic: "orders", partitions: [{ partition: 0 }] }],
  }],
  ["GroupCoordinator", 10, [0, 1, 2], { groupId: "g", coordinatorType: 0 }],
  ["JoinGroup", 11, [0, 1, 2, 3, 4, 5], {
    groupId: "g",
    sessionTimeout: 30000,
    rebalanceTimeout: 60000,
    memberId: "",
    protocolType: "consumer",
    groupProtocols: [{ name: "RoundRobinAssigner", metadata: new Uint8Array([0, 1, 0, 0]) }],
  }],
  ["Heartbeat", 12, [0, 1, 2, 3], { groupId: "g", groupGenerationId: 1, memberId: "m" }],
  ["LeaveGroup", 13, [0, 1, 2, 3], { groupId: "g", memberId: "m" }],
  ["SyncGroup", 14, [0, 1, 2, 3], {
    groupId: "g",
    generationId: 1,
    memberId: "m",
    groupAssignment: [{ memberId: "m", memberAssignment: new Uint8Array([0, 1]) }],
  }],
  ["ApiVersions", 18, [0, 1, 2], {}],
  ["CreateTopics", 19, [0, 1, 2, 3], {
    topics: [{ topic: "orders", numPartitions: 1, replicationFactor: 1 }],
    validateOnly: false,
    timeout: 5000,
  }],
];

Deno.test("kafka codec: real request frames from kafkajs's protocol encoders decode as their type", async () => {
  for (const [name, key, versions, args] of KAFKAJS_CASES) {
    for (const v of versions) {
      const { s, r } = session();
      s.onRequestData(await kafkajsFrame(name, v, args, 7));
      const a = apiFor(key, v)!;
      assert.deepEqual(r.summary(), {
        requests: [`${a.requestStat}/${v}`],
        responses: [],
        unknown: [0, 0],
        failure: [0, 0],
      }, `${name} v${v}`);
      assert.equal(s.inFlight, 1);
    }
  }
});

/** ApiVersions v3 request (header v2, flexible body) and its response (header v0, flexible body), by hand. */
function apiVersionsV3(cid: number): { req: Uint8Array; resp: Uint8Array } {
  const req = new Writer().int16(18).int16(3).int32(cid).string("cli").uvarint(0) // header v2: no tags
    .compactString("kafkajs").compactString("2.2.4").uvarint(0).u8();
  const resp = new Writer().int32(cid) // header v0 (ApiVersions keeps it)
    .int16(0).uvarint(2) // error, 1 api key
    .int16(0).int16(0).int16(11).uvarint(0) // produce 0..11, no tags
    .int32(0) // throttle
    .uvarint(1).uvarint(0).uvarint(1).int8(0) // one tagged field (SupportedFeatures tag 0, 1 byte: empty)
    .u8();
  return { req: frame(req), resp: frame(resp) };
}

/** Metadata v12 request and response (flexible, header v2 / v1, uuids, nullable compact strings). */
function metadataV12(cid: number): { req: Uint8Array; resp: Uint8Array } {
  const req = new Writer().int16(3).int16(12).int32(cid).string(null).uvarint(0)
    .uvarint(2).raw(new Uint8Array(16)).compactString("orders").uvarint(0) // one topic
    .int8(1).int8(0).uvarint(0).u8(); // allow auto create, include topic ops, tags
  const resp = new Writer().int32(cid).uvarint(0) // header v1
    .int32(0) // throttle
    .uvarint(2).int32(1).compactString("127.0.0.1").int32(9092).compactString(null).uvarint(0) // brokers
    .compactString("cluster").int32(1) // cluster id, controller
    .uvarint(2).int16(0).compactString("orders").raw(new Uint8Array(16)).int8(0) // topic
    .uvarint(2).int16(0).int32(0).int32(1).int32(0).uvarint(2).int32(1).uvarint(2).int32(1).uvarint(1)
    .uvarint(0)
    .int32(-2147483648).uvarint(0) // topic authorized operations, topic tags
    .uvarint(0) // response tags
    .u8();
  return { req: frame(req), resp: frame(resp) };
}

Deno.test("kafka codec: hand-built flexible frames (header v2 / v1, ApiVersions' v0 response header)", () => {
  const { s, r } = session();
  const av = apiVersionsV3(1);
  const md = metadataV12(2);
  s.onRequestData(concat(av.req, md.req));
  s.onResponseData(concat(av.resp, md.resp));
  assert.deepEqual(r.summary(), {
    requests: ["api_versions_request/3", "metadata_request/12"],
    responses: ["api_versions_response/3", "metadata_response/12"],
    unknown: [0, 0],
    failure: [0, 0],
  });
});

/** A conversation of several frames for split tests. */
async function conversation(): Promise<{ req: Uint8Array; resp: Uint8Array }> {
  const av = apiVersionsV3(1);
  const md = metadataV12(2);
  const rnd = prng(7);
  const fetch = api(1);
  return {
    req: concat(
      av.req,
      md.req,
      await kafkajsFrame("Produce", 7, { acks: 1, timeout: 1000, compression: 0, topicData: TOPIC_DATA }, 3),
      randomRequest(apiFor(1, 12)!, 12, 4, rnd),
    ),
    resp: concat(av.resp, md.resp, randomResponse(api(0), 7, 3, rnd), randomResponse(fetch, 12, 4, rnd)),
  };
}

const CONVERSATION = {
  requests: ["api_versions_request/3", "metadata_request/12", "produce_request/7", "fetch_request/12"],
  responses: ["api_versions_response/3", "metadata_response/12", "produce_response/7", "fetch_response/12"],
  unknown: [0, 0],
  failure: [0, 0],
};

Deno.test("kafka codec: every split point of a conversation, byte by byte, and random splits", async () => {
  const { req, resp } = await conversation();
  for (let cut = 0; cut <= req.length; cut++) {
    const { s, r } = session();
    s.onRequestData(req.subarray(0, cut));
    s.onRequestData(req.subarray(cut));
    const rc = Math.min(cut, resp.length);
    s.onResponseData(resp.subarray(0, rc));
    s.onResponseData(resp.subarray(rc));
    assert.deepEqual(r.summary(), CONVERSATION, `cut at ${cut}`);
  }
  {
    const { s, r } = session();
    for (let i = 0; i < req.length; i++) s.onRequestData(req.subarray(i, i + 1));
    for (let i = 0; i < resp.length; i++) s.onResponseData(resp.subarray(i, i + 1));
    assert.deepEqual(r.summary(), CONVERSATION, "byte by byte");
  }
  const rnd = prng(3);
  for (let t = 0; t < 300; t++) {
    const { s, r } = session();
    for (const [data, feed] of [[req, s.onRequestData.bind(s)], [resp, s.onResponseData.bind(s)]] as const) {
      let at = 0;
      while (at < data.length) {
        const n = 1 + Math.floor(rnd() * 40);
        feed(data.subarray(at, at + n));
        at += n;
      }
    }
    assert.deepEqual(r.summary(), CONVERSATION, `random split ${t}`);
  }
});

Deno.test("kafka codec: unknown api_key / version and trailing bytes count unknown, and their responses too", () => {
  const { s, r } = session();
  const unknownKey = frame(new Writer().int16(999).int16(0).int32(1).string("c").raw([1, 2, 3]).u8());
  const unknownVersion = frame(new Writer().int16(18).int16(99).int32(2).string("c").u8());
  const hb = apiFor(12, 0)!; // Heartbeat v0: group_id, generation_id, member_id
  const body = new Writer().int16(12).int16(0).int32(3).string("c").string("g").int32(1).string("m");
  const trailing = frame(body.raw([9, 9]).u8());
  const good = frame(
    new Writer().int16(12).int16(0).int32(4).string("c").string("g").int32(1).string("m").u8(),
  );
  s.onRequestData(concat(unknownKey, unknownVersion, trailing, good));
  assert.deepEqual(r.requests, ["heartbeat_request/0"]);
  assert.equal(r.requestUnknown, 3);
  const resp = (cid: number, extra: number[] = []) => frame(new Writer().int32(cid).int16(0).raw(extra).u8());
  s.onResponseData(concat(resp(1, [7, 7, 7]), resp(2), resp(3), resp(4)));
  // responses to unknown requests are unknown; the one after a request with trailing bytes is parsed (Envoy
  // registers the response of a request it could not parse too)
  assert.deepEqual(r.responses, ["heartbeat_response/0", "heartbeat_response/0"]);
  assert.equal(r.responseUnknown, 2);
  assert.equal(r.responseFailure, 0);
  assert.equal(hb.key, 12);
});

Deno.test("kafka codec: a body that breaks its schema inside its frame is a failure; the next frame decodes", () => {
  const { s, r } = session();
  // Heartbeat v0 whose member_id length runs past the frame
  const bad = frame(new Writer().int16(12).int16(0).int32(1).string("c").string("g").int32(1).int16(50).u8());
  // Metadata v1 with a negative (non-null) topic count -2
  const badCount = frame(new Writer().int16(3).int16(1).int32(2).string("c").int32(-2).u8());
  // Produce v3 (non-nullable topic name) with a null topic name
  const nullName = frame(
    new Writer().int16(0).int16(3).int32(3).string("c").string(null).int16(1).int32(100).int32(1).string(null)
      .u8(),
  );
  // truncated: the frame ends before the body's last field
  const short = frame(new Writer().int16(12).int16(0).int32(4).string("c").string("g").int32(1).u8());
  const good = frame(
    new Writer().int16(12).int16(0).int32(5).string("c").string("g").int32(1).string("m").u8(),
  );
  const all = concat(bad, badCount, nullName, short, good);
  for (let cut = 0; cut <= all.length; cut++) {
    const t = session();
    t.s.onRequestData(all.subarray(0, cut));
    t.s.onRequestData(all.subarray(cut));
    assert.deepEqual([t.r.requestFailure, t.r.requests], [4, ["heartbeat_request/0"]], `cut ${cut}`);
  }
  s.onRequestData(all);
  assert.equal(s.requestsDead, false);
  // a response whose body is short of its schema
  s.onResponseData(frame(new Writer().int32(5).int8(0).u8()));
  assert.equal(r.responseFailure, 1);
  assert.equal(s.responsesDead, false);
});

Deno.test("kafka codec: absurd frame lengths and unanswered correlation ids stop that direction", () => {
  for (const len of [-1, 0, 7, MAX_FRAME_BYTES + 1, 0x7fffffff]) {
    const { s, r } = session();
    s.onRequestData(new Writer().int32(len).raw(new Uint8Array(64)).u8());
    assert.equal(r.requestFailure, 1, `length ${len}`);
    assert.ok(s.requestsDead);
    // bytes after it are not decoded (a valid frame would otherwise count)
    s.onRequestData(apiVersionsV3(1).req);
    assert.deepEqual(r.requests, []);
    assert.equal(r.requestFailure, 1);
  }
  {
    const { s, r } = session();
    s.onResponseData(frame(new Writer().int32(42).int16(0).u8()));
    assert.equal(r.responseFailure, 1);
    assert.ok(s.responsesDead);
    // requests still decode, but no longer wait for responses
    s.onRequestData(apiVersionsV3(1).req);
    assert.deepEqual(r.requests, ["api_versions_request/3"]);
    assert.equal(s.inFlight, 0);
  }
  {
    // the request side died: a response it never saw ends response decoding quietly
    const { s, r } = session();
    s.onRequestData(apiVersionsV3(1).req);
    s.onRequestData(new Writer().int32(-5).u8());
    s.onResponseData(concat(apiVersionsV3(1).resp, apiVersionsV3(2).resp));
    assert.deepEqual(r.responses, ["api_versions_response/3"]);
    assert.equal(r.responseFailure, 0);
    assert.ok(s.responsesDead);
  }
});

Deno.test("kafka codec: Produce with acks=0 expects no response; in-flight requests are bounded", async () => {
  const { s, r } = session();
  s.onRequestData(
    await kafkajsFrame("Produce", 3, { acks: 0, timeout: 1000, compression: 0, topicData: TOPIC_DATA }, 1),
  );
  assert.deepEqual(r.requests, ["produce_request/3"]);
  assert.equal(s.inFlight, 0);
  const hb = (cid: number) =>
    frame(new Writer().int16(12).int16(0).int32(cid).string("c").string("g").int32(1).string("m").u8());
  for (let i = 0; i < MAX_IN_FLIGHT + 50; i++) s.onRequestData(hb(i));
  assert.equal(s.inFlight, MAX_IN_FLIGHT);
  // the oldest were forgotten: the newest still match
  s.onResponseData(frame(new Writer().int32(MAX_IN_FLIGHT + 49).int16(0).u8()));
  assert.equal(r.responses.length, 1);
});

Deno.test("kafka codec: latency is measured from the request decoded to its response decoded", () => {
  let now = 100;
  const { s, r } = session(() => now);
  const av = apiVersionsV3(9);
  s.onRequestData(av.req);
  now = 137.5;
  s.onResponseData(av.resp.subarray(0, 5));
  now = 142;
  s.onResponseData(av.resp.subarray(5));
  assert.deepEqual(r.durations, [42]);
});

Deno.test("kafka codec: seeded fuzz of random, mutated, truncated and oversized frames never throws", () => {
  const rnd = prng(20261207);
  let failures = 0;
  let parsed = 0;
  for (let round = 0; round < 3000; round++) {
    const { s, r } = session();
    const a = ALL_APIS[Math.floor(rnd() * ALL_APIS.length)];
    const v = a.minVersion + Math.floor(rnd() * (a.maxVersion - a.minVersion + 1));
    let req = randomRequest(a, v, round, rnd);
    let resp = randomResponse(a, v, round, rnd);
    const mode = Math.floor(rnd() * 6);
    if (mode === 0) {
      // flip a few bytes anywhere (length included)
      req = req.slice();
      for (let k = 0; k < 3; k++) req[Math.floor(rnd() * req.length)] ^= 1 << Math.floor(rnd() * 8);
    } else if (mode === 1) {
      // truncate the frame but keep its length field consistent
      const cut = 12 + Math.floor(rnd() * Math.max(1, req.length - 12));
      const body = req.subarray(4, Math.min(req.length, cut));
      req = frame(body);
      resp = frame(resp.subarray(4, 4 + Math.floor(rnd() * (resp.length - 4))));
    } else if (mode === 2) {
      // random garbage
      req = new Uint8Array(Math.floor(rnd() * 64)).map(() => Math.floor(rnd() * 256));
      resp = new Uint8Array(Math.floor(rnd() * 64)).map(() => Math.floor(rnd() * 256));
    } else if (mode === 3) {
      // an oversized frame length
      req = new Writer().int32(MAX_FRAME_BYTES + 1 + Math.floor(rnd() * 1000)).raw(req.subarray(4)).u8();
    } else if (mode === 4) {
      // flip bytes in the response body
      resp = resp.slice();
      for (let k = 0; k < 3; k++) resp[4 + Math.floor(rnd() * (resp.length - 4))] ^= 0xff;
    }
    // feed in random pieces, twice each side, then once more (garbage after garbage)
    for (const [data, feed] of [[req, s.onRequestData.bind(s)], [resp, s.onResponseData.bind(s)]] as const) {
      let at = 0;
      while (at < data.length) {
        const n = 1 + Math.floor(rnd() * 30);
        feed(data.subarray(at, at + n));
        at += n;
      }
    }
    failures += r.requestFailure + r.responseFailure;
    parsed += r.requests.length;
    assert.ok(s.inFlight <= 1);
    if (mode === 3) assert.equal(r.requestFailure, 1);
    if (mode === 5) assert.deepEqual([r.requests.length, r.responses.length], [1, 1]);
  }
  assert.ok(failures > 500, `${failures} failures`);
  assert.ok(parsed > 500, `${parsed} parsed`);
});
