/**
 * The service's own HTTP/1.1 port (Deno.serve; not the proxy data path): `/healthcheck`, `/rlconfig` (JSON
 * dump of the loaded limits), `/stats` (text, `?format=json`, `/stats/prometheus`) and `POST /json`, the JSON
 * form of ShouldRateLimit (200 OK, 429 OVER_LIMIT, 400 bad request) as the reference service offers.
 */
import { formatStatsJson, formatStatsText, parseStatsQuery } from "../stats/format.ts";
import { formatPrometheus } from "../stats/prometheus.ts";
import { requestFromJson, responseToJson } from "./json.ts";
import type { LimitsLoader } from "./loader.ts";
import type { RateLimitService } from "./service.ts";
import { Code, RateLimitServiceError } from "./types.ts";

/** Builds the HTTP handler over `service` (and its loader, for /rlconfig errors); called once at start. */
export function ratelimitHttpHandler(
  service: RateLimitService,
  loader?: LimitsLoader,
): (req: Request) => Promise<Response> {
  return async (req) => {
    const url = new URL(req.url);
    switch (url.pathname) {
      case "/healthcheck": {
        const h = service.health();
        return text(h.ok ? 200 : 500, h.ok ? "OK" : h.reason);
      }
      case "/rlconfig":
        return json(200, {
          backend: service.backend.kind,
          backend_healthy: service.backend.healthy(),
          failure_mode: service.failureMode,
          path: loader?.path,
          ...(service.config ? service.config.toJSON() as object : { limits: [] }),
          ...(loader?.lastErrors.length ? { last_load_errors: loader.lastErrors } : {}),
        });
      case "/stats":
      case "/stats/prometheus": {
        const q = parseStatsQuery(url.searchParams);
        if (typeof q === "string") return text(400, q);
        const snap = service.stats.snapshot();
        if (url.pathname === "/stats/prometheus") return text(200, formatPrometheus(snap, q));
        if (url.searchParams.get("format") === "json") {
          return new Response(formatStatsJson(snap, q), { headers: { "content-type": "application/json" } });
        }
        return text(200, formatStatsText(snap, q));
      }
      case "/json": {
        if (req.method !== "POST") return text(405, "Method not allowed");
        try {
          const body = await req.json().catch(() => {
            throw new RateLimitServiceError("Body is not JSON", 3);
          });
          const r = service.shouldRateLimit(requestFromJson(body));
          const res = r instanceof Promise ? await r : r;
          return json(res.overallCode === Code.OVER_LIMIT ? 429 : 200, responseToJson(res));
        } catch (e) {
          if (e instanceof RateLimitServiceError) return text(e.grpcStatus === 3 ? 400 : 503, e.message);
          return text(500, (e as Error).message);
        }
      }
      default:
        return text(404, "Not found");
    }
  };
}

function text(status: number, body: string): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}
