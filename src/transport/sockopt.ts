/**
 * Socket options Deno's API does not offer, read and set on the socket's descriptor through libc
 * (`Deno.dlopen`, needs --allow-ffi): SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST for the original_dst listener
 * filter (where iptables REDIRECT sent a connection), TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT for
 * `upstream_connection_options.tcp_keepalive` timings. Linux only; libc comes from common/libc.ts.
 *
 * The descriptor comes from Deno's internal `Deno.internal.fd` symbol on accepted and connected TCP sockets
 * (there is no public accessor); `socketFd` answers undefined where it is missing, and callers then say why.
 */

import { type Libc, libc, libcUnavailable } from "../common/libc.ts";

const SOL_IP = 0;
const SOL_IPV6 = 41;
const IPPROTO_TCP = 6;
/** SO_ORIGINAL_DST (linux/netfilter_ipv4.h) and IP6T_SO_ORIGINAL_DST (linux/netfilter_ipv6/ip6_tables.h). */
const SO_ORIGINAL_DST = 80;
const TCP_KEEPIDLE = 4;
const TCP_KEEPINTVL = 5;
const TCP_KEEPCNT = 6;
const AF_INET = 2;
const AF_INET6 = 10;

let fdSymbol: symbol | undefined;

/**
 * Deno's symbol for a socket's descriptor (`Deno.internal.fd`): an own property of an accepted TcpConn, an
 * accessor on the prototype of network/slim_conn.ts's SlimTcpConn. Undefined until a socket carrying it is seen.
 */
export function descriptorSymbol(conn: object): symbol | undefined {
  return fdSymbol ??= [conn, Object.getPrototypeOf(conn)].flatMap((o) =>
    o ? Object.getOwnPropertySymbols(o) : []
  )
    .find((s) => s.description === "Deno.internal.fd");
}

/**
 * The socket descriptor of a Deno TCP connection, undefined when it cannot be found. Accepted sockets carry it
 * (`Deno.internal.fd`); connected ones do not, so their descriptor is found among the process's open ones by
 * its local and peer address (getsockname/getpeername from descriptor 0 up; /proc/self/fd is not readable
 * without --allow-all): a cost paid once per upstream connection, and only by clusters whose keepalive timings
 * need it.
 */
export function socketFd(conn: Deno.Conn): number | undefined {
  // a listener filter's wrapper (transport/prefixed_conn.ts) names the socket beneath it
  const socket = (conn as { socket?: Deno.Conn }).socket;
  if (socket !== undefined) conn = socket;
  const sym = descriptorSymbol(conn);
  const fd = sym === undefined ? undefined : (conn as unknown as Record<symbol, unknown>)[sym];
  if (typeof fd === "number" && fd >= 0) return fd;
  return findFd(conn);
}

/** The address in a sockaddr_in/sockaddr_in6, undefined for another family. */
function sockaddr(buf: Uint8Array): Deno.NetAddr | undefined {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const family = view.getUint16(0, true);
  const port = view.getUint16(2, false);
  if (family === AF_INET) {
    return { transport: "tcp", hostname: `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`, port };
  }
  if (family === AF_INET6) {
    const words: string[] = [];
    for (let i = 0; i < 8; i++) words.push(view.getUint16(8 + 2 * i, false).toString(16));
    return { transport: "tcp", hostname: compressV6(words), port };
  }
  return undefined;
}

function same(buf: Uint8Array, a: Deno.NetAddr): boolean {
  if (((buf[2] << 8) | buf[3]) !== a.port) return false; // the cheap test first
  const b = sockaddr(buf);
  return b !== undefined && b.hostname === a.hostname;
}

/** Descriptors scanned at most when looking for a connected socket's (see `socketFd`). */
const FD_SCAN_LIMIT = 65536;

function findFd(conn: Deno.Conn): number | undefined {
  const l = libc();
  const local = conn.localAddr as Deno.NetAddr, remote = conn.remoteAddr as Deno.NetAddr;
  if (l === null || local?.transport !== "tcp" || remote?.transport !== "tcp") return undefined;
  const addr = new Uint8Array(28);
  const len = new Uint32Array(1);
  const lenBytes = new Uint8Array(len.buffer);
  // the kernel hands out the lowest free descriptor, so a socket connected a moment ago sits low
  for (let fd = 0; fd < FD_SCAN_LIMIT; fd++) {
    len[0] = 28;
    if (l.getsockname(fd, addr, lenBytes) !== 0 || !same(addr, local)) continue;
    len[0] = 28;
    if (l.getpeername(fd, addr, lenBytes) !== 0 || !same(addr, remote)) continue;
    return fd;
  }
  return undefined;
}

/**
 * True when socket options can be used here (libc opens); else `sockoptUnavailable()` says why. libc stays
 * open for the life of the process, so a test that uses socket options calls this at module scope first
 * (Deno's resource sanitizer would otherwise count the library as leaked by the first test to open it).
 */
export function sockoptAvailable(): boolean {
  return libc() !== null;
}

/** Why socket options cannot be used ("" when they can). */
export function sockoptUnavailable(): string {
  const why = libcUnavailable();
  if (why === null) return "";
  if (why.kind === "os") return `socket options are read through Linux's libc, and this is ${why.detail}`;
  if (why.kind === "permission") return "socket options are read through libc, which needs --allow-ffi";
  return `${why.detail}; nuncio needs --allow-ffi for socket options`;
}

/**
 * The destination a connection had before iptables REDIRECT/DNAT rewrote it (SO_ORIGINAL_DST), or undefined
 * when it was not redirected (no conntrack entry) or the socket cannot be read. IPv4 and IPv6 sockets.
 */
export function originalDst(conn: Deno.Conn): Deno.NetAddr | undefined {
  const l = libc();
  const fd = socketFd(conn);
  if (l === null || fd === undefined) return undefined;
  const v6 = (conn.localAddr as Deno.NetAddr).hostname?.includes(":") ?? false;
  const buf = new Uint8Array(v6 ? 28 : 16);
  const len = new Uint32Array([buf.length]);
  const r = l.getsockopt(fd, v6 ? SOL_IPV6 : SOL_IP, SO_ORIGINAL_DST, buf, new Uint8Array(len.buffer));
  return r === 0 ? sockaddr(buf) : undefined;
}

/** RFC 5952 text of eight hex words (longest run of zero words as "::"); IPv4-mapped as ::ffff:a.b.c.d. */
function compressV6(w: string[]): string {
  if (w.slice(0, 5).every((x) => x === "0") && w[5] === "ffff") {
    const hi = parseInt(w[6], 16), lo = parseInt(w[7], 16);
    return `::ffff:${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (w[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === "0") j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best < 0) return w.join(":");
  return `${w.slice(0, best).join(":")}::${w.slice(best + bestLen).join(":")}`;
}

/** TCP keepalive timings (seconds; probes a count); undefined fields keep the kernel's value. */
export interface KeepaliveTimings {
  time?: number;
  interval?: number;
  probes?: number;
}

function setInt(l: Libc, fd: number, level: number, name: number, value: number): boolean {
  return l.setsockopt(fd, level, name, new Uint8Array(new Int32Array([value]).buffer), 4) === 0;
}

/** Sets an int socket option on a descriptor: "" when set, else why not (no libc, or the call failed). */
export function setSocketInt(fd: number, level: number, name: number, value: number): string {
  const l = libc();
  if (l === null) return sockoptUnavailable();
  return setInt(l, fd, level, name, value) ? "" : "setsockopt failed";
}

/** Sets TCP_KEEPIDLE/TCP_KEEPINTVL/TCP_KEEPCNT on a connected socket; false when one could not be set. */
export function setKeepaliveTimings(conn: Deno.Conn, t: KeepaliveTimings): boolean {
  const l = libc();
  const fd = socketFd(conn);
  if (l === null || fd === undefined) return false;
  let ok = true;
  if (t.time !== undefined) ok = setInt(l, fd, IPPROTO_TCP, TCP_KEEPIDLE, t.time) && ok;
  if (t.interval !== undefined) ok = setInt(l, fd, IPPROTO_TCP, TCP_KEEPINTVL, t.interval) && ok;
  if (t.probes !== undefined) ok = setInt(l, fd, IPPROTO_TCP, TCP_KEEPCNT, t.probes) && ok;
  return ok;
}

/** The keepalive timings a socket has now (tests and /clusters debugging); undefined when unreadable. */
export function keepaliveTimings(conn: Deno.Conn): Required<KeepaliveTimings> | undefined {
  const l = libc();
  const fd = socketFd(conn);
  if (l === null || fd === undefined) return undefined;
  const get = (name: number) => {
    const v = new Int32Array(1);
    const len = new Uint32Array([4]);
    const r = l.getsockopt(fd, IPPROTO_TCP, name, new Uint8Array(v.buffer), new Uint8Array(len.buffer));
    return r === 0 ? v[0] : -1;
  };
  return { time: get(TCP_KEEPIDLE), interval: get(TCP_KEEPINTVL), probes: get(TCP_KEEPCNT) };
}
