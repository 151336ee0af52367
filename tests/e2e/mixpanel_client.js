// Drives the real npm `mixpanel` package (tests/e2e/test_mixpanel_sdks.py).
// Usage: node mixpanel_client.js <node_modules> <host:port> <token> <api secret> <calls.json>
// Only the host is changed (`host`, `protocol: "https"`); the CA comes from
// NODE_EXTRA_CA_CERTS. Each call is [method path, ...args]; the callback's
// error (its message) or null is printed, in order, as a JSON array.
"use strict";

const path = require("path");
const fs = require("fs");

const [modules, host, token, secret, callsFile] = process.argv.slice(2);
const Mixpanel = require(path.join(modules, "mixpanel"));
const mixpanel = Mixpanel.init(token, { host, protocol: "https", secret });
const calls = JSON.parse(fs.readFileSync(callsFile, "utf8"));

function describe(error) {
  if (!error) return null;
  if (Array.isArray(error)) return error.length ? error.map(describe).join("; ") : null;
  return error.message || String(error);
}

async function main() {
  const results = [];
  for (const [name, ...args] of calls) {
    const [owner, method] = name.includes(".") ? name.split(".") : [null, name];
    const target = owner ? mixpanel[owner] : mixpanel;
    const error = await new Promise((resolve) => {
      target[method].call(target, ...args, (err) => resolve(err));
    });
    results.push(describe(error));
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error));
  process.exit(1);
});
