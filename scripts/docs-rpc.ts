import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { BitflowDaemon } from '../daemon/node.js'
import { resolveOptions } from '../daemon/options.js'
import { createLogger } from '../daemon/logger.js'
import { BitflowClient } from '../daemon/rpc/client.js'
import { openrpcToMarkdown, RPC_DOCS_BEGIN, RPC_DOCS_END } from '../daemon/rpc/docs.js'
import { projectRoot } from '../daemon/paths.js'

/** Regenerates the JSON-RPC reference in README.md from a running daemon's rpc.discover. */
const dir = mkdtempSync(join(tmpdir(), 'bitflow-docs-'))
const genesisFile = join(dir, 'genesis.json')
writeFileSync(genesisFile, JSON.stringify({ network: 'local', createdAt: '2026-01-01T00:00:00Z', committee: [], admittedNodes: [] }))
const { options, preset } = resolveOptions({ flags: { dataDir: join(dir, 'd'), genesisFile, rpc: { port: 0 }, metrics: { enabled: false }, roles: ['oracle', 'node', 'validator'] }, env: {} })
const daemon = new BitflowDaemon(options, preset, createLogger('silent'))
try {
  const info = await daemon.start()
  const doc = await new BitflowClient(info.rpcUrl).discover()
  const readmePath = join(projectRoot(), 'README.md')
  const readme = readFileSync(readmePath, 'utf8')
  const begin = readme.indexOf(RPC_DOCS_BEGIN)
  const end = readme.indexOf(RPC_DOCS_END)
  if (begin < 0 || end < 0) throw new Error('README.md has no rpc-reference markers')
  writeFileSync(readmePath, readme.slice(0, begin) + openrpcToMarkdown(doc) + readme.slice(end + RPC_DOCS_END.length))
  console.log(`README.md: JSON-RPC reference regenerated (${doc.methods.length} methods)`)
} finally {
  await daemon.stop()
  rmSync(dir, { recursive: true, force: true })
}
