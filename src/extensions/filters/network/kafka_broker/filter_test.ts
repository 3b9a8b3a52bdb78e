/**
 * The kafka_broker filter over a stats store: Envoy's stat names, the config's refused rewrite fields, and a
 * large Produce streamed through without being buffered.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../../../common/clock.ts";
import type { FactoryContext, ReadFilter } from "../../../../network/filter.ts";
import { StatsStore } from "../../../../stats/store.ts";
import { kafkaBrokerSchema } from "./config.ts";
import { KafkaBrokerFactory } from "./filter.ts";
import { apiFor } from "./schema.ts";
import { concat, frame, prng, randomResponse, Writer } from "./test_frames.ts";

function make(statPrefix = "kafka_in"): { f: ReadFilter; stats: StatsStore; clock: ManualClock } {
  const stats = new StatsStore();
  const clock = new ManualClock();
  const ctx = { stats, clock } as unknown as FactoryContext;
  const factory = new KafkaBrokerFactory(kafkaBrokerSchema.parse({ stat_prefix: statPrefix }), ctx);
  return { f: factory.createFilter({} as never) as ReadFilter, stats, clock };
}

function errors(input: unknown): string {
  const r = kafkaBrokerSchema.safeParse(input);
  return r.success ? "" : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n");
}

Deno.test("kafka_broker config: stat_prefix required; the rewrite fields are refused by name", () => {
  assert.equal(errors({ stat_prefix: "k" }), "");
  assert.equal(errors({ stat_prefix: "k", force_response_rewrite: false }), "");
  assert.match(errors({}), /^stat_prefix: /);
  assert.match(errors({ stat_prefix: "" }), /^stat_prefix: /);
  assert.equal(
    errors({ stat_prefix: "k", force_response_rewrite: true }),
    "force_response_rewrite: Field not supported by nuncio",
  );
  assert.equal(
    errors({
      stat_prefix: "k",
      id_based_broker_address_rewrite_spec: { rules: [{ id: 0, host: "127.0.0.1", port: 19092 }] },
    }),
    "id_based_broker_address_rewrite_spec: Field not supported by nuncio",
  );
  assert.match(errors({ stat_prefix: "k", other: 1 }), /Unrecognized key/);
});

Deno.test("kafka_broker filter: Envoy's stat names, declared up front; latency histograms in ms", () => {
  const { f, stats, clock } = make();
  const c = (n: string) => stats.counter(`kafka.kafka_in.${n}`).value;
  // every counter exists before any traffic (Envoy declares them with the filter config)
  for (
    const n of [
      "request.produce_request",
      "request.api_versions_request",
      "request.consumer_group_heartbeat_request",
      "request.unknown",
      "request.failure",
      "response.offset_for_leader_epoch_response",
      "response.unknown",
      "response.failure",
    ]
  ) assert.ok(stats.counters.has(`kafka.kafka_in.${n}`), n);
  const hb = (cid: number) =>
    frame(new Writer().int16(12).int16(0).int32(cid).string("c").string("g").int32(1).string("m").u8());
  const data = concat(hb(1), hb(2));
  f.onData!(data, false);
  assert.equal(c("request.heartbeat_request"), 2);
  clock.advance(25);
  f.onWrite!(
    concat(frame(new Writer().int32(1).int16(0).u8()), frame(new Writer().int32(2).int16(0).u8())),
    false,
  );
  assert.equal(c("response.heartbeat_response"), 2);
  const h = stats.histograms.get("kafka.kafka_in.response.heartbeat_response_duration")!;
  assert.equal(h.count, 2);
  assert.equal(h.sum, 50);
  // the filter never touches the bytes it sees
  assert.deepEqual(data, concat(hb(1), hb(2)));
  f.onData!(new Writer().int32(-1).u8(), false);
  assert.equal(c("request.failure"), 1);
  f.onData!(new Uint8Array(0), true);
  f.onClose!();
});

Deno.test("kafka_broker filter: a 64 MiB Produce streams through in 64 KiB reads without being buffered", () => {
  const { f, stats } = make("big");
  const records = 64 * 1024 * 1024;
  // Produce v3: transactional_id, acks, timeout, [topic [partition records]]
  const head = new Writer().int16(0).int16(3).int32(11).string("c")
    .string(null).int16(-1).int32(1000).int32(1).string("orders").int32(1).int32(0).int32(records).u8();
  const chunk = new Uint8Array(64 * 1024);
  const before = Deno.memoryUsage().heapUsed;
  const t0 = performance.now();
  f.onData!(concat(new Writer().int32(head.length + records).u8(), head), false);
  for (let left = records; left > 0; left -= chunk.length) {
    f.onData!(chunk.subarray(0, Math.min(left, chunk.length)), false);
  }
  const ms = performance.now() - t0;
  const grew = Deno.memoryUsage().heapUsed - before;
  assert.equal(stats.counter("kafka.big.request.produce_request").value, 1);
  assert.ok(grew < 8 * 1024 * 1024, `heap grew ${grew} bytes`);
  assert.ok(ms < 1000, `${ms} ms`);
  // its response
  f.onWrite!(randomResponse(apiFor(0, 3)!, 3, 11, prng(1)), false);
  assert.equal(stats.counter("kafka.big.response.produce_response").value, 1);
});
