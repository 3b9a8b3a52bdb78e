/**
 * A Hono service using @nuncio/client: the middleware keeps each request's x-request-id and trace headers,
 * and every call it makes through the local nuncio egress listener carries them on.
 *
 *   NUNCIO_EGRESS=127.0.0.1:9001 NEXT_SERVICE=b PORT=8081 deno run -A src/client/examples/hono_service.ts
 *
 * Routes: `GET /chain...` calls the next service with the same path (idempotent: retried by nuncio on 5xx);
 * `POST /orders` posts to the next service's `/orders` (not retried unless asked). Used by
 * tests/thin_client_test.ts as service A.
 */
import { Hono } from "hono";
import { type NuncioClient, nuncioContext, proxyOutcome, requestId } from "../index.js";

/** The app, calling `next` through `client`; built once per process. */
export function createApp(client: NuncioClient, next: string): Hono {
  const app = new Hono();
  app.use(nuncioContext());

  app.get("/chain/*", async (c) => {
    const url = new URL(c.req.url);
    const res = await client.call(next, url.pathname + url.search);
    const body = await res.json().catch(() => null);
    return c.json({
      service: "a",
      request_id: requestId(),
      next_status: res.status,
      outcome: proxyOutcome(res),
      next: body,
    }, res.ok ? 200 : 502);
  });

  app.post("/orders", async (c) => {
    const res = await client.call(next, `/orders${new URL(c.req.url).search}`, {
      json: await c.req.json(),
    });
    await res.body?.cancel();
    return c.json({
      service: "a",
      next_status: res.status,
      outcome: proxyOutcome(res),
    }, res.ok ? 200 : 502);
  });

  return app;
}

if (import.meta.main) {
  const { NuncioClient } = await import("../index.js");
  const client = new NuncioClient();
  const app = createApp(client, Deno.env.get("NEXT_SERVICE") ?? "b");
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: Number(Deno.env.get("PORT") ?? "8081"),
  }, app.fetch);
  Deno.addSignalListener("SIGTERM", () => {
    client.close();
    server.shutdown();
  });
}
