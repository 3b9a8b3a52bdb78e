/**
 * Envoy's command splitter: checks a parsed request, answers what the proxy answers itself (PING, ECHO, TIME,
 * QUIT, AUTH, HELLO, errors) and sends the rest upstream: whole to the key's server, or split per key (MGET, MSET,
 * DEL/EXISTS/TOUCH/UNLINK). Order of checks as Envoy's InstanceImpl::makeRequest: not an array of bulk strings ->
 * "invalid request"; unknown command -> "ERR unknown command ..." (before auth, as Redis); AUTH; HELLO; NOAUTH;
 * local commands; fewer than two arguments -> "invalid request"; then the handler.
 */
import { type CommandInfo, COMMANDS, Kind, lookupCommand } from "./commands.ts";
import type { RedisProxyFactory } from "./filter.ts";
import type { RedisSession } from "./session.ts";
import { hashBigInt, hashTag, murmurHash2, tagRange } from "./hash.ts";
import { IGNORE_REPLY, type RedisClient, type ReplyHandler } from "./pool.ts";
import { errorBytes, FragmentedRequest, Response, SingleServerRequest, Split } from "./requests.ts";
import { type OutBuf, text } from "./resp.ts";
import { auth, hello, local, replyError, replySimple } from "./local_commands.ts";
import { CountingHandler } from "./upstream_stats.ts";
import { transaction } from "./transaction.ts";
import { type RedisRoute, shouldMirror } from "./router.ts";

const GET = new TextEncoder().encode("get");
const SET = new TextEncoder().encode("set");

/** Handles one parsed request (`session.args` over `buf`). */
export function dispatch(session: RedisSession, buf: Uint8Array): void {
  const f = session.f;
  const a = session.args;
  if (a.count === 0) {
    f.stats.invalid_request.inc();
    replyError(session, Response.InvalidRequest);
    return;
  }
  let cmd = lookupCommand(buf, a.starts[0], a.ends[0]);
  if (cmd === undefined) {
    cmd = f.customCommand(text(buf, a.starts[0], a.ends[0]).toLowerCase());
    if (cmd === undefined) {
      f.stats.unsupported_command.inc();
      const first = a.count > 1 ? text(buf, a.starts[1], a.ends[1]) : "";
      replyError(
        session,
        `ERR unknown command '${text(buf, a.starts[0], a.ends[0])}', with args beginning with: ${first}`,
      );
      return;
    }
  }
  const kind = cmd.kind;
  if (kind >= Kind.Ping) {
    if (kind === Kind.Auth) return auth(session, buf);
    if (kind === Kind.Hello) return hello(session, buf, cmd);
    if (kind === Kind.Quit) {
      session.quit = true;
      replySimple(session, "OK");
      return;
    }
  }
  if (!session.allowed) {
    replyError(session, Response.AuthRequired);
    return;
  }
  if (kind === Kind.Ping) {
    replySimple(session, "PONG");
    return;
  }
  if (kind === Kind.Echo) {
    if (a.count !== 2) {
      f.stats.invalid_request.inc();
      replyError(session, Response.InvalidRequest);
      return;
    }
    local.len = 0;
    local.bulk(buf, a.starts[1], a.ends[1]);
    session.local(local.buf, 0, local.len);
    return;
  }
  if (kind === Kind.Time) {
    const us = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));
    local.len = 0;
    local.header(42, 2);
    local.bulkAscii(String(us / 1_000_000n));
    local.bulkAscii(String(us));
    session.local(local.buf, 0, local.len);
    return;
  }
  if (a.count < 2 && kind !== Kind.Transaction) {
    f.stats.invalid_request.inc();
    replyError(session, Response.InvalidRequest);
    return;
  }
  const stats = f.commandStats(cmd);
  stats.total.inc();
  const start = f.clock.now;
  if (kind === Kind.Transaction || session.tx?.active) {
    transaction(session, buf, cmd, stats, start);
    return;
  }
  if (kind === Kind.Simple || kind === Kind.Eval) {
    let keyIdx = 1;
    if (kind === Kind.Eval) {
      if (a.count < 4) {
        stats.error.inc();
        replyError(session, `wrong number of arguments for '${text(buf, a.starts[0], a.ends[0])}' command`);
        return;
      }
      keyIdx = 3;
    }
    const req = new SingleServerRequest(session, stats, start);
    session.begin(req);
    const route = f.router.route(buf, a.starts[keyIdx], a.ends[keyIdx]);
    if (route === undefined || !send(f, session, buf, route, cmd, keyIdx, null, req)) {
      stats.error.inc();
      const o = errorBytes(Response.NoUpstreamHost);
      session.deliver(req, o.buf, 0, o.len);
    }
    return;
  }
  // split commands
  let count: number;
  let split: Split;
  if (kind === Kind.Mset) {
    if ((a.count - 1) % 2 !== 0) {
      stats.error.inc();
      replyError(session, `wrong number of arguments for '${text(buf, a.starts[0], a.ends[0])}' command`);
      return;
    }
    count = (a.count - 1) / 2;
    split = Split.Mset;
  } else {
    count = a.count - 1;
    split = kind === Kind.Mget ? Split.Mget : Split.Sum;
  }
  const req = new FragmentedRequest(session, stats, start, split, count);
  session.begin(req);
  const name = kind === Kind.Mget ? GET : kind === Kind.Mset ? SET : null;
  for (let i = 0; i < count; i++) {
    const keyIdx = split === Split.Mset ? 1 + 2 * i : 1 + i;
    const child = req.child(i);
    const route = f.router.route(buf, a.starts[keyIdx], a.ends[keyIdx]);
    if (route === undefined || !send(f, session, buf, route, cmd, keyIdx, name, child)) {
      req.onChildError(i, Response.NoUpstreamHost);
    }
  }
}

/**
 * Sends the request (or, for a fragment, `name key [value]`) to the server of the key at `keyIdx`, plus its
 * mirrors. False when no host could be chosen ("no upstream host").
 */
function send(
  f: RedisProxyFactory,
  session: RedisSession,
  buf: Uint8Array,
  route: RedisRoute,
  cmd: CommandInfo,
  keyIdx: number,
  fragmentName: Uint8Array | null,
  handler: ReplyHandler,
): boolean {
  const a = session.args;
  const cluster = route.readCluster !== undefined && !cmd.write ? route.readCluster : route.cluster;
  const client = pickClient(
    f,
    cluster,
    session.resp3,
    buf,
    a.starts[keyIdx] + (route.removePrefix ? route.prefix.length : 0),
    a.ends[keyIdx],
  );
  if (client === undefined) return false;
  encode(client.out, buf, session, route, keyIdx, fragmentName, cmd);
  const upstreamName = fragmentName === null ? cmd.name : cmd.kind === Kind.Mget ? "get" : "set";
  client.sent(
    client.commandStats ? new CountingHandler(handler, client.commandStats.get(upstreamName)) : handler,
  );
  for (let m = 0; m < route.mirrors.length; m++) {
    const mp = route.mirrors[m];
    if (!shouldMirror(mp, cmd.write)) continue;
    const mc = pickClient(
      f,
      mp.cluster,
      session.resp3,
      buf,
      a.starts[keyIdx] + (route.removePrefix ? route.prefix.length : 0),
      a.ends[keyIdx],
    );
    if (mc === undefined) continue;
    encode(mc.out, buf, session, route, keyIdx, fragmentName, cmd);
    mc.sent(
      mc.commandStats ? new CountingHandler(IGNORE_REPLY, mc.commandStats.get(upstreamName)) : IGNORE_REPLY,
    );
  }
  return true;
}

/** The connection to the server of the key at [ks, ke) in cluster `clusterName`; undefined: no host. */
function pickClient(
  f: RedisProxyFactory,
  clusterName: string,
  resp3: boolean,
  buf: Uint8Array,
  ks: number,
  ke: number,
): RedisClient | undefined {
  const pool = f.pool(clusterName, resp3);
  if (pool === undefined) return undefined;
  if (f.hashtagging) {
    hashTag(buf, ks, ke);
    murmurHash2(buf, tagRange.s, tagRange.e);
  } else murmurHash2(buf, ks, ke);
  const ctx = f.lbContext;
  ctx.hash = hashBigInt();
  const host = pool.cluster.chooseHost(ctx);
  if (host === null) {
    pool.cluster.stats.upstream_cx_none_healthy.inc();
    return undefined;
  }
  return pool.client(host);
}

/** Encodes the upstream request: the client's frame as is when nothing changes, else rebuilt. */
function encode(
  out: OutBuf,
  buf: Uint8Array,
  session: RedisSession,
  route: RedisRoute,
  keyIdx: number,
  fragmentName: Uint8Array | null,
  cmd: CommandInfo,
): void {
  const a = session.args;
  const cut = route.removePrefix ? route.prefix.length : 0;
  if (cmd.kind === Kind.Simple || cmd.kind === Kind.Eval) {
    if (cut === 0) {
      out.bytes(buf, a.frameStart, a.frameEnd);
      return;
    }
    out.header(42, a.count);
    for (let i = 0; i < a.count; i++) out.bulk(buf, a.starts[i] + (i === keyIdx ? cut : 0), a.ends[i]);
    return;
  }
  if (fragmentName !== null) {
    const n = cmd.kind === Kind.Mset ? 3 : 2;
    out.header(42, n);
    out.bulk(fragmentName, 0, fragmentName.length);
  } else {
    out.header(42, 2);
    out.bulk(buf, a.starts[0], a.ends[0]);
  }
  out.bulk(buf, a.starts[keyIdx] + cut, a.ends[keyIdx]);
  if (cmd.kind === Kind.Mset) out.bulk(buf, a.starts[keyIdx + 1], a.ends[keyIdx + 1]);
}

/** Every command name the splitter knows (for tests and docs). */
export const KNOWN_COMMANDS: readonly string[] = COMMANDS.map((c) => c.name);
