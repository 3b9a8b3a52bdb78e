import assert from "node:assert/strict";
import type { CertificateFacts, DownstreamTlsInfo } from "../common/tls_info.ts";
import { HeaderMap } from "./headers.ts";
import { buildElement, mutateXfcc, XfccBuilder } from "./xfcc.ts";

function cert(o: Partial<CertificateFacts>): CertificateFacts {
  return {
    uriSans: "",
    dnsSans: "",
    ipSans: "",
    subject: "",
    issuer: "",
    serial: "",
    fingerprint256: "",
    fingerprint1: "",
    urlEncodedPem: "",
    validFrom: 0,
    validTo: 0,
    ...o,
  };
}

const peer = cert({
  subject: "CN=client,O=Acme",
  fingerprint256: "abcd",
  urlEncodedPem: "-----BEGIN%20CERTIFICATE-----%0A",
  uriSanList: ["spiffe://mesh/client"],
  dnsSanList: ["client.example.com", "c2.example.com"],
});
const mtls: DownstreamTlsInfo = {
  sni: "",
  alpn: "",
  version: "TLSv1.3",
  cipher: "",
  sessionId: "",
  local: cert({ uriSanList: ["spiffe://mesh/proxy"] }),
  peer,
  peerChain: "CHAIN",
};
const oneWay: DownstreamTlsInfo = { ...mtls, peer: null, peerChain: undefined };

Deno.test("x-forwarded-client-cert element in Envoy's order", () => {
  assert.equal(buildElement(mtls, []), "By=spiffe://mesh/proxy;Hash=abcd");
  assert.equal(
    buildElement(mtls, ["Cert", "Chain", "Subject", "URI", "DNS"]),
    'By=spiffe://mesh/proxy;Hash=abcd;Cert="-----BEGIN%20CERTIFICATE-----%0A";Chain="CHAIN";' +
      'Subject="CN=client,O=Acme";URI=spiffe://mesh/client;DNS=client.example.com;DNS=c2.example.com',
  );
  // URI= stays even without URI SANs; Subject="" stays even when empty
  const bare = { ...mtls, local: null, peer: cert({ fingerprint256: "ff" }) };
  assert.equal(buildElement(bare, ["Subject", "URI", "DNS"]), 'Hash=ff;Subject="";URI=');
});

Deno.test("forward_client_cert_details modes", () => {
  const run = (
    mode: Parameters<typeof mutateXfcc>[1],
    tls: DownstreamTlsInfo | undefined,
    sent?: string[],
  ) => {
    const h = new HeaderMap();
    for (const v of sent ?? []) h.add("x-forwarded-client-cert", v);
    const b = mode === "APPEND_FORWARD" || mode === "SANITIZE_SET" ? new XfccBuilder(["URI"]) : undefined;
    mutateXfcc(h, mode, b, tls);
    return h.getAll("x-forwarded-client-cert");
  };
  const mine = "By=spiffe://mesh/proxy;Hash=abcd;URI=spiffe://mesh/client";
  assert.deepEqual(run("SANITIZE", mtls, ["x"]), []);
  assert.deepEqual(run("FORWARD_ONLY", mtls, ["x"]), ["x"]);
  assert.deepEqual(run("FORWARD_ONLY", oneWay, ["x"]), []);
  assert.deepEqual(run("FORWARD_ONLY", undefined, ["x"]), []);
  assert.deepEqual(run("APPEND_FORWARD", mtls, ["a", "b"]), [`a,b,${mine}`]);
  assert.deepEqual(run("APPEND_FORWARD", mtls), [mine]);
  assert.deepEqual(run("APPEND_FORWARD", oneWay, ["a"]), []);
  assert.deepEqual(run("SANITIZE_SET", mtls, ["a"]), [mine]);
  assert.deepEqual(run("ALWAYS_FORWARD_ONLY", undefined, ["a"]), ["a"]);
  // the element is built once per connection
  const b = new XfccBuilder(["Subject"]);
  assert.equal(b.element(mtls), b.element(mtls));
});
