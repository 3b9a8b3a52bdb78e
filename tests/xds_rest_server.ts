/**
 * An independent REST-JSON xDS management server for end-to-end tests: a python3 stdlib http.server that serves
 * `POST /v3/discovery:<type>` from `<dir>/<type>.json` (a DiscoveryResponse the test rewrites atomically),
 * answers 304 when the request's version_info is the one it serves, and records every DiscoveryRequest.
 */
import { PY } from "./python_grpc.ts";

const SERVER = `
import json, os, sys
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
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
        path = os.path.join(d, kind + ".json")
        if not os.path.exists(path):
            self.send_response(304); self.end_headers(); return
        with open(path) as f:
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
s = ThreadingHTTPServer(("127.0.0.1", port), H)
with open(os.path.join(d, "port.tmp"), "w") as f: f.write(str(s.server_address[1]))
os.rename(os.path.join(d, "port.tmp"), os.path.join(d, "port"))
s.serve_forever()
`;

/** The type names of the REST paths (`/v3/discovery:<name>`) and their type URLs. */
export const REST_TYPES = {
  listeners: "type.googleapis.com/envoy.config.listener.v3.Listener",
  routes: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
  clusters: "type.googleapis.com/envoy.config.cluster.v3.Cluster",
  endpoints: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
  secrets: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
} as const;

/** A running python management server. */
export interface RestXdsServer extends AsyncDisposable {
  dir: string;
  port: number;
  /** Serves `resources` as `kind` at `version` (atomic rename). */
  serve(kind: keyof typeof REST_TYPES, version: string, resources: Record<string, unknown>[]): Promise<void>;
  /** Every DiscoveryRequest received so far. */
  requests(): Promise<Record<string, unknown>[]>;
  /** Kills the server (the port stays known, for restart). */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
}

async function waitForFile(path: string, ms = 10_000): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const text = await Deno.readTextFile(path).catch(() => "");
    if (text !== "") return text;
    if (Date.now() > end) throw new Error(`The python xDS server did not start (${path})`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Starts the server in a new temp dir on a free port. */
export async function startRestXdsServer(): Promise<RestXdsServer> {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_xds_" });
  let child: Deno.ChildProcess | undefined;
  let port = 0;
  const start = async () => {
    await Deno.remove(`${dir}/port`).catch(() => {});
    child = new Deno.Command(PY, { args: ["-c", SERVER, dir, String(port)], stdout: "null", stderr: "null" })
      .spawn();
    port = Number(await waitForFile(`${dir}/port`));
  };
  const kill = async () => {
    if (!child) return;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
    child = undefined;
  };
  await start();
  const server: RestXdsServer = {
    dir,
    get port() {
      return port;
    },
    async serve(kind, version, resources) {
      const type = REST_TYPES[kind];
      const body = {
        version_info: version,
        type_url: type,
        resources: resources.map((r) => ({ "@type": type, ...r })),
      };
      await Deno.writeTextFile(`${dir}/${kind}.tmp`, JSON.stringify(body));
      await Deno.rename(`${dir}/${kind}.tmp`, `${dir}/${kind}.json`);
    },
    async requests() {
      const text = await Deno.readTextFile(`${dir}/requests.jsonl`).catch(() => "");
      return text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
    },
    kill,
    restart: start,
    async [Symbol.asyncDispose]() {
      await kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  return server;
}
