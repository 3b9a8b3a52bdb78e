/**
 * The admin dashboard in a real browser: headless Chromium (DevTools protocol, tests/fixtures/cors/chromium.ts)
 * opens /dashboard of a server with two workers while requests flow through it; the page must render, take
 * live frames from /dashboard/events and show request rates that move. A screenshot of the page as it was is
 * kept in .tmp/dashboard_test/dashboard.png (`.tmp/` is ignored by git): the live DOM, scripts removed, rendered
 * by `chromium --headless --screenshot`.
 */
import "../src/registry/builtin.ts";
import assert from "node:assert/strict";
import { formatConfigError } from "../src/config/errors.ts";
import { loadConfigFile } from "../src/config/load.ts";
import { startAdmin } from "../src/server/admin_wiring.ts";
import { checkClusterReferences } from "../src/server/cross_check.ts";
import { Server } from "../src/server/server.ts";
import { launchChromium } from "./fixtures/cors/chromium.ts";
import { ADMIN, freePort } from "./health_helpers.ts";
import { anyHost, bootstrapYaml, httpListener, run, startOrigin, staticCluster } from "./helpers.ts";

const OUT_DIR = new URL("../.tmp/dashboard_test/", import.meta.url).pathname;

interface Row {
  kind: string;
  name: string;
  values: Record<string, string>;
}

const READ_ROWS = `(() => [...document.querySelectorAll("tr[data-name]")].map((tr) => ({
  kind: tr.dataset.kind,
  name: tr.dataset.name,
  values: Object.fromEntries([...tr.querySelectorAll("td[data-k]")].map((td) => [td.dataset.k, td.dataset.v])),
})))()`;

Deno.test("dashboard renders in Chromium and its values move under load (2 workers)", async () => {
  await using origin = startOrigin("backend", async () => {
    await new Promise((r) => setTimeout(r, 2));
    return new Response("ok");
  });
  const port = freePort();
  const l = httpListener({
    name: "edge",
    statPrefix: "edge",
    virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "backend" } }])],
  });
  (l.address as { socket_address: { port_value: number } }).socket_address.port_value = port;
  const dir = await Deno.makeTempDir({ prefix: "nuncio_dashboard_" });
  await Deno.writeTextFile(
    `${dir}/bootstrap.yaml`,
    bootstrapYaml([l], [staticCluster("backend", [origin.port])], { admin: ADMIN }).replaceAll(
      "$LOG",
      "/dev/null",
    ),
  );
  const loaded = await loadConfigFile(`${dir}/bootstrap.yaml`, { crossCheck: checkClusterReferences });
  if (!loaded.ok) throw new Error(loaded.errors.map(formatConfigError).join("\n"));
  const server = new Server(loaded.bootstrap, {
    configPath: `${dir}/bootstrap.yaml`,
    concurrency: 2,
    logLevel: "error",
    raw: loaded.raw,
    commandLine: [],
  });
  await server.start();
  const admin = (await startAdmin(server, loaded.bootstrap))!;
  const browser = await launchChromium();
  let loading = true;
  const load = (async () => {
    // 8 clients in a loop: a steady few hundred requests a second
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (loading) {
        const r = await fetch(`http://127.0.0.1:${port}/item`);
        await r.arrayBuffer();
        if (r.status !== 200) throw new Error(`status ${r.status}`);
      }
    }));
  })();
  try {
    const page = await browser.open(`http://127.0.0.1:${admin.port}/dashboard`);
    assert.equal(await page.evaluate("document.title"), "nuncio dashboard");
    const waitFor = async (cond: string, what: string) => {
      const deadline = Date.now() + 15_000;
      while (!(await page.evaluate<boolean>(cond))) {
        if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await waitFor(`Number(document.body.dataset.frames) >= 2`, "two frames");
    assert.equal(await page.evaluate(`document.getElementById("status").textContent`), "live");
    const first = await page.evaluate<Row[]>(READ_ROWS);
    const listener = first.find((r) => r.kind === "listener" && r.name === "edge");
    const cluster = first.find((r) => r.kind === "cluster" && r.name === "backend");
    assert.ok(listener && cluster, JSON.stringify(first));
    assert.ok(Number(listener.values.rps) > 0, `listener rps ${listener.values.rps}`);
    assert.ok(Number(cluster.values.rps) > 0, `cluster rps ${cluster.values.rps}`);
    assert.ok(Number(cluster.values.p50) > 0, `cluster p50 ${cluster.values.p50}`);
    assert.equal(cluster.values.health, "1/1");
    const framesBefore = Number(await page.evaluate(`document.body.dataset.frames`));
    await waitFor(`Number(document.body.dataset.frames) >= ${framesBefore + 2}`, "two more frames");
    const later = await page.evaluate<Row[]>(READ_ROWS);
    const rpsSeries = [listener, later.find((r) => r.name === "edge")!].map((r) => r.values.rps);
    // values move: each frame is a new sample (rates over a live second are never identical twice in a row
    // for both the listener and the cluster at a few hundred requests a second)
    const movedL = rpsSeries[0] !== rpsSeries[1];
    const movedC = cluster.values.rps !== later.find((r) => r.name === "backend")!.values.rps;
    assert.ok(movedL || movedC, `rates did not move: ${JSON.stringify({ first, later })}`);
    // sparklines are drawn (hand-written SVG)
    const points = await page.evaluate<string>(
      `document.querySelector('tr[data-name="backend"] svg.spark polyline').getAttribute("points")`,
    );
    assert.ok(points.split(" ").length >= 2, points);

    // keep a screenshot of the page as it is now
    const html = await page.evaluate<string>(
      `(() => { const d = document.documentElement.cloneNode(true); d.querySelectorAll("script").forEach((s) => s.remove()); return "<!doctype html>" + d.outerHTML; })()`,
    );
    await Deno.mkdir(OUT_DIR, { recursive: true });
    await Deno.writeTextFile(`${OUT_DIR}dashboard.html`, html);
    const shot = await run("chromium", [
      "--headless=new",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      `--user-data-dir=${dir}/shot-profile`,
      `--screenshot=${OUT_DIR}dashboard.png`,
      "--window-size=1280,720",
      `file://${OUT_DIR}dashboard.html`,
    ]);
    assert.equal(shot.code, 0, shot.stderr);
    assert.ok((await Deno.stat(`${OUT_DIR}dashboard.png`)).size > 5000);
  } finally {
    loading = false;
    await load.catch(() => {});
    await browser.close();
    await admin.close();
    await server.stop(0);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
