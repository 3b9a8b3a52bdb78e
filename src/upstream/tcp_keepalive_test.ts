import assert from "node:assert/strict";
import { upstreamConnectionOptionsSchema, wantsKeepAlive } from "./tcp_keepalive.ts";

Deno.test("tcp_keepalive: on with the kernel's values, off with a 0, other values named as impossible", () => {
  const parse = (v: unknown) => upstreamConnectionOptionsSchema.safeParse(v);
  assert.ok(wantsKeepAlive(parse({ tcp_keepalive: {} }).data));
  assert.ok(!wantsKeepAlive(parse({ tcp_keepalive: { keepalive_time: 0 } }).data));
  assert.ok(!wantsKeepAlive(parse({}).data));
  assert.ok(!wantsKeepAlive(undefined));
  const r = parse({ tcp_keepalive: { keepalive_probes: 3, keepalive_time: 300 } });
  assert.ok(!r.success);
  const messages = r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  assert.equal(messages.length, 2);
  assert.match(
    messages[0],
    /^tcp_keepalive\.keepalive_probes: Field not supported by nuncio: .*tcp_keepalive_probes/,
  );
  assert.match(
    messages[1],
    /^tcp_keepalive\.keepalive_time: Field not supported by nuncio: .*tcp_keepalive_time/,
  );
  assert.ok(!parse({ happy_eyeballs_config: {} }).success);
  assert.ok(!parse({ set_local_interface_name_on_upstream_connections: true }).success);
});
