import assert from "node:assert/strict";
import { ActiveConnection } from "../listener/connection.ts";
import { slimTcpConn } from "../network/slim_conn.ts";
import type { HcmStats } from "./hcm_config.ts";
import { H1ReadBuffer, IDLE_READ, INITIAL_BUF } from "./h1_read_buffer.ts";

const enc = new TextEncoder();

/** A real accepted socket behind an H1ReadBuffer, and an owner that records its calls. */
async function setup() {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: (l.addr as Deno.NetAddr).port });
  const accepted = await l.accept();
  l.close();
  const down = new ActiveConnection(1, slimTcpConn(accepted), 1 << 20);
  let rx = 0;
  const stats = { downstream_cx_rx_bytes_total: { inc: (n: number) => rx += n } } as unknown as HcmStats;
  let woke: () => void = () => {};
  const owner = {
    gone: 0,
    clientGone() {
      this.gone++;
    },
    wake() {
      woke();
    },
  };
  const rb = new H1ReadBuffer(down, stats, owner);
  const nextWake = () => new Promise<void>((r) => woke = r);
  return { client, down, rb, owner, nextWake, rx: () => rx };
}

Deno.test("H1ReadBuffer: a parked connection holds no buffer; its bytes land in a pooled working buffer", async () => {
  const { client, down, rb, nextWake, rx } = await setup();
  try {
    assert.ok(rb.park());
    assert.equal(rb.buf.length, 0, "no buffer of its own while it waits");
    const woken = nextWake();
    const head = "GET / HTTP/1.1\r\nhost: x\r\n\r\n";
    await client.write(enc.encode(head));
    await woken;
    assert.equal(rb.buf.length, INITIAL_BUF);
    assert.equal(new TextDecoder().decode(rb.buf.subarray(rb.start, rb.end)), head);
    assert.equal(rx(), head.length);
    // consumed: the next wait gives the working buffer back again
    rb.start = rb.end;
    assert.ok(rb.park());
    assert.equal(rb.buf.length, 0);
  } finally {
    down.close();
    client.close();
    await rb.readAhead;
  }
});

Deno.test("H1ReadBuffer: a head larger than the idle read comes whole through one more fill", async () => {
  const { client, down, rb, nextWake } = await setup();
  try {
    const head = `GET / HTTP/1.1\r\nx-big: ${"v".repeat(1500)}\r\n\r\n`;
    const woken = nextWake();
    assert.ok(rb.park());
    await client.write(enc.encode(head));
    await woken;
    assert.equal(rb.end - rb.start, IDLE_READ, "the idle read takes a slot's worth");
    while (rb.end - rb.start < head.length) assert.ok(await rb.fill(64 * 1024));
    assert.equal(new TextDecoder().decode(rb.buf.subarray(rb.start, rb.end)), head);
  } finally {
    down.close();
    client.close();
    await rb.readAhead;
  }
});

Deno.test("H1ReadBuffer: the client leaving while parked wakes the connection with EOF", async () => {
  const { client, down, rb, owner, nextWake } = await setup();
  try {
    const woken = nextWake();
    assert.ok(rb.park());
    client.close();
    await woken;
    assert.ok(rb.eof);
    assert.equal(owner.gone, 1);
    assert.equal(rb.buf.length, 0);
  } finally {
    down.close();
  }
});
