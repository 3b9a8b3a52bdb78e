/**
 * MULTI/EXEC/DISCARD as Envoy's TransactionRequest: MULTI starts a transaction and is answered OK locally; the
 * first command with a key picks the server (by that key's hash) and opens a connection for this downstream
 * connection alone, which gets MULTI (reply dropped) and then every command of the transaction whatever its key;
 * the server's QUEUED and EXEC replies go back as they are. EXEC or DISCARD closes the connection once answered.
 * Only simple commands are allowed inside; EXEC/DISCARD of an empty transaction are answered locally.
 */
import { type CommandInfo, Kind } from "./commands.ts";
import { hashBigInt, hashTag, murmurHash2, tagRange } from "./hash.ts";
import { IGNORE_REPLY, type RedisClient } from "./pool.ts";
import { type CommandStats, errorBytes, Response, SingleServerRequest } from "./requests.ts";
import { OutBuf, text } from "./resp.ts";
import type { RedisSession } from "./session.ts";

/** A connection's transaction state (Envoy's Client::Transaction). */
export class Transaction {
  active = false;
  /** The dedicated upstream connection, once a command with a key arrived. */
  client: RedisClient | null = null;
  /** EXEC or DISCARD went out: close after its reply. */
  shouldClose = false;

  /** Ends the transaction and closes its connection. */
  close(): void {
    this.client?.close();
    this.client = null;
    this.active = false;
    this.shouldClose = false;
  }
}

const local = new OutBuf(256);
const MULTI = new TextEncoder().encode("*1\r\n$5\r\nMULTI\r\n");

function reply(session: RedisSession, fill: (o: OutBuf) => void): void {
  local.len = 0;
  fill(local);
  session.local(local.buf, 0, local.len);
}

/** Handles a command while a transaction is active, or MULTI/EXEC/DISCARD. */
export function transaction(
  session: RedisSession,
  buf: Uint8Array,
  cmd: CommandInfo,
  stats: CommandStats,
  start: number,
): void {
  const a = session.args;
  const tx = session.tx ??= new Transaction();
  const original = text(buf, a.starts[0], a.ends[0]);
  if (cmd.kind !== Kind.Transaction && cmd.kind !== Kind.Simple) {
    reply(session, (o) => o.error(`'${original}' command is not supported within transaction`));
    return;
  }
  const name = cmd.name;
  if (name === "multi") {
    if (tx.active) {
      reply(session, (o) => o.error("MULTI calls can not be nested"));
      return;
    }
    tx.active = true;
    reply(session, (o) => o.simple("OK"));
    return;
  }
  if (name === "exec" || name === "discard") {
    if (!tx.active) {
      reply(session, (o) => o.error(`${name.toUpperCase()} without MULTI`));
      return;
    }
    if (tx.client === null) {
      reply(session, (o) => name === "exec" ? o.header(42, 0) : o.simple("OK"));
      tx.close();
      return;
    }
    tx.shouldClose = true;
  }
  const req = new SingleServerRequest(session, stats, start);
  session.begin(req);
  let client = tx.client;
  if (client === null) {
    client = open(session, buf);
    if (client === null) {
      stats.error.inc();
      const o = errorBytes(Response.NoUpstreamHost);
      session.deliver(req, o.buf, 0, o.len);
      return;
    }
    tx.client = client;
  }
  if (!client.usable) {
    req.onFailure();
    return;
  }
  client.out.bytes(buf, a.frameStart, a.frameEnd);
  client.sent(req);
}

/** Opens the transaction's connection to the server of the current command's key and sends MULTI. */
function open(session: RedisSession, buf: Uint8Array): RedisClient | null {
  const f = session.f;
  const a = session.args;
  const ks = a.starts[1];
  const ke = a.ends[1];
  const route = f.router.route(buf, ks, ke);
  if (route === undefined) return null;
  const pool = f.pool(route.cluster, session.resp3);
  if (pool === undefined) return null;
  if (f.hashtagging) {
    hashTag(buf, ks, ke);
    murmurHash2(buf, tagRange.s, tagRange.e);
  } else murmurHash2(buf, ks, ke);
  f.lbContext.hash = hashBigInt();
  const host = pool.cluster.chooseHost(f.lbContext);
  if (host === null) return null;
  const client = pool.dedicated(host);
  client.out.bytes(MULTI, 0, MULTI.length);
  client.sent(IGNORE_REPLY);
  return client;
}
