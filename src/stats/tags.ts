/**
 * Envoy's default tag extraction: turns `cluster.foo.upstream_rq_200` into the tag-extracted name
 * `cluster.upstream_rq` with tags `envoy.response_code=200` and `envoy.cluster_name=foo`.
 * Each extractor's first capture group is removed from the name; the second (when present) is the value.
 */

/** One extracted tag. */
export interface Tag {
  /** Envoy tag name, e.g. "envoy.cluster_name". */
  readonly name: string;
  /** The captured value. */
  readonly value: string;
}

/** A stat name split into its tag-extracted name and its tags. */
export interface TagExtractedName {
  /** The name with every tag's removable part cut out. */
  readonly name: string;
  /** Tags in extraction order. */
  readonly tags: readonly Tag[];
}

interface Extractor {
  readonly tag: string;
  readonly re: RegExp;
  /** The name must contain this substring for the regex to be tried (cheap pre-filter). */
  readonly substr: string;
}

/** An address segment: IPv4 `1.2.3.4_80` or bracketed IPv6 `[__1]_80` (Envoy's character classes). */
const ADDR = String.raw`((?:[_.\d]*|[_\[\]aAbBcCdDeEfF\d]*))`;

function ex(tag: string, re: string, substr = ""): Extractor {
  return { tag: `envoy.${tag}`, re: new RegExp(re, "d"), substr };
}

/** Envoy's default extractors in Envoy's order (JavaScript spelling of the same regexes). */
const DEFAULT_EXTRACTORS: readonly Extractor[] = [
  ex("response_code", String.raw`_rq(_(\d{3}))$`, "_rq_"),
  ex("response_code_class", String.raw`_rq_(\d)xx$`, "_rq_"),
  ex(
    "dynamo_partition_id",
    String.raw`^http(?=\.).*?\.dynamodb\.table(?=\.).*?\.capacity(?=\.).*?(\.__partition_id=(\w{7}))$`,
    ".dynamodb.table.",
  ),
  ex(
    "dynamo_operation",
    String.raw`^http(?=\.).*?\.dynamodb.(?:operation|table(?=\.).*?\.capacity)(\.(.*?))(?:\.|$)`,
    ".dynamodb.",
  ),
  ex(
    "mongo_callsite",
    String.raw`^mongo(?=\.).*?\.collection(?=\.).*?\.callsite\.((.*?)\.).*?query.\w+?$`,
    ".collection.",
  ),
  ex("dynamo_table", String.raw`^http(?=\.).*?\.dynamodb.(?:table|error)\.((.*?)\.)`, ".dynamodb."),
  ex("mongo_collection", String.raw`^mongo(?=\.).*?\.collection\.((.*?)\.).*?query.\w+?$`, ".collection."),
  ex("mongo_cmd", String.raw`^mongo(?=\.).*?\.cmd\.((.*?)\.)\w+?$`, ".cmd."),
  ex("grpc_bridge_method", String.raw`^cluster(?=\.).*?\.grpc(?=\.).*\.((.*?)\.)\w+?$`, ".grpc."),
  ex("http_user_agent", String.raw`^http(?=\.).*?\.user_agent\.((.*?)\.)\w+?$`, ".user_agent."),
  ex("virtual_cluster", String.raw`^vhost(?=\.).*?\.vcluster\.((.*?)\.)\w+?$`, ".vcluster."),
  ex("fault_downstream_cluster", String.raw`^http(?=\.).*?\.fault\.((.*?)\.)\w+?$`, ".fault."),
  ex("ssl_cipher", String.raw`^listener(?=\.).*?\.ssl\.cipher(\.(.*?))$`),
  ex("ssl_cipher_suite", String.raw`^cluster(?=\.).*?\.ssl\.ciphers(\.(.*?))$`, ".ssl.ciphers."),
  ex("grpc_bridge_service", String.raw`^cluster(?=\.).*?\.grpc\.((.*?)\.)`, ".grpc."),
  ex("tcp_prefix", String.raw`^tcp\.((.*?)\.)\w+?$`),
  ex("udp_prefix", String.raw`^udp\.((.*?)\.)\w+?$`),
  ex("clientssl_prefix", String.raw`^auth\.clientssl\.((.*?)\.)\w+?$`),
  ex("ratelimit_prefix", String.raw`^ratelimit\.((.*?)\.)\w+?$`),
  ex("cluster_name", String.raw`^cluster\.(([^\.]+)\.).*`),
  ex("http_conn_manager_prefix", String.raw`^listener(?=\.).*?\.http\.((.*?)\.)`, ".http."),
  ex("http_conn_manager_prefix", String.raw`^http\.((.*?)\.)`),
  ex("listener_address", String.raw`^listener\.(${ADDR}\.)`),
  ex("virtual_host", String.raw`^vhost\.((.*?)\.)`),
  ex("mongo_prefix", String.raw`^mongo\.((.*?)\.)`),
  ex("rds_route_config", String.raw`^http(?=\.).*?\.rds\.((.*?)\.)\w+?$`, ".rds."),
  ex("worker_id", String.raw`^listener_manager\.((worker_\d+)\.)`, "listener_manager.worker_"),
];

const cache = new Map<string, TagExtractedName>();
const CACHE_LIMIT = 200_000;

/** Applies Envoy's default tag extractors to `name`; results are cached per name (stat names are few). */
export function extractTags(name: string): TagExtractedName {
  const hit = cache.get(name);
  if (hit) return hit;
  const tags: Tag[] = [];
  const cuts: [number, number][] = [];
  for (const e of DEFAULT_EXTRACTORS) {
    if (e.substr && !name.includes(e.substr)) continue;
    const m = e.re.exec(name);
    if (!m || m[1] === undefined || !m.indices?.[1]) continue;
    if (tags.some((t) => t.name === e.tag)) continue;
    tags.push({ name: e.tag, value: m[2] ?? m[1] });
    cuts.push(m.indices[1]);
  }
  let out: TagExtractedName;
  if (cuts.length === 0) {
    out = { name, tags };
  } else {
    cuts.sort((a, b) => a[0] - b[0]);
    let stripped = "";
    let pos = 0;
    for (const [s, e] of cuts) {
      if (s > pos) stripped += name.slice(pos, s);
      if (e > pos) pos = e;
    }
    stripped += name.slice(pos);
    out = { name: stripped, tags };
  }
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(name, out);
  return out;
}
