import assert from "node:assert/strict";
import {
  keepaliveTimings,
  originalDst,
  setKeepaliveTimings,
  socketFd,
  sockoptAvailable,
  sockoptUnavailable,
} from "./sockopt.ts";

sockoptAvailable(); // libc stays open for the process (see sockoptAvailable)

async function pair(): Promise<{ client: Deno.TcpConn; server: Deno.TcpConn; close: () => void }> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: (l.addr as Deno.NetAddr).port });
  const server = await l.accept();
  return {
    client,
    server,
    close: () => {
      client.close();
      server.close();
      l.close();
    },
  };
}

Deno.test("sockopt: TCP keepalive timings are set on the socket and read back", async () => {
  assert.equal(sockoptUnavailable(), "");
  const p = await pair();
  try {
    assert.equal(typeof socketFd(p.client), "number");
    p.client.setKeepAlive(true);
    assert.ok(setKeepaliveTimings(p.client, { time: 17, interval: 3, probes: 4 }));
    assert.deepEqual(keepaliveTimings(p.client), { time: 17, interval: 3, probes: 4 });
    // a field left out keeps the socket's value
    assert.ok(setKeepaliveTimings(p.client, { probes: 9 }));
    assert.deepEqual(keepaliveTimings(p.client), { time: 17, interval: 3, probes: 9 });
  } finally {
    p.close();
  }
});

Deno.test("sockopt: a connection nobody redirected has no original destination", async () => {
  const p = await pair();
  try {
    assert.equal(originalDst(p.server), undefined);
    // a wrapper without the descriptor is not read
    assert.equal(originalDst({ localAddr: p.server.localAddr } as Deno.Conn), undefined);
  } finally {
    p.close();
  }
});

Deno.test("sockopt: the descriptor of an IPv6 connected socket is found by its addresses", async () => {
  const l = Deno.listen({ hostname: "::1", port: 0 });
  const client = await Deno.connect({ hostname: "::1", port: (l.addr as Deno.NetAddr).port });
  const server = await l.accept();
  try {
    assert.ok(setKeepaliveTimings(client, { time: 30 }));
    assert.equal(keepaliveTimings(client)?.time, 30);
    assert.notEqual(keepaliveTimings(server)?.time, 30);
  } finally {
    client.close();
    server.close();
    l.close();
  }
});
