/** Connection ids are unique per event loop across listeners (Envoy's `[C<id>]` debug prefix, %CONNECTION_ID%). */
import assert from "node:assert/strict";
import {
  accessLog,
  anyHost,
  bootstrapYaml,
  curl,
  httpListener,
  sleep,
  startOrigin,
  startProxy,
  staticCluster,
} from "./helpers.ts";

Deno.test("connection ids: two listeners never hand out the same id", async () => {
  await using origin = startOrigin("web");
  const routes = [anyHost([{ match: { prefix: "/" }, route: { cluster: "web" } }])];
  const log = { access_log: [accessLog("$LOG", "%CONNECTION_ID%\n")] };
  await using proxy = await startProxy(bootstrapYaml(
    [
      httpListener({ name: "a", statPrefix: "a", virtualHosts: routes, hcm: log }),
      httpListener({ name: "b", statPrefix: "b", virtualHosts: routes, hcm: log }),
    ],
    [staticCluster("web", [origin.port])],
  ));
  for (const l of ["a", "b", "a", "b"]) {
    const r = await curl(["-s", `http://127.0.0.1:${proxy.port(l)}/`]);
    assert.equal(r.stdout, "hello from web");
  }
  let ids: string[] = [];
  for (let i = 0; i < 200 && ids.length < 4; i++) {
    ids = (await Deno.readTextFile(proxy.logPath)).split("\n").filter((x) => x !== "");
    if (ids.length < 4) await sleep(10);
  }
  assert.equal(ids.length, 4);
  assert.equal(new Set(ids).size, 4, `ids repeat: ${ids.join(",")}`);
});
