/**
 * envoy.filters.network.kafka_broker end to end: the real kafkajs client (admin, producer, consumer group)
 * against a Kafka wire-protocol broker (tests/kafka_wire_broker.ts) through nuncio
 * (listener -> kafka_broker -> tcp_proxy -> broker). The broker advertises the proxy's listener, so every
 * connection the client opens goes through the filter; the filter's request/response stats must match what the
 * broker answered, per API.
 */
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import {
  behaviors,
  bootstrapYaml,
  rawExchange,
  startProxy,
  startRawOrigin,
  staticCluster,
} from "./helpers.ts";
import { KafkaWireBroker } from "./kafka_wire_broker.ts";
import { loadConfigText } from "../src/config/load.ts";
import { formatConfigError } from "../src/config/errors.ts";
import { API_BY_KEY } from "../src/extensions/filters/network/kafka_broker/schema.ts";

type Obj = Record<string, unknown>;

/** A 127.0.0.1:0 listener: kafka_broker (stat_prefix `prefix`) then tcp_proxy to `cluster`. */
function kafkaListener(name: string, prefix: string, cluster: string): Obj {
  return {
    name,
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    filter_chains: [{
      filters: [
        {
          name: "envoy.filters.network.kafka_broker",
          typed_config: {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.kafka_broker.v3.KafkaBroker",
            stat_prefix: prefix,
          },
        },
        {
          name: "envoy.filters.network.tcp_proxy",
          typed_config: {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            stat_prefix: name,
            cluster,
          },
        },
      ],
    }],
  };
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test({
  name: "kafka_broker e2e: kafkajs admin, producer and consumer group through nuncio; stats match the broker",
  fn: async () => {
    await using broker = new KafkaWireBroker();
    await using proxy = await startProxy(bootstrapYaml(
      [kafkaListener("kafka", "kafka_e2e", "kafka_broker")],
      [staticCluster("kafka_broker", [broker.port])],
    ));
    broker.advertise("127.0.0.1", proxy.port("kafka"));
    const kafka = new Kafka({
      clientId: "nuncio-e2e",
      brokers: [`127.0.0.1:${proxy.port("kafka")}`],
      logLevel: logLevel.NOTHING,
      retry: { retries: 2, initialRetryTime: 50 },
    });

    const admin = kafka.admin();
    await admin.connect();
    assert.equal(await admin.createTopics({ topics: [{ topic: "orders", numPartitions: 1 }] }), true);
    await admin.disconnect();

    const producer = kafka.producer();
    await producer.connect();
    const sent = Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: `order-${i}` }));
    await producer.send({ topic: "orders", messages: sent.slice(0, 10) });
    await producer.send({ topic: "orders", messages: sent.slice(10) });
    await producer.disconnect();
    assert.equal(broker.logSize("orders"), 20);

    const consumer = kafka.consumer({ groupId: "g1", maxWaitTimeInMs: 100, heartbeatInterval: 50 });
    await consumer.connect();
    await consumer.subscribe({ topic: "orders", fromBeginning: true });
    const got: string[] = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        got.push(message.value!.toString());
        await new Promise((r) => setTimeout(r, 5));
      },
    });
    await until(() => got.length === 20, "20 messages");
    // let a heartbeat and an offset commit go by
    await until(() => (broker.requests.get(12) ?? 0) >= 1 && (broker.requests.get(8) ?? 0) >= 1, "heartbeat");
    await consumer.disconnect();
    assert.deepEqual(got, sent.map((m) => m.value));

    const snap = proxy.plane.stats.snapshot();
    const stat = (n: string) => snap.counters[`kafka.kafka_e2e.${n}`] ?? -1;
    // every API the broker answered, counted as that request and that response by the filter
    const seen: Record<string, number> = {};
    for (const [key, n] of broker.requests) {
      const api = API_BY_KEY[key]!;
      seen[api.requestStat] = n;
      assert.equal(stat(`request.${api.requestStat}`), n, api.requestStat);
      assert.equal(stat(`response.${api.responseStat}`), n, api.responseStat);
      assert.equal(snap.histograms[`kafka.kafka_e2e.response.${api.responseStat}_duration`]?.count, n);
    }
    for (
      const name of [
        "api_versions_request",
        "metadata_request",
        "create_topics_request",
        "produce_request",
        "find_coordinator_request",
        "join_group_request",
        "sync_group_request",
        "offset_fetch_request",
        "list_offsets_request",
        "fetch_request",
        "heartbeat_request",
        "offset_commit_request",
        "leave_group_request",
      ]
    ) assert.ok(seen[name] >= 1, `${name} was exercised`);
    assert.equal(seen.produce_request, 2);
    assert.equal(seen.create_topics_request, 1);
    assert.equal(seen.leave_group_request, 1);
    for (const n of ["request.unknown", "request.failure", "response.unknown", "response.failure"]) {
      assert.equal(stat(n), 0, n);
    }
    // tcp_proxy carried every connection kafkajs opened (bootstrap, broker, coordinator, for each client)
    assert.ok((snap.counters["tcp.kafka.downstream_cx_total"] ?? 0) >= 3);
  },
});

Deno.test("kafka_broker e2e: bytes that are not Kafka count one failure each way and still flow unchanged", async () => {
  await using origin = startRawOrigin(behaviors.echo());
  await using proxy = await startProxy(bootstrapYaml(
    [kafkaListener("kafka", "not_kafka", "echo")],
    [staticCluster("echo", [origin.port])],
  ));
  const text = "GET / HTTP/1.1\r\nhost: example\r\n\r\n" + "x".repeat(100_000);
  const r = await rawExchange(proxy.port("kafka"), [text.slice(0, 7), text.slice(7)], {
    halfClose: true,
    gapMs: 20,
  });
  assert.equal(r.text, text);
  // "GET " read as a frame length is over the limit: each direction counts one failure and stops decoding
  assert.equal(proxy.stat("kafka.not_kafka.request.failure"), 1);
  assert.equal(proxy.stat("kafka.not_kafka.response.failure"), 1);
  assert.equal(proxy.stat("kafka.not_kafka.request.unknown"), 0);
});

Deno.test("kafka_broker config: the rewrite fields fail validation with their full path", () => {
  const listener = kafkaListener("kafka", "k", "c") as {
    filter_chains: { filters: { typed_config: Obj }[] }[];
  };
  const tc = listener.filter_chains[0].filters[0].typed_config;
  tc.force_response_rewrite = true;
  tc.id_based_broker_address_rewrite_spec = { rules: [{ id: 1, host: "127.0.0.1", port: 19092 }] };
  const loaded = loadConfigText(bootstrapYaml([listener], [staticCluster("c", [1])]), "kafka.yaml");
  assert.equal(loaded.ok, false);
  const text = loaded.ok ? "" : loaded.errors.map(formatConfigError).join("\n");
  const at = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config";
  assert.match(
    text,
    new RegExp(`${at.replaceAll(/[.[\]]/g, "\\$&")}\\.force_response_rewrite.*not supported`),
  );
  assert.match(
    text,
    new RegExp(`${at.replaceAll(/[.[\]]/g, "\\$&")}\\.id_based_broker_address_rewrite_spec.*not supported`),
  );
});
