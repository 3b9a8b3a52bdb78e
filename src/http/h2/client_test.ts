import assert from "node:assert/strict";
import { HeaderMap } from "../headers.ts";
import { H2ClientConnection } from "./client.ts";
import { ErrorCode, Flag, FrameType, PREFACE, SettingId } from "./constants.ts";
import { requestHead } from "./head.ts";
import { newH2Stats } from "./stats.ts";
import { type H2StreamHandler, ResetReason } from "./stream.ts";
import { FrameBuilder, MemoryTransport, settle } from "./testing.ts";

function client() {
  const t = new MemoryTransport();
  const stats = newH2Stats();
  let capacity = 0;
  const c = new H2ClientConnection(t, { stats, events: { onCapacity: () => capacity++ } });
  void c.start();
  const log: string[] = [];
  const handler: H2StreamHandler = {
    onHeaders: (st, h, end) => void log.push(`${st.id} headers ${h.status} ${end}`),
    onInformational: (st, h) => void log.push(`${st.id} info ${h.status}`),
    onData: (st, d, end) => void log.push(`${st.id} data ${d.length} ${end}`),
    onTrailers: (st, tr) => void log.push(`${st.id} trailers ${tr.get("grpc-status")}`),
    onReset: (st, code, reason) => void log.push(`${st.id} reset ${code} ${reason}`),
  };
  return { t, c, stats, log, handler, capacity: () => capacity };
}

Deno.test("h2 client", async (t) => {
  await t.step("sends preface, SETTINGS (push off) and the request", async () => {
    const k = client();
    const st = k.c.request(requestHead("GET", "/x", "example"), true, k.handler)!;
    assert.equal(st.id, 1);
    await settle();
    const raw = k.t.written[0];
    assert.deepEqual(raw.subarray(0, PREFACE.length), PREFACE);
    const f = k.t.frames();
    assert.equal(f[0].type, FrameType.SETTINGS);
    assert.equal(f[0].payload[1], SettingId.ENABLE_PUSH);
    const h = f.find((x) => x.type === FrameType.HEADERS)!;
    assert.equal(h.flags & Flag.END_STREAM, Flag.END_STREAM);
    k.c.close();
  });
  await t.step("1xx, final head, data and trailers; trailers-only responses", async () => {
    const k = client();
    k.c.request(requestHead("POST", "/", "a"), true, k.handler);
    k.c.request(requestHead("GET", "/", "a"), true, k.handler);
    const b = new FrameBuilder().settings().headers(1, [[":status", "100"]], false)
      .headers(1, [[":status", "200"], ["content-type", "x"]], false).data(1, new Uint8Array(5))
      .headers(1, [["grpc-status", "0"]]).headers(3, [[":status", "200"], ["grpc-status", "7"]], true);
    k.t.push(b.take());
    await settle();
    assert.deepEqual(k.log, [
      "1 info 100",
      "1 headers 200 false",
      "1 data 5 false",
      "1 trailers 0",
      "3 headers 200 true",
    ]);
    assert.equal(k.c.activeStreams, 0);
    assert.equal(k.stats.trailers.value, 1);
    k.c.close();
  });
  await t.step("SETTINGS_MAX_CONCURRENT_STREAMS is honoured", async () => {
    const k = client();
    k.t.push(new FrameBuilder().settings([[SettingId.MAX_CONCURRENT_STREAMS, 2]]).take());
    await settle();
    assert.equal(k.c.available(), 2);
    assert.ok(k.c.request(requestHead("GET", "/", "a"), true, k.handler));
    assert.ok(k.c.request(requestHead("GET", "/", "a"), true, k.handler));
    assert.equal(k.c.available(), 0);
    assert.equal(k.c.request(requestHead("GET", "/", "a"), true, k.handler), null);
    const before = k.capacity();
    k.t.push(new FrameBuilder().headers(1, [[":status", "204"]]).take());
    await settle();
    assert.equal(k.c.available(), 1);
    assert.ok(k.capacity() > before);
    k.c.close();
  });
  await t.step("GOAWAY refuses streams above last id (retriable) and stops new ones", async () => {
    const k = client();
    for (let i = 0; i < 3; i++) k.c.request(requestHead("GET", "/", "a"), true, k.handler);
    k.t.push(new FrameBuilder().settings().goaway(1, ErrorCode.NO_ERROR).take());
    await settle();
    assert.deepEqual(k.log, [`3 reset ${ErrorCode.REFUSED_STREAM} ${ResetReason.REFUSED}`, `5 reset 7 3`]);
    assert.equal(k.c.available(), 0);
    assert.ok(!k.t.closed);
    k.t.push(new FrameBuilder().headers(1, [[":status", "200"]]).take());
    await settle();
    assert.ok(k.t.closed, "closes once the last stream finishes");
  });
  await t.step("connection loss resets open streams; RST from the peer is reported", async () => {
    const k = client();
    k.c.request(requestHead("GET", "/", "a"), true, k.handler);
    k.c.request(requestHead("GET", "/", "a"), true, k.handler);
    k.t.push(new FrameBuilder().settings().rst(1, ErrorCode.REFUSED_STREAM).take());
    await settle();
    k.t.end();
    await k.c.closed;
    assert.deepEqual(k.log, [`1 reset 7 ${ResetReason.REFUSED}`, `3 reset 2 ${ResetReason.CONNECTION}`]);
    assert.equal(k.stats.rx_reset.value, 1);
  });
  await t.step("request body with trailers, PING round trip", async () => {
    const k = client();
    const st = k.c.request(requestHead("POST", "/", "a"), false, k.handler)!;
    assert.equal(st.sendData(new Uint8Array(1000)), true);
    const tr = new HeaderMap();
    tr.add("x-checksum", "abc");
    st.sendTrailers(tr);
    const rtt = k.c.ping();
    await settle();
    const f = k.t.frames();
    const last = f.filter((x) => x.id === 1).at(-1)!;
    assert.equal(last.type, FrameType.HEADERS);
    assert.equal(last.flags & Flag.END_STREAM, Flag.END_STREAM);
    const ping = f.find((x) => x.type === FrameType.PING)!;
    k.t.push(new FrameBuilder().settings().raw(FrameType.PING, Flag.ACK, 0, ping.payload).take());
    assert.ok((await rtt) >= 0);
    k.c.close();
  });
});
