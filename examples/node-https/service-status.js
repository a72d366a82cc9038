// A Node.js `https` client of PG&E Share My Data: client-credentials token, then ReadServiceStatus ten
// times, each on a fresh connection through one Agent (Node's default TLS session cache stays on, as in
// production code). Needs only Node 18+; no packages.
//
//   PGE_API=https://127.0.0.1:8443 PGE_CA=ca.pem PGE_CERT=chain.pem PGE_KEY=key.pem \
//   PGE_CLIENT_ID=00101 PGE_CLIENT_SECRET=... node service-status.js
//
// PGE_CERT must be the chain file (your certificate, then the intermediate): PG&E answers
// 400 "Invalid Certificate" to a leaf sent alone. Calls are paced to PG&E's 1 request/second per vendor.
// Prints one JSON line per call and exits non-zero unless every call answered 200.
"use strict";
const fs = require("fs");
const https = require("https");

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name}`);
  return value;
};
const api = new URL(env("PGE_API"));
const agent = new https.Agent({
  ca: fs.readFileSync(env("PGE_CA")),
  cert: fs.readFileSync(env("PGE_CERT")),
  key: fs.readFileSync(env("PGE_KEY")),
  keepAlive: false, // a new TLS connection per call: the agent offers its cached session each time
});
const calls = Number(process.env.PGE_CALLS || 10);
const paceMs = Number(process.env.PGE_PACE_MS || 1100);

function request(method, path, headers) {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: api.hostname, port: api.port || 443, method, path, agent, headers: { Connection: "close", ...headers } },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode, body, reused: res.socket.isSessionReused() }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

async function main() {
  const basic = Buffer.from(`${env("PGE_CLIENT_ID")}:${env("PGE_CLIENT_SECRET")}`).toString("base64");
  const token = await request("POST", "/datacustodian/oauth/v2/token?grant_type=client_credentials",
    { Authorization: `Basic ${basic}` });
  if (token.status !== 200) throw new Error(`token: ${token.status} ${token.body}`);
  const cat = JSON.parse(token.body).client_access_token;
  let ok = 0;
  for (let i = 0; i < calls; i++) {
    if (i) await new Promise((r) => setTimeout(r, paceMs));
    const res = await request("GET", "/GreenButtonConnect/espi/1_1/resource/ReadServiceStatus",
      { Authorization: `Bearer ${cat}` });
    console.log(JSON.stringify({ call: i + 1, status: res.status, sessionReused: res.reused,
                                 body: res.status === 200 ? undefined : res.body }));
    if (res.status === 200) ok++;
  }
  console.log(`${ok} of ${calls} calls answered 200`);
  process.exit(ok === calls ? 0 : 1);
}

main().catch((err) => {
  console.error(err.message);
  process.exit(2);
});
