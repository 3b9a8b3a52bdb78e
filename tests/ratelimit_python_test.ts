/**
 * An independent client: python3-grpcio with message classes compiled (grpc_tools.protoc) from this test's
 * own minimal rls.proto, calling `ShouldRateLimit` on the service's gRPC port. Skipped when grpcio is missing.
 */
import assert from "node:assert/strict";
import { startRatelimitService } from "../src/ratelimit/run.ts";
import { compileProto, PY } from "./python_grpc.ts";

// Field numbers as in envoy/service/ratelimit/v3/rls.proto and envoy/extensions/common/ratelimit/v3/ratelimit.proto.
const PROTO = `syntax = "proto3";
package envoy.service.ratelimit.v3;
import "google/protobuf/duration.proto";
import "google/protobuf/wrappers.proto";
message Entry { string key = 1; string value = 2; }
message Override { uint32 requests_per_unit = 1; int32 unit = 2; }
message Descriptor { repeated Entry entries = 1; Override limit = 2; google.protobuf.UInt64Value hits_addend = 3; }
message RateLimitRequest { string domain = 1; repeated Descriptor descriptors = 2; uint32 hits_addend = 3; }
message HeaderValue { string key = 1; string value = 2; }
message RateLimitResponse {
  enum Code { UNKNOWN = 0; OK = 1; OVER_LIMIT = 2; }
  message RateLimit {
    enum Unit { UNKNOWN = 0; SECOND = 1; MINUTE = 2; HOUR = 3; DAY = 4; MONTH = 5; YEAR = 6; WEEK = 7; }
    string name = 3; uint32 requests_per_unit = 1; Unit unit = 2;
  }
  message DescriptorStatus {
    Code code = 1; RateLimit current_limit = 2; uint32 limit_remaining = 3;
    google.protobuf.Duration duration_until_reset = 4;
  }
  Code overall_code = 1; repeated DescriptorStatus statuses = 2;
  repeated HeaderValue response_headers_to_add = 3; repeated HeaderValue request_headers_to_add = 4;
}
service RateLimitService { rpc ShouldRateLimit(RateLimitRequest) returns (RateLimitResponse) {} }
`;

const CLIENT = `
import json, sys, grpc
sys.path.insert(0, sys.argv[2])
import rls_pb2, rls_pb2_grpc
from google.protobuf import wrappers_pb2
ch = grpc.insecure_channel("127.0.0.1:" + sys.argv[1])
stub = rls_pb2_grpc.RateLimitServiceStub(ch)
out = []
def call(req):
    try:
        r = stub.ShouldRateLimit(req, timeout=5)
        out.append({"overall": r.overall_code, "statuses": [
            {"code": s.code, "rpu": s.current_limit.requests_per_unit, "unit": s.current_limit.unit,
             "name": s.current_limit.name, "remaining": s.limit_remaining, "reset": s.duration_until_reset.seconds}
            for s in r.statuses]})
    except grpc.RpcError as e:
        out.append({"error": e.code().name, "details": e.details()})
d = lambda k, v, **kw: rls_pb2.Descriptor(entries=[rls_pb2.Entry(key=k, value=v)], **kw)
for i in range(3):
    call(rls_pb2.RateLimitRequest(domain="py", descriptors=[d("user", "ann"), d("user", "vip")]))
call(rls_pb2.RateLimitRequest(domain="py", descriptors=[d("user", "bob", hits_addend=wrappers_pb2.UInt64Value(value=2))], hits_addend=9))
call(rls_pb2.RateLimitRequest(domain="py", descriptors=[d("x", "y", limit=rls_pb2.Override(requests_per_unit=7, unit=3))]))
call(rls_pb2.RateLimitRequest(domain="", descriptors=[]))
print(json.dumps(out))
`;

Deno.test({
  name: "python grpcio client calls ShouldRateLimit",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "nuncio_rlpy_" });
    try {
      await Deno.writeTextFile(`${dir}/rls.proto`, PROTO);
      await Deno.writeTextFile(`${dir}/client.py`, CLIENT);
      await Deno.writeTextFile(
        `${dir}/limits.yaml`,
        `domain: py
descriptors:
  - key: user
    rate_limit: { unit: minute, requests_per_unit: 2 }
  - key: user
    value: vip
    rate_limit: { unit: day, requests_per_unit: 1000, name: vip }
`,
      );
      await compileProto(dir, dir, `${dir}/rls.proto`);
      await using svc = await startRatelimitService({
        limitsPath: `${dir}/limits.yaml`,
        grpcPort: 0,
        watchIntervalMs: 0,
      });
      const run = await new Deno.Command(PY, { args: [`${dir}/client.py`, String(svc.grpcPort), dir] })
        .output();
      assert.ok(run.success, new TextDecoder().decode(run.stderr));
      const out = JSON.parse(new TextDecoder().decode(run.stdout));
      const within = (n: number) => ({ code: 1, rpu: 2, unit: 2, name: "", remaining: n });
      const strip = (s: Record<string, unknown>) => {
        const { reset: _r, ...rest } = s;
        return rest;
      };
      assert.deepEqual(out[0].statuses.map(strip), [within(1), {
        code: 1,
        rpu: 1000,
        unit: 4,
        name: "vip",
        remaining: 999,
      }]);
      assert.equal(out[0].overall, 1);
      assert.ok(out[0].statuses[0].reset > 0 && out[0].statuses[0].reset <= 60);
      assert.equal(out[1].statuses[0].remaining, 0);
      assert.equal(out[2].overall, 2);
      assert.equal(out[2].statuses[0].code, 2);
      assert.equal(out[2].statuses[1].code, 1);
      assert.equal(out[3].statuses[0].remaining, 0); // bob: per-descriptor hits_addend 2 wins over 9
      assert.equal(out[3].overall, 1);
      assert.deepEqual(strip(out[4].statuses[0]), { code: 1, rpu: 7, unit: 3, name: "", remaining: 6 });
      assert.equal(out[5].error, "INVALID_ARGUMENT");
      assert.match(out[5].details, /domain must not be empty/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
