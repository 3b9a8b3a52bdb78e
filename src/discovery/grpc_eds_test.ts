import assert from "node:assert/strict";
import { openGrpcStream } from "../grpc/stream_client.ts";
import { decodeDiscoveryResponse, encodeDiscoveryRequest } from "../xds/codec/discovery.ts";
import { startDiscoveryService } from "./run.ts";
import { CLA_TYPE_URL } from "./eds.ts";
import { GRPC_EDS_METHODS } from "./grpc_eds.ts";

const LDS = "type.googleapis.com/envoy.config.listener.v3.Listener";

Deno.test("gRPC ADS: answers names, ACK waits, a change is pushed, NACK counted, other types empty", async () => {
  await using reg = await startDiscoveryService({
    port: 0,
    grpcPort: 0,
    sweepIntervalMs: 0,
    grpc: { coalesceMs: 1, pollIntervalMs: 0, maxStreams: 1 },
  });
  await reg.registry.register("users", { ip: "10.0.0.1", port: 80 });
  const call = await openGrpcStream(
    { host: "127.0.0.1", port: reg.grpcPort! },
    GRPC_EDS_METHODS.streamAggregated,
  );
  try {
    const node = { id: "n1", cluster: "c" };
    call.write(encodeDiscoveryRequest({ node, type_url: CLA_TYPE_URL, resource_names: ["users"] }));
    const r1 = decodeDiscoveryResponse((await call.read())!);
    assert.equal(r1.type_url, CLA_TYPE_URL);
    assert.equal(r1.resources.length, 1);
    // ACK, then an unsupported type: the next message is the empty LDS answer, not an EDS resend
    call.write(encodeDiscoveryRequest({
      type_url: CLA_TYPE_URL,
      resource_names: ["users"],
      version_info: r1.version_info,
      response_nonce: r1.nonce,
    }));
    call.write(encodeDiscoveryRequest({ type_url: LDS }));
    const r2 = decodeDiscoveryResponse((await call.read())!);
    assert.equal(r2.type_url, LDS);
    assert.equal(r2.resources.length, 0);
    // a second stream is over the limit
    const extra = await openGrpcStream(
      { host: "127.0.0.1", port: reg.grpcPort! },
      GRPC_EDS_METHODS.streamEndpoints,
    );
    assert.equal(await extra.read().catch(() => null), null);
    await extra.close();
    // a new host is pushed with a new version
    await reg.registry.register("users", { ip: "10.0.0.2", port: 80 });
    const r3 = decodeDiscoveryResponse((await call.read())!);
    assert.notEqual(r3.version_info, r1.version_info);
    // NACK of it: counted, nothing resent
    call.write(encodeDiscoveryRequest({
      type_url: CLA_TYPE_URL,
      resource_names: ["users"],
      version_info: r1.version_info,
      response_nonce: r3.nonce,
      error_detail: { code: 3, message: "bad" },
    }));
    await new Promise((r) => setTimeout(r, 50));
    const c = reg.registry.stats.snapshot().counters;
    assert.equal(c["discovery.grpc.nacks"], 1);
    assert.equal(c["discovery.grpc.acks"], 1);
    assert.equal(c["discovery.grpc.streams_refused"], 1);
    assert.equal(c["discovery.grpc.responses"], 3);
  } finally {
    await call.close();
  }
});
