/**
 * The commands the redis proxy answers itself with connection state: AUTH (Envoy's ProxyFilter::onAuth) and
 * HELLO (RESP2 or RESP3, see `hello`).
 */
import type { CommandInfo } from "./commands.ts";
import type { RedisSession } from "./session.ts";
import { errorBytes, Response } from "./requests.ts";
import { OutBuf, text } from "./resp.ts";

/** A scratch buffer for the replies the proxy makes itself (written and handed to the session at once). */
export const local = new OutBuf(1024);

/** Answers `session` with an error reply the proxy makes itself. */
export function replyError(session: RedisSession, message: string): void {
  const o = errorBytes(message);
  session.local(o.buf, 0, o.len);
}

/** Answers `session` with a simple string reply the proxy makes itself. */
export function replySimple(session: RedisSession, message: string): void {
  local.len = 0;
  local.simple(message);
  session.local(local.buf, 0, local.len);
}

/** Envoy's ProxyFilter::onAuth (password, or username and password). */
export function auth(session: RedisSession, buf: Uint8Array): void {
  const f = session.f;
  const a = session.args;
  if (a.count < 2) {
    f.stats.invalid_request.inc();
    replyError(session, Response.InvalidRequest);
    return;
  }
  if (a.count === 3) {
    const user = text(buf, a.starts[1], a.ends[1]);
    const pass = text(buf, a.starts[2], a.ends[2]);
    if (f.username === "" && f.passwords.length === 0) {
      replyError(session, "ERR Client sent AUTH, but no username-password pair is set");
    } else if (
      (f.username === "" && user === "default" && f.passwords.includes(pass)) ||
      (user === f.username && f.passwords.includes(pass))
    ) {
      session.allowed = true;
      replySimple(session, "OK");
    } else {
      session.allowed = false;
      replyError(session, "WRONGPASS invalid username-password pair");
    }
    return;
  }
  const pass = text(buf, a.starts[1], a.ends[1]);
  if (f.passwords.length === 0) {
    replyError(session, "ERR Client sent AUTH, but no password is set");
  } else if (f.passwords.includes(pass)) {
    session.allowed = true;
    replySimple(session, "OK");
  } else {
    session.allowed = false;
    replyError(session, "ERR invalid password");
  }
}

/**
 * HELLO [2|3] [AUTH user pass] [SETNAME name], answered by the proxy. RESP3 is honoured by passing it through:
 * a client that negotiated HELLO 3 is served by upstream connections that sent HELLO 3 themselves, so every
 * reply (maps, sets, nulls, doubles...) reaches it as the server encoded it; the proxy's own replies are the same
 * in both (simple strings, errors, integers, arrays), except HELLO's, a map in RESP3. Any other version gets
 * NOPROTO, as Redis answers. (Envoy's codec was RESP2-only and answered HELLO as an unknown command; its newest
 * versions negotiate RESP3 per listener in the same way.)
 */
export function hello(session: RedisSession, buf: Uint8Array, cmd: CommandInfo): void {
  const f = session.f;
  const a = session.args;
  const stats = f.commandStats(cmd);
  stats.total.inc();
  let i = 1;
  let resp3 = session.resp3;
  if (a.count > 1) {
    const v = text(buf, a.starts[1], a.ends[1]);
    if (v !== "2" && v !== "3") {
      stats.error.inc();
      replyError(session, Response.UnsupportedProtocol);
      return;
    }
    resp3 = v === "3";
    i = 2;
  }
  let user: string | undefined;
  let pass: string | undefined;
  while (i < a.count) {
    const opt = text(buf, a.starts[i], a.ends[i]).toUpperCase();
    if (opt === "AUTH" && i + 2 < a.count) {
      user = text(buf, a.starts[i + 1], a.ends[i + 1]);
      pass = text(buf, a.starts[i + 2], a.ends[i + 2]);
      i += 3;
    } else if (opt === "SETNAME" && i + 1 < a.count) {
      i += 2;
    } else {
      stats.error.inc();
      replyError(session, `ERR Syntax error in HELLO option '${text(buf, a.starts[i], a.ends[i])}'`);
      return;
    }
  }
  if (user !== undefined) {
    const ok = (user === f.username || (f.username === "" && user === "default")) &&
      f.passwords.includes(pass!);
    if (!ok) {
      stats.error.inc();
      replyError(session, "WRONGPASS invalid username-password pair");
      return;
    }
    session.allowed = true;
  } else if (!session.allowed) {
    stats.error.inc();
    replyError(session, Response.AuthRequired);
    return;
  }
  stats.success.inc();
  session.resp3 = resp3;
  local.len = 0;
  if (resp3) local.header(37, 7); // a map
  else local.header(42, 14); // its RESP2 form: a flat array
  local.bulkAscii("server");
  local.bulkAscii("redis");
  local.bulkAscii("version");
  local.bulkAscii("7.0.0");
  local.bulkAscii("proto");
  local.integer(resp3 ? 3 : 2);
  local.bulkAscii("id");
  local.integer(0);
  local.bulkAscii("mode");
  local.bulkAscii("standalone");
  local.bulkAscii("role");
  local.bulkAscii("master");
  local.bulkAscii("modules");
  local.header(42, 0);
  session.local(local.buf, 0, local.len);
}
