import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { writeFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import WebSocket from 'ws'
import { BitflowDaemon } from '../../../daemon/node.js'
import { resolveOptions } from '../../../daemon/options.js'
import { createLogger } from '../../../daemon/logger.js'
import { BitflowClient } from '../../../daemon/rpc/client.js'
import { tempDir, cleanup, rpcFailure } from '../../helpers/daemon.js'
import { openrpcToMarkdown } from '../../../daemon/rpc/docs.js'
import { projectRoot } from '../../../daemon/paths.js'

const dir = tempDir('rpc')
const genesisFile = join(dir, 'genesis.json')
writeFileSync(genesisFile, JSON.stringify({ network: 'local', createdAt: '2026-01-01T00:00:00Z', committee: [], admittedNodes: [] }))
let daemon: BitflowDaemon
let url: string
let token: string

async function post (body: string, headers: Record<string, string> = {}): Promise<{ status: number, text: string, json: () => any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body })
  const text = await res.text()
  return { status: res.status, text, json: () => JSON.parse(text) }
}

beforeAll(async () => {
  const { options, preset } = resolveOptions({ flags: { dataDir: join(dir, 'd'), genesisFile, rpc: { port: 0 }, metrics: { port: 0 }, roles: ['node'] }, env: {} })
  daemon = new BitflowDaemon(options, preset, createLogger('silent'))
  const info = await daemon.start()
  url = info.rpcUrl
  token = readFileSync(join(dir, 'd', 'rpc.cookie'), 'utf8')
})

afterAll(async () => {
  await daemon?.stop()
  cleanup([], [dir])
})

describe('JSON-RPC framing and errors', () => {
  it('malformed JSON gets -32700 with the parser message', async () => {
    const r = await post('{"jsonrpc":"2.0",')
    expect(r.status).toBe(200)
    expect(r.json().error.code).toBe(-32700)
    expect(r.json().error.message).toMatch(/not valid JSON/)
  })

  it('an unknown method gets -32601 naming it', async () => {
    const r = await post('{"jsonrpc":"2.0","id":7,"method":"bitflow_noSuchMethod"}')
    expect(r.json()).toMatchObject({ id: 7, error: { code: -32601 } })
    expect(r.json().error.message).toContain('bitflow_noSuchMethod')
  })

  it('a request that is not JSON-RPC gets -32600', async () => {
    expect((await post('{"id":1,"method":"bitflow_peers"}')).json().error.code).toBe(-32600)
    expect((await post('[]')).json().error.code).toBe(-32600)
  })

  it('bad params get -32602 naming the param', async () => {
    const client = new BitflowClient(url, { token })
    for (const [params, pattern] of [
      [[42], /param 'multiaddr'.*string/],
      [[], /missing required param 'multiaddr'/],
      [{ addr: 'x' }, /no param 'addr'/],
      [['/ip4/127.0.0.1/tcp/1/p2p/x', 2], /at most 1 params/],
      ['str', /array or an object/]
    ] as const) {
      const err = await rpcFailure(client.call('bitflow_connect', params))
      expect(err.code).toBe(-32602)
      expect(err.message).toMatch(pattern)
    }
    const badAddr = await rpcFailure(client.call('bitflow_connect', ['not-a-multiaddr']))
    expect(badAddr.code).toBe(-32602)
  })

  it('rpc.discover describes exactly the methods the server serves', async () => {
    const doc = await new BitflowClient(url).discover()
    expect(doc.openrpc).toMatch(/^1\./)
    const listed = doc.methods.map(m => m.name).sort()
    expect(listed).toEqual(daemon.rpcMethods)
    for (const required of ['bitflow_nodeInfo', 'bitflow_peers', 'bitflow_connect', 'bitflow_subscribe', 'bitflow_unsubscribe', 'rpc.discover']) {
      expect(listed).toContain(required)
    }
    // every listed method is served (none answers "method not found"), with params and result schemas
    for (const m of doc.methods as Array<{ name: string, params: unknown[], result: { schema: unknown } }>) {
      const r = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: m.name, params: [] }))
      expect(r.json().error?.code, m.name).not.toBe(-32601)
      expect(Array.isArray(m.params)).toBe(true)
      expect(m.result.schema).toBeTypeOf('object')
    }
  })

  it('the README\'s JSON-RPC reference is the one generated from rpc.discover (npm run docs:rpc)', async () => {
    const doc = await new BitflowClient(url).discover()
    expect(readFileSync(join(projectRoot(), 'README.md'), 'utf8')).toContain(openrpcToMarkdown(doc))
  })

  it('batches are answered in full and capped', async () => {
    const r = await post(JSON.stringify([
      { jsonrpc: '2.0', id: 1, method: 'bitflow_nodeInfo' },
      { jsonrpc: '2.0', id: 2, method: 'nope' },
      { jsonrpc: '2.0', method: 'bitflow_peers' } // notification: no reply
    ]))
    const replies = r.json() as Array<{ id: number }>
    expect(replies.map(x => x.id).sort()).toEqual([1, 2])
    const big = Array.from({ length: 51 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'bitflow_peers' }))
    const refused = await post(JSON.stringify(big))
    expect(refused.json().error.code).toBe(-32600)
    expect(refused.json().error.message).toMatch(/batch of 51 exceeds the limit of 50/)
  })

  it('nodeInfo reports identity, roles, network, version, addresses and uptime', async () => {
    const info = await new BitflowClient(url).nodeInfo()
    expect(info.peerId).toBe(daemon.identity.peerId.toString())
    expect(info.solanaAddress).toBe(daemon.identity.solanaAddress)
    expect(info.roles).toEqual(['node'])
    expect(info.network).toBe('local')
    expect(info.version).toMatch(/^\d+\.\d+\.\d+/)
    expect(info.listenAddresses[0]).toMatch(new RegExp(`^/ip4/127.0.0.1/tcp/\\d+/p2p/${info.peerId}$`))
    expect(info.uptimeSeconds).toBeGreaterThanOrEqual(0)
  })
})

describe('browser defences on the loopback API', () => {
  it('refuses a text/plain POST (a form a web page could send)', async () => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"jsonrpc":"2.0","id":1,"method":"bitflow_nodeInfo"}' })
    expect(res.status).toBe(415)
  })

  it('refuses a foreign Origin and a foreign Host (DNS rebinding)', async () => {
    const body = '{"jsonrpc":"2.0","id":1,"method":"bitflow_nodeInfo"}'
    expect((await post(body, { origin: 'https://evil.example' })).status).toBe(403)
    const port = new URL(url).port
    // fetch does not let us forge Host; use a raw request
    const { request } = await import('node:http')
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers: { host: `evil.example:${port}`, 'content-type': 'application/json' } }, res => { res.resume(); resolve(res.statusCode!) })
      req.on('error', reject)
      req.end(body)
    })
    expect(status).toBe(403)
  })

  it('refuses a cross-origin WebSocket', async () => {
    const ws = new WebSocket(url.replace('http', 'ws'), { headers: { origin: 'https://evil.example' } })
    const outcome = await new Promise<string>(resolve => {
      ws.on('open', () => { resolve('open') })
      ws.on('unexpected-response', (_req, res) => { resolve(`http ${res.statusCode}`) })
      ws.on('error', () => { resolve('error') })
    })
    ws.terminate()
    expect(outcome).toBe('http 403')
  })

  it('requires the token for state-changing methods, not for reads', async () => {
    const anonymous = new BitflowClient(url)
    const err = await rpcFailure(anonymous.call('bitflow_publishProbe', [1]))
    expect(err.code).toBe(-32001)
    expect(err.message).toMatch(/rpc\.cookie/)
    const wrong = await rpcFailure(new BitflowClient(url, { token: 'f'.repeat(64) }).call('bitflow_publishProbe', [1]))
    expect(wrong.code).toBe(-32001)
    await expect(anonymous.peers()).resolves.toBeInstanceOf(Array)
    const ok = await new BitflowClient(url, { token }).publishProbe({ count: 1 })
    expect(ok.published).toBe(1)
  })

  it('caps the request size', async () => {
    const r = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'bitflow_peers', params: ['x'.repeat(1024 * 1024 + 10)] }))
    expect(r.status).toBe(413)
  })
})

describe('WebSocket', () => {
  it('answers calls and refuses subscriptions to unknown topics', async () => {
    const socket = await new BitflowClient(url).socket()
    try {
      const info = await socket.call<{ peerId: string }>('bitflow_nodeInfo')
      expect(info.peerId).toBe(daemon.identity.peerId.toString())
      const err = await rpcFailure(socket.subscribe('nonsense', {}, () => {}))
      expect(err.code).toBe(-32602)
      const id = await socket.subscribe('peers', {}, () => {})
      await socket.unsubscribe(id)
      const again = await rpcFailure(socket.unsubscribe(id))
      expect(again.code).toBe(-32004)
    } finally {
      await socket.close()
    }
  })

  it('subscriptions need a WebSocket', async () => {
    const err = await rpcFailure(new BitflowClient(url).call('bitflow_subscribe', ['peers']))
    expect(err.code).toBe(-32600)
  })
})
