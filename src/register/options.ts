/** What a registration agent needs (shared by `nuncio register` and the bootstrap extension), tags, the host's IP. */
import { isIPv4, isIPv6 } from "../common/ip.ts";

/** The tags Lyft's discovery API carries for a host. */
export interface RegistrationTags {
  az?: string;
  region?: string;
  instance_id?: string;
  canary?: boolean;
  load_balancing_weight?: number;
}

/** The tag names `--tag k=v` accepts. */
export const TAG_NAMES = ["az", "region", "instance_id", "canary", "load_balancing_weight"] as const;

/** One agent's settings, already validated. */
export interface RegistrationOptions {
  /** The service name (the path segment of /v1/registration/:service). */
  service: string;
  /** The port the service answers on. */
  port: number;
  /** The address registered for this host. */
  ip: string;
  /** Base URL of the registry, without a trailing slash. */
  registryUrl: string;
  /** Check-in interval in milliseconds. */
  everyMs: number;
  /** Spread of each interval, a fraction in [0, 1): 0.1 means every ± 10 %. */
  jitter: number;
  revision?: string;
  /** Sent as service_repo_name. */
  repo?: string;
  tags?: RegistrationTags;
  /** When set, check in only while a GET of this URL answers 2xx. */
  healthUrl?: string;
  /** Timeout of each registry or health request in milliseconds (default 5000). */
  requestTimeoutMs?: number;
  /** First retry delay after a failure in milliseconds, doubled per failure up to `everyMs` (default 1000). */
  backoffBaseMs?: number;
}

/** Default registry URL (`nuncio discovery`'s default port). */
export const DEFAULT_REGISTRY_URL = "http://127.0.0.1:8080";
/** Default interval: Lyft's hosts checked in every minute. */
export const DEFAULT_EVERY_MS = 60_000;
/** Default jitter: ± 10 % of the interval. */
export const DEFAULT_JITTER = 0.1;

/** Validates and sets one `k=v` tag on `tags`; throws with a message naming the tag when it is wrong. */
export function setTag(tags: RegistrationTags, kv: string): void {
  const eq = kv.indexOf("=");
  if (eq <= 0) throw new Error(`--tag expects k=v, not "${kv}"`);
  const k = kv.slice(0, eq);
  const v = kv.slice(eq + 1);
  if (!(TAG_NAMES as readonly string[]).includes(k)) {
    throw new Error(`Unknown tag "${k}" (one of ${TAG_NAMES.join(", ")})`);
  }
  if (k in tags) throw new Error(`Tag ${k} given twice`);
  switch (k) {
    case "canary":
      if (v !== "true" && v !== "false") throw new Error(`Tag canary must be true or false, not "${v}"`);
      tags.canary = v === "true";
      return;
    case "load_balancing_weight": {
      const n = /^\d+$/.test(v) ? Number(v) : NaN;
      if (!Number.isSafeInteger(n) || n < 1) {
        throw new Error(`Tag load_balancing_weight must be a positive integer, not "${v}"`);
      }
      tags.load_balancing_weight = n;
      return;
    }
    default:
      if (!v) throw new Error(`Tag ${k} needs a value`);
      tags[k as "az" | "region" | "instance_id"] = v;
  }
}

/** Checks a service name (one URL path segment); returns why it is wrong, or undefined. */
export function serviceNameProblem(s: string): string | undefined {
  if (!s) return "The service name is empty";
  if (s.includes("/")) return `The service name "${s}" contains "/"`;
  return undefined;
}

/** Checks an http(s) URL; returns why it is wrong, or undefined. */
export function httpUrlProblem(s: string): string | undefined {
  try {
    const u = new URL(s);
    if (u.protocol === "http:" || u.protocol === "https:") return undefined;
  } catch {
    // reported below
  }
  return `Expected an http:// or https:// URL, not "${s}"`;
}

/** True when `s` is an IPv4 or IPv6 address. */
export function isIpAddress(s: string): boolean {
  return isIPv4(s) || isIPv6(s);
}

/** The host's primary non-loopback IPv4 address (first interface that has one), or 127.0.0.1. */
export function defaultHostIp(
  interfaces: () => Deno.NetworkInterfaceInfo[] = () => Deno.networkInterfaces(),
): string {
  try {
    for (const i of interfaces()) {
      if (i.family === "IPv4" && !i.address.startsWith("127.") && !i.address.startsWith("169.254.")) {
        return i.address;
      }
    }
  } catch {
    // no --allow-sys, or no interfaces: the loopback address below
  }
  return "127.0.0.1";
}

/** Parses a jitter: "10%" or "10" (percent), 0 to 99; returns a fraction. */
export function parseJitter(v: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)%?$/.exec(v.trim());
  const pct = m ? Number(m[1]) : NaN;
  if (!(pct >= 0 && pct < 100)) throw new Error(`${flag} must be a percentage from 0% to 99%, not "${v}"`);
  return pct / 100;
}
