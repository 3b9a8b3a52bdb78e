/**
 * The registry's HTTP port (Deno.serve; not the proxy data path): Lyft's v1 API under `/v1/registration/`,
 * REST EDS at `POST /v3/discovery:endpoints`, `/healthcheck` and `/stats` (text, `?format=json`,
 * `/stats/prometheus`). Reads answered from the cache while the store fails carry `x-nuncio-registry-stale`.
 */
import { formatStatsJson, formatStatsText, parseStatsQuery } from "../stats/format.ts";
import { formatPrometheus } from "../stats/prometheus.ts";
import { answerEdsRequest } from "./eds.ts";
import { type HostsRead, type Registry, StoreUnavailableError } from "./registry.ts";
import { BadRequestError, hostToJson } from "./types.ts";

/** The header set on reads answered from the cache. */
export const STALE_HEADER = "x-nuncio-registry-stale";

const PREFIX = "/v1/registration/";

/** Options of discoveryHttpHandler. */
export interface DiscoveryHttpOptions {
  /** The `env` of v1 answers (default "production"). */
  env?: string;
}

/** Builds the HTTP handler over `registry`; called once at start. */
export function discoveryHttpHandler(
  registry: Registry,
  opts: DiscoveryHttpOptions = {},
): (req: Request) => Promise<Response> {
  const env = opts.env ?? "production";
  return async (req) => {
    const url = new URL(req.url);
    const path = url.pathname;
    try {
      if (path.startsWith(PREFIX)) return await v1(registry, env, req, path.slice(PREFIX.length));
      switch (path) {
        case "/v3/discovery:endpoints": {
          if (req.method !== "POST") return text(405, "Method not allowed");
          const a = await answerEdsRequest(registry, await jsonBody(req));
          const headers: Record<string, string> = a.stale ? { [STALE_HEADER]: "true" } : {};
          if (a.status === 304) return new Response(null, { status: 304, headers });
          return json(200, a.body, headers);
        }
        case "/healthcheck": {
          if (registry.store.healthy()) return text(200, "OK");
          return text(200, `OK (${registry.store.kind} store unreachable: reads answer from the cache)`);
        }
        case "/stats":
        case "/stats/prometheus": {
          const q = parseStatsQuery(url.searchParams);
          if (typeof q === "string") return text(400, q);
          const snap = registry.stats.snapshot();
          if (path === "/stats/prometheus") return text(200, formatPrometheus(snap, q));
          if (url.searchParams.get("format") === "json") {
            return new Response(formatStatsJson(snap, q), {
              headers: { "content-type": "application/json" },
            });
          }
          return text(200, formatStatsText(snap, q));
        }
        default:
          return text(404, "Not found");
      }
    } catch (e) {
      if (e instanceof BadRequestError) {
        registry.badRequest();
        return text(400, e.message);
      }
      if (e instanceof StoreUnavailableError) return text(503, e.message);
      return text(500, (e as Error).message);
    }
  };
}

async function v1(registry: Registry, env: string, req: Request, rest: string): Promise<Response> {
  const parts = rest.split("/").map(segment);
  if (parts.length === 2 && parts[0] === "repo" && req.method === "GET") {
    // hosts of several services: each says which
    return hostsAnswer(await registry.hostsOfRepo(parts[1]), { env, service_repo_name: parts[1] }, true);
  }
  if (parts.length === 1) {
    const service = parts[0];
    if (req.method === "GET") return hostsAnswer(await registry.hosts(service), { env, service });
    if (req.method === "POST") {
      await registry.register(service, await jsonBody(req));
      return text(200, "OK");
    }
    return text(405, "Method not allowed");
  }
  if (parts.length === 2 && req.method === "DELETE") {
    const n = await registry.deregister(parts[0], parts[1]);
    return json(200, { removed: n });
  }
  return text(404, "Not found");
}

function segment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new BadRequestError(`Bad percent-encoding in "${s}"`);
  }
}

function hostsAnswer(r: HostsRead, head: Record<string, string>, withService = false): Response {
  return json(
    200,
    {
      ...head,
      hosts: r.hosts.map((h) => withService ? { service: h.service, ...hostToJson(h) } : hostToJson(h)),
    },
    r.stale ? { [STALE_HEADER]: "true" } : {},
  );
}

async function jsonBody(req: Request): Promise<unknown> {
  try {
    return await req.json();
  } catch {
    throw new BadRequestError("Body is not JSON");
  }
}

function text(status: number, body: string): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}
