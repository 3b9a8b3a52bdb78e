import assert from "node:assert/strict";
import { StatsStore } from "../stats/store.ts";
import { embeddedOptions, embeddedRatelimitSchema, startEmbeddedRatelimit } from "./embedded.ts";

Deno.test("embedded ratelimit_service section", async () => {
  const parsed = embeddedRatelimitSchema.parse({
    limits_path: new URL("../../config/ratelimit.yaml", import.meta.url).pathname,
    redis_failure_mode: "closed",
    grpc_address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    http_address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    watch_interval: "0s",
  });
  assert.equal(parsed.watch_interval, 0);
  assert.throws(() => embeddedRatelimitSchema.parse({ limits_path: "x", grpc_address: {}, colour: 1 }));
  assert.throws(() =>
    embeddedOptions({
      ...parsed,
      http_address: { socket_address: { address: "0.0.0.0", port_value: 1 } },
    })
  );
  const stats = new StatsStore();
  await using svc = await startEmbeddedRatelimit(parsed, stats);
  assert.ok(svc.loaded && svc.grpcPort! > 0 && svc.httpPort! > 0);
  assert.equal(svc.service.failureMode, "closed");
  const res = await fetch(`http://127.0.0.1:${svc.httpPort}/healthcheck`);
  assert.equal(await res.text(), "OK");
  assert.equal(stats.snapshot().counters["ratelimit.service.config_load_success"], 1);
});
