/**
 * Envoy header value formatters (%DOWNSTREAM_REMOTE_ADDRESS%, %REQ(x)%, %START_TIME%, ...) parsed at
 * config time into literal and operator parts; evaluation only concatenates.
 */
import type { HeaderMap } from "../headers.ts";
import type { RouteContext, RouteRequest } from "./types.ts";

/**
 * The context header formatters read. RouteContext plus two optional fields the connection manager
 * may fill: the request (for %REQ(...)% on response headers and for pseudo-headers) and the stream
 * start time (for %START_TIME%; the injected clock's now() is used when absent).
 */
export interface FormatterContext extends RouteContext {
  request?: RouteRequest;
  startTime?: number;
}

const enum Op {
  RemoteAddress,
  RemoteAddressWithoutPort,
  LocalAddress,
  LocalAddressWithoutPort,
  UpstreamRemoteAddress,
  Protocol,
  Req,
  StartTime,
}

const SIMPLE: Record<string, Op> = {
  DOWNSTREAM_REMOTE_ADDRESS: Op.RemoteAddress,
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: Op.RemoteAddressWithoutPort,
  DOWNSTREAM_LOCAL_ADDRESS: Op.LocalAddress,
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: Op.LocalAddressWithoutPort,
  UPSTREAM_REMOTE_ADDRESS: Op.UpstreamRemoteAddress,
  PROTOCOL: Op.Protocol,
};

/** One compiled operator. */
class Operator {
  constructor(
    readonly op: Op,
    readonly name = "",
    readonly alt = "",
    readonly max = -1,
    readonly timeFormat: TimePart[] | undefined = undefined,
  ) {}
}

type TimePart = string | number;
const enum T {
  Year,
  Month,
  Day,
  Hour,
  Minute,
  Second,
  Epoch,
  Millis,
  Micros,
  Nanos,
  Zone,
}

/** A parsed header value: literal strings and operators. */
export type FormatParts = readonly (string | Operator)[];

const COMMAND = /^([A-Z_0-9]+)(?:\(([^)]*)\))?(?::(\d+))?%/;

/** Parses a header value format; throws an Error with a message when it is invalid. */
export function parseFormat(value: string): FormatParts {
  const parts: (string | Operator)[] = [];
  let lit = "";
  let i = 0;
  while (i < value.length) {
    const c = value[i];
    if (c !== "%") {
      lit += c;
      i++;
      continue;
    }
    if (value[i + 1] === "%") {
      lit += "%";
      i += 2;
      continue;
    }
    const m = COMMAND.exec(value.slice(i + 1));
    if (!m) {
      throw new Error(`Invalid header value format at offset ${i}: unterminated or malformed %COMMAND%`);
    }
    const [all, name, args, max] = m;
    let op: Operator;
    if (name in SIMPLE && args === undefined) {
      op = new Operator(SIMPLE[name], "", "", max ? Number(max) : -1);
    } else if (name === "REQ" && args !== undefined) {
      const [main, alt, extra] = args.split("?");
      if (!main || extra !== undefined) throw new Error(`Invalid %REQ(${args})% argument`);
      op = new Operator(Op.Req, normalizeName(main), alt ? normalizeName(alt) : "", max ? Number(max) : -1);
    } else if (name === "START_TIME" && !max) {
      op = new Operator(Op.StartTime, "", "", -1, parseTimeFormat(args ?? "%Y-%m-%dT%H:%M:%E3SZ"));
    } else {
      throw new Error(`Unsupported header value operator %${name}${args !== undefined ? `(${args})` : ""}%`);
    }
    if (lit) parts.push(lit);
    lit = "";
    parts.push(op);
    i += 1 + all.length;
  }
  if (lit || parts.length === 0) parts.push(lit);
  return parts;
}

function normalizeName(n: string): string {
  const l = n.toLowerCase();
  return l === "host" ? ":authority" : l;
}

const TIME_SPEC: Record<string, T> = {
  Y: T.Year,
  m: T.Month,
  d: T.Day,
  H: T.Hour,
  M: T.Minute,
  S: T.Second,
  s: T.Epoch,
  z: T.Zone,
};
const FRACTION: Record<string, T> = { "3": T.Millis, "6": T.Micros, "9": T.Nanos };

function parseTimeFormat(f: string): TimePart[] {
  const out: TimePart[] = [];
  let lit = "";
  const push = (...p: TimePart[]) => {
    if (lit) out.push(lit);
    lit = "";
    out.push(...p);
  };
  for (let i = 0; i < f.length; i++) {
    if (f[i] !== "%") {
      lit += f[i];
      continue;
    }
    const a = f[i + 1] ?? "";
    const b = f[i + 2] ?? "";
    if (a === "%") {
      lit += "%";
      i += 1;
    } else if (a === "E" && b in FRACTION && f[i + 3] === "S") {
      push(T.Second, ".", FRACTION[b]);
      i += 3;
    } else if (a in FRACTION && b === "f") {
      push(FRACTION[a]);
      i += 2;
    } else if (a in TIME_SPEC) {
      push(TIME_SPEC[a]);
      i += 1;
    } else {
      throw new Error(`Unsupported START_TIME format specifier %${a}`);
    }
  }
  if (lit) out.push(lit);
  return out;
}

function pad(n: number, w: number): string {
  return String(n).padStart(w, "0");
}

function formatTime(ms: number, parts: TimePart[]): string {
  const d = new Date(ms);
  let s = "";
  for (const p of parts) {
    if (typeof p === "string") {
      s += p;
      continue;
    }
    switch (p) {
      case T.Year:
        s += pad(d.getUTCFullYear(), 4);
        break;
      case T.Month:
        s += pad(d.getUTCMonth() + 1, 2);
        break;
      case T.Day:
        s += pad(d.getUTCDate(), 2);
        break;
      case T.Hour:
        s += pad(d.getUTCHours(), 2);
        break;
      case T.Minute:
        s += pad(d.getUTCMinutes(), 2);
        break;
      case T.Second:
        s += pad(d.getUTCSeconds(), 2);
        break;
      case T.Epoch:
        s += Math.floor(ms / 1000);
        break;
      case T.Millis:
        s += pad(d.getUTCMilliseconds(), 3);
        break;
      case T.Micros:
        s += pad(d.getUTCMilliseconds(), 3) + "000";
        break;
      case T.Nanos:
        s += pad(d.getUTCMilliseconds(), 3) + "000000";
        break;
      case T.Zone:
        s += "+0000";
        break;
    }
  }
  return s;
}

function withoutPort(addr: string): string {
  if (addr.startsWith("[")) {
    const e = addr.indexOf("]");
    return e > 0 ? addr.slice(1, e) : addr;
  }
  const c = addr.lastIndexOf(":");
  return c > 0 && addr.indexOf(":") === c ? addr.slice(0, c) : addr;
}

function requestValue(
  name: string,
  headers: HeaderMap,
  isRequest: boolean,
  ctx: FormatterContext,
): string | undefined {
  if (name.charCodeAt(0) === 58 /* : */) {
    const r = ctx.request;
    if (!r) return undefined;
    switch (name) {
      case ":authority":
        return r.authority;
      case ":path":
        return r.path;
      case ":method":
        return r.method;
      case ":scheme":
        return r.scheme;
    }
    return undefined;
  }
  return isRequest ? headers.get(name) : ctx.request?.headers.get(name);
}

function evalOp(
  o: Operator,
  headers: HeaderMap,
  isRequest: boolean,
  ctx: FormatterContext,
  now: () => number,
) {
  let v: string;
  switch (o.op) {
    case Op.RemoteAddress:
      v = ctx.remoteAddress;
      break;
    case Op.RemoteAddressWithoutPort:
      v = withoutPort(ctx.remoteAddress);
      break;
    case Op.LocalAddress:
      v = ctx.localAddress;
      break;
    case Op.LocalAddressWithoutPort:
      v = withoutPort(ctx.localAddress);
      break;
    case Op.UpstreamRemoteAddress:
      v = ctx.upstreamHost;
      break;
    case Op.Protocol:
      v = ctx.protocol;
      break;
    case Op.Req:
      v = requestValue(o.name, headers, isRequest, ctx) ??
        (o.alt ? requestValue(o.alt, headers, isRequest, ctx) ?? "" : "");
      break;
    case Op.StartTime:
      return formatTime(ctx.startTime ?? now(), o.timeFormat!);
  }
  return o.max >= 0 && v.length > o.max ? v.slice(0, o.max) : v;
}

/** Evaluates parsed parts; `headers` are the request headers being mutated when `isRequest`. */
export function evaluateFormat(
  parts: FormatParts,
  headers: HeaderMap,
  isRequest: boolean,
  ctx: FormatterContext,
  now: () => number,
): string {
  if (parts.length === 1) {
    const p = parts[0];
    return typeof p === "string" ? p : evalOp(p, headers, isRequest, ctx, now);
  }
  let s = "";
  for (const p of parts) s += typeof p === "string" ? p : evalOp(p, headers, isRequest, ctx, now);
  return s;
}
