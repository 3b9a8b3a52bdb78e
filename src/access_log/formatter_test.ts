import assert from "node:assert/strict";
import { ManualClock } from "../common/clock.ts";
import { ResponseFlag } from "../common/response_flags.ts";
import { StreamInfo } from "../common/stream_info.ts";
import { HeaderMap } from "../http/headers.ts";
import { compileFormatter, DEFAULT_FORMAT } from "./formatter.ts";
import { parseFormat } from "./format_parser.ts";
import { stripPort } from "./operators.ts";
import { TimeFormat } from "./strftime.ts";

const START = Date.UTC(2024, 0, 2, 3, 4, 5, 678);

function fullInfo(clock: ManualClock): StreamInfo {
  const i = new StreamInfo();
  i.startTime = START;
  i.startMono = clock.monotonic();
  i.endMono = i.startMono + 42.9;
  i.firstUpstreamRxMono = i.startMono + 17.2;
  i.responseFlags = ResponseFlag.UpstreamRetryLimitExceeded | ResponseFlag.NoHealthyUpstream;
  i.responseCode = 503;
  i.responseCodeDetails = "upstream_reset_before_response_started";
  i.connectionTerminationDetails = "rbac_denied";
  i.bytesReceived = 12;
  i.bytesSent = 345;
  i.protocol = "HTTP/1.1";
  i.downstreamRemoteAddress = "10.0.0.1:5555";
  i.downstreamLocalAddress = "[::1]:8080";
  i.downstreamDirectRemoteAddress = "10.0.0.2:6666";
  i.upstreamHost = "127.0.0.1:9000";
  i.upstreamCluster = "backend";
  i.upstreamLocalAddress = "127.0.0.1:40000";
  i.upstreamTransportFailureReason = "connection refused";
  i.routeName = "r1";
  i.requestedServerName = "example.com";
  i.connectionId = 7;
  i.method = "GET";
  i.path = "/a/b?c=d";
  i.authority = "example.com:8080";
  i.scheme = "https";
  i.attemptCount = 2;
  i.requestHeaders = HeaderMap.from([
    ["user-agent", "curl/8.0"],
    ["x-forwarded-for", "1.2.3.4"],
    ["x-request-id", "abc-123"],
    ["x-long", "0123456789"],
  ]);
  i.responseHeaders = HeaderMap.from([["x-envoy-upstream-service-time", "11"], [
    "content-type",
    "text/plain",
  ]]);
  i.responseTrailers = HeaderMap.from([["grpc-status", "0"]]);
  return i;
}

function fmt(format: string, info: StreamInfo, clock = new ManualClock()): string {
  return compileFormatter({ text: format }, { clock }).format(info);
}

Deno.test("text formatter operators", async (t) => {
  const clock = new ManualClock();
  const info = fullInfo(clock);
  const cases: [string, string][] = [
    ["%START_TIME%", "2024-01-02T03:04:05.678Z"],
    ["%START_TIME(%Y/%m/%d %H:%M:%S.%3f %z)%", "2024/01/02 03:04:05.678 +0000"],
    ["%START_TIME(%s|%6f|%9f)%", `${Math.floor(START / 1000)}|678000|678000000`],
    ["%REQ(:METHOD)% %REQ(:PATH)% %REQ(:AUTHORITY)% %REQ(:SCHEME)%", "GET /a/b?c=d example.com:8080 https"],
    ["%REQ(USER-AGENT)%", "curl/8.0"],
    ["%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "/a/b?c=d"],
    ["%REQ(X-MISSING?X-REQUEST-ID)%", "abc-123"],
    ["%REQ(X-LONG):4%", "0123"],
    ["%REQ(X-MISSING)%", "-"],
    ["%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% %RESP(:STATUS)%", "11 503"],
    ["%RESP(CONTENT-TYPE):4%", "text"],
    ["%TRAILER(GRPC-STATUS)% %TRAILER(X)%", "0 -"],
    ["%PROTOCOL%", "HTTP/1.1"],
    ["%RESPONSE_CODE% %RESPONSE_CODE_DETAILS%", "503 upstream_reset_before_response_started"],
    ["%RESPONSE_FLAGS%", "UH,URX"],
    ["%RESPONSE_FLAGS_LONG%", "NoHealthyUpstream,UpstreamRetryLimitExceeded"],
    ["%BYTES_RECEIVED% %BYTES_SENT%", "12 345"],
    ["%DURATION% %RESPONSE_DURATION%", "42 17"],
    ["%UPSTREAM_HOST% %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS%", "127.0.0.1:9000 backend 127.0.0.1:40000"],
    ["%UPSTREAM_TRANSPORT_FAILURE_REASON%", "connection refused"],
    ["%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", "10.0.0.1:5555 10.0.0.1"],
    ["%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%", "[::1]:8080 ::1"],
    ["%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%", "10.0.0.2:6666"],
    ["%REQUESTED_SERVER_NAME% %ROUTE_NAME% %CONNECTION_ID%", "example.com r1 7"],
    ["%UPSTREAM_REQUEST_ATTEMPT_COUNT% %CONNECTION_TERMINATION_DETAILS%", "2 rbac_denied"],
    ["100%% done", "100% done"],
    ["%HOSTNAME%", Deno.hostname()],
  ];
  for (const [format, want] of cases) {
    await t.step(format, () => assert.equal(fmt(format, info, clock), want));
  }
  await t.step("empty values print -", () => {
    const empty = new StreamInfo();
    assert.equal(
      fmt("%PROTOCOL% %RESPONSE_FLAGS% %UPSTREAM_HOST% %REQ(:PATH)% %RESPONSE_DURATION% %ROUTE_NAME%", empty),
      "- - - - - -",
    );
    assert.equal(fmt("%RESPONSE_CODE% %BYTES_SENT%", empty), "0 0");
  });
  await t.step("omit_empty_values prints nothing", () => {
    const f = compileFormatter({ text: "[%PROTOCOL%][%UPSTREAM_HOST%]", omitEmptyValues: true });
    assert.equal(f.format(new StreamInfo()), "[][]");
  });
  await t.step("duration of an unfinished stream uses the clock", () => {
    const c = new ManualClock();
    const i = new StreamInfo();
    i.startMono = c.monotonic();
    c.advance(250);
    assert.equal(fmt("%DURATION%", i, c), "250");
  });
});

Deno.test("default format is Envoy's", () => {
  assert.equal(
    DEFAULT_FORMAT,
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% ' +
      "%RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% " +
      '"%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n',
  );
  const clock = new ManualClock();
  assert.equal(
    compileFormatter(undefined, { clock }).format(fullInfo(clock)),
    '[2024-01-02T03:04:05.678Z] "GET /a/b?c=d HTTP/1.1" 503 UH,URX 12 345 42 11 "1.2.3.4" "curl/8.0" ' +
      '"abc-123" "example.com:8080" "127.0.0.1:9000"\n',
  );
  const i = new StreamInfo();
  i.startTime = START;
  i.protocol = "HTTP/1.1";
  i.method = "GET";
  i.path = "/";
  i.originalPath = "/orig";
  i.responseCode = 200;
  assert.equal(
    compileFormatter(undefined, { clock }).format(i),
    '[2024-01-02T03:04:05.678Z] "GET /orig HTTP/1.1" 200 - 0 0 0 - "-" "-" "-" "-" "-"\n',
  );
});

Deno.test("json formatter", async (t) => {
  const clock = new ManualClock();
  const json = {
    start: "%START_TIME%",
    code: "%RESPONSE_CODE%",
    bytes: "%BYTES_SENT%",
    duration: "%DURATION%",
    attempts: "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
    method: "%REQ(:METHOD)%",
    missing: "%REQ(X-NOPE)%",
    mixed: "%REQ(:METHOD)% %REQ(X-NOPE)%",
    constant: "text",
    number: 5,
    flag: true,
    nested: { host: "%UPSTREAM_HOST%", deeper: { flags: "%RESPONSE_FLAGS%" } },
  };
  await t.step("typed values, null for empty", () => {
    const line = compileFormatter({ json }, { clock }).format(fullInfo(clock));
    assert.ok(line.endsWith("}\n"));
    assert.deepEqual(JSON.parse(line), {
      start: "2024-01-02T03:04:05.678Z",
      code: 503,
      bytes: 345,
      duration: 42,
      attempts: 2,
      method: "GET",
      missing: null,
      mixed: "GET -",
      constant: "text",
      number: 5,
      flag: true,
      nested: { host: "127.0.0.1:9000", deeper: { flags: "UH,URX" } },
    });
    assert.ok(line.startsWith('{"start":'), "keys keep config order");
  });
  await t.step("omit_empty_values and sort_properties", () => {
    const f = compileFormatter({
      json: { b: "%UPSTREAM_HOST%", a: "%PROTOCOL%", c: "x" },
      omitEmptyValues: true,
      sortProperties: true,
    });
    const i = new StreamInfo();
    i.protocol = "HTTP/2";
    assert.equal(f.format(i), '{"a":"HTTP/2","c":"x"}\n');
  });
  await t.step("strings are escaped", () => {
    const i = new StreamInfo();
    i.requestHeaders = HeaderMap.from([["user-agent", 'a"b\\c']]);
    assert.equal(compileFormatter({ json: { ua: "%REQ(USER-AGENT)%" } }).format(i), '{"ua":"a\\"b\\\\c"}\n');
  });
  await t.step("lists are rejected", () => {
    assert.throws(() => compileFormatter({ json: { a: ["%PROTOCOL%"] } }), /List values are not supported/);
  });
});

Deno.test("format parsing errors", () => {
  assert.throws(() => parseFormat("%NOPE%"), /unknown command operator %NOPE%/);
  assert.throws(() => parseFormat("50% off"), /no valid command operator at position 2/);
  assert.throws(() => parseFormat("%REQ()%"), /needs a header name/);
  assert.throws(() => parseFormat("%REQ(A?B?C)%"), /bad header alternative/);
  assert.throws(() => parseFormat("%PROTOCOL(x)%"), /does not take arguments/);
  assert.throws(() => parseFormat("%REQUEST_DURATION%"), /not supported/);
  assert.deepEqual(parseFormat("plain"), ["plain"]);
});

Deno.test("strftime and helpers", () => {
  const t = new TimeFormat("%a %b %e %T %y %j %I%p %F %E3S %E*S %%");
  assert.equal(t.format(START), "Tue Jan  2 03:04:05 24 002 03AM 2024-01-02 05.678 05.678 %");
  assert.equal(new TimeFormat("%Q").format(START), "%Q");
  assert.equal(stripPort("1.2.3.4:80"), "1.2.3.4");
  assert.equal(stripPort("[fe80::1]:443"), "fe80::1");
  assert.equal(stripPort("::1"), "::1");
  assert.equal(stripPort(""), null);
});

Deno.test("TLS and port operators", async (t) => {
  const clock = new ManualClock();
  const local = {
    uriSans: "spiffe://acme/web",
    dnsSans: "a.example.com,b.example.com",
    ipSans: "",
    subject: "CN=a.example.com,O=Acme",
    issuer: "CN=Acme CA",
    serial: "0a1b",
    fingerprint256: "ab".repeat(32),
    fingerprint1: "cd".repeat(20),
    urlEncodedPem: "-----BEGIN%20CERTIFICATE-----",
    validFrom: START,
    validTo: START + 86_400_000,
  };
  const tlsOps = "%DOWNSTREAM_TLS_VERSION% %DOWNSTREAM_TLS_CIPHER% %DOWNSTREAM_TLS_SESSION_ID% " +
    "%DOWNSTREAM_LOCAL_URI_SAN% %DOWNSTREAM_LOCAL_DNS_SAN% %DOWNSTREAM_LOCAL_IP_SAN% %DOWNSTREAM_LOCAL_SUBJECT%";
  const peerOps = "%DOWNSTREAM_PEER_URI_SAN% %DOWNSTREAM_PEER_DNS_SAN% %DOWNSTREAM_PEER_IP_SAN% " +
    "%DOWNSTREAM_PEER_SUBJECT% %DOWNSTREAM_PEER_ISSUER% %DOWNSTREAM_PEER_FINGERPRINT_256% " +
    "%DOWNSTREAM_PEER_FINGERPRINT_1% %DOWNSTREAM_PEER_SERIAL% %DOWNSTREAM_PEER_CERT% " +
    "%DOWNSTREAM_PEER_CERT_V_START% %DOWNSTREAM_PEER_CERT_V_END(%Y-%m-%d)%";

  await t.step("plain text: every TLS operator prints -", () => {
    const i = fullInfo(clock);
    assert.equal(fmt(`${tlsOps} ${peerOps}`, i, clock), Array(18).fill("-").join(" "));
  });

  await t.step("a TLS session without a client certificate", () => {
    const i = fullInfo(clock);
    i.downstreamTls = {
      sni: "a.example.com",
      alpn: "h2",
      version: "TLSv1.3",
      cipher: "TLS_AES_128_GCM_SHA256",
      sessionId: "",
      local,
      peer: null,
    };
    assert.equal(
      fmt(tlsOps, i, clock),
      "TLSv1.3 TLS_AES_128_GCM_SHA256 - spiffe://acme/web a.example.com,b.example.com - CN=a.example.com,O=Acme",
    );
    assert.equal(fmt(peerOps, i, clock), Array(11).fill("-").join(" "));
  });

  await t.step("peer certificate operators read the peer facts (filled by downstream mTLS)", () => {
    const i = fullInfo(clock);
    i.downstreamTls = {
      sni: "",
      alpn: "",
      version: "TLSv1.2",
      cipher: "ECDHE-RSA-AES128-GCM-SHA256",
      sessionId: "beef",
      local: null,
      peer: local,
    };
    assert.equal(
      fmt(peerOps, i, clock),
      `spiffe://acme/web a.example.com,b.example.com - CN=a.example.com,O=Acme CN=Acme CA ${
        "ab".repeat(32)
      } ` +
        `${"cd".repeat(20)} 0a1b -----BEGIN%20CERTIFICATE----- 2024-01-02T03:04:05.678Z 2024-01-03`,
    );
    assert.equal(fmt("%DOWNSTREAM_TLS_SESSION_ID% %DOWNSTREAM_LOCAL_SUBJECT%", i, clock), "beef -");
  });

  await t.step("ports", () => {
    const i = fullInfo(clock);
    assert.equal(fmt("%DOWNSTREAM_LOCAL_PORT% %DOWNSTREAM_REMOTE_PORT%", i, clock), "8080 5555");
  });

  await t.step("operators Envoy has and nuncio does not are named in the error", () => {
    assert.throws(() => parseFormat("%UPSTREAM_TLS_VERSION%"), /%UPSTREAM_TLS_VERSION% is not supported/);
    assert.throws(() => parseFormat("%VIRTUAL_CLUSTER_NAME%"), /%VIRTUAL_CLUSTER_NAME% is not supported/);
    assert.throws(() => parseFormat("%DOWNSTREAM_LOCAL_SUBJECT(x)%"), /does not take arguments/);
  });
});

Deno.test("usesTlsFacts: known at compile time from the operators, JSON nesting included", () => {
  const text = (f: string) => compileFormatter({ text: f }).usesTlsFacts;
  assert.equal(compileFormatter(undefined).usesTlsFacts, false, "Envoy's default format");
  for (const op of ["REQUESTED_SERVER_NAME", "DOWNSTREAM_TLS_VERSION", "DOWNSTREAM_TLS_CIPHER"]) {
    assert.equal(text(`a %${op}% b`), true, op);
  }
  assert.equal(text("%DOWNSTREAM_TLS_SESSION_ID%"), true);
  // the served certificate and ALPN-free facts do not need the ClientHello; a literal is not an operator
  assert.equal(text("%DOWNSTREAM_LOCAL_DNS_SAN% %DOWNSTREAM_PEER_SUBJECT% %PROTOCOL% 100%%"), false);
  assert.equal(text("REQUESTED_SERVER_NAME"), false);
  assert.equal(compileFormatter({ json: { a: "%PROTOCOL%", b: { c: 1 } } }).usesTlsFacts, false);
  assert.equal(
    compileFormatter({ json: { a: "x", b: { c: "sni=%REQUESTED_SERVER_NAME%" } } }).usesTlsFacts,
    true,
  );
  assert.equal(compileFormatter({ json: { v: "%DOWNSTREAM_TLS_VERSION%" } }).usesTlsFacts, true);
});
