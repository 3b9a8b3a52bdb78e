// @ts-check
// A plain Node (20+) service using @nuncio/client from its files, no build step: `GET /chain...` answers
// what it received and, when NEXT_SERVICE is set, what that service answered through the egress listener
// (NUNCIO_EGRESS); `/slow?ms=N` answers after N ms (to watch nuncio's timeouts).
//
//   NUNCIO_EGRESS=127.0.0.1:9001 NEXT_SERVICE=d PORT=8083 node src/client/examples/node_service.mjs
//
// Prints `PORT <n>` once listening (PORT=0 picks a free port). Used by tests/thin_client_test.ts as service C.
import http from "node:http";
import { NuncioClient, PROPAGATED_HEADERS, requestId, withIncoming } from "../index.js";

const service = process.env.SERVICE_NAME ?? "c";
const next = process.env.NEXT_SERVICE ?? "";
const client = new NuncioClient();

/** @param {http.IncomingMessage} req @param {http.ServerResponse} res */
async function handle(req, res) {
  const url = new URL(req.url ?? "/", "http://local");
  if (url.pathname === "/slow") {
    await new Promise((r) => setTimeout(r, Number(url.searchParams.get("ms") ?? "1000")));
  }
  /** @type {Record<string, string>} */
  const received = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (
      typeof v === "string" &&
      (PROPAGATED_HEADERS.includes(k) || k.startsWith("x-envoy-"))
    ) received[k] = v;
  }
  /** @type {Record<string, unknown>} */
  const out = {
    service,
    runtime: `node ${process.version}`,
    request_id: requestId(),
    received,
  };
  let status = 200;
  if (next && url.pathname.startsWith("/chain")) {
    const r = await client.call(next, url.pathname + url.search);
    out.next_status = r.status;
    out.next = await r.json();
    if (!r.ok) status = r.status;
  }
  const body = JSON.stringify(out);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

const server = http.createServer((req, res) => {
  withIncoming(req, () => handle(req, res)).catch((err) => {
    res.writeHead(500, { "content-type": "text/plain" });
    res.end(String(err));
  });
});
server.listen(Number(process.env.PORT ?? "0"), "127.0.0.1", () => {
  const addr = server.address();
  console.log(`PORT ${typeof addr === "object" && addr ? addr.port : 0}`);
});
const stop = () => {
  client.close();
  // stop accepting, drop the connections, and exit without waiting for handlers still sleeping in /slow
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
