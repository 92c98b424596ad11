import { describe, it, expect } from 'vitest'
import { Identity } from '../../../daemon/identity.js'
import { ed25519Verify } from '../../../protocols/ed25519.js'
import { encodeHeartbeat, validateHeartbeat, type HeartbeatBody, type HeartbeatContext } from '../../../protocols/liveness/heartbeat.js'
import { LivenessTable, PeerRateLimiter } from '../../../protocols/liveness/table.js'
import { mergeViews, CommitteeRounds, tableHash, validateCommitteeMessage, encodeCommitteeMessage, type TableEntry, type ViewBody } from '../../../protocols/liveness/committee.js'
import { specializationCid } from '../../../protocols/liveness/discovery.js'
import { publicKeyOfPeer } from '../../../daemon/services/liveness.js'
import { parseSimulatedGpu, parseNvidiaSmi } from '../../../daemon/hardware.js'
import { resolveOptions } from '../../../daemon/options.js'

const GENESIS = 'a'.repeat(64)
const node = Identity.generate()
const other = Identity.generate()
const peer = node.peerId.toString()

function body (over: Partial<HeartbeatBody> = {}): HeartbeatBody {
  return {
    v: 1, peerId: peer, bootEpoch: 1, seq: 1, timestampMs: 1_000_000, status: 'available',
    capacity: { taskSlots: 2, freeSlots: 2, freeMemoryBytes: 1024 },
    hardware: { cpuModel: 'cpu', cpuCores: 2, ramBytes: 4096, gpus: [] },
    specializations: ['task-a'], datasets: [], software: '0.1.0', ...over
  }
}

function ctx (over: Partial<HeartbeatContext> = {}): HeartbeatContext {
  return {
    genesisHash: GENESIS, nowMs: 1_000_000, clockWindowMs: 30_000, publicKeyOf: publicKeyOfPeer, verify: ed25519Verify,
    isAdmitted: () => true, lastSeen: () => undefined, takeRateToken: () => true, reorderToleranceMs: 2000, ...over
  }
}

const sign = (b: HeartbeatBody, id = node, genesis = GENESIS): Uint8Array => encodeHeartbeat(b, genesis, m => id.sign(m))

describe('heartbeat validation', () => {
  it('accepts a well-formed heartbeat signed by its subject', () => {
    const v = validateHeartbeat(sign(body()), peer, ctx())
    expect(v.result).toBe('accept')
  })

  it('rejects forgeries, other networks, malformed and oversized messages', () => {
    expect(validateHeartbeat(sign(body(), other), peer, ctx()).result).toBe('reject') // wrong key
    expect(validateHeartbeat(sign(body()), other.peerId.toString(), ctx()).result).toBe('reject') // relayed as someone else's
    expect(validateHeartbeat(sign(body(), node, 'b'.repeat(64)), peer, ctx()).result).toBe('reject') // signed for another genesis
    expect(validateHeartbeat(new TextEncoder().encode('{"body":'), peer, ctx()).result).toBe('reject')
    expect(validateHeartbeat(new Uint8Array([0xff, 0xfe]), peer, ctx()).result).toBe('reject')
    expect(validateHeartbeat(new Uint8Array(9000), peer, ctx()).result).toBe('reject')
    const bad = JSON.parse(new TextDecoder().decode(sign(body())))
    bad.body.status = 'asleep'
    expect(validateHeartbeat(new TextEncoder().encode(JSON.stringify(bad)), peer, ctx()).result).toBe('reject')
    bad.body.status = 'busy' // valid schema again, but the signature covered 'available'
    expect(validateHeartbeat(new TextEncoder().encode(JSON.stringify(bad)), peer, ctx()).result).toBe('reject')
  })

  it('ignores what is stale, unadmitted or a duplicate; rejects replays and floods', () => {
    expect(validateHeartbeat(sign(body({ timestampMs: 900_000 })), peer, ctx()).result).toBe('ignore')
    expect(validateHeartbeat(sign(body()), peer, ctx({ isAdmitted: () => false })).result).toBe('ignore')
    const seen = { bootEpoch: 2, seq: 5, timestampMs: 1_000_000 }
    expect(validateHeartbeat(sign(body({ bootEpoch: 2, seq: 5 })), peer, ctx({ lastSeen: () => seen })).result).toBe('ignore')
    expect(validateHeartbeat(sign(body({ bootEpoch: 2, seq: 4, timestampMs: 999_000 })), peer, ctx({ lastSeen: () => seen })).result).toBe('ignore') // reordered
    expect(validateHeartbeat(sign(body({ bootEpoch: 1, seq: 99 })), peer, ctx({ lastSeen: () => seen })).result).toBe('reject') // old epoch: replay
    expect(validateHeartbeat(sign(body({ bootEpoch: 2, seq: 1, timestampMs: 990_000 })), peer, ctx({ lastSeen: () => seen })).result).toBe('reject')
    expect(validateHeartbeat(sign(body({ bootEpoch: 3, seq: 1 })), peer, ctx({ lastSeen: () => seen })).result).toBe('accept') // restarted node
    expect(validateHeartbeat(sign(body()), peer, ctx({ takeRateToken: () => false })).result).toBe('reject')
  })
})

describe('liveness table', () => {
  const rules = { heartbeatIntervalMs: 1000, missedBeats: 3, beatsToRecover: 2 }

  it('marks a node offline after 3 missed heartbeats', () => {
    const t = new LivenessTable(rules)
    expect(t.record(body({ seq: 1 }), 0)?.to).toBe('available')
    expect(t.sweep(3000)).toEqual([])
    const changes = t.sweep(3001)
    expect(changes.map(c => [c.from, c.to])).toEqual([['available', 'offline']])
    expect(t.get(peer)?.status).toBe('offline')
  })

  it('has hysteresis: an offline node needs 2 heartbeats in a row to come back', () => {
    const t = new LivenessTable(rules)
    t.record(body({ seq: 1 }), 0)
    t.sweep(5000)
    expect(t.record(body({ seq: 2 }), 6000)).toBeUndefined()
    expect(t.get(peer)?.status).toBe('offline')
    // a gap longer than the allowed one restarts the streak
    expect(t.record(body({ seq: 3 }), 10_000)).toBeUndefined()
    expect(t.record(body({ seq: 4 }), 11_000)?.to).toBe('available')
  })

  it('reports the node\'s own status changes', () => {
    const t = new LivenessTable(rules)
    t.record(body({ seq: 1 }), 0)
    expect(t.record(body({ seq: 2, status: 'busy' }), 1000)?.to).toBe('busy')
    expect(t.record(body({ seq: 3, status: 'busy' }), 2000)).toBeUndefined()
  })

  it('rate limiter allows a burst then one per period', () => {
    const r = new PeerRateLimiter(3, 500)
    expect([r.take('p', 0), r.take('p', 0), r.take('p', 0), r.take('p', 0)]).toEqual([true, true, true, false])
    expect(r.take('p', 499)).toBe(false)
    expect(r.take('p', 600)).toBe(true)
    expect(r.take('q', 0)).toBe(true)
  })
})

function entry (peerId: string, seq: number, status: TableEntry['status'] = 'available', bootEpoch = 1): TableEntry {
  return { peerId, status, bootEpoch, seq, capacity: { taskSlots: 1, freeSlots: 1, freeMemoryBytes: seq }, hardware: { cpuModel: 'c', cpuCores: 1, ramBytes: 1, gpus: [] }, specializations: [], datasets: [], software: '1' }
}
const view = (oracle: string, entries: TableEntry[], round = 7): ViewBody => ({ v: 1, round, oracle, entries })

describe('committee merge rule', () => {
  it('includes a node seen by a threshold of views, with the highest record a threshold reached', () => {
    const table = mergeViews([
      view('o1', [entry('A', 10), entry('B', 3)]),
      view('o2', [entry('A', 11)]),
      view('o3', [entry('A', 12), entry('B', 4)])
    ], 2)
    expect(table.map(e => [e.peerId, e.seq, e.status])).toEqual([['A', 11, 'available'], ['B', 3, 'available']])
  })

  it('drops nodes below the threshold and marks offline ones', () => {
    const table = mergeViews([
      view('o1', [entry('A', 1), entry('C', 9, 'offline')]),
      view('o2', [entry('A', 1, 'offline'), entry('C', 9, 'offline')]),
      view('o3', [entry('B', 1)])
    ], 2)
    expect(table.map(e => [e.peerId, e.status])).toEqual([['A', 'offline'], ['C', 'offline']])
  })

  it('is independent of the order of views and of entries', () => {
    const vs = [view('o1', [entry('A', 2), entry('B', 5)]), view('o2', [entry('B', 6), entry('A', 3)]), view('o3', [entry('A', 4)])]
    const h = (t: TableEntry[]): string => tableHash(7, GENESIS, t)
    expect(h(mergeViews(vs, 2))).toBe(h(mergeViews([...vs].reverse(), 2)))
    expect(h(mergeViews(vs, 2))).not.toBe(h(mergeViews(vs.slice(0, 2), 2)))
  })

  it('certifies with threshold matching votes and ignores equivocators for the round', () => {
    const rounds = new CommitteeRounds(3)
    const table = mergeViews([view('o1', [entry('A', 1)]), view('o2', [entry('A', 1)]), view('o3', [entry('A', 1)])], 3)
    const hash = tableHash(7, GENESIS, table)
    const cert = (oracle: string, h = hash, t = table): any => ({ v: 1, round: 7, oracle, tableHash: h, merged: [], table: t })
    expect(rounds.addView(view('o4', [entry('A', 1)]))).toBe('added')
    expect(rounds.addView(view('o4', []))).toBe('equivocation')
    expect(rounds.views(7).map(v => v.oracle)).toEqual([])
    rounds.addCert(cert('o1'))
    rounds.addCert(cert('o2'))
    rounds.addCert(cert('o4'))
    expect(rounds.certified(7)).toBeUndefined() // o4 is ignored for round 7
    rounds.addCert(cert('o3'))
    expect(rounds.certified(7)?.signers).toEqual(['o1', 'o2', 'o3'])
    expect(rounds.equivocators(7)).toEqual(['o4'])
    // a member voting twice differently loses its vote
    expect(rounds.addCert(cert('o3', 'f'.repeat(64), []))).toBe('equivocation')
    expect(rounds.certified(7)).toBeUndefined()
  })

  it('validates committee messages: members only, signed for this network, table matching its hash', () => {
    const oracle = Identity.generate()
    const id = oracle.peerId.toString()
    const c = { genesisHash: GENESIS, members: new Set([id]), currentRound: 7, publicKeyOf: publicKeyOfPeer, verify: ed25519Verify }
    const table = [entry('A', 1)]
    const good = encodeCommitteeMessage({ type: 'cert', body: { v: 1, round: 7, oracle: id, tableHash: tableHash(7, GENESIS, table), merged: [id], table } }, GENESIS, m => oracle.sign(m))
    expect(validateCommitteeMessage(good, id, c).result).toBe('accept')
    expect(validateCommitteeMessage(good, id, { ...c, members: new Set() }).result).toBe('reject')
    expect(validateCommitteeMessage(good, id, { ...c, genesisHash: 'b'.repeat(64) }).result).toBe('reject')
    expect(validateCommitteeMessage(good, id, { ...c, currentRound: 20 }).result).toBe('ignore')
    const lying = encodeCommitteeMessage({ type: 'cert', body: { v: 1, round: 7, oracle: id, tableHash: 'f'.repeat(64), merged: [id], table } }, GENESIS, m => oracle.sign(m))
    expect(validateCommitteeMessage(lying, id, c).result).toBe('reject')
  })
})

describe('discovery and hardware', () => {
  it('derives distinct, stable DHT keys per network and task', () => {
    expect(specializationCid('local', 'task-a').toString()).toBe(specializationCid('local', 'task-a').toString())
    expect(specializationCid('local', 'task-a').toString()).not.toBe(specializationCid('devnet', 'task-a').toString())
    expect(specializationCid('local', 'task-a').toString()).not.toBe(specializationCid('local', 'task-b').toString())
  })

  it('parses --simulate-gpu and nvidia-smi output', () => {
    expect(parseSimulatedGpu('A100:80GiB')).toEqual({ model: 'A100', vramBytes: 80 * 2 ** 30, simulated: true })
    expect(parseSimulatedGpu('RTX 4090:24576')).toEqual({ model: 'RTX 4090', vramBytes: 24576 * 2 ** 20, simulated: true })
    expect(() => parseSimulatedGpu('A100')).toThrow(/MODEL:VRAM/)
    expect(parseNvidiaSmi('NVIDIA A100-SXM4-80GB, 81920\nTesla T4, 15360\n')).toEqual([
      { model: 'NVIDIA A100-SXM4-80GB', vramBytes: 81920 * 2 ** 20 }, { model: 'Tesla T4', vramBytes: 15360 * 2 ** 20 }
    ])
  })

  it('refuses --simulate-gpu and --byzantine outside local networks', () => {
    expect(() => resolveOptions({ flags: { network: 'devnet', node: { simulateGpu: 'A100:80GiB' } }, env: {} })).toThrow(/local networks only/)
    expect(() => resolveOptions({ flags: { network: 'mainnet', byzantine: 'equivocate' }, env: {} })).toThrow(/local networks only/)
    expect(resolveOptions({ flags: { node: { simulateGpu: 'A100:80GiB' } }, env: {} }).options.node.simulateGpu).toBe('A100:80GiB')
  })
})
