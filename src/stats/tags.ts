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

/** One tag rule: a regex whose first group is cut from the name (second group: the value), or a fixed value. */
interface Extractor {
  readonly tag: string;
  readonly re?: RegExp;
  /** A fixed tag: added to every stat, nothing cut. */
  readonly fixed?: string;
  /** The name must contain this substring for the regex to be tried (cheap pre-filter). */
  readonly substr: string;
  /**
   * Envoy's prefix token: a regex starting `^word\.` or `^word(?=\.)` only runs on names whose first token is
   * `word`, after every extractor without one (tag_producer_impl.cc's ordering).
   */
  readonly prefix: string;
}

/** An address segment: IPv4 `1.2.3.4_80` or bracketed IPv6 `[__1]_80` (Envoy's character classes). */
const ADDR = String.raw`((?:[_.\d]*|[_\[\]aAbBcCdDeEfF\d]*))`;

/** Envoy's extractRegexPrefix: "cluster" for `^cluster\.` or `^cluster(?=\.)`, else "". */
function regexPrefix(re: string): string {
  const m = /^\^([A-Za-z0-9_]+)(?:\\\.|\(\?=\\\.\)|[^A-Za-z0-9_]$)/.exec(re);
  return m ? m[1] : "";
}

function regexExtractor(tag: string, re: string, substr = ""): Extractor {
  return { tag, re: new RegExp(re, "d"), substr, prefix: regexPrefix(re) };
}

function ex(tag: string, re: string, substr = ""): Extractor {
  return regexExtractor(`envoy.${tag}`, re, substr);
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

const CACHE_LIMIT = 200_000;

/** envoy.config.metrics.v3.TagSpecifier, parsed. */
export interface TagSpecifier {
  readonly tag_name: string;
  readonly regex?: string;
  readonly fixed_value?: string;
}

/** What a TagProducer is built from (StatsConfig's tag fields). */
export interface TagProducerOptions {
  /** Envoy's default extractors first (default true). */
  readonly useAllDefaultTags?: boolean;
  /** Custom specifiers, after the defaults, in order. */
  readonly statsTags?: readonly TagSpecifier[];
}

/**
 * Turns stat names into tag-extracted names and tags (Envoy's TagProducerImpl): extractors without a prefix token
 * run first, then those whose token is the name's first segment, each in config order; every regex sees the
 * original name and the parts they cut are removed together. A second extractor of a tag name already
 * extracted is skipped. Results are cached per name (stat names are few).
 */
export class TagProducer {
  readonly #free: Extractor[] = [];
  readonly #byPrefix = new Map<string, Extractor[]>();
  readonly #cache = new Map<string, TagExtractedName>();
  /** The fixed tags (added to every stat). */
  readonly fixedTags: readonly Tag[];

  /** Builds the extractors; throws (with a message naming the tag) on a bad specifier. */
  constructor(opts: TagProducerOptions = {}) {
    const fixed: Tag[] = [];
    if (opts.useAllDefaultTags ?? true) { for (const e of DEFAULT_EXTRACTORS) this.#add(e); }
    for (const spec of opts.statsTags ?? []) {
      if (spec.fixed_value !== undefined) {
        this.#add({ tag: spec.tag_name, fixed: spec.fixed_value, substr: "", prefix: "" });
        fixed.push({ name: spec.tag_name, value: spec.fixed_value });
      } else if (spec.regex === undefined || spec.regex === "") {
        const defaults = DEFAULT_EXTRACTORS.filter((e) => e.tag === spec.tag_name);
        if (defaults.length === 0) {
          throw new Error(
            `No regex specified for tag specifier and no default regex for name: '${spec.tag_name}'`,
          );
        }
        for (const e of defaults) this.#add(e);
      } else {
        this.#add(regexExtractor(spec.tag_name, spec.regex));
      }
    }
    this.fixedTags = fixed;
  }

  #add(e: Extractor): void {
    if (e.prefix === "") {
      this.#free.push(e);
      return;
    }
    let list = this.#byPrefix.get(e.prefix);
    if (!list) this.#byPrefix.set(e.prefix, list = []);
    list.push(e);
  }

  /** The tag-extracted name and tags of a full stat name. */
  extract(name: string): TagExtractedName {
    const hit = this.#cache.get(name);
    if (hit) return hit;
    const tags: Tag[] = [];
    const cuts: [number, number][] = [];
    const run = (e: Extractor) => {
      if (tags.some((t) => t.name === e.tag)) return;
      if (e.fixed !== undefined) {
        tags.push({ name: e.tag, value: e.fixed });
        return;
      }
      if (e.substr && !name.includes(e.substr)) return;
      const m = e.re!.exec(name);
      if (!m || m[1] === undefined || !m.indices?.[1]) return;
      tags.push({ name: e.tag, value: m[2] ?? m[1] });
      cuts.push(m.indices[1]);
    };
    for (const e of this.#free) run(e);
    const dot = name.indexOf(".");
    if (dot > 0) { for (const e of this.#byPrefix.get(name.slice(0, dot)) ?? []) run(e); }
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
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
    this.#cache.set(name, out);
    return out;
  }
}

/** Envoy's defaults only (no stats_config). */
export const DEFAULT_TAG_PRODUCER: TagProducer = new TagProducer();

let active: TagProducer = DEFAULT_TAG_PRODUCER;

/**
 * Makes `p` the process's tag producer for admin output (/stats/prometheus): the server that owns the process
 * installs its stats_config's at start and gives it back at stop. Returns the one it replaced.
 */
export function setActiveTagProducer(p: TagProducer): TagProducer {
  const prev = active;
  active = p;
  return prev;
}

/** The tag producer admin output uses (Envoy's defaults unless a server installed its own). */
export function activeTagProducer(): TagProducer {
  return active;
}

/** Applies Envoy's default tag extractors to `name` (cached per name). */
export function extractTags(name: string): TagExtractedName {
  return DEFAULT_TAG_PRODUCER.extract(name);
}

/** True when Envoy has a default extractor for `tag` (a TagSpecifier without regex or fixed_value uses it). */
export function hasDefaultTag(tag: string): boolean {
  return DEFAULT_EXTRACTORS.some((e) => e.tag === tag);
}
