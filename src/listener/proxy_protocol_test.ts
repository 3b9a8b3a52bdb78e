import assert from "node:assert/strict";
import { formatIPv6, type ParseOptions, parseProxyHeader, proxyProtocolSchema } from "./proxy_protocol.ts";

const ALL: ParseOptions = { allowWithout: false, allowV1: true, allowV2: true };
const enc = (s: string) => new TextEncoder().encode(s);
const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

/** A v2 header: ver/cmd, family/transport, address block, TLVs. */
function v2(verCmd: number, famProto: number, addr: number[], tlvs: number[] = []): Uint8Array {
  const len = addr.length + tlvs.length;
  return new Uint8Array([...SIG, verCmd, famProto, len >> 8, len & 255, ...addr, ...tlvs]);
}

const V4_ADDR = [192, 0, 2, 1, 198, 51, 100, 7, 0x30, 0x39, 0x01, 0xbb]; // 192.0.2.1:12345 -> 198.51.100.7:443

Deno.test("PROXY v1 lines", () => {
  assert.deepEqual(parseProxyHeader(enc("PROXY TCP4 192.0.2.1 198.51.100.7 12345 443\r\nGET"), ALL), {
    kind: "done",
    version: 1,
    length: 45,
    remote: { transport: "tcp", hostname: "192.0.2.1", port: 12345 },
    local: { transport: "tcp", hostname: "198.51.100.7", port: 443 },
  });
  const six = parseProxyHeader(enc("PROXY TCP6 2001:DB8:0:0::1 ::ffff:10.0.0.1 1 2\r\n"), ALL);
  assert.equal(six.kind === "done" && six.remote?.hostname, "2001:db8::1");
  assert.equal(six.kind === "done" && six.local?.hostname, "::ffff:10.0.0.1");
  assert.deepEqual(parseProxyHeader(enc("PROXY UNKNOWN whatever\r\n"), ALL), {
    kind: "done",
    version: 1,
    length: 24,
  });
  for (
    const bad of [
      "PROXY TCP4 192.0.2.1 198.51.100.7 12345\r\n", // missing field
      "PROXY TCP4 192.0.2.1  198.51.100.7 1 2\r\n", // double space
      "PROXY TCP4 ::1 ::1 1 2\r\n", // v6 address in TCP4
      "PROXY TCP4 192.0.2.1 198.51.100.7 1 65536\r\n", // port
      "PROXY TCP4 0.0.0.0 198.51.100.7 1 2\r\n", // not unicast
      "PROXY TCP4 224.0.0.1 198.51.100.7 1 2\r\n",
      "PROXY UDP4 192.0.2.1 198.51.100.7 1 2\r\n",
      "PROXX TCP4 192.0.2.1 198.51.100.7 1 2\r\n",
    ]
  ) {
    assert.equal(parseProxyHeader(enc(bad), ALL).kind, "error", bad);
  }
  // no CRLF within 107 bytes; not PROXY at all
  assert.deepEqual(parseProxyHeader(enc("PROXY " + "x".repeat(110)), ALL), { kind: "error", version: 0 });
  assert.deepEqual(parseProxyHeader(enc("GET / HTTP/1.1\r\nHost: a\r\n"), ALL), {
    kind: "error",
    version: 0,
  });
  // partial: wait
  assert.equal(parseProxyHeader(enc("PROXY TCP4 192.0"), ALL).kind, "more");
  assert.equal(parseProxyHeader(enc("\r\n"), ALL).kind, "more");
});

Deno.test("PROXY v2 headers", () => {
  const h = v2(0x21, 0x11, V4_ADDR);
  assert.deepEqual(parseProxyHeader(new Uint8Array([...h, 1, 2, 3]), ALL), {
    kind: "done",
    version: 2,
    length: 28,
    remote: { transport: "tcp", hostname: "192.0.2.1", port: 12345 },
    local: { transport: "tcp", hostname: "198.51.100.7", port: 443 },
  });
  const a6 = [...new Array(15).fill(0), 1, 0x20, 1, 0x0d, 0xb8, ...new Array(11).fill(0), 9, 0, 80, 1, 0xbb];
  const r6 = parseProxyHeader(v2(0x21, 0x21, a6), ALL);
  assert.equal(r6.kind === "done" && r6.remote?.hostname, "::1");
  assert.equal(r6.kind === "done" && r6.local?.hostname, "2001:db8::9");
  // LOCAL keeps the socket's addresses, whatever follows
  assert.deepEqual(parseProxyHeader(v2(0x20, 0x00, [7, 7]), ALL), { kind: "done", version: 2, length: 18 });
  // TLVs are framed exactly; a TLV running past the header is an error
  assert.equal(parseProxyHeader(v2(0x21, 0x11, V4_ADDR, [0x01, 0, 2, 104, 50]), ALL).kind, "done");
  assert.equal(parseProxyHeader(v2(0x21, 0x11, V4_ADDR, [0x01, 0, 5, 104]), ALL).kind, "error");
  // unsupported: version 1 nibble, UNIX family, UNSPEC with PROXY, short address block
  assert.equal(parseProxyHeader(v2(0x11, 0x11, V4_ADDR), ALL).kind, "error");
  assert.equal(parseProxyHeader(v2(0x21, 0x31, new Array(216).fill(0)), ALL).kind, "error");
  assert.equal(parseProxyHeader(v2(0x21, 0x00, []), ALL).kind, "error");
  assert.equal(parseProxyHeader(v2(0x21, 0x11, [1, 2, 3]), ALL).kind, "error");
  // the whole header must arrive
  assert.deepEqual(parseProxyHeader(h.subarray(0, 20), ALL), { kind: "more", need: 28 });
});

Deno.test("allow_requests_without_proxy_protocol and disallowed_versions", () => {
  const allow = { ...ALL, allowWithout: true };
  assert.deepEqual(parseProxyHeader(enc("GET / HTTP/1.1\r\n"), allow), {
    kind: "done",
    version: 0,
    length: 0,
  });
  assert.deepEqual(parseProxyHeader(enc("G"), allow), { kind: "done", version: 0, length: 0 });
  assert.equal(parseProxyHeader(enc("PRO"), allow).kind, "more");
  assert.equal(parseProxyHeader(enc("PROXY TCP4 192.0.2.1 198.51.100.7 1 2\r\n"), allow).kind, "done");
  const noV2 = { ...ALL, allowV2: false };
  assert.deepEqual(parseProxyHeader(v2(0x21, 0x11, V4_ADDR), noV2), { kind: "denied", version: 2 });
  assert.deepEqual(parseProxyHeader(enc("PROXY UNKNOWN\r\n"), { ...ALL, allowV1: false }), {
    kind: "denied",
    version: 1,
  });
  // a disallowed version with allow_requests_without_proxy_protocol passes as if it had no header
  assert.deepEqual(parseProxyHeader(v2(0x21, 0x11, V4_ADDR), { ...noV2, allowWithout: true }), {
    kind: "done",
    version: 0,
    length: 0,
  });
});

Deno.test("IPv6 text as inet_ntop writes it", () => {
  const b = (groups: number[]) => new Uint8Array(groups.flatMap((g) => [g >> 8, g & 255]));
  assert.equal(formatIPv6(b([0, 0, 0, 0, 0, 0, 0, 0])), "::");
  assert.equal(formatIPv6(b([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1])), "2001:db8::1:0:0:1");
  assert.equal(formatIPv6(b([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1])), "2001:db8:0:1:1:1:1:1");
  assert.equal(formatIPv6(b([1, 0, 0, 0, 0, 0, 0, 0])), "1::");
});

Deno.test("ProxyProtocol config", () => {
  assert.deepEqual(proxyProtocolSchema.parse({}), {
    rules: [],
    allow_requests_without_proxy_protocol: false,
    disallowed_versions: [],
    stat_prefix: "",
    tlv_location: "DYNAMIC_METADATA",
  });
  assert.ok(!proxyProtocolSchema.safeParse({ disallowed_versions: ["V1", "V2"] }).success);
  assert.match(
    proxyProtocolSchema.safeParse({ rules: [{ tlv_type: 1 }] }).error?.issues[0].message ?? "",
    /not supported by nuncio/,
  );
  assert.ok(!proxyProtocolSchema.safeParse({ pass_through_tlvs: { match_type: "INCLUDE_ALL" } }).success);
});

Deno.test("a listener takes one proxy_protocol filter, and may have only a default_filter_chain", async () => {
  await import("../registry/builtin.ts");
  const { listenerSchema } = await import("../config/listener.ts");
  const chain = {
    filters: [{
      name: "envoy.filters.network.tcp_proxy",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
        stat_prefix: "t",
        cluster: "c",
      },
    }],
  };
  const listener = (extra: Record<string, unknown>) => ({
    address: { socket_address: { address: "127.0.0.1", port_value: 1 } },
    ...extra,
  });
  const ok = listenerSchema.safeParse(listener({
    listener_filters: [{ name: "envoy.filters.listener.proxy_protocol" }, {
      name: "x",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
      },
    }],
    default_filter_chain: chain,
  }));
  assert.ok(ok.success, JSON.stringify(ok.error?.issues));
  assert.deepEqual(ok.data.listener_filters.map((f) => f.kind), ["proxy_protocol", "tls_inspector"]);
  assert.deepEqual(ok.data.filter_chains, []);
  const two = listenerSchema.safeParse(listener({
    listener_filters: [{ name: "envoy.filters.listener.proxy_protocol" }, {
      name: "envoy.filters.listener.proxy_protocol",
    }],
    filter_chains: [chain],
  }));
  assert.deepEqual(two.error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`), [
    "listener_filters.1: Field not supported by nuncio: one proxy_protocol listener filter per listener",
  ]);
  const none = listenerSchema.safeParse(listener({}));
  assert.deepEqual(none.error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`), [
    "filter_chains: A listener needs at least one filter chain",
  ]);
});
