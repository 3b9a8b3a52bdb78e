/**
 * proto3 JSON forms of RateLimitRequest / RateLimitResponse for the `POST /json` endpoint: requests are read
 * in lowerCamelCase or snake_case, responses written as canonical proto3 JSON (camelCase, enum names,
 * durations as "Ns", zero values omitted).
 */
import {
  CODE_NAMES,
  type DescriptorStatus,
  type RateLimitDescriptor,
  type RateLimitRequest,
  type RateLimitResponse,
  RateLimitServiceError,
  Unit,
  UNIT_NAMES,
  type UnitName,
} from "./types.ts";

type Obj = Record<string, unknown>;

function field(o: Obj, camel: string, snake: string): unknown {
  return o[camel] ?? o[snake];
}

function bad(msg: string): never {
  throw new RateLimitServiceError(msg, 3);
}

function uint(v: unknown, what: string): number {
  const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0) bad(`${what} must be a non-negative integer`);
  return n;
}

function unitOf(v: unknown): number {
  if (typeof v === "number") return v;
  if (typeof v === "string" && Object.hasOwn(Unit, v)) return Unit[v as UnitName];
  return bad(`Unknown unit ${JSON.stringify(v)}`);
}

/** Reads a RateLimitRequest from its parsed JSON form; throws RateLimitServiceError on a wrong shape. */
export function requestFromJson(json: unknown): RateLimitRequest {
  if (typeof json !== "object" || json === null || Array.isArray(json)) bad("Request must be a JSON object");
  const o = json as Obj;
  const domain = o.domain ?? "";
  if (typeof domain !== "string") bad("domain must be a string");
  const list = o.descriptors ?? [];
  if (!Array.isArray(list)) bad("descriptors must be an array");
  const descriptors = list.map((d, i): RateLimitDescriptor => {
    if (typeof d !== "object" || d === null) bad(`descriptors[${i}] must be an object`);
    const dd = d as Obj;
    const entries = dd.entries ?? [];
    if (!Array.isArray(entries)) bad(`descriptors[${i}].entries must be an array`);
    const out: RateLimitDescriptor = {
      entries: entries.map((e, j) => {
        const eo = (e ?? {}) as Obj;
        const key = eo.key ?? "";
        const value = eo.value ?? "";
        if (typeof key !== "string" || typeof value !== "string") {
          bad(`descriptors[${i}].entries[${j}] key and value must be strings`);
        }
        return { key, value };
      }),
    };
    const limit = dd.limit as Obj | undefined;
    if (limit) {
      out.limit = {
        requestsPerUnit: uint(field(limit, "requestsPerUnit", "requests_per_unit") ?? 0, "requests_per_unit"),
        unit: unitOf(limit.unit ?? 0),
      };
    }
    const h = field(dd, "hitsAddend", "hits_addend");
    if (h !== undefined && h !== null) {
      out.hitsAddend = uint(typeof h === "object" ? (h as Obj).value : h, "hits_addend");
    }
    return out;
  });
  const hits = field(o, "hitsAddend", "hits_addend");
  return { domain, descriptors, hitsAddend: hits === undefined ? 0 : uint(hits, "hits_addend") };
}

function statusToJson(s: DescriptorStatus): Obj {
  const o: Obj = { code: CODE_NAMES[s.code] ?? s.code };
  if (s.currentLimit) {
    const l: Obj = {};
    if (s.currentLimit.name) l.name = s.currentLimit.name;
    if (s.currentLimit.requestsPerUnit) l.requestsPerUnit = s.currentLimit.requestsPerUnit;
    l.unit = UNIT_NAMES[s.currentLimit.unit] ?? s.currentLimit.unit;
    o.currentLimit = l;
  }
  if (s.limitRemaining) o.limitRemaining = s.limitRemaining;
  if (s.durationUntilResetMs !== undefined) o.durationUntilReset = `${s.durationUntilResetMs / 1000}s`;
  return o;
}

/** The proto3 JSON form of a RateLimitResponse. */
export function responseToJson(res: RateLimitResponse): Obj {
  const o: Obj = {
    overallCode: CODE_NAMES[res.overallCode] ?? res.overallCode,
    statuses: res.statuses.map(statusToJson),
  };
  if (res.responseHeadersToAdd.length) o.responseHeadersToAdd = res.responseHeadersToAdd;
  if (res.requestHeadersToAdd.length) o.requestHeadersToAdd = res.requestHeadersToAdd;
  return o;
}
