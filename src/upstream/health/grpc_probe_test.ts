import assert from "node:assert/strict";
import { GrpcError, GrpcServer } from "../../grpc/server.ts";
import { ProtoReader } from "../../grpc/protobuf.ts";
import type { HeaderMap } from "../../http/headers.ts";
import { HostImpl } from "../host.ts";
import { healthCheckSchema } from "./config.ts";
import {
  decodeServingStatus,
  encodeHealthCheckRequest,
  GRPC_HEALTH_CHECK_PATH,
  GrpcProbeFactory,
  grpcProbeOptions,
  ServingStatus,
} from "./grpc_probe.ts";
import { type Probe, ProbeOutcome } from "./probe.ts";

const base = { timeout: "1s", interval: "5s", unhealthy_threshold: 2, healthy_threshold: 1 };

function servingResponse(status: number): Uint8Array {
  return status === 0 ? new Uint8Array(0) : Uint8Array.of(0x08, status);
}

function serviceOf(req: Uint8Array): string {
  const r = new ProtoReader(req);
  let s = "";
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === 0x0a) s = r.string();
    else r.skip(tag & 7);
  }
  return s;
}

/** A health server answering `state.status` (or throwing `state.error`), recording requests. */
function healthServer() {
  const state = {
    status: ServingStatus.SERVING as number,
    error: null as GrpcError | null,
    hang: false,
    seen: [] as { service: string; md: HeaderMap }[],
  };
  const server = new GrpcServer().register(GRPC_HEALTH_CHECK_PATH, (req, md) => {
    state.seen.push({ service: serviceOf(req), md });
    if (state.error) throw state.error;
    if (state.hang) return new Promise<Uint8Array>(() => {});
    return servingResponse(state.status);
  });
  const { port } = server.listen({ port: 0 });
  return { server, state, port };
}

/** A probe with a sink resolving the next outcome. */
function probeOf(port: number, extra: Record<string, unknown> = {}) {
  const cfg = healthCheckSchema.parse({
    ...base,
    grpc_health_check: {
      service_name: "svc.A",
      initial_metadata: [{ header: { key: "X-Hc", value: "nuncio" } }],
    },
    ...extra,
  });
  const outcomes: ProbeOutcome[] = [];
  let wake: (() => void) | null = null;
  const probe: Probe = new GrpcProbeFactory(grpcProbeOptions(cfg, "backend")).create(
    new HostImpl("127.0.0.1", port),
    {
      onProbeResult(o) {
        outcomes.push(o);
        wake?.();
      },
    },
  );
  const check = async (): Promise<ProbeOutcome> => {
    const n = outcomes.length;
    probe.start();
    while (outcomes.length === n) await new Promise<void>((r) => wake = r);
    return outcomes[n];
  };
  return { probe, check, outcomes };
}

Deno.test("gRPC health probe", async (t) => {
  await t.step("messages", () => {
    assert.deepEqual([...encodeHealthCheckRequest("ab")], [0x0a, 2, 0x61, 0x62]);
    assert.equal(encodeHealthCheckRequest("").length, 0);
    assert.equal(decodeServingStatus(Uint8Array.of(0x08, 2)), ServingStatus.NOT_SERVING);
    assert.equal(decodeServingStatus(new Uint8Array(0)), ServingStatus.UNKNOWN);
    // unknown fields are skipped
    assert.equal(decodeServingStatus(Uint8Array.of(0x12, 1, 0x41, 0x08, 1)), ServingStatus.SERVING);
  });

  await t.step("SERVING passes, other statuses and gRPC errors fail actively", async () => {
    const h = healthServer();
    const p = probeOf(h.port);
    try {
      assert.equal(await p.check(), ProbeOutcome.SUCCESS);
      assert.equal(h.state.seen[0].service, "svc.A");
      assert.equal(h.state.seen[0].md.get("x-hc"), "nuncio");
      for (const s of [ServingStatus.NOT_SERVING, ServingStatus.SERVICE_UNKNOWN, ServingStatus.UNKNOWN]) {
        h.state.status = s;
        assert.equal(await p.check(), ProbeOutcome.ACTIVE_FAILURE, `status ${s}`);
      }
      h.state.error = new GrpcError(5, "Unknown service");
      assert.equal(await p.check(), ProbeOutcome.ACTIVE_FAILURE);
      h.state.error = null;
      h.state.status = ServingStatus.SERVING;
      assert.equal(await p.check(), ProbeOutcome.SUCCESS);
      assert.equal(h.server.connections, 1, "one connection reused by every check");
    } finally {
      p.probe.close();
      await h.server.close();
    }
  });

  await t.step("an unimplemented health service fails actively", async () => {
    const server = new GrpcServer();
    const { port } = server.listen({ port: 0 });
    const p = probeOf(port);
    try {
      assert.equal(await p.check(), ProbeOutcome.ACTIVE_FAILURE);
    } finally {
      p.probe.close();
      await server.close();
    }
  });

  await t.step("connect failures and a closed server are network failures; reconnects after", async () => {
    const h = healthServer();
    const port = h.port;
    const p = probeOf(port);
    try {
      assert.equal(await p.check(), ProbeOutcome.SUCCESS);
      await h.server.close();
      assert.equal(await p.check(), ProbeOutcome.NETWORK_FAILURE);
      const again = new GrpcServer().register(GRPC_HEALTH_CHECK_PATH, () => servingResponse(1));
      again.listen({ port });
      try {
        assert.equal(await p.check(), ProbeOutcome.SUCCESS);
      } finally {
        p.probe.close();
        await again.close();
      }
    } finally {
      p.probe.close();
    }
  });

  await t.step("reuse_connection false closes after each check; cancel keeps a reused one", async () => {
    const h = healthServer();
    const once = probeOf(h.port, { reuse_connection: false });
    const kept = probeOf(h.port);
    try {
      assert.equal(await once.check(), ProbeOutcome.SUCCESS);
      assert.equal(await once.check(), ProbeOutcome.SUCCESS);
      for (let i = 0; i < 50 && h.server.connections > 0; i++) await new Promise((r) => setTimeout(r, 5));
      assert.equal(h.server.connections, 0);
      h.state.hang = true;
      kept.probe.start();
      for (let i = 0; i < 100 && h.state.seen.length < 3; i++) await new Promise((r) => setTimeout(r, 5));
      kept.probe.cancel(); // the session's timeout
      h.state.hang = false;
      assert.equal(await kept.check(), ProbeOutcome.SUCCESS);
      assert.equal(kept.outcomes.length, 1, "the cancelled check reports nothing");
      assert.equal(h.server.connections, 1);
    } finally {
      once.probe.close();
      kept.probe.close();
      await h.server.close();
    }
  });
});
