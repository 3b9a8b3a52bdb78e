/**
 * A tiny origin run as its own process by the resilience fault test (so it can be killed abruptly):
 * `deno run --allow-net tests/resilience_origin.ts <port> <name> [delayMs]`. `/healthz` answers 200 "ok";
 * every other path answers 200 "hello from <name>" with `x-origin: <name>` after `delayMs` (default 0).
 */

const [portArg, name = "origin", delayArg = "0"] = Deno.args;
const port = Number(portArg);
const delayMs = Number(delayArg);
const body = `hello from ${name}`;
const headers = { "x-origin": name, "content-type": "text/plain" };

Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: () => console.log(`listening ${port}`),
}, async (req) => {
  if (req.url.endsWith("/healthz")) return new Response("ok");
  if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
  return new Response(body, { headers });
});
