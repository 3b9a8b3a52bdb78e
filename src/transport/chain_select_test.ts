import assert from "node:assert/strict";
import { type ChainMatch, ChainSelector, findDuplicateMatch, needsInspection } from "./chain_select.ts";

const m = (o: Partial<ChainMatch>): ChainMatch => ({
  serverNames: [],
  transportProtocol: "",
  applicationProtocols: [],
  ...o,
});

const facts = (o: { sni?: string; transport?: string; alpn?: string[]; port?: number }) => ({
  port: o.port ?? 443,
  sni: o.sni ?? "",
  transport: o.transport ?? "tls",
  alpn: o.alpn ?? [],
});

Deno.test("ChainSelector", async (t) => {
  await t.step("server names: exact, then the longest wildcard suffix, then chains without names", () => {
    const s = new ChainSelector([
      m({ serverNames: ["*.example.com"] }),
      m({ serverNames: ["*.api.example.com"] }),
      m({ serverNames: ["www.example.com", "example.com"] }),
      m({}),
    ]);
    assert.equal(s.select(facts({ sni: "www.example.com" })), 2);
    assert.equal(s.select(facts({ sni: "example.com" })), 2);
    assert.equal(s.select(facts({ sni: "v1.api.example.com" })), 1);
    assert.equal(s.select(facts({ sni: "a.b.example.com" })), 0);
    assert.equal(s.select(facts({ sni: "other.org" })), 3);
    assert.equal(s.select(facts({ sni: "" })), 3);
  });

  await t.step("no fallback chain: an unmatched name selects nothing", () => {
    const s = new ChainSelector([m({ serverNames: ["a.example.com"] })]);
    assert.equal(s.select(facts({ sni: "b.example.com" })), -1);
  });

  await t.step("transport protocol and ALPN narrow after the server name", () => {
    const s = new ChainSelector([
      m({ transportProtocol: "tls", applicationProtocols: ["h2"] }),
      m({ transportProtocol: "tls" }),
      m({ transportProtocol: "raw_buffer" }),
    ]);
    assert.equal(s.select(facts({ alpn: ["h2", "http/1.1"] })), 0);
    assert.equal(s.select(facts({ alpn: ["http/1.1"] })), 1);
    assert.equal(s.select(facts({ transport: "raw_buffer" })), 2);
  });

  await t.step("destination port is the first criterion", () => {
    const s = new ChainSelector([m({ destinationPort: 8443, serverNames: ["a.example.com"] }), m({})]);
    assert.equal(s.select(facts({ port: 8443, sni: "a.example.com" })), 0);
    assert.equal(s.select(facts({ port: 443, sni: "a.example.com" })), 1);
  });

  await t.step("inspection and duplicate detection", () => {
    assert.equal(needsInspection([m({}), m({ destinationPort: 1 })]), false);
    assert.equal(needsInspection([m({ serverNames: ["a"] })]), true);
    assert.equal(findDuplicateMatch([m({ serverNames: ["a", "b"] }), m({ serverNames: ["c"] })]), undefined);
    assert.equal(findDuplicateMatch([m({ serverNames: ["a", "b"] }), m({ serverNames: ["b"] })])?.index, 1);
    assert.equal(findDuplicateMatch([m({}), m({})])?.index, 1);
  });
});
