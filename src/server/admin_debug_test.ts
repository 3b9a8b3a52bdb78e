import assert from "node:assert/strict";
import { DEBUG_ENDPOINTS } from "./admin_wiring.ts";
import { createDebugAdmin } from "./admin_debug.ts";
import type { Server } from "./server.ts";

Deno.test("admin debug: the lazily loaded endpoints are the ones admin_debug.ts serves", () => {
  const real = createDebugAdmin({} as Server);
  try {
    assert.deepEqual(
      real.endpoints.map(({ path, method, help }) => ({ path, method, help })),
      DEBUG_ENDPOINTS.map(({ path, method, help }) => ({ path, method, help })),
    );
  } finally {
    real.close();
  }
});
