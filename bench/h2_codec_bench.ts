/**
 * Benchmark: h2load (-c32 -m10, h2c prior knowledge) against a hello server built on this codec and against
 * a Deno.serve hello server, in the same run. `deno run -A bench/h2_codec_bench.ts [requests]`.
 */
import { HeaderMap } from "../src/http/headers.ts";
import { H2ServerConnection } from "../src/http/h2/server.ts";
import type { H2StreamHandler } from "../src/http/h2/stream.ts";

const N = Number(Deno.args[0] ?? 200000);
const body = new TextEncoder().encode("hello world");
const headers = new HeaderMap();
headers.addLower("content-type", "text/plain");

const handler: H2StreamHandler = {
  onHeaders(st, _h, end) {
    if (!end) return;
    st.respond(200, headers);
    st.sendData(body, true);
  },
  onData(st, _d, end) {
    if (!end) return;
    st.respond(200, headers);
    st.sendData(body, true);
  },
  onTrailers() {},
  onReset() {},
};

async function h2load(port: number): Promise<number> {
  const out = await new Deno.Command("h2load", {
    args: ["-n", String(N), "-c", "32", "-m", "10", "-t", "1", `http://127.0.0.1:${port}/`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const m = text.match(/finished in [^,]+, ([0-9.]+) req\/s/);
  if (!/ 0 failed/.test(text) || !m) throw new Error(`h2load failed: ${text}`);
  return Number(m[1]);
}

const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const conns: H2ServerConnection[] = [];
const loop = (async () => {
  for await (const c of listener) {
    c.setNoDelay(true);
    const h2 = new H2ServerConnection(c, handler);
    conns.push(h2);
    void h2.start();
  }
})();
await h2load((listener.addr as Deno.NetAddr).port); // warm-up
const ours = await h2load((listener.addr as Deno.NetAddr).port);
listener.close();
await loop.catch(() => {});
for (const c of conns) c.close();

const ac = new AbortController();
const ds = Deno.serve(
  { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
  () => new Response(body, { headers: { "content-type": "text/plain" } }),
);
await h2load(ds.addr.port);
const deno = await h2load(ds.addr.port);
ac.abort();
await ds.finished;

console.log(`nuncio h2 codec: ${ours.toFixed(0)} req/s`);
console.log(`Deno.serve h2c:  ${deno.toFixed(0)} req/s`);
console.log(`ratio: ${(ours / deno).toFixed(2)}x`);
