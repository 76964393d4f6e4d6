'use strict'
// node-postgres (pg) client of pgwarden's compatibility matrix. The contract
// (environment, schema, cases, output) is internal/compat/doc.go.
//
//   cd internal/compat/clients/node && npm ci && node compat.js
//
// Each case runs on a fresh connection (TLS, CA verified, host name checked),
// so a case that breaks its connection cannot fail the cases after it.

const fs = require('node:fs')
const { Readable } = require('node:stream')
const { pipeline } = require('node:stream/promises')
const pg = require('pg')
const copyStreams = require('pg-copy-streams')

const CASE_TIMEOUT_MS = 8000

function env(name) {
  const v = process.env[name]
  if (v === undefined || v === '') throw new Error(`${name} is not set`)
  return v
}

const cfg = {
  host: env('PGW_HOST'),
  port: Number(env('PGW_PORT')),
  database: env('PGW_DATABASE'),
  user: env('PGW_USER'),
  password: env('PGW_PASSWORD'), // SCRAM password or OIDC access token
  ssl: {
    ca: fs.readFileSync(env('PGW_SSLROOTCERT')),
    // Full verification: chain to the CA and host name. pg sets SNI and the
    // name to check from `host` (and checks IP SANs for an IP host).
    rejectUnauthorized: true,
  },
  connectionTimeoutMillis: 5000,
  application_name: 'pgwarden-compat-node',
}
const base = Number.parseInt(env('PGW_ID_BASE'), 10)
if (!Number.isInteger(base)) throw new Error('PGW_ID_BASE is not an integer')

const PLAINTEXT = ['alice@example.com', 'bob@example.org', 'alice@', 'bob@']
const MASKED = ['***@example.com', '***@example.org']

// --- helpers ---------------------------------------------------------------

// connect opens a new client; everything the server says outside results
// (notices) is kept in client.received for the leak check.
async function connect() {
  const client = new pg.Client(cfg)
  client.received = []
  client.on('error', (err) => console.error(`connection error: ${redact(err.message)}`))
  client.on('notice', (msg) => client.received.push(msg.message, msg.detail, msg.hint))
  await client.connect()
  return client
}

function expectEqual(what, got, want) {
  const g = JSON.stringify(got)
  const w = JSON.stringify(want)
  if (g !== w) throw new Error(`${what}: got ${g}, want ${w}`)
}

// simple runs text with the simple query protocol: pg sends a Query message
// when a query has no values (and no name).
function simple(client, text) {
  return client.query(text)
}

// extended runs text with the extended protocol (Parse/Bind/Describe/Execute/Sync).
function extended(client, text, values, extra = {}) {
  return client.query({ text, values, ...extra })
}

function names(result) {
  return result.rows.map((r) => r.name)
}

function noPlaintext(what, ...received) {
  const s = JSON.stringify(received)
  for (const p of PLAINTEXT) {
    if (s.includes(p)) throw new Error(`${what}: plaintext "${p}" reached the client`)
  }
}

// --- cases -----------------------------------------------------------------

async function caseConnect(client) {
  // connect() authenticated over verified TLS; nothing more to do.
}

async function caseSimple(client) {
  const r = await simple(client, 'SELECT name FROM compat_items ORDER BY id')
  expectEqual('SELECT name', names(r), ['alpha', 'beta', 'gamma'])
}

async function caseParameterized(client) {
  const q = 'SELECT name FROM compat_items WHERE id = $1'
  expectEqual('unnamed statement', names(await extended(client, q, [2])), ['beta'])
  // A named statement: parsed once, then bound and executed again without a new Parse.
  for (const id of [2, 3]) {
    const r = await extended(client, q, [id], { name: 'compat_item_by_id' })
    expectEqual(`named statement, id ${id}`, names(r), [id === 2 ? 'beta' : 'gamma'])
  }
  const sum = await extended(client, 'SELECT $1::int + 1 AS n', [41])
  expectEqual('$1::int + 1', sum.rows[0].n, 42)
  // The same with binary result columns.
  const bin = await extended(client, 'SELECT $1::int + 1 AS n', [41], { binary: true })
  expectEqual('$1::int + 1 (binary results)', bin.rows[0].n, 42)
}

async function caseTransaction(client) {
  const id = base + 1
  await simple(client, 'BEGIN')
  let deleteErr = null
  try {
    await extended(client, 'INSERT INTO compat_items VALUES ($1, $2)', [id, 'tx'])
    try {
      await extended(client, 'DELETE FROM compat_items WHERE id = $1', [id])
    } catch (err) {
      deleteErr = err
    }
  } finally {
    await simple(client, 'ROLLBACK')
  }
  const r = await extended(client, 'SELECT count(*)::int AS n FROM compat_items WHERE id = $1', [id])
  if (deleteErr === null) throw new Error('DELETE succeeded, want SQLSTATE 42501 from rule no-deletes')
  if (deleteErr.code !== '42501') {
    throw new Error(`DELETE failed with SQLSTATE ${deleteErr.code}, want 42501: ${deleteErr.message}`)
  }
  if (!deleteErr.message.includes('no-deletes')) {
    throw new Error(`DELETE error does not name no-deletes: ${deleteErr.message}`)
  }
  expectEqual('count after ROLLBACK', r.rows[0].n, 0)
}

async function caseMasked(client) {
  const all = await simple(client, 'SELECT id, email FROM compat_customers ORDER BY id')
  const one = await extended(client, 'SELECT email FROM compat_customers WHERE id = $1', [1])
  const oneBin = await extended(client, 'SELECT email FROM compat_customers WHERE id = $1', [1], {
    binary: true,
  })
  noPlaintext('masked', all.rows, one.rows, oneBin.rows, client.received)
  expectEqual('SELECT id, email', all.rows.map((r) => [r.id, r.email]), [
    [1, MASKED[0]],
    [2, MASKED[1]],
  ])
  expectEqual('SELECT email WHERE id = $1', one.rows.map((r) => r.email), [MASKED[0]])
  expectEqual('SELECT email WHERE id = $1 (binary results)', oneBin.rows.map((r) => r.email), [MASKED[0]])
}

async function caseCopy(client) {
  await simple(client, 'BEGIN')
  try {
    const sink = client.query(copyStreams.from('COPY compat_items (id, name) FROM STDIN'))
    await pipeline(Readable.from([`${base + 2}\tcopy-a\n${base + 3}\tcopy-b\n`]), sink)
    expectEqual('COPY FROM rows', sink.rowCount, 2)
    const r = await extended(client, 'SELECT count(*)::int AS n FROM compat_items WHERE id > $1', [base])
    expectEqual('count after COPY FROM', r.rows[0].n, 2)
  } finally {
    await simple(client, 'ROLLBACK')
  }
  const source = client.query(
    copyStreams.to('COPY (SELECT id, email FROM compat_customers ORDER BY id) TO STDOUT'),
  )
  const chunks = []
  for await (const chunk of source) chunks.push(chunk)
  const out = Buffer.concat(chunks).toString('utf8')
  noPlaintext('COPY TO', out, client.received)
  expectEqual('COPY TO output', out, `1\t${MASKED[0]}\n2\t${MASKED[1]}\n`)
}

const CASES = [
  ['connect', caseConnect],
  ['simple', caseSimple],
  ['parameterized', caseParameterized],
  ['transaction', caseTransaction],
  ['masked', caseMasked],
  ['copy', caseCopy],
]

// --- runner ----------------------------------------------------------------

function redact(s) {
  s = String(s)
  return cfg.password ? s.split(cfg.password).join('[password]') : s
}

function oneLine(s) {
  return redact(s).replace(/\s*\n\s*/g, ' ')
}

function withTimeout(promise, ms) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

async function runCase(fn) {
  const client = await connect()
  try {
    await fn(client)
  } finally {
    client.end().catch(() => {})
  }
}

async function main() {
  let failed = 0
  for (const [name, fn] of CASES) {
    try {
      await withTimeout(runCase(fn), CASE_TIMEOUT_MS)
      console.log(`ok ${name}`)
    } catch (err) {
      failed++
      const why =
        err instanceof pg.DatabaseError
          ? `${err.message} (SQLSTATE ${err.code})`
          : `${err && err.message}${err && err.code ? ` (${err.code})` : ''}`
      console.log(`FAIL ${name}: ${oneLine(why)}`)
    }
  }
  return failed === 0 ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(oneLine(err && err.stack))
    process.exit(1)
  },
)
