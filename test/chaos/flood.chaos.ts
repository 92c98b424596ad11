import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { randomBytes } from 'node:crypto'
import { ChaosNet } from './lib.js'
import { Rng } from '../fuzz/lib.js'

/**
 * One daemon floods every gossip topic with invalid messages — forged signatures, replays of valid
 * messages, oversized and garbage payloads — at a bounded rate while an execution runs and while a
 * burst of executions is requested.
 */
const c = new ChaosNet('flood')
beforeAll(async () => { await c.up() }, 240_000)
afterAll(async () => { await c.down() })

const TOPICS = ['liveness', 'committee', 'execution', 'probe'] as const

async function rejected (name: string): Promise<number> {
  const text = await (await fetch(c.byName(name).metricsUrl!)).text()
  let n = 0
  for (const line of text.split('\n')) if (line.startsWith('bitflow_gossip_messages_total{') && line.includes('verdict="reject"')) n += Number(line.split(' ').at(-1))
  return n
}

describe('chaos: flood and burst', () => {
  it('invalid gossip at a bounded rate (20 msg/s for 20 s) changes nothing: the execution completes, everybody answers', async () => {
    const flooder = c.client('node-3')
    const before = await rejected('oracle-1')
    // a valid message to replay: a probe from the flooder, and the execution request once announced
    await flooder.publishProbe({ count: 1 })
    const rng = new Rng(0xf100d, 'chaos-flood')
    await c.request('chaos-flood')
    const kinds = ['forged', 'oversized', 'garbage', 'replay'] as const
    const started = Date.now()
    let sent = 0
    for (let i = 0; i < 400 && Date.now() - started < 25_000; i++) {
      const topic = TOPICS[i % TOPICS.length]!
      const kind = kinds[rng.u32() % kinds.length]!
      let data: Uint8Array
      if (kind === 'oversized') data = randomBytes(600 * 1024)
      else if (kind === 'garbage') data = randomBytes(1 + rng.u32() % 2000)
      else if (kind === 'forged') data = new TextEncoder().encode(JSON.stringify({ body: { v: 1, peerId: c.byName('node-1').peerId, seq: i, timestampMs: Date.now() }, sig: randomBytes(64).toString('base64') }))
      else data = new TextEncoder().encode(JSON.stringify({ type: 'execution-request', body: { v: 1, executionId: 'chaos-flood', modelId: c.demo.modelId, inputs: c.demo.inputs, requester: c.byName('oracle-1').peerId, fee: '1', requestSlot: 1, timestampMs: Date.now() }, sig: randomBytes(64).toString('base64') }))
      await flooder.call('bitflow_debugPublish', [topic, Buffer.from(data).toString('base64')]).catch(() => {})
      sent++
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    expect(sent).toBeGreaterThan(100)
    expect(await rejected('oracle-1')).toBeGreaterThan(before)
    const s = await c.expectCorrect('chaos-flood')
    expect(s.taskStatuses.every(t => t.status === 'VERIFIED')).toBe(true)
    await c.expectBooksBalance(['chaos-flood'])
    await c.expectAllAnswer()
  }, 300_000)

  it('a burst of 50 execution requests: every one is escrowed, runs and completes correctly', async () => {
    const ids = Array.from({ length: 50 }, (_, i) => `chaos-burst-${i}`)
    const clients = ['oracle-1', 'oracle-2', 'oracle-3', 'oracle-4'].map(n => c.client(n))
    await Promise.all(ids.map(async (id, i) => {
      await clients[i % clients.length]!.call('bitflow_requestExecution', [{ modelId: c.demo.modelId, inputs: c.demo.inputs, maxFee: '100000', executionId: id }])
    }))
    for (const id of ids) {
      const s = await c.finished(id, 900_000, clients[ids.indexOf(id) % clients.length]!)
      expect(s.overallStatus, `${id}: ${s.reason}`).toBe('completed')
    }
    // one output, the reference, for all of them
    const outputs = new Set<string>()
    for (const id of ids) outputs.add((await c.status(id, clients[ids.indexOf(id) % clients.length]!)).outputUris.y!)
    expect(outputs.size).toBe(1)
    await c.expectCorrect(ids[0]!)
    await c.expectBooksBalance(['chaos-flood', ...ids])
    await c.expectAllAnswer()
  }, 1_000_000)
})
