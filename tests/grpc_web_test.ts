/**
 * gRPC-Web through nuncio (envoy.filters.http.grpc_web) to a python3-grpcio server over HTTP/2: the real
 * gRPC-Web client of @connectrpc/connect-web (fetch, HTTP/1.1, binary mode) for unary, server-streaming and an
 * error status; application/grpc-web-text requests (base64 sent in odd-sized pieces) and responses through
 * Deno's fetch; bad base64; a non-gRPC upstream error and a local reply as gRPC-Web statuses; the
 * `cluster.<name>.grpc-web.*` stats; and `match.grpc` with a python grpcio client next to gRPC-Web.
 */
import assert from "node:assert/strict";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import {
  create,
  createFileRegistry,
  type DescMessage,
  type DescService,
  fromBinary,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import {
  anyHost,
  bootstrapYaml,
  httpListener,
  run,
  startOrigin,
  startProxy,
  staticCluster,
} from "./helpers.ts";
import { PY } from "./python_grpc.ts";

const GRPC_FIXTURES = new URL("./fixtures/grpc/", import.meta.url).pathname;
const FIXTURES = new URL("./fixtures/grpc_web/", import.meta.url).pathname;

/** Compiles echo.proto (python modules and a descriptor set) and starts server.py; resolves with its port. */
async function startGrpcServer(dir: string) {
  const protoc = await new Deno.Command(PY, {
    args: [
      "-m",
      "grpc_tools.protoc",
      `-I${GRPC_FIXTURES}`,
      `--python_out=${dir}`,
      `--grpc_python_out=${dir}`,
      `--descriptor_set_out=${dir}/echo.pb`,
      `${GRPC_FIXTURES}echo.proto`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!protoc.success) throw new Error(`protoc failed: ${new TextDecoder().decode(protoc.stderr)}`);
  const child = new Deno.Command(PY, {
    args: [`${GRPC_FIXTURES}server.py`, dir],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  await child.stdout.cancel();
  const close = async () => {
    await child.stdin.close();
    await child.status;
  };
  const registry = createFileRegistry(
    fromBinary(FileDescriptorSetSchema, await Deno.readFile(`${dir}/echo.pb`)),
  );
  return { port: Number(text.trim()), registry, close, [Symbol.asyncDispose]: close };
}

const H2 = {
  typed_extension_protocol_options: {
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
      "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
      explicit_http_config: { http2_protocol_options: {} },
    },
  },
};

const GRPC_WEB_FILTER = {
  name: "envoy.filters.http.grpc_web",
  typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb" },
};
const ROUTER = {
  name: "envoy.filters.http.router",
  typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
};

/** gRPC frame of `msg`. */
function frame(msg: Uint8Array, flags = 0): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(5 + msg.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, msg.length);
  out.set(msg, 5);
  return out;
}

/** Splits a gRPC-Web body into its frames. */
function frames(body: Uint8Array): { flags: number; data: Uint8Array }[] {
  const out = [];
  let off = 0;
  while (off + 5 <= body.length) {
    const len = new DataView(body.buffer, body.byteOffset + off + 1, 4).getUint32(0);
    out.push({ flags: body[off], data: body.slice(off + 5, off + 5 + len) });
    off += 5 + len;
  }
  assert.equal(off, body.length, "trailing partial frame");
  return out;
}

/** Decodes concatenated padded base64 segments (how a -text response is written), 4 characters at a time. */
function decodeSegments(text: string): Uint8Array {
  const parts: number[] = [];
  for (let i = 0; i < text.length; i += 4) {
    parts.push(...Uint8Array.from(atob(text.slice(i, i + 4)), (c) => c.charCodeAt(0)));
  }
  return new Uint8Array(parts);
}

function base64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

Deno.test("gRPC-Web to a python3-grpcio server: connect-web client, text mode, errors, stats, match.grpc", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_grpc_web_" });
  const client = Deno.createHttpClient({});
  try {
    await using server = await startGrpcServer(dir);
    await using plain = startOrigin("plain", (req) => {
      if (new URL(req.url).pathname.startsWith("/down/")) {
        return new Response("upstream is down\n", { status: 503 });
      }
      return new Response("not grpc", { status: 200, headers: { "content-type": "text/plain" } });
    });
    await using proxy = await startProxy(bootstrapYaml([
      httpListener({
        virtualHosts: [anyHost([
          {
            name: "native-grpc",
            match: { prefix: "/", grpc: {} },
            route: { cluster: "grpc", timeout: "10s" },
            decorator: { operation: "echo-native" },
            response_headers_to_add: [{ header: { key: "x-route", value: "grpc" } }],
          },
          { match: { prefix: "/down/" }, route: { cluster: "plain" } },
          { match: { prefix: "/nohost/" }, route: { cluster: "empty" } },
          {
            name: "web",
            match: { prefix: "/" },
            route: { cluster: "grpc", timeout: "10s" },
            response_headers_to_add: [{ header: { key: "x-route", value: "web" } }],
          },
        ])],
        hcm: { http_filters: [GRPC_WEB_FILTER, ROUTER] },
      }),
    ], [
      staticCluster("grpc", [server.port], H2),
      staticCluster("plain", [plain.port]),
      staticCluster("empty", []),
    ]));
    const base = `http://127.0.0.1:${proxy.port()}`;
    const fetchWith: typeof fetch = (input, init) => fetch(input, { ...init, client });
    const echo = server.registry.getService("nuncio.test.Echo") as DescService;
    const msg = server.registry.getMessage("nuncio.test.Msg") as DescMessage;
    const transport = createGrpcWebTransport({ baseUrl: base, useBinaryFormat: true, fetch: fetchWith });
    // deno-lint-ignore no-explicit-any -- the service is known at run time only (descriptor set from protoc)
    const echoClient = createClient(echo, transport) as any;

    await t.step("unary with metadata both ways (connect-web, binary)", async () => {
      let headers: Headers | undefined;
      let trailers: Headers | undefined;
      const res = await echoClient.unary(create(msg, { text: "hi", n: 7 }), {
        headers: { "x-md": "m1" },
        onHeader: (h: Headers) => headers = h,
        onTrailer: (h: Headers) => trailers = h,
      });
      assert.equal(res.text, "echo:hi");
      assert.equal(res.n, 7);
      assert.equal(headers?.get("x-echo-md"), "m1");
      assert.equal(headers?.get("content-type"), "application/grpc-web+proto");
      assert.equal(headers?.get("x-route"), "web", "a gRPC-Web request does not match the grpc: {} route");
      assert.equal(trailers?.get("x-trail"), "t-hi");
    });

    await t.step("server streaming (connect-web, binary)", async () => {
      const got: string[] = [];
      for await (const m of echoClient.serverStream(create(msg, { text: "s", n: 5 }))) got.push(m.text);
      assert.deepEqual(got, ["s-0", "s-1", "s-2", "s-3", "s-4"]);
    });

    await t.step("an error status from the server", async () => {
      const err = await echoClient.unary(create(msg, { text: "fail" }), { headers: { "x-md": "m2" } }).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(err instanceof ConnectError, String(err));
      assert.equal(err.code, Code.PermissionDenied);
      assert.equal(err.rawMessage, "no way: m2");
    });

    await t.step("a non-gRPC error response becomes grpc-status and grpc-message", async () => {
      const down = createClient(echo, createGrpcWebTransport({ baseUrl: `${base}/down`, fetch: fetchWith }));
      // deno-lint-ignore no-explicit-any
      const err = await (down as any).unary(create(msg, { text: "x" })).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof ConnectError, String(err));
      assert.equal(err.code, Code.Unavailable);
      assert.equal(err.rawMessage, "upstream is down\n"); // the client percent-decodes grpc-message
      const r = await fetchWith(`${base}/down/x`, {
        method: "POST",
        headers: { "content-type": "application/grpc-web+proto" },
        body: frame(new Uint8Array(0)),
      });
      assert.equal(r.status, 503);
      assert.equal(r.headers.get("grpc-status"), "14");
      assert.equal(r.headers.get("grpc-message"), "upstream is down%0A");
      assert.equal(r.headers.get("content-type"), "application/grpc-web+proto");
      assert.equal(r.headers.get("content-length"), "0");
      assert.equal((await r.arrayBuffer()).byteLength, 0);
    });

    await t.step("a local reply (no healthy upstream) reaches the client as a gRPC status", async () => {
      const none = createClient(
        echo,
        createGrpcWebTransport({ baseUrl: `${base}/nohost`, fetch: fetchWith }),
      );
      // deno-lint-ignore no-explicit-any
      const err = await (none as any).unary(create(msg, { text: "x" })).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof ConnectError, String(err));
      assert.equal(err.code, Code.Unavailable);
      assert.equal(err.rawMessage, "no healthy upstream");
    });

    await t.step("grpc-web-text: base64 request in odd pieces, base64 response frames", async () => {
      const req = new TextEncoder().encode(base64(frame(toBinary(msg, create(msg, { text: "abc", n: 3 })))));
      // pieces that cut base64 quanta (1, 2, 5 bytes, then the rest) exercise the partial-chunk decoding
      const pieces = [req.subarray(0, 1), req.subarray(1, 3), req.subarray(3, 8), req.subarray(8)];
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          const next = pieces.shift();
          if (next === undefined) return c.close();
          c.enqueue(next);
          await new Promise((r) => setTimeout(r, 5));
        },
      });
      const r = await fetchWith(`${base}/nuncio.test.Echo/ServerStream`, {
        method: "POST",
        headers: { "content-type": "application/grpc-web-text", accept: "application/grpc-web-text" },
        body,
      });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("content-type"), "application/grpc-web-text+proto");
      const fs = frames(decodeSegments(await r.text()));
      assert.equal(fs.length, 4);
      assert.deepEqual(fs.slice(0, 3).map((f) => f.flags), [0, 0, 0]);
      assert.ok(new TextDecoder().decode(fs[2].data).includes("abc-2"));
      assert.equal(fs[3].flags, 0x80);
      assert.match(new TextDecoder().decode(fs[3].data), /^grpc-status:0\r\n/);
    });

    await t.step("grpc-web-text unary with a binary response (accept not text)", async () => {
      const r = await fetchWith(`${base}/nuncio.test.Echo/Unary`, {
        method: "POST",
        headers: { "content-type": "application/grpc-web-text+proto", "x-md": "m3" },
        body: base64(frame(toBinary(msg, create(msg, { text: "t", n: 1 })))),
      });
      assert.equal(r.headers.get("content-type"), "application/grpc-web+proto");
      const fs = frames(new Uint8Array(await r.arrayBuffer()));
      assert.equal(fs.length, 2);
      assert.ok(new TextDecoder().decode(fs[0].data).includes("echo:t"));
      const trailer = new TextDecoder().decode(fs[1].data);
      assert.equal(fs[1].flags, 0x80);
      assert.match(trailer, /grpc-status:0\r\n/);
      assert.match(trailer, /x-trail:t-t\r\n/);
    });

    await t.step("bad base64 is answered 400 with grpc-status 13", async () => {
      for (const [body, details] of [["AAAAAAE", "bad size"], ["****", "bad data"]]) {
        const r = await fetchWith(`${base}/nuncio.test.Echo/Unary`, {
          method: "POST",
          headers: { "content-type": "application/grpc-web-text" },
          body,
        });
        await r.body?.cancel();
        assert.equal(r.status, 400, details);
        assert.equal(r.headers.get("grpc-status"), "13", details);
        assert.equal(r.headers.get("grpc-message"), "Bad gRPC-web request, invalid base64 data.", details);
      }
    });

    await t.step("the official grpc-web client in text mode (unary, error, server streaming)", async () => {
      const r = await run(Deno.execPath(), ["run", "-A", `${FIXTURES}text_client.ts`, base]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), {
        unary: { msg: { text: "echo:hi", n: 7 }, header: "m1", trailer: "t-hi" },
        fail: { code: 7, message: "no way: m2" },
        stream: ["w-0", "w-1", "w-2", "w-3"],
      });
    });

    await t.step("native gRPC (python grpcio client) matches the grpc: {} route", async () => {
      const r = await run(PY, [`${FIXTURES}route_probe.py`, dir, `127.0.0.1:${proxy.port()}`]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), { text: "echo:native", route: "grpc" });
    });

    await t.step("stats: cluster.<name>.grpc-web.<service>.<method>.*", () => {
      const s = (n: string) => proxy.stat(`cluster.grpc.grpc-web.nuncio.test.Echo.${n}`);
      assert.equal(s("Unary.success"), 3);
      assert.equal(s("Unary.failure"), 2);
      assert.equal(s("Unary.7"), 2);
      assert.equal(s("Unary.0"), 3);
      assert.equal(s("Unary.total"), 5);
      assert.equal(s("ServerStream.success"), 3);
    });
  } finally {
    client.close();
    await Deno.remove(dir, { recursive: true });
  }
});
