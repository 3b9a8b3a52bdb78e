import assert from "node:assert/strict";
import { BadRequestError, checkName, hostToJson, parseRegistration } from "./types.ts";

Deno.test("parseRegistration: the Lyft body, defaults and tags", () => {
  assert.deepEqual(parseRegistration({ ip: "10.0.0.1", port: 80 }), {
    ip_address: "10.0.0.1",
    port: 80,
    revision: "",
    service_repo_name: "",
    tags: {},
  });
  const r = parseRegistration({
    ip: "::1",
    port: 8080,
    revision: "abc123",
    service_repo_name: "users-repo",
    tags: {
      az: "us-east-1a",
      region: "us-east-1",
      instance_id: "i-1",
      canary: true,
      load_balancing_weight: 5,
    },
  });
  assert.equal(r.ip_address, "::1");
  assert.deepEqual(r.tags, {
    az: "us-east-1a",
    region: "us-east-1",
    instance_id: "i-1",
    canary: true,
    load_balancing_weight: 5,
  });
});

Deno.test("parseRegistration: bad input names the field", () => {
  const bad: [unknown, RegExp][] = [
    [null, /JSON object/],
    [[1], /JSON object/],
    [{ port: 80 }, /ip must be/],
    [{ ip: "example.com", port: 80 }, /ip must be an IPv4 or IPv6/],
    [{ ip: "10.0.0.1" }, /port must be/],
    [{ ip: "10.0.0.1", port: 0 }, /port must be/],
    [{ ip: "10.0.0.1", port: 70000 }, /port must be/],
    [{ ip: "10.0.0.1", port: "80" }, /port must be/],
    [{ ip: "10.0.0.1", port: 80, color: "red" }, /Unknown field "color"/],
    [{ ip: "10.0.0.1", port: 80, tags: { zone: "a" } }, /Unknown tag "zone"/],
    [{ ip: "10.0.0.1", port: 80, tags: { canary: "yes" } }, /tags.canary must be a boolean/],
    [{ ip: "10.0.0.1", port: 80, tags: { load_balancing_weight: 0 } }, /load_balancing_weight/],
    [{ ip: "10.0.0.1", port: 80, tags: { load_balancing_weight: 1.5 } }, /load_balancing_weight/],
    [{ ip: "10.0.0.1", port: 80, revision: 7 }, /revision must be a string/],
    [{ ip: "10.0.0.1", port: 80, service_repo_name: "a b" }, /Bad service_repo_name name/],
    [{ ip: "10.0.0.1", port: 80, tags: [] }, /tags must be an object/],
  ];
  for (const [body, re] of bad) {
    assert.throws(
      () => parseRegistration(body),
      (e: Error) => e instanceof BadRequestError && re.test(e.message),
    );
  }
});

Deno.test("checkName and hostToJson", () => {
  assert.equal(checkName("users.v2_a-b"), "users.v2_a-b");
  for (const n of ["", "a/b", "a b", ".x", "x".repeat(254)]) {
    assert.throws(() => checkName(n), BadRequestError);
  }
  assert.deepEqual(
    hostToJson({
      service: "s",
      ip_address: "10.0.0.1",
      port: 1,
      revision: "r",
      service_repo_name: "",
      last_check_in: 0,
      tags: {},
    }),
    {
      ip_address: "10.0.0.1",
      port: 1,
      revision: "r",
      service_repo_name: "",
      last_check_in: "1970-01-01T00:00:00.000Z",
      tags: {},
    },
  );
});
