// Uploads records with CleverTap's own npm client ("clevertap") and prints its answer.
//
// Usage: node clevertap_client.js <node_modules dir> <base url> <account id> <passcode> <records.json>
//
// The client is used as shipped. Only its base URL changes: the API object
// builds `https://${region}.api.clevertap.com/1` in its constructor
// (lib/clevertap-api.js, property `apiEndpoint`), and we point that at
// `${base url}/1`, as DESIGN.md promises a client only needs.
"use strict";

const fs = require("fs");
const path = require("path");

const [modulesDir, baseUrl, accountId, passcode, recordsPath] = process.argv.slice(2);
const CleverTap = require(path.join(modulesDir, "clevertap"));

async function main() {
  const clevertap = CleverTap.init(accountId, passcode, CleverTap.REGIONS.EUROPE);
  if (typeof clevertap.api.apiEndpoint !== "string") {
    throw new Error("clevertap.api.apiEndpoint is gone: the client changed");
  }
  const vendorEndpoint = clevertap.api.apiEndpoint;
  clevertap.api.apiEndpoint = `${baseUrl}/1`;
  const records = JSON.parse(fs.readFileSync(recordsPath, "utf8"));
  const response = await clevertap.upload(records, { batchSize: 50 });
  process.stdout.write(JSON.stringify({ vendorEndpoint, response }) + "\n");
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
