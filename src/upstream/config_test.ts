import assert from "node:assert/strict";
import { clusterLoadAssignmentSchema, clusterSchema, isPrime } from "./config.ts";

const ep = (address: string, port = 80, extra: Record<string, unknown> = {}) => ({
  endpoint: { address: { socket_address: { address, port_value: port } } },
  ...extra,
});

const base = {
  name: "svc",
  load_assignment: { cluster_name: "svc", endpoints: [{ lb_endpoints: [ep("127.0.0.1")] }] },
};

/** Parses and returns the error messages joined with their paths ("" when valid). */
function errors(input: unknown): string {
  const r = clusterSchema.safeParse(input);
  return r.success ? "" : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n");
}

Deno.test("clusterSchema", async (t) => {
  await t.step("defaults follow Envoy", () => {
    const c = clusterSchema.parse(base);
    assert.equal(c.type, "STATIC");
    assert.equal(c.connect_timeout, 5000);
    assert.equal(c.lb_policy, "ROUND_ROBIN");
    assert.equal(c.dns_refresh_rate, 5000);
    assert.equal(c.dns_lookup_family, "AUTO");
    assert.equal(c.per_connection_buffer_limit_bytes, 1048576);
    const le = c.load_assignment!.endpoints[0];
    assert.equal(le.priority, 0);
    assert.equal(le.lb_endpoints[0].health_status, "UNKNOWN");
  });

  await t.step("full supported config parses", () => {
    const c = clusterSchema.parse({
      name: "full",
      type: "STRICT_DNS",
      connect_timeout: "0.25s",
      lb_policy: "RING_HASH",
      dns_refresh_rate: { seconds: 10 },
      dns_lookup_family: "V4_ONLY",
      respect_dns_ttl: false,
      per_connection_buffer_limit_bytes: 32768,
      ring_hash_lb_config: { minimum_ring_size: "16", maximum_ring_size: 4096, hash_function: "XX_HASH" },
      maglev_lb_config: { table_size: 5 },
      least_request_lb_config: { choice_count: 3, active_request_bias: { default_value: 1.5 } },
      common_lb_config: { healthy_panic_threshold: { value: 0 } },
      common_http_protocol_options: {
        idle_timeout: "30s",
        max_requests_per_connection: 100,
        max_headers_count: 50,
        headers_with_underscores_action: "REJECT_REQUEST",
      },
      load_assignment: {
        cluster_name: "full",
        endpoints: [{
          locality: { region: "r", zone: "z" },
          load_balancing_weight: 3,
          priority: 0,
          lb_endpoints: [ep("backend.local", 8080, { load_balancing_weight: 5, health_status: "HEALTHY" })],
        }],
      },
    });
    assert.equal(c.connect_timeout, 250);
    assert.equal(c.dns_refresh_rate, 10000);
    assert.equal(c.ring_hash_lb_config!.minimum_ring_size, 16);
    assert.equal(c.common_http_protocol_options!.idle_timeout, 30000);
    assert.equal(c.least_request_lb_config!.choice_count, 3);
  });

  await t.step("unsupported Envoy fields name the field", () => {
    for (
      const f of [
        "upstream_http_protocol_options",
      ]
    ) {
      assert.match(errors({ ...base, [f]: {} }), new RegExp(`^${f}: Field not supported by nuncio$`));
    }
    assert.match(
      errors({ ...base, circuit_breakers: { thresholds: [{ max_connection_pools: 1 }] } }),
      /^circuit_breakers\.thresholds\.0\.max_connection_pools: Field not supported by nuncio$/,
    );
    assert.match(
      errors({ ...base, transport_socket: { name: "tls" } }),
      /transport_socket\.name: Unknown or unsupported transport socket "tls"/,
    );
    assert.match(
      errors({ ...base, common_http_protocol_options: { max_stream_duration: "1s" } }),
      /common_http_protocol_options\.max_stream_duration: Field not supported by nuncio/,
    );
  });

  await t.step("unknown fields are errors", () => {
    assert.match(errors({ ...base, bogus: 1 }), /Unrecognized key/);
    assert.match(errors({ ...base, ring_hash_lb_config: { size: 1 } }), /Unrecognized key/);
  });

  await t.step("unsupported types and policies", () => {
    assert.match(errors({ ...base, type: "NOPE" }), /Invalid cluster type "NOPE"/);
    assert.match(
      errors({ ...base, lb_policy: "CLUSTER_PROVIDED" }),
      /^lb_policy: cluster: LB policy CLUSTER_PROVIDED is not valid for Cluster type STATIC/,
    );
    assert.match(
      errors({ ...base, lb_policy: "LOAD_BALANCING_POLICY_CONFIG" }),
      /lb_policy: Field not supported/,
    );
    assert.match(
      errors({ ...base, ring_hash_lb_config: { hash_function: "MURMUR_HASH_2" } }),
      /not supported/,
    );
  });

  await t.step("ORIGINAL_DST: CLUSTER_PROVIDED, no endpoints, Envoy's defaults", () => {
    const od = { name: "od", type: "ORIGINAL_DST", lb_policy: "CLUSTER_PROVIDED" };
    const c = clusterSchema.parse(od);
    assert.equal(c.cleanup_interval, 5000);
    assert.equal(c.original_dst_lb_config, undefined);
    const h = clusterSchema.parse({
      ...od,
      cleanup_interval: "2s",
      original_dst_lb_config: {
        use_http_header: true,
        http_header_name: "X-Dst",
        upstream_port_override: 8080,
      },
    });
    assert.equal(h.cleanup_interval, 2000);
    assert.deepEqual(h.original_dst_lb_config, {
      use_http_header: true,
      http_header_name: "x-dst",
      upstream_port_override: 8080,
    });
    assert.match(
      errors({ ...od, lb_policy: "ROUND_ROBIN" }),
      /^lb_policy: cluster: LB policy ROUND_ROBIN is not valid for Cluster type ORIGINAL_DST\. Only 'CLUSTER_PROVIDED' is allowed with cluster type 'ORIGINAL_DST'$/,
    );
    assert.match(
      errors({ ...od, load_assignment: { cluster_name: "od", endpoints: [] } }),
      /^load_assignment: ORIGINAL_DST clusters must have no load assignment configured$/,
    );
    assert.match(
      errors({ ...od, original_dst_lb_config: { metadata_key: { key: "x" } } }),
      /^original_dst_lb_config\.metadata_key: Field not supported by nuncio$/,
    );
    assert.match(
      errors({ ...base, original_dst_lb_config: {} }),
      /^original_dst_lb_config: original_dst_lb_config applies to ORIGINAL_DST clusters \(type is STATIC\)$/,
    );
  });

  await t.step("value checks", () => {
    assert.match(errors({ ...base, maglev_lb_config: { table_size: 65536 } }), /table_size must be prime/);
    assert.match(
      errors({ ...base, ring_hash_lb_config: { minimum_ring_size: 10, maximum_ring_size: 5 } }),
      /minimum_ring_size must not exceed/,
    );
    assert.match(
      errors({ ...base, ring_hash_lb_config: { maximum_ring_size: 8388609 } }),
      /maximum_ring_size/,
    );
    assert.match(errors({ ...base, connect_timeout: "0s" }), /connect_timeout must be positive/);
    assert.match(errors({ ...base, connect_timeout: "5" }), /Invalid duration/);
    assert.equal(
      errors({ ...base, load_assignment: { endpoints: [{ priority: 1, lb_endpoints: [] }] } }),
      "",
    );
    assert.match(
      errors({ ...base, load_assignment: { endpoints: [{ priority: 128, lb_endpoints: [] }] } }),
      /endpoints\.0\.priority: /,
    );
    assert.match(
      errors({ ...base, load_assignment: { endpoints: [{ lb_endpoints: [ep("a.example")] }] } }),
      /socket_address\.address: STATIC cluster endpoint address "a\.example" is not an IP/,
    );
    assert.equal(errors({ ...base, load_assignment: { endpoints: [{ lb_endpoints: [ep("::1")] }] } }), "");
    assert.match(
      errors({
        ...base,
        type: "LOGICAL_DNS",
        load_assignment: { endpoints: [{ lb_endpoints: [ep("a"), ep("b")] }] },
      }),
      /LOGICAL_DNS clusters must have exactly one/,
    );
    assert.match(
      errors({
        ...base,
        max_requests_per_connection: 1,
        common_http_protocol_options: { max_requests_per_connection: 2 },
      }),
      /Only one of max_requests_per_connection/,
    );
    assert.match(errors({ name: "" }), /^name:/);
  });

  await t.step("isPrime", () => {
    assert.deepEqual([1, 2, 3, 4, 5, 9, 65537, 5000011].map(isPrime), [
      false,
      true,
      true,
      false,
      true,
      false,
      true,
      true,
    ]);
  });
});

Deno.test("cluster and outlier fields nuncio takes only at its own behaviour", () => {
  const od = (o: Record<string, unknown>) => ({ ...base, outlier_detection: o });
  assert.equal(
    errors(od({
      split_external_local_origin_errors: false,
      max_ejection_time_jitter: "0s",
      successful_active_health_check_uneject_host: false,
      always_eject_one_host: false,
    })),
    "",
  );
  assert.equal(errors({ ...base, respect_dns_ttl: false }), "");
  const NS = "Field not supported by nuncio";
  const cases: [unknown, string][] = [
    [
      { ...base, respect_dns_ttl: true },
      `respect_dns_ttl: ${NS}: only false (hosts are re-resolved every dns_refresh_rate)`,
    ],
    [
      od({ split_external_local_origin_errors: true }),
      `outlier_detection.split_external_local_origin_errors: ${NS}: only false (local-origin errors (connect failures, timeouts) count with the upstream's 5xx)`,
    ],
    [
      od({ max_ejection_time_jitter: "1s" }),
      `outlier_detection.max_ejection_time_jitter: ${NS}: only 0s (ejection times have no jitter)`,
    ],
    [
      od({ successful_active_health_check_uneject_host: true }),
      `outlier_detection.successful_active_health_check_uneject_host: ${NS}: only false (a passing active health check does not un-eject a host)`,
    ],
    [
      od({ always_eject_one_host: true }),
      `outlier_detection.always_eject_one_host: ${NS}: only false (max_ejection_percent always holds)`,
    ],
    [
      od({ consecutive_local_origin_failure: 5 }),
      `outlier_detection.consecutive_local_origin_failure: ${NS}`,
    ],
    [od({ monitors: [] }), `outlier_detection.monitors: ${NS}`],
  ];
  for (const [input, message] of cases) assert.equal(errors(input), message);
});

Deno.test("EDS, priorities and ClusterLoadAssignment", async (t) => {
  await t.step("EDS clusters: eds_cluster_config required, load_assignment rejected", () => {
    const eds = {
      name: "svc",
      type: "EDS",
      eds_cluster_config: { eds_config: { ads: {} }, service_name: "s1" },
    };
    const c = clusterSchema.parse(eds);
    assert.equal(c.type, "EDS");
    assert.deepEqual(c.eds_cluster_config?.eds_config, { ads: {}, initial_fetch_timeout: 15000 });
    assert.equal(c.eds_cluster_config?.service_name, "s1");
    assert.match(
      errors({ name: "svc", type: "EDS" }),
      /^eds_cluster_config: EDS clusters need eds_cluster_config/,
    );
    assert.match(
      errors({ ...eds, load_assignment: base.load_assignment }),
      /^load_assignment: EDS clusters take their endpoints from EDS/,
    );
    assert.match(
      errors({ ...base, eds_cluster_config: { eds_config: { ads: {} } } }),
      /^eds_cluster_config: eds_cluster_config is only valid for EDS clusters/,
    );
    assert.match(errors({ ...eds, eds_cluster_config: {} }), /eds_cluster_config\.eds_config/);
  });

  await t.step("load assignment policy, priorities, locality weighting", () => {
    const c = clusterSchema.parse({
      ...base,
      load_assignment: {
        endpoints: [{ priority: 2, lb_endpoints: [] }],
        policy: { overprovisioning_factor: 200 },
      },
      common_lb_config: { locality_weighted_lb_config: {} },
    });
    assert.equal(c.load_assignment?.policy?.overprovisioning_factor, 200);
    assert.equal(c.load_assignment?.endpoints[0].priority, 2);
    assert.match(
      errors({ ...base, load_assignment: { endpoints: [], policy: { drop_overloads: [] } } }),
      /policy\.drop_overloads: Field not supported by nuncio/,
    );
    assert.match(
      errors({ ...base, lb_policy: "MAGLEV", common_lb_config: { locality_weighted_lb_config: {} } }),
      /common_lb_config\.locality_weighted_lb_config: Field not supported by nuncio/,
    );
    assert.match(
      errors({ ...base, lb_policy: "RING_HASH", common_lb_config: { zone_aware_lb_config: {} } }),
      /common_lb_config\.zone_aware_lb_config: Field not supported by nuncio/,
    );
    assert.match(
      errors({ ...base, common_lb_config: { zone_aware_lb_config: { force_local_zone: {} } } }),
      /zone_aware_lb_config\.force_local_zone: Field not supported by nuncio/,
    );
  });

  await t.step("clusterLoadAssignmentSchema (EDS resources)", () => {
    const cla = clusterLoadAssignmentSchema.parse({
      cluster_name: "svc",
      endpoints: [{
        locality: { zone: "a" },
        load_balancing_weight: 3,
        priority: 1,
        lb_endpoints: [ep("10.0.0.1", 80, { health_status: "DEGRADED", load_balancing_weight: 2 })],
      }],
    });
    assert.equal(cla.policy, undefined);
    assert.equal(cla.endpoints[0].lb_endpoints[0].health_status, "DEGRADED");
    assert.equal(clusterLoadAssignmentSchema.safeParse({ endpoints: [] }).success, false);
    assert.equal(clusterLoadAssignmentSchema.safeParse({ cluster_name: "x", bogus: 1 }).success, false);
  });
});
