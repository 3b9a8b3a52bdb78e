/**
 * Writes src/xds/codec/descriptors.ts: the protobufjs descriptors (Root.toJSON, minified JSON in a string) of the xDS resources, the
 * discovery service messages and the message of every @type URL in nuncio's extension registry, read from the
 * .proto files shipped by npm:@grpc/grpc-js-xds (Envoy's API, Apache-2.0). Run by hand after the registry
 * gains an extension (`deno run -A tools/gen_xds_descriptors.ts`); a test checks the committed file is current.
 * `--check` prints nothing and exits 1 when the committed file differs. (A .ts module, not a .json file: deno fmt
 * would pretty-print JSON to twice the size; `// deno-fmt-ignore-file` keeps it minified, and `deno compile`
 * embeds it like any module.)
 */
import xdsPackage from "@grpc/grpc-js-xds/package.json" with { type: "json" };
import protobuf from "protobufjs";
import "../src/registry/builtin.ts";
import { type ExtensionCategory, registry } from "../src/registry/registry.ts";

const CATEGORIES: ExtensionCategory[] = [
  "network_filter",
  "http_filter",
  "access_logger",
  "transport_socket",
  "cluster",
  "upstream_protocol_options",
  "bootstrap_extension",
  "compressor",
  "decompressor",
  "tracer",
  "stats_sink",
];

/** Files loaded whole: the discovery, HDS, LRS and ext_authz services and the resource types. */
const BASE_FILES = [
  "envoy/service/discovery/v3/ads.proto",
  "envoy/service/health/v3/hds.proto",
  "envoy/service/load_stats/v3/lrs.proto",
  "envoy/service/auth/v3/external_auth.proto",
  "envoy/config/listener/v3/listener.proto",
  "envoy/config/route/v3/route.proto",
  "envoy/config/cluster/v3/cluster.proto",
  "envoy/config/endpoint/v3/endpoint.proto",
  "envoy/extensions/transport_sockets/tls/v3/secret.proto",
  "udpa/type/v1/typed_struct.proto",
  "xds/type/v3/typed_struct.proto",
];

/** Messages nuncio reads by @type outside the registry (core code names them). */
const EXTRA_TYPES = [
  "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
  "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
  "envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol",
  "envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
  "envoy.extensions.filters.network.redis_proxy.v3.RedisProtocolOptions",
  "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate",
  "envoy.config.route.v3.FilterConfig",
  "envoy.service.discovery.v3.Resource",
];

/** Where the generated file lives. */
export const DESCRIPTORS_PATH = new URL("../src/xds/codec/descriptors.ts", import.meta.url);

/** The npm package the .proto files come from, e.g. "@grpc/grpc-js-xds@1.14.1". */
export const SOURCE_PACKAGE = `${xdsPackage.name}@${xdsPackage.version}`;

/** The message names nuncio's registry (and core) accept as @type, nuncio's own types left out. */
export function registryMessageNames(): string[] {
  const names = new Set<string>(EXTRA_TYPES);
  for (const c of CATEGORIES) {
    for (const ext of registry.list(c)) {
      for (const url of [...ext.typeUrls, ...(ext.perRouteTypeUrls ?? [])]) {
        const name = url.slice(url.lastIndexOf("/") + 1);
        if (!name.startsWith("nuncio.")) names.add(name);
      }
    }
  }
  return [...names].sort();
}

/** Repo folders holding .proto files of extensions the npm package lacks (Envoy's contrib API). */
const LOCAL_PROTO_DIRS = ["src/extensions/filters/network/kafka_broker/proto"];

/** Directories searched for imports, in order. */
function protoDirs(): string[] {
  const xds = new URL(".", import.meta.resolve("@grpc/grpc-js-xds/package.json")).pathname;
  const pb = new URL(".", import.meta.resolve("protobufjs/package.json")).pathname;
  return ["deps/envoy-api", "deps/xds", "deps/googleapis", "deps/protoc-gen-validate"]
    .map((d) => xds + d).concat(
      [pb],
      LOCAL_PROTO_DIRS.map((d) => new URL(`../${d}`, import.meta.url).pathname),
    );
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * Packages whose directory also holds files importing protos the npm package lacks (the trace package's
 * opencensus.proto): only the files of the messages nuncio registers are loaded.
 */
const PACKAGE_FILES: Record<string, string[]> = {
  "envoy/config/trace/v3": [
    "envoy/config/trace/v3/opentelemetry.proto",
    "envoy/config/trace/v3/zipkin.proto",
  ],
};

/** The .proto files of a message's package directory (Envoy keeps one package per directory). */
function filesOfPackage(dirs: string[], message: string): string[] {
  const pkgPath = message.split(".").slice(0, -1).join("/");
  if (PACKAGE_FILES[pkgPath] !== undefined) return PACKAGE_FILES[pkgPath];
  for (const d of dirs) {
    try {
      return [...Deno.readDirSync(`${d}/${pkgPath}`)].filter((e) => e.isFile && e.name.endsWith(".proto"))
        .map((e) => `${pkgPath}/${e.name}`).sort();
    } catch {
      // not in this directory
    }
  }
  throw new Error(`No .proto files found for ${message} (package directory ${pkgPath})`);
}

/** Well-known types an Any may carry: kept even where no field names them. */
const WELL_KNOWN = ["Any", "Duration", "Timestamp", "Struct", "Value", "ListValue", "Empty", "FieldMask"]
  .concat(
    ["Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes"].map((w) =>
      `${w}Value`
    ),
  )
  .map((n) => `google.protobuf.${n}`);

/** Names of the types reachable from `roots` through fields, enclosing messages and service methods. */
function reachable(root: protobuf.Root, roots: string[]): Set<string> {
  const seen = new Set<string>();
  const visit = (t: protobuf.ReflectionObject | null) => {
    if (!t || seen.has(t.fullName)) return;
    if (t instanceof protobuf.Type) {
      seen.add(t.fullName);
      for (const f of t.fieldsArray) visit(f.resolve().resolvedType);
      visit(t.parent); // an enclosing message (a namespace is skipped below)
    } else if (t instanceof protobuf.Enum) {
      seen.add(t.fullName);
      visit(t.parent);
    } else if (t instanceof protobuf.Service) {
      seen.add(t.fullName);
      for (const m of t.methodsArray) {
        m.resolve();
        visit(m.resolvedRequestType);
        visit(m.resolvedResponseType);
      }
    }
  };
  for (const r of roots) visit(root.lookup(r));
  return seen;
}

// deno-lint-ignore no-explicit-any -- protobufjs JSON descriptors are untyped trees
function prune(node: any, prefix: string, keep: Set<string>): boolean {
  if (!node.nested) return false;
  for (const [name, child] of Object.entries(node.nested)) {
    const full = `${prefix}.${name}`;
    // deno-lint-ignore no-explicit-any -- as above
    const c = child as any;
    const isType = c.fields !== undefined || c.values !== undefined || c.methods !== undefined;
    const keepSelf = isType && keep.has(full);
    const keepChildren = prune(c, full, keep);
    if (!keepSelf && !keepChildren) delete node.nested[name];
    else if (!keepSelf && isType) throw new Error(`${full} holds kept types but is not kept itself`);
  }
  if (Object.keys(node.nested).length === 0) delete node.nested;
  return node.nested !== undefined;
}

/** protobufjs serves google/protobuf/*.proto from bundled JSON in camelCase (Value.numberValue): snake_case it. */
// deno-lint-ignore no-explicit-any -- as above
function snakeCaseBundled(node: any): any {
  if (!node || typeof node !== "object" || Array.isArray(node)) return node;
  const snake = (n: string) => n.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
  // deno-lint-ignore no-explicit-any -- as above
  const out: any = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === "fields") {
      out.fields = Object.fromEntries(Object.entries(v as object).map(([f, d]) => [snake(f), d]));
    } else if (k === "oneofs") {
      out.oneofs = Object.fromEntries(
        Object.entries(v as Record<string, { oneof: string[] }>).map((
          [o, d],
        ) => [o, { ...d, oneof: d.oneof.map(snake) }]),
      );
    } else out[k] = snakeCaseBundled(v);
  }
  return out;
}

/** Option names kept in the output: the rest (validation rules, annotations) only cost size. */
const KEPT_OPTIONS = new Set(["packed", "map_entry"]);

// deno-lint-ignore no-explicit-any -- protobufjs JSON descriptors are untyped trees
function stripOptions(node: any): void {
  if (!node || typeof node !== "object") return;
  if (Array.isArray(node)) return node.forEach(stripOptions);
  for (const [k, v] of Object.entries(node)) {
    if (k === "options" && v && typeof v === "object" && !Array.isArray(v)) {
      const kept = Object.fromEntries(Object.entries(v).filter(([o]) => KEPT_OPTIONS.has(o)));
      if (Object.keys(kept).length) node.options = kept;
      else delete node.options;
    } else if (k === "comment") {
      delete node[k];
    } else {
      stripOptions(v);
    }
  }
}

/** Builds the descriptor JSON text (minified). */
export function generateDescriptorJson(): string {
  const dirs = protoDirs();
  // deno-lint-ignore no-explicit-any -- protobufjs keeps its bundled files as properties of `common`
  const bundled = protobuf.common as any;
  const saved = { ...bundled };
  for (const k of Object.keys(bundled)) if (k.endsWith(".proto")) bundled[k] = snakeCaseBundled(bundled[k]);
  try {
    return generate(dirs);
  } finally {
    Object.assign(bundled, saved);
  }
}

function generate(dirs: string[]): string {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const d of dirs) if (exists(`${d}/${target}`)) return `${d}/${target}`;
    return target;
  };
  const messages = registryMessageNames();
  const files = new Set(BASE_FILES);
  for (const m of messages) for (const f of filesOfPackage(dirs, m)) files.add(f);
  root.loadSync([...files], { keepCase: true });
  root.resolveAll();
  for (const m of messages) root.lookupType(m); // throws when a registered @type has no message
  const roots = [
    ...messages,
    ...WELL_KNOWN,
    "envoy.service.discovery.v3.AggregatedDiscoveryService",
    "envoy.service.health.v3.HealthDiscoveryService",
    "envoy.service.load_stats.v3.LoadReportingService",
    "envoy.service.auth.v3.Authorization",
    "envoy.config.listener.v3.Listener",
    "envoy.config.route.v3.RouteConfiguration",
    "envoy.config.cluster.v3.Cluster",
    "envoy.config.endpoint.v3.ClusterLoadAssignment",
    "envoy.extensions.transport_sockets.tls.v3.Secret",
    "udpa.type.v1.TypedStruct",
    "xds.type.v3.TypedStruct",
  ];
  const json = root.toJSON();
  stripOptions(json);
  prune(json, "", reachable(root, roots));
  // the output must stand alone: every reference resolves without the .proto files
  protobuf.Root.fromJSON(json).resolveAll();
  return JSON.stringify(json);
}

/** The text of descriptors.ts: the minified descriptor JSON as a string constant. */
export function generateDescriptors(): string {
  const json = generateDescriptorJson();
  return [
    "// deno-fmt-ignore-file",
    `// Generated by tools/gen_xds_descriptors.ts from the .proto files of npm:${SOURCE_PACKAGE} (Envoy's`,
    "// data-plane-api, cncf/xds, googleapis, protoc-gen-validate: Apache-2.0). Do not edit; see descriptors.md.",
    "",
    "/** protobufjs Root.toJSON() of nuncio's xDS messages, minified; parse it once, when the codec is first used. */",
    `export const DESCRIPTORS_JSON: string = ${JSON.stringify(json)};`,
    "",
  ].join("\n");
}

/** Where the note on the generated file lives. */
export const NOTE_PATH = new URL("../src/xds/codec/descriptors.md", import.meta.url);

/** The text of descriptors.md: what the JSON is, where it comes from, its license. */
export function generateNote(): string {
  return `# descriptors.ts

Generated by \`deno run -A tools/gen_xds_descriptors.ts\`; do not edit. A test
(\`src/xds/codec/discovery_test.ts\`) fails when it is stale: regenerate after an extension with a new \`@type\`
joins the registry (\`src/registry/builtin.ts\`).

- What: protobufjs \`Root.toJSON()\` descriptors (options and comments stripped, only types reachable from the
  roots kept) of Envoy's v3 xDS resources (Listener, RouteConfiguration, Cluster, ClusterLoadAssignment,
  Secret), envoy.service.discovery.v3 (DiscoveryRequest/Response, the Delta variants, Resource, the ADS
  service), the HDS and LRS services (envoy.service.health.v3, envoy.service.load_stats.v3), udpa/xds
  TypedStruct, the well-known types, and the message of every \`@type\` URL in nuncio's extension registry
  (nuncio's own \`nuncio.*\` types excepted).
- Source: the .proto files in \`deps/\` of npm:${SOURCE_PACKAGE} (envoyproxy/data-plane-api, cncf/xds,
  googleapis, bufbuild/protoc-gen-validate); google/protobuf types from protobufjs's bundled definitions.
- License: Envoy's data-plane-api, cncf/xds, googleapis and protoc-gen-validate are Apache License 2.0; the
  google/protobuf definitions are BSD-3-Clause (Google). These descriptors are a derived, machine-generated
  form of those files.
`;
}

if (import.meta.main) {
  const text = generateDescriptors();
  if (Deno.args.includes("--check")) {
    let current = "";
    try {
      current = Deno.readTextFileSync(DESCRIPTORS_PATH);
    } catch {
      // missing counts as stale
    }
    let note = "";
    try {
      note = Deno.readTextFileSync(NOTE_PATH);
    } catch {
      // missing counts as stale
    }
    if (current !== text || note !== generateNote()) {
      console.error("src/xds/codec/descriptors.ts is stale: run deno run -A tools/gen_xds_descriptors.ts");
      Deno.exit(1);
    }
  } else {
    Deno.writeTextFileSync(DESCRIPTORS_PATH, text);
    Deno.writeTextFileSync(NOTE_PATH, generateNote());
    console.log(`Wrote ${DESCRIPTORS_PATH.pathname} (${text.length} bytes, ${SOURCE_PACKAGE})`);
  }
}
