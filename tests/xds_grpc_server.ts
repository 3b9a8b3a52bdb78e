/**
 * A scripted xDS management server for tests, on @grpc/grpc-js (HTTP/2, gRPC framing and streams are grpc-js's,
 * the service definitions are Envoy's own .proto files from npm:@grpc/grpc-js-xds). nuncio's codec is used only
 * to build each resource's Any bytes from its JSON form.
 *
 * Usage: `deno run -A tests/xds_grpc_server.ts [port]`. Prints JSON lines on stdout: `{"event":"listening",
 * "port"}`, `{"event":"open","stream","method"}`, `{"event":"request","stream","method","req"}`,
 * `{"event":"closed","stream"}`. Reads JSON commands on stdin, one a line:
 * - `{"cmd":"respond","stream","response":{version_info,type_url,nonce,resources:[{json}|{type_url,b64}]}}`
 * - `{"cmd":"delta","stream","response":{system_version_info,type_url,nonce,removed_resources,
 *   resources:[{name,version,json}]}}`
 * - `{"cmd":"end","stream","code","details"}`: ends the stream with that status.
 * - `{"cmd":"shutdown"}`: forces the server down (streams are cut) and exits.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Buffer } from "node:buffer";
import { encodeAny } from "../src/xds/codec/mod.ts";

const pkg = new URL(import.meta.resolve("@grpc/grpc-js-xds/package.json")).pathname;
const deps = pkg.replace(/package\.json$/, "deps/");
const SVC = "envoy/service/";
const FILES = [
  `${SVC}discovery/v3/ads.proto`,
  `${SVC}listener/v3/lds.proto`,
  `${SVC}route/v3/rds.proto`,
  `${SVC}cluster/v3/cds.proto`,
  `${SVC}endpoint/v3/eds.proto`,
  `${SVC}secret/v3/sds.proto`,
];
const def = protoLoader.loadSync(FILES, {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: false,
  includeDirs: [
    `${deps}envoy-api/`,
    `${deps}googleapis/`,
    `${deps}protoc-gen-validate/`,
    `${deps}xds/`,
  ],
});

// deno-lint-ignore no-explicit-any -- grpc-js service handlers are untyped here
type Call = grpc.ServerDuplexStream<any, any>;
const streams = new Map<number, Call>();
let nextId = 1;

function out(o: unknown): void {
  console.log(JSON.stringify(o));
}

function handler(method: string) {
  return (call: Call) => {
    const id = nextId++;
    streams.set(id, call);
    out({ event: "open", stream: id, method });
    call.on("data", (req: Record<string, unknown>) => {
      out({ event: "request", stream: id, method, req });
    });
    call.on("end", () => {
      out({ event: "client_end", stream: id });
    });
    call.on("error", () => {});
    call.on("close", () => {
      streams.delete(id);
      out({ event: "closed", stream: id });
    });
  };
}

const server = new grpc.Server({ "grpc.max_send_message_length": -1 });
const services: [string, string[]][] = [
  ["envoy.service.discovery.v3.AggregatedDiscoveryService", [
    "StreamAggregatedResources",
    "DeltaAggregatedResources",
  ]],
  ["envoy.service.listener.v3.ListenerDiscoveryService", ["StreamListeners", "DeltaListeners"]],
  ["envoy.service.route.v3.RouteDiscoveryService", ["StreamRoutes", "DeltaRoutes"]],
  ["envoy.service.cluster.v3.ClusterDiscoveryService", ["StreamClusters", "DeltaClusters"]],
  ["envoy.service.endpoint.v3.EndpointDiscoveryService", ["StreamEndpoints", "DeltaEndpoints"]],
  ["envoy.service.secret.v3.SecretDiscoveryService", ["StreamSecrets", "DeltaSecrets"]],
];
for (const [name, methods] of services) {
  const sd = def[name] as grpc.ServiceDefinition;
  const impl: grpc.UntypedServiceImplementation = {};
  for (const m of methods) impl[m] = handler(`/${name}/${m}`);
  server.addService(sd, impl);
}

// deno-lint-ignore no-explicit-any -- JSON commands
type Json = any;

function anyOf(r: Json, typeUrl: string): { type_url: string; value: Buffer } {
  if (r.b64 !== undefined) return { type_url: r.type_url ?? typeUrl, value: Buffer.from(r.b64, "base64") };
  const t = r.json["@type"] ?? typeUrl;
  const { "@type": _, ...fields } = r.json;
  return { type_url: t, value: Buffer.from(encodeAny(t, fields)) };
}

function command(c: Json): void {
  const call = streams.get(c.stream);
  switch (c.cmd) {
    case "respond": {
      const r = c.response;
      call?.write({
        version_info: r.version_info ?? "",
        type_url: r.type_url,
        nonce: r.nonce ?? "",
        resources: (r.resources ?? []).map((x: Json) => anyOf(x, r.type_url)),
      });
      return;
    }
    case "delta": {
      const r = c.response;
      call?.write({
        system_version_info: r.system_version_info ?? "",
        type_url: r.type_url,
        nonce: r.nonce ?? "",
        removed_resources: r.removed_resources ?? [],
        resources: (r.resources ?? []).map((x: Json) => ({
          name: x.name,
          version: x.version ?? "",
          resource: anyOf(x, r.type_url),
        })),
      });
      return;
    }
    case "end":
      if (c.code === 0) call?.end();
      else call?.emit("error", { code: c.code, details: c.details ?? "" });
      return;
    case "shutdown":
      server.forceShutdown();
      Deno.exit(0);
  }
}

const port = Number(Deno.args[0] ?? 0);
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
  if (err) {
    console.error(err.message);
    Deno.exit(1);
  }
  out({ event: "listening", port: bound });
});

const decoder = new TextDecoder();
let buf = "";
for await (const chunk of Deno.stdin.readable) {
  buf += decoder.decode(chunk, { stream: true });
  let nl;
  while ((nl = buf.indexOf("\n")) >= 0) {
    const line = buf.slice(0, nl).trim();
    buf = buf.slice(nl + 1);
    if (line) command(JSON.parse(line));
  }
}
server.forceShutdown();
Deno.exit(0);
