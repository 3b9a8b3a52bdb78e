import assert from "node:assert/strict";
import { compileRateLimits, type DescriptorEntry, rateLimitSchema } from "./rate_limits.ts";
import { req } from "./test_util.ts";

const ctx = { localServiceCluster: "edge", destinationCluster: "api", remoteIp: "10.0.0.7" };

function descriptors(limits: unknown[], r = req("/x")): DescriptorEntry[][] {
  const compiled = compileRateLimits(limits.map((l) => rateLimitSchema.parse(l)));
  const out: DescriptorEntry[][] = [];
  for (const c of compiled) c.populate(r, ctx, out);
  return out;
}

Deno.test("rate_limits actions build Envoy's descriptors", async (t) => {
  await t.step("source/destination cluster, remote address, generic key", () => {
    assert.deepEqual(
      descriptors([{
        actions: [
          { source_cluster: {} },
          { destination_cluster: {} },
          { remote_address: {} },
          { generic_key: { descriptor_value: "v1" } },
          { generic_key: { descriptor_key: "k", descriptor_value: "v2" } },
        ],
      }]),
      [[
        { key: "source_cluster", value: "edge" },
        { key: "destination_cluster", value: "api" },
        { key: "remote_address", value: "10.0.0.7" },
        { key: "generic_key", value: "v1" },
        { key: "k", value: "v2" },
      ]],
    );
  });

  await t.step("request_headers: present, absent (descriptor skipped) and skip_if_absent", () => {
    const limits = [
      { actions: [{ request_headers: { header_name: "X-User", descriptor_key: "user" } }] },
      {
        actions: [
          { generic_key: { descriptor_value: "g" } },
          { request_headers: { header_name: "x-team", descriptor_key: "team", skip_if_absent: true } },
        ],
      },
    ];
    assert.deepEqual(descriptors(limits, req("/", { headers: [["x-user", "alice"]] })), [
      [{ key: "user", value: "alice" }],
      [{ key: "generic_key", value: "g" }],
    ]);
    assert.deepEqual(descriptors(limits, req("/")), [[{ key: "generic_key", value: "g" }]]);
  });

  await t.step("header_value_match with expect_match true and false", () => {
    const limits = [
      {
        actions: [{
          header_value_match: {
            descriptor_value: "post",
            headers: [{ name: "x-method", exact_match: "POST" }],
          },
        }],
      },
      {
        actions: [{
          header_value_match: {
            descriptor_key: "not_get",
            descriptor_value: "yes",
            expect_match: false,
            headers: [{ name: "x-method", exact_match: "GET" }],
          },
        }],
      },
    ];
    assert.deepEqual(descriptors(limits, req("/", { headers: [["x-method", "POST"]] })), [
      [{ key: "header_match", value: "post" }],
      [{ key: "not_get", value: "yes" }],
    ]);
    assert.deepEqual(descriptors(limits, req("/", { headers: [["x-method", "GET"]] })), []);
  });

  await t.step("stage, and config errors", () => {
    assert.equal(
      compileRateLimits([rateLimitSchema.parse({ stage: 2, actions: [{ remote_address: {} }] })])[0]
        .stage,
      2,
    );
    assert.throws(() => rateLimitSchema.parse({ actions: [] }));
    assert.throws(() => rateLimitSchema.parse({ actions: [{ remote_address: {}, source_cluster: {} }] }));
    assert.throws(() => rateLimitSchema.parse({ actions: [{ masked_remote_address: {} }] }), /not supported/);
  });
});
