import assert from "node:assert/strict";
import { runInNewContext } from "node:vm";
import { setFlagsFromString } from "node:v8";
import { libc } from "../common/libc.ts";
import { keepaliveTimings, setKeepaliveTimings } from "../transport/sockopt.ts";
import { connRead, connWrite } from "./raw_io.ts";
import { SlimTcpConn, slimTcpConn } from "./slim_conn.ts";

// libc is opened once per isolate and kept (setNoDelay/setKeepAlive use it): open it before any test, so the
// sanitizer does not count the kept library as one test's leak
libc();

const enc = new TextEncoder();
const dec = new TextDecoder();

async function pair(): Promise<{ client: Deno.TcpConn; accepted: Deno.TcpConn }> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: (l.addr as Deno.NetAddr).port });
  const accepted = await l.accept();
  l.close();
  return { client, accepted };
}

async function readText(c: Deno.Conn, n: number): Promise<string> {
  const buf = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await c.read(buf.subarray(got));
    if (r === null) break;
    got += r;
  }
  return dec.decode(buf.subarray(0, got));
}

Deno.test("slimTcpConn: an accepted socket by its resource id: bytes both ways, addresses, half-close, close", async () => {
  const { client, accepted } = await pair();
  const remote = accepted.remoteAddr as Deno.NetAddr;
  const local = accepted.localAddr as Deno.NetAddr;
  const slim = slimTcpConn(accepted);
  assert.ok(slim instanceof SlimTcpConn);
  assert.deepEqual({ ...slim.remoteAddr }, { ...remote }); // the runtime's have a null prototype
  assert.deepEqual({ ...slim.localAddr }, { ...local });
  try {
    await client.write(enc.encode("ping"));
    assert.equal(await readText(slim, 4), "ping");
    await client.write(enc.encode("raw"));
    const buf = new Uint8Array(8);
    const n = await connRead(slim, buf); // the raw path finds the resource id
    assert.equal(dec.decode(buf.subarray(0, n!)), "raw");
    assert.equal(await connWrite(slim, enc.encode("pong")), 4);
    assert.equal(await readText(client, 4), "pong");
    await slim.closeWrite();
    assert.equal(await client.read(new Uint8Array(1)), null, "the client sees the half-close");
    await client.write(enc.encode("after"));
    assert.equal(await readText(slim, 5), "after", "the read side stays open");
    client.close();
    assert.equal(await slim.read(new Uint8Array(4)), null, "end of stream is null, as Deno.Conn.read");
  } finally {
    slim.close();
  }
  assert.throws(() => slim.close(), Deno.errors.BadResource);
});

Deno.test("slimTcpConn: the TcpConn it replaced can be collected while the socket lives on", async () => {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const { client, accepted } = await pair();
  const gone = new WeakRef(accepted);
  const slim = (() => slimTcpConn(accepted))();
  // no reference to `accepted` is used below this line
  for (let i = 0; i < 3 && gone.deref() !== undefined; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 0));
  }
  try {
    await client.write(enc.encode("still here"));
    assert.equal(await readText(slim, 10), "still here");
  } finally {
    slim.close();
    client.close();
  }
});

Deno.test("slimTcpConn: socket options reach the descriptor; stream views work", async () => {
  const { client, accepted } = await pair();
  const slim = slimTcpConn(accepted) as Deno.TcpConn;
  try {
    slim.setNoDelay(true);
    slim.setKeepAlive(true);
    assert.ok(
      setKeepaliveTimings(slim, { time: 42, interval: 7, probes: 3 }),
      "sockopt finds the descriptor",
    );
    assert.deepEqual(keepaliveTimings(slim), { time: 42, interval: 7, probes: 3 });
    const w = slim.writable.getWriter();
    await w.write(enc.encode("via stream"));
    w.releaseLock();
    assert.equal(await readText(client, 10), "via stream");
    await client.write(enc.encode("back"));
    const r = slim.readable.getReader();
    const got = await r.read();
    assert.equal(dec.decode(got.value), "back");
    r.releaseLock();
  } finally {
    slim.close();
    client.close();
  }
});

Deno.test("slimTcpConn: anything but the runtime's own TcpConn is returned as it is", () => {
  const wrapper = {
    remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
    localAddr: { transport: "tcp", hostname: "127.0.0.1", port: 2 },
  } as unknown as Deno.Conn;
  assert.equal(slimTcpConn(wrapper), wrapper);
});
