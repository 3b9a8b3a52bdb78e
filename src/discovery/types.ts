/**
 * The registry's data model (Lyft's discovery v1 shape): a host registered under a service, keyed by
 * (service, ip, port), and the validation of a check-in body (`POST /v1/registration/:service`).
 */
import { ipFamily } from "../common/ip.ts";

/** Tags a host may carry (Lyft's set). */
export interface HostTags {
  az?: string;
  region?: string;
  instance_id?: string;
  canary?: boolean;
  load_balancing_weight?: number;
}

/** One registered host as stored; `last_check_in` is epoch milliseconds. */
export interface HostRecord {
  service: string;
  ip_address: string;
  port: number;
  revision: string;
  service_repo_name: string;
  last_check_in: number;
  tags: HostTags;
}

/** A host in a v1 answer (`last_check_in` as an ISO 8601 string). */
export interface HostJson {
  ip_address: string;
  port: number;
  revision: string;
  service_repo_name: string;
  last_check_in: string;
  tags: HostTags;
}

/** A check-in as posted, validated; the registry adds the service and the time. */
export type Registration = Omit<HostRecord, "service" | "last_check_in">;

/** Thrown for bad input; the HTTP layer answers 400 with the message. */
export class BadRequestError extends Error {
  /** Wraps `message`. */
  constructor(message: string) {
    super(message);
    this.name = "BadRequestError";
  }
}

const SERVICE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
const TOP_FIELDS = new Set(["ip", "ip_address", "port", "revision", "service_repo_name", "tags"]);
const TAG_FIELDS = new Set(["az", "region", "instance_id", "canary", "load_balancing_weight"]);

/** Throws BadRequestError unless `name` is a usable service (or repo) name. */
export function checkName(name: string, what = "service"): string {
  if (!SERVICE_RE.test(name)) {
    throw new BadRequestError(
      `Bad ${what} name "${name.slice(0, 64)}": letters, digits, ".", "_" and "-", at most 253`,
    );
  }
  return name;
}

/** Throws BadRequestError unless `ip` is an IPv4 or IPv6 literal; returns it. */
export function checkIp(ip: unknown): string {
  if (typeof ip !== "string" || ipFamily(ip) === 0) {
    throw new BadRequestError(`ip must be an IPv4 or IPv6 address, not ${JSON.stringify(ip)}`);
  }
  return ip;
}

/** Validates a check-in body (parsed JSON); throws BadRequestError naming the first bad field. */
export function parseRegistration(body: unknown): Registration {
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw new BadRequestError("Body must be a JSON object");
  }
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!TOP_FIELDS.has(k)) throw new BadRequestError(`Unknown field "${k}"`);
  const ip = checkIp(o.ip ?? o.ip_address);
  const port = o.port;
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new BadRequestError(`port must be an integer from 1 to 65535, not ${JSON.stringify(port)}`);
  }
  const str = (v: unknown, name: string): string => {
    if (v === undefined || v === null) return "";
    if (typeof v !== "string" || v.length > 1024) {
      throw new BadRequestError(`${name} must be a string of at most 1024 characters`);
    }
    return v;
  };
  const revision = str(o.revision, "revision");
  const repo = str(o.service_repo_name, "service_repo_name");
  if (repo !== "") checkName(repo, "service_repo_name");
  return { ip_address: ip, port, revision, service_repo_name: repo, tags: parseTags(o.tags) };
}

function parseTags(v: unknown): HostTags {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw new BadRequestError("tags must be an object");
  const t = v as Record<string, unknown>;
  const out: HostTags = {};
  for (const [k, val] of Object.entries(t)) {
    if (!TAG_FIELDS.has(k)) throw new BadRequestError(`Unknown tag "${k}"`);
    if (val === undefined || val === null) continue;
    if (k === "canary") {
      if (typeof val !== "boolean") throw new BadRequestError("tags.canary must be a boolean");
      out.canary = val;
    } else if (k === "load_balancing_weight") {
      if (typeof val !== "number" || !Number.isInteger(val) || val < 1 || val > 1_000_000) {
        throw new BadRequestError("tags.load_balancing_weight must be an integer from 1 to 1000000");
      }
      out.load_balancing_weight = val;
    } else {
      if (typeof val !== "string" || val.length > 256) {
        throw new BadRequestError(`tags.${k} must be a string of at most 256 characters`);
      }
      (out as Record<string, string>)[k] = val;
    }
  }
  return out;
}

/** The store key of a host within its service: `ip:port` (split at the last colon, so IPv6 works). */
export function hostKey(ip: string, port: number): string {
  return `${ip}:${port}`;
}

/** The v1 JSON form of a stored host. */
export function hostToJson(h: HostRecord): HostJson {
  return {
    ip_address: h.ip_address,
    port: h.port,
    revision: h.revision,
    service_repo_name: h.service_repo_name,
    last_check_in: new Date(h.last_check_in).toISOString(),
    tags: h.tags,
  };
}
