/**
 * REST-JSON xDS against an independent management server: a python3 stdlib http.server that serves the
 * DiscoveryResponse in a file the test rewrites, records every DiscoveryRequest and answers 304 when the
 * request's version_info is the one it serves.
 */
import assert from "node:assert/strict";
import { systemClock } from "../common/clock.ts";
import { StatsStore } from "../stats/store.ts";
import { JitteredBackoff } from "./backoff.ts";
import { RestTransport } from "./rest.ts";
import { NACK_CODE, Subscription } from "./subscription.ts";
import { type DiscoveryRequest, TYPE_URLS } from "./types.ts";

const PY = "/usr/bin/python3";
const CDS = TYPE_URLS.cluster;

const SERVER = `
import json, os, sys
from http.server import HTTPServer, BaseHTTPRequestHandler
d, port = sys.argv[1], int(sys.argv[2])
nonce = [0]
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with open(os.path.join(d, "requests.jsonl"), "ab") as f:
            f.write(body.replace(b"\\n", b" ") + b"\\n")
        req = json.loads(body)
        kind = self.path.rsplit(":", 1)[-1]
        with open(os.path.join(d, kind + ".json")) as f:
            resp = json.load(f)
        if req.get("version_info", "") == resp["version_info"]:
            self.send_response(304); self.end_headers(); return
        nonce[0] += 1
        resp["nonce"] = str(nonce[0])
        out = json.dumps(resp).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
s = HTTPServer(("127.0.0.1", port), H)
with open(os.path.join(d, "port.tmp"), "w") as f: f.write(str(s.server_address[1]))
os.rename(os.path.join(d, "port.tmp"), os.path.join(d, "port"))
s.serve_forever()
`;

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function startServer(dir: string, port = 0): Promise<{ port: number; child: Deno.ChildProcess }> {
  await Deno.remove(`${dir}/port`).catch(() => {});
  const child = new Deno.Command(PY, {
    args: ["-c", SERVER, dir, String(port)],
    stdout: "null",
    stderr: "inherit",
  })
    .spawn();
  let text = "";
  await waitFor(
    "the python server",
    async () => (text = await Deno.readTextFile(`${dir}/port`).catch(() => "")) !== "",
  );
  return { port: Number(text), child };
}

/** Rewrites the served CDS response atomically. */
async function serve(dir: string, version: string, names: string[]): Promise<void> {
  const resources = names.map((name) => ({ "@type": CDS, name, connect_timeout: "1s" }));
  await Deno.writeTextFile(
    `${dir}/clusters.tmp`,
    JSON.stringify({ version_info: version, type_url: CDS, resources }),
  );
  await Deno.rename(`${dir}/clusters.tmp`, `${dir}/clusters.json`);
}

async function requests(dir: string): Promise<DiscoveryRequest[]> {
  const text = await Deno.readTextFile(`${dir}/requests.jsonl`).catch(() => "");
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

/** Drops consecutive duplicates (a 304 poll repeats the last request). */
function distinct(rs: DiscoveryRequest[]): DiscoveryRequest[] {
  return rs.filter((r, i) => i === 0 || JSON.stringify(r) !== JSON.stringify(rs[i - 1]));
}

Deno.test("REST xDS: ACK, NACK with error_detail, 304, server restart with back-off then recovery", async () => {
  const dir = await Deno.makeTempDir();
  await serve(dir, "v1", ["a"]);
  let server = await startServer(dir);
  const port = server.port;
  const store = new StatsStore();
  const applied: string[] = [];
  const sub = new Subscription({
    typeUrl: CDS,
    stats: store.scope("cluster_manager.cds"),
    clock: systemClock,
    initialFetchTimeoutMs: 15_000,
    validateAndApply: (u) => {
      if (u.resources.has("bad")) return Promise.resolve('Cluster "bad": unknown lb_policy');
      applied.push(`${u.version}:${[...u.resources.keys()].join(",")}:-${u.removed.join(",")}`);
      return Promise.resolve(undefined);
    },
  });
  const delays: number[] = [];
  const backoff = new (class extends JitteredBackoff {
    override next(): number {
      const d = super.next();
      delays.push(d);
      return d;
    }
  })(40, 200, () => 0.5);
  let up = true;
  const node = { id: "node-1", cluster: "svc", locality: { zone: "az1" }, metadata: { k: "v" } };
  const transport = new RestTransport(sub, {
    clusterName: "xds",
    resolveCluster: (name) => (name === "xds" && up ? { host: "127.0.0.1", port } : undefined),
    node,
    refreshDelayMs: 30,
    requestTimeoutMs: 1000,
    clock: systemClock,
    random: () => 0.5,
    controlPlane: store.scope("control_plane"),
    backoff,
  });
  const counter = (n: string) => store.counters.get(`cluster_manager.cds.${n}`)?.value ?? 0;
  const connected = () => store.gauges.get("control_plane.connected_state")?.value;
  try {
    transport.start();
    await waitFor("v1 applied and re-polled", async () => (await requests(dir)).length >= 3);
    assert.deepEqual(applied, ["v1:a:-"]);
    assert.ok(counter("update_success") >= 2, "the 304 polls count as successes");
    assert.equal(connected(), 1);

    await serve(dir, "v2", ["a", "bad"]);
    await waitFor("a NACK", () => counter("update_rejected") >= 2);
    await serve(dir, "v3", ["b"]);
    await waitFor("v3 applied", () => applied.length === 2);
    assert.deepEqual(applied, ["v1:a:-", "v3:b:-a"]);
    await waitFor("v3 ACK sent", async () => (await requests(dir)).some((r) => r.version_info === "v3"));

    const nack = { code: NACK_CODE, message: 'Cluster "bad": unknown lb_policy' };
    const seq = distinct(await requests(dir));
    assert.deepEqual(seq.slice(0, 4), [
      { node, type_url: CDS },
      { version_info: "v1", node, type_url: CDS, response_nonce: "1" },
      { version_info: "v1", node, type_url: CDS, response_nonce: "2", error_detail: nack },
      { version_info: "v1", node, type_url: CDS, response_nonce: "3", error_detail: nack },
    ]);
    const last = seq.at(-1)!;
    assert.equal(last.version_info, "v3");
    assert.equal(last.error_detail, undefined, "the ACK after a NACK has no error_detail");
    assert.ok(
      seq.slice(3).every((r, i, a) => r.error_detail || a.slice(i).every((x) => !x.error_detail)),
      "NACKs, then ACKs only",
    );

    // the management server goes away: failures back off, the last good config stays
    server.child.kill("SIGTERM");
    await server.child.status;
    const failuresBefore = counter("update_failure");
    await waitFor("three failures", () => counter("update_failure") >= failuresBefore + 3);
    assert.equal(connected(), 0);
    assert.deepEqual(delays.slice(0, 3), [20, 40, 80], "jittered exponential back-off");
    assert.deepEqual([...sub.resources.keys()], ["b"]);

    await serve(dir, "v4", ["b", "c"]);
    server = await startServer(dir, port);
    await waitFor("v4 applied after the restart", () => applied.length === 3, 10_000);
    assert.equal(applied[2], "v4:b,c:-");
    assert.equal(connected(), 1);
    assert.equal(store.gauges.get("control_plane.pending_requests")?.value ?? 0, 0);
    up = false; // an unresolvable cluster is a failure too, never a throw
    await waitFor("an unresolved cluster counted", () => connected() === 0);
  } finally {
    await transport.close();
    server.child.kill("SIGTERM");
    await server.child.status;
    await Deno.remove(dir, { recursive: true });
  }
});
