// Drives npm posthog-node, as shipped, against the host given: only `host` differs
// from a production setup. Usage: node posthog_node_client.js <node_modules> <plan.json>
// The plan: {"host", "key", "calls": [[method, argument], ...]}; each call is
// client[method](argument) (an array argument is spread), then shutdown() flushes the
// queue. A wrapper of the global
// fetch (which posthog-node calls) records each request's path, status and encoding.
// Prints {"errors": [...], "requests": [...], "results": [...]} as JSON.
const path = require('path')
const fs = require('fs')

const [modules, planFile] = process.argv.slice(2)
const { PostHog } = require(path.join(modules, 'posthog-node'))
const plan = JSON.parse(fs.readFileSync(planFile, 'utf8'))

const requests = []
const realFetch = globalThis.fetch
globalThis.fetch = async (url, options) => {
  const response = await realFetch(url, options)
  const headers = (options && options.headers) || {}
  requests.push({
    path: new URL(url).pathname,
    status: response.status,
    encoding: headers['Content-Encoding'] || null,
  })
  return response
}

async function main() {
  const client = new PostHog(plan.key, { host: plan.host, ...(plan.options || {}) })
  const errors = []
  const results = []
  client.on('error', (error) => errors.push(String((error && error.message) || error)))
  for (const [method, argument] of plan.calls) {
    let result = Array.isArray(argument) ? client[method](...argument) : client[method](argument)
    if (result && typeof result.then === 'function') result = await result
    results.push(result === undefined ? null : result)
  }
  await client.shutdown()
  process.stdout.write(JSON.stringify({ errors, requests, results }))
}

main().catch((error) => {
  process.stderr.write(String((error && error.stack) || error))
  process.exit(1)
})
