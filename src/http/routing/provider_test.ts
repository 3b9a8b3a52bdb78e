import assert from "node:assert/strict";
import { z } from "zod/mini";
import { HeaderMap } from "../headers.ts";
import { routeConfigurationSchema } from "./config.ts";
import { RouteConfigRegistry, StaticRouteConfigProvider } from "./provider.ts";
import { oneHost } from "./test_util.ts";
import type { RouteRequest } from "./types.ts";

const parse = (body: string) =>
  z.parse(
    routeConfigurationSchema,
    oneHost([{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: body } } }]),
  );
const req: RouteRequest = {
  authority: "x",
  path: "/",
  method: "GET",
  scheme: "http",
  headers: new HeaderMap(),
};

Deno.test("RouteConfigRegistry: one provider per name, empty until the first update, swapped whole", async () => {
  const reg = new RouteConfigRegistry();
  const a = reg.provider("r");
  assert.equal(reg.provider("r"), a, "HCMs naming the same config share the provider");
  assert.equal(a.ready, false);
  assert.equal(a.table.match(req), null, "404 NR before the first RouteConfiguration");
  let warm = false;
  const w = reg.whenReady("r").then(() => warm = true);
  await Promise.resolve();
  assert.equal(warm, false);

  reg.update("r", parse("v1"), "1");
  await w;
  assert.equal(a.ready, true);
  assert.equal(a.version, "1");
  const first = a.table;
  assert.equal(first.match(req)?.name, "");
  reg.update("r", parse("v2"), "2");
  assert.notEqual(a.table, first, "a new table object; streams that matched keep theirs");
  assert.equal(a.version, "2");
  assert.deepEqual(reg.all().map((p) => p.name), ["r"]);
  assert.equal(reg.isReady("other"), false);
});

Deno.test("StaticRouteConfigProvider: ready at once with the inline table", async () => {
  const p = new StaticRouteConfigProvider(parse("s"));
  assert.equal(p.ready, true);
  assert.equal(p.name, "rc");
  await p.whenReady();
  assert.notEqual(p.table.match(req), null);
});
