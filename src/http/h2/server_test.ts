import assert from "node:assert/strict";
import { HeaderMap } from "../headers.ts";
import { ErrorCode, Flag, FrameType, SettingId } from "./constants.ts";
import { readU32 } from "./frame.ts";
import type { H2Head } from "./head.ts";
import type { H2Options } from "./options.ts";
import { H2ServerConnection } from "./server.ts";
import { newH2Stats } from "./stats.ts";
import type { H2Stream, H2StreamHandler } from "./stream.ts";
import { FrameBuilder, goawayCode, MemoryTransport, settle } from "./testing.ts";

interface Seen {
  heads: H2Head[];
  data: number;
  resets: number[];
  trailers: number;
}

function server(opts: H2Options = {}, custom?: Partial<H2StreamHandler>) {
  const t = new MemoryTransport();
  const stats = newH2Stats();
  const seen: Seen = { heads: [], data: 0, resets: [], trailers: 0 };
  const handler: H2StreamHandler = {
    onHeaders(st, head, end) {
      seen.heads.push(head);
      if (end) st.respond(200, new HeaderMap(), true);
    },
    onData(st, d, end) {
      seen.data += d.length;
      if (end) st.respond(200, new HeaderMap(), true);
    },
    onTrailers(st) {
      seen.trailers++;
      st.respond(200, new HeaderMap(), true);
    },
    onReset(_st, code) {
      seen.resets.push(code);
    },
    ...custom,
  };
  const c = new H2ServerConnection(t, handler, { ...opts, stats });
  void c.start();
  const b = new FrameBuilder();
  return { t, c, stats, seen, b, hello: () => b.preface().settings() };
}

const rsts = (t: MemoryTransport) =>
  t.frames().filter((f) => f.type === FrameType.RST_STREAM).map((f) => [f.id, readU32(f.payload, 0)]);

Deno.test("h2 server: basics and validation", async (t) => {
  await t.step("SETTINGS first, then a response per GET", async () => {
    const s = server();
    s.t.push(s.hello().get(1).get(3, "/b").take());
    await settle();
    const f = s.t.frames();
    assert.equal(f[0].type, FrameType.SETTINGS);
    const ids = f.filter((x) => x.type === FrameType.HEADERS).map((x) => x.id);
    assert.deepEqual(ids, [1, 3]);
    assert.equal(s.seen.heads[1].path, "/b");
    assert.equal(s.stats.streams_active.value, 0);
    s.c.close();
  });
  await t.step("malformed requests are reset with PROTOCOL_ERROR, connection stays", async () => {
    const s = server();
    const base: [string, string][] = [[":method", "GET"], [":scheme", "http"], [":path", "/"]];
    s.t.push(
      s.hello().headers(1, [...base, ["X-Upper", "1"]]).headers(3, [...base, ["connection", "close"]])
        .headers(5, [...base, ["te", "gzip"]]).headers(7, [[":method", "GET"], [":scheme", "http"]])
        .headers(9, [...base, [":foo", "x"]]).headers(11, [["a", "b"], ...base])
        .headers(13, [...base, ["x", " lead"]]).headers(15, [...base, ["te", "trailers"]]).take(),
    );
    await settle();
    assert.deepEqual(rsts(s.t), [1, 3, 5, 7, 9, 11, 13].map((id) => [id, ErrorCode.PROTOCOL_ERROR]));
    assert.equal(s.seen.heads.length, 1);
    assert.equal(s.stats.rx_messaging_error.value, 7);
    assert.equal(goawayCode(s.t.frames()), -1);
    s.c.close();
  });
  await t.step("content-length must match the DATA received", async () => {
    const s = server();
    const h: [string, string][] = [[":method", "POST"], [":scheme", "http"], [":path", "/"], [
      "content-length",
      "5",
    ]];
    s.t.push(s.hello().headers(1, h, false).data(1, new Uint8Array(3), true).take());
    await settle();
    assert.deepEqual(rsts(s.t), [[1, ErrorCode.PROTOCOL_ERROR]]);
    s.c.close();
  });
  await t.step("cookies are merged; trailers end the request", async () => {
    const s = server();
    const h: [string, string][] = [[":method", "POST"], [":scheme", "http"], [":path", "/"], [
      "cookie",
      "a=1",
    ], [
      "cookie",
      "b=2",
    ]];
    s.t.push(
      s.hello().headers(1, h, false).data(1, new Uint8Array(10)).headers(1, [["grpc-status", "0"]]).take(),
    );
    await settle();
    assert.equal(s.seen.heads[0].headers.get("cookie"), "a=1; b=2");
    assert.equal(s.seen.trailers, 1);
    assert.equal(s.stats.trailers.value, 1);
    s.c.close();
  });
  await t.step("connection errors: bad preface, stream 0 DATA, even stream, oversized frame", async () => {
    const cases: [Uint8Array, number][] = [
      [new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"), ErrorCode.PROTOCOL_ERROR],
      [new FrameBuilder().preface().settings().data(0, new Uint8Array(1)).take(), ErrorCode.PROTOCOL_ERROR],
      [new FrameBuilder().preface().settings().get(2).take(), ErrorCode.PROTOCOL_ERROR],
      [
        new FrameBuilder().preface().settings().raw(FrameType.DATA, 0, 1, new Uint8Array(20000)).take(),
        ErrorCode.FRAME_SIZE_ERROR,
      ],
      [new FrameBuilder().preface().ping().take(), ErrorCode.PROTOCOL_ERROR],
      [
        new FrameBuilder().preface().settings().raw(
          FrameType.HEADERS,
          Flag.END_HEADERS,
          1,
          new Uint8Array([0xff, 0xff, 0xff]),
        ).take(),
        ErrorCode.COMPRESSION_ERROR,
      ],
    ];
    for (const [bytes, code] of cases) {
      const s = server();
      s.t.push(bytes);
      await settle();
      assert.equal(goawayCode(s.t.frames()), code);
      assert.ok(s.t.closed);
      assert.equal(s.stats.goaway_sent.value, 1);
    }
  });
  await t.step("max_concurrent_streams refuses the excess stream", async () => {
    const s = server({ max_concurrent_streams: 2 }, { onHeaders: () => {} });
    s.t.push(s.hello().get(1).get(3).get(5).take());
    await settle();
    assert.deepEqual(rsts(s.t), [[5, ErrorCode.REFUSED_STREAM]]);
    assert.equal(s.stats.stream_refused_errors.value, 1);
    assert.equal(s.stats.streams_active.value, 2);
    const settings = s.t.frames()[0];
    assert.equal(settings.payload[1], SettingId.MAX_CONCURRENT_STREAMS);
    assert.equal(readU32(settings.payload, 2), 2);
    s.c.close();
    assert.equal(s.stats.streams_active.value, 0);
  });
});

Deno.test("h2 server: abuse limits", async (t) => {
  await t.step("rapid reset ends with GOAWAY ENHANCE_YOUR_CALM", async () => {
    const s = server({}, { onHeaders: () => {} });
    s.hello();
    for (let id = 1; id < 2000; id += 2) s.b.get(id).rst(id, ErrorCode.CANCEL);
    s.t.push(s.b.take());
    await settle();
    assert.equal(goawayCode(s.t.frames()), ErrorCode.ENHANCE_YOUR_CALM);
    assert.equal(s.stats.too_many_premature_resets.value, 1);
    assert.equal(s.stats.rx_reset.value, 500);
    assert.ok(s.t.closed);
  });
  await t.step("resets after a long-lived stream are not premature", async () => {
    const s = server({ premature_reset_total_stream_count: 4, premature_reset_min_stream_lifetime_ms: 0 }, {
      onHeaders: () => {},
    });
    s.hello();
    for (let id = 1; id < 40; id += 2) s.b.get(id).rst(id, ErrorCode.CANCEL);
    s.t.push(s.b.take());
    await settle();
    assert.equal(goawayCode(s.t.frames()), -1);
    s.c.close();
  });
  await t.step("CONTINUATION flood: bounded buffering, then GOAWAY", async () => {
    const s = server();
    s.t.push(s.hello().raw(FrameType.HEADERS, 0, 1, s.b.block([[":method", "GET"]])).take());
    const junk = new Uint8Array(16384).fill(0x41);
    let pushed = 0;
    for (let i = 0; i < 100 && !s.t.closed; i++) {
      s.t.push(new FrameBuilder().raw(FrameType.CONTINUATION, 0, 1, junk).take());
      pushed++;
      await settle(1);
    }
    assert.ok(s.t.closed);
    assert.ok(pushed <= 10, `accepted ${pushed} frames`);
    assert.equal(goawayCode(s.t.frames()), ErrorCode.ENHANCE_YOUR_CALM);
    assert.equal(s.stats.header_overflow.value, 1);
  });
  await t.step("empty CONTINUATION / DATA frames flood", async () => {
    const s = server();
    s.t.push(s.hello().raw(FrameType.HEADERS, 0, 1, s.b.block([[":method", "GET"]])).take());
    for (let i = 0; i < 5; i++) s.t.push(new FrameBuilder().raw(FrameType.CONTINUATION, 0, 1).take());
    await settle();
    assert.equal(goawayCode(s.t.frames()), ErrorCode.ENHANCE_YOUR_CALM);
    assert.equal(s.stats.inbound_empty_frames_flood.value, 1);
    const d = server({}, { onHeaders: () => {} });
    d.hello().headers(1, [[":method", "POST"], [":scheme", "http"], [":path", "/"]], false);
    for (let i = 0; i < 3; i++) d.b.data(1, new Uint8Array(0));
    d.t.push(d.b.take());
    await settle();
    assert.equal(d.stats.inbound_empty_frames_flood.value, 1);
    assert.ok(d.t.closed);
  });
  await t.step("HPACK bomb and oversized header lists reset the stream only", async () => {
    const s = server({ max_header_list_size: 8192 });
    const big = "v".repeat(4000);
    s.hello().headers(1, [[":method", "GET"], [":scheme", "http"], [":path", "/"], ["x-big", big], [
      "x-big2",
      big,
    ], [
      "x-big3",
      big,
    ]]).get(3);
    s.t.push(s.b.take());
    await settle();
    assert.deepEqual(rsts(s.t), [[1, ErrorCode.INTERNAL_ERROR]]);
    assert.equal(s.stats.header_overflow.value, 1);
    assert.deepEqual(s.t.frames().filter((f) => f.type === FrameType.HEADERS).map((f) => f.id), [3]);
    assert.equal(goawayCode(s.t.frames()), -1);
    s.c.close();
  });
  await t.step("PING and SETTINGS floods overflow the control queue", async () => {
    for (const kind of ["ping", "settings"]) {
      const s = server();
      s.hello();
      for (let i = 0; i < 3000; i++) kind === "ping" ? s.b.ping() : s.b.settings();
      s.t.push(s.b.take());
      await settle();
      assert.equal(s.stats.outbound_control_flood.value, 1, kind);
      assert.ok(s.t.closed);
    }
  });
  await t.step("a peer that stops reading hits the outbound frame limit", async () => {
    const s = server({ max_outbound_frames: 50 });
    s.t.stalled = true;
    s.hello();
    for (let id = 1; id < 200; id += 2) s.b.get(id);
    s.t.push(s.b.take());
    await settle();
    assert.equal(s.stats.outbound_flood.value, 1);
    assert.ok(s.t.closed);
  });
  await t.step("PRIORITY and WINDOW_UPDATE floods", async () => {
    const p = server();
    p.hello();
    for (let i = 0; i < 300; i++) p.b.priority(1);
    p.t.push(p.b.take());
    await settle();
    assert.equal(p.stats.inbound_priority_frames_flood.value, 1);
    assert.equal(goawayCode(p.t.frames()), ErrorCode.ENHANCE_YOUR_CALM);
    const w = server();
    w.hello();
    for (let i = 0; i < 50; i++) w.b.windowUpdate(0, 1);
    w.t.push(w.b.take());
    await settle();
    assert.equal(w.stats.inbound_window_update_frames_flood.value, 1);
  });
});

Deno.test("h2 server: flow control", async (t) => {
  await t.step("response data respects the peer's stream window and resumes on WINDOW_UPDATE", async () => {
    let stream: H2Stream | undefined;
    let writable = 0;
    let accepted: boolean | undefined;
    const s = server({}, {
      onHeaders(st) {
        stream = st;
        st.respond(200, new HeaderMap());
        accepted = st.sendData(new Uint8Array(100000), true);
      },
      onWritable() {
        writable++;
      },
    });
    s.t.push(s.hello().get(1).take());
    await settle();
    const sent = () =>
      s.t.frames().filter((f) => f.type === FrameType.DATA).reduce((n, f) => n + f.payload.length, 0);
    assert.equal(accepted, false);
    assert.equal(sent(), 65535);
    assert.equal(stream!.pendingBytes, 100000 - 65535);
    assert.equal(s.stats.pending_send_bytes.value, 100000 - 65535);
    s.t.push(new FrameBuilder().windowUpdate(1, 10000).take());
    await settle();
    assert.equal(sent(), 65535, "connection window still closed");
    s.t.push(new FrameBuilder().windowUpdate(0, 100000).take());
    await settle();
    assert.equal(sent(), 75535);
    s.t.push(new FrameBuilder().windowUpdate(1, 100000).take());
    await settle();
    assert.equal(sent(), 100000);
    const last = s.t.frames().filter((f) => f.type === FrameType.DATA).at(-1)!;
    assert.equal(last.flags & Flag.END_STREAM, Flag.END_STREAM);
    assert.equal(writable, 1);
    assert.equal(s.stats.pending_send_bytes.value, 0);
    s.c.close();
  });
  await t.step("SETTINGS_INITIAL_WINDOW_SIZE changes apply to open streams", async () => {
    const s = server({}, {
      onHeaders(st) {
        st.respond(200, new HeaderMap());
        st.sendData(new Uint8Array(70000), true);
      },
    });
    s.t.push(
      s.hello().settings([[SettingId.INITIAL_WINDOW_SIZE, 1000]]).windowUpdate(0, 1 << 20).get(1).take(),
    );
    await settle();
    const sent = () =>
      s.t.frames().filter((f) => f.type === FrameType.DATA).reduce((n, f) => n + f.payload.length, 0);
    assert.equal(sent(), 1000);
    s.t.push(new FrameBuilder().settings([[SettingId.INITIAL_WINDOW_SIZE, 80000]]).take());
    await settle();
    assert.equal(sent(), 70000);
    s.c.close();
  });
  await t.step("inbound: no WINDOW_UPDATE until the consumer takes the bytes", async () => {
    let stream: H2Stream | undefined;
    const s = server({ initial_stream_window_size: 65535 }, {
      onHeaders(st) {
        st.autoConsume = false;
        stream = st;
      },
      onData() {},
    });
    s.t.push(
      s.hello().headers(1, [[":method", "POST"], [":scheme", "http"], [":path", "/"]], false)
        .data(1, new Uint8Array(16000)).data(1, new Uint8Array(16000)).data(1, new Uint8Array(8000)).take(),
    );
    await settle();
    const streamUpdates = () => s.t.frames().filter((f) => f.type === FrameType.WINDOW_UPDATE && f.id === 1);
    assert.equal(streamUpdates().length, 0);
    stream!.consume(40000);
    await settle();
    assert.deepEqual(streamUpdates().map((f) => readU32(f.payload, 0)), [40000]);
    s.t.push(new FrameBuilder().data(1, new Uint8Array(60000).subarray(0, 16384)).take());
    await settle();
    s.c.close();
  });
  await t.step("DATA beyond the stream window is a stream FLOW_CONTROL_ERROR", async () => {
    const s = server({ initial_stream_window_size: 65535 }, {
      onHeaders: (st) => void (st.autoConsume = false),
    });
    s.hello().headers(1, [[":method", "POST"], [":scheme", "http"], [":path", "/"]], false);
    for (let i = 0; i < 5; i++) s.b.data(1, new Uint8Array(16000));
    s.t.push(s.b.take());
    await settle();
    assert.deepEqual(rsts(s.t), [[1, ErrorCode.FLOW_CONTROL_ERROR]]);
    s.c.close();
  });
  await t.step(
    "graceful shutdown: GOAWAY max id, PING, final GOAWAY, close when streams finish",
    async () => {
      const open: H2Stream[] = [];
      const s = server({}, { onHeaders: (st) => void open.push(st) });
      s.t.push(s.hello().get(1).take());
      await settle();
      const done = s.c.shutdown();
      await settle();
      let f = s.t.frames();
      const goaways = () =>
        s.t.frames().filter((x) => x.type === FrameType.GOAWAY).map((x) => readU32(x.payload, 0));
      assert.deepEqual(goaways(), [0x7fffffff]);
      const ping = f.find((x) => x.type === FrameType.PING)!;
      s.t.push(new FrameBuilder().raw(FrameType.PING, Flag.ACK, 0, ping.payload).get(3).take());
      await settle();
      f = s.t.frames();
      assert.deepEqual(goaways(), [0x7fffffff, 3]);
      assert.ok(!s.t.closed);
      open[0].respond(200, new HeaderMap(), true);
      await settle();
      assert.ok(!s.t.closed);
      open[1].respond(200, new HeaderMap(), true);
      await done;
      assert.ok(s.t.closed);
    },
  );
});
