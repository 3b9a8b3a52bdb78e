// deno-lint-ignore-file no-explicit-any -- parsed JSON bodies are read loosely in tests
/** Helpers for the rate-limit service e2e tests: a unary gRPC call over node:http2 (an independent h2 client) and /json posts. */
import http2 from "node:http2";
import { encodeGrpcFrame, GrpcFrameDecoder } from "../src/grpc/frame.ts";

/** What a unary gRPC call returned. */
export interface GrpcReply {
  /** grpc-status (from trailers, or from headers in a trailers-only reply). */
  status: number;
  message: string;
  /** The response message, when one came. */
  body?: Uint8Array;
}

/** One unary call to 127.0.0.1:`port` over h2c. */
export function grpcCall(port: number, path: string, request: Uint8Array): Promise<GrpcReply> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
    });
    const decoder = new GrpcFrameDecoder();
    const messages: Uint8Array[] = [];
    let status = -1;
    let message = "";
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) status = Number(h["grpc-status"]);
      if (h["grpc-message"] !== undefined) message = decodeURIComponent(String(h["grpc-message"]));
    };
    stream.on("response", take);
    stream.on("trailers", take);
    stream.on("data", (c: Uint8Array) => messages.push(...decoder.push(c)));
    stream.on("error", reject);
    stream.on("close", () => {
      session.close();
      resolve({ status, message, body: messages[0] });
    });
    stream.end(encodeGrpcFrame(request));
  });
}

/** POSTs a JSON RateLimitRequest to the service's /json; returns the HTTP status and parsed body (or text). */
export async function postJson(port: number, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${port}/json`, { method: "POST", body: JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // plain-text error
  }
  return { status: res.status, body: parsed };
}

/** GETs a path of the service's HTTP port; returns status and text. */
export async function getText(port: number, path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, text: await res.text() };
}

/** Polls `fn` until it returns true (bounded). */
export async function eventually(
  fn: () => boolean | Promise<boolean>,
  ms = 5000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`Timed out waiting for ${what}`);
}
