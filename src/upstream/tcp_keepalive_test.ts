import assert from "node:assert/strict";
import { upstreamConnectionOptionsSchema, wantsKeepAlive } from "./tcp_keepalive.ts";
import { sockoptAvailable } from "../transport/sockopt.ts";

sockoptAvailable(); // libc stays open for the process (see sockoptAvailable)

Deno.test("tcp_keepalive: on with the kernel's values or the given timings, off with a 0", () => {
  const parse = (v: unknown) => upstreamConnectionOptionsSchema.safeParse(v);
  assert.ok(wantsKeepAlive(parse({ tcp_keepalive: {} }).data));
  assert.ok(!wantsKeepAlive(parse({ tcp_keepalive: { keepalive_time: 0 } }).data));
  assert.ok(!wantsKeepAlive(parse({}).data));
  assert.ok(!wantsKeepAlive(undefined));
  // timings are accepted (set per socket through libc: src/transport/sockopt_test.ts)
  const r = parse({ tcp_keepalive: { keepalive_probes: 3, keepalive_time: 300, keepalive_interval: 10 } });
  assert.ok(r.success);
  assert.ok(wantsKeepAlive(r.data));
  assert.ok(!parse({ happy_eyeballs_config: {} }).success);
  assert.ok(!parse({ set_local_interface_name_on_upstream_connections: true }).success);
});
