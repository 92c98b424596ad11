import { describe, it, expect } from 'vitest'
import { createHash } from 'node:crypto'
import { datasetVerifiers, selectNodes, type Candidate, type TaskRequirements } from '../../../protocols/execution/selection.js'
import type { TableEntry } from '../../../protocols/liveness/committee.js'

const key = (n: number): Uint8Array => createHash('sha256').update(`key${n}`).digest()
const seedOf = (s: string): Uint8Array => createHash('sha256').update(s).digest()

function live (peerId: string, over: Partial<TableEntry> = {}): TableEntry {
  return { peerId, status: 'available', bootEpoch: 1, seq: 1, capacity: { taskSlots: 1, freeSlots: 1, freeMemoryBytes: 1 }, hardware: { cpuModel: 'c', cpuCores: 1, ramBytes: 1, gpus: [] }, specializations: ['t'], datasets: [], software: '1', ...over }
}

function candidate (n: number, stake = 100n, over: Partial<Candidate> = {}, liveOver: Partial<TableEntry> = {}): Candidate {
  const peerId = `peer-${n}`
  return { peerId, publicKey: key(n), liveness: live(peerId, liveOver), registration: { stake, specializations: new Set(['t']), slashed: false, paymentsInFlight: 0n }, ...over }
}

const task: TaskRequirements = { taskId: 't', vramBytes: 0, gpu: 'none', datasets: [], payment: 10n }
const rules = { minStake: 50n, minStakeRatio: 2 }

describe('node selection', () => {
  it('is a pure function of its inputs, independent of candidate order', () => {
    const cs = [1, 2, 3, 4, 5].map(n => candidate(n))
    const a = selectNodes(cs, task, seedOf('s'), new Set(), rules, 3)
    const b = selectNodes([...cs].reverse(), task, seedOf('s'), new Set(), rules, 3)
    expect(a.ranked).toEqual(b.ranked)
    expect(a.ranked).toHaveLength(3)
    expect(new Set(a.ranked).size).toBe(3)
  })

  it('changes with the seed', () => {
    const cs = [1, 2, 3, 4, 5, 6, 7, 8].map(n => candidate(n))
    const firsts = new Set(Array.from({ length: 40 }, (_, i) => selectNodes(cs, task, seedOf(`s${i}`), new Set(), rules, 1).ranked[0]))
    expect(firsts.size).toBeGreaterThan(4)
  })

  it('weights the draw by stake', () => {
    const cs = [candidate(1, 900n), candidate(2, 100n)]
    let heavy = 0
    const draws = 4000
    for (let i = 0; i < draws; i++) if (selectNodes(cs, task, seedOf(`w${i}`), new Set(), rules, 1).ranked[0] === 'peer-1') heavy++
    // expected 90%; 4000 draws put 3 standard deviations at about ±1.4%
    expect(heavy / draws).toBeGreaterThan(0.88)
    expect(heavy / draws).toBeLessThan(0.92)
  })

  it('leaves out ineligible nodes and says why', () => {
    const cs = [
      candidate(1),
      candidate(2, 100n, {}, { status: 'offline' }),
      candidate(3, 10n),
      candidate(4, 100n, { registration: undefined }),
      candidate(5, 100n, { liveness: undefined }),
      candidate(6, 100n, {}, { capacity: { taskSlots: 1, freeSlots: 0, freeMemoryBytes: 0 } }),
      candidate(7, 100n, { registration: { stake: 100n, specializations: new Set(['other']), slashed: false, paymentsInFlight: 0n } }),
      candidate(8, 100n, { registration: { stake: 100n, specializations: new Set(['t']), slashed: true, paymentsInFlight: 0n } }),
      candidate(9, 100n, { registration: { stake: 100n, specializations: new Set(['t']), slashed: false, paymentsInFlight: 45n } }),
      candidate(10)
    ]
    const s = selectNodes(cs, task, seedOf('x'), new Set(['peer-10']), rules, 5)
    expect(s.eligible).toEqual(['peer-1'])
    expect(s.ranked).toEqual(['peer-1'])
    expect(s.excluded).toEqual({
      'peer-2': 'offline in the certified liveness round',
      'peer-3': 'stake 10 below the minimum 50',
      'peer-4': 'not registered on chain',
      'peer-5': 'not in the certified liveness round',
      'peer-6': 'no free task slot',
      'peer-7': 'not specialized in this task on chain',
      'peer-8': 'slashed',
      'peer-9': 'stake too low for another payment in flight (ratio 2)',
      'peer-10': 'blacklisted for this task'
    })
  })

  it('needs a GPU with enough VRAM for gpu: required, and the datasets of dataset:// inputs', () => {
    const gpu = { model: 'A100', vramBytes: 80 * 2 ** 30 }
    const cs = [candidate(1), candidate(2, 100n, {}, { hardware: { cpuModel: 'c', cpuCores: 1, ramBytes: 1, gpus: [gpu] }, datasets: ['ds1'] })]
    expect(selectNodes(cs, { ...task, gpu: 'required', vramBytes: 40 * 2 ** 30 }, seedOf('g'), new Set(), rules, 2).ranked).toEqual(['peer-2'])
    expect(selectNodes(cs, { ...task, gpu: 'required', vramBytes: 100 * 2 ** 30 }, seedOf('g'), new Set(), rules, 2).ranked).toEqual([])
    expect(selectNodes(cs, { ...task, datasets: ['ds1'] }, seedOf('g'), new Set(), rules, 2).ranked).toEqual(['peer-2'])
  })
  it('skips nodes the committee counts as busy, and draws among the others as if they were absent', () => {
    const cs = [1, 2, 3, 4].map(n => candidate(n))
    const busy = new Set(['peer-2', 'peer-3'])
    for (let i = 0; i < 50; i++) {
      const withBusy = selectNodes(cs, task, seedOf(`b${i}`), new Set(), { ...rules, busy }, 3)
      const without = selectNodes(cs.filter(c => !busy.has(c.peerId)), task, seedOf(`b${i}`), new Set(), rules, 3)
      expect(withBusy.ranked).toEqual(without.ranked)
      expect(withBusy.excluded).toEqual({ 'peer-2': 'busy: every task slot holds an open assignment', 'peer-3': 'busy: every task slot holds an open assignment' })
    }
    expect(selectNodes(cs, task, seedOf('all'), new Set(), { ...rules, busy: new Set(cs.map(c => c.peerId)) }, 3).ranked).toEqual([])
  })
})

describe('dataset verifiers (who could re-execute a dataset:// task)', () => {
  const D = 'a'.repeat(64)
  const holder = (n: number, over: Partial<TableEntry> = {}, regOver: Partial<Candidate> = {}): Candidate =>
    candidate(n, 100n, regOver, { roles: ['validator'], datasets: [D], ...over })

  it('is empty when only the asserter holds the dataset', () => {
    const cs = [candidate(1, 100n, {}, { roles: ['node'], datasets: [D] }), holder(2, { datasets: [] }), candidate(3, 100n, {}, { roles: ['node'], datasets: [] })]
    expect(datasetVerifiers(cs, { taskId: 't', datasets: [D] }, 'peer-1', new Set(), 50n)).toEqual([])
  })

  it('names every validator other than the asserter that holds all the datasets, whatever its load', () => {
    const busy = holder(3, { capacity: { taskSlots: 1, freeSlots: 0, freeMemoryBytes: 0 } })
    const cs = [candidate(1, 100n, {}, { roles: ['node'], datasets: [D] }), holder(2), busy]
    expect(datasetVerifiers(cs, { taskId: 't', datasets: [D] }, 'peer-1', new Set(), 50n)).toEqual(['peer-2', 'peer-3'])
  })

  it('leaves out nodes without the validator role, the blacklisted, offline, slashed, understaked or unspecialized ones, and those missing one dataset', () => {
    const E = 'b'.repeat(64)
    const cs = [
      holder(2, { roles: ['node'] }),
      holder(3),
      holder(4, { status: 'offline' }),
      holder(5, {}, { registration: { stake: 100n, specializations: new Set(['t']), slashed: true, paymentsInFlight: 0n } }),
      holder(6, {}, { registration: { stake: 10n, specializations: new Set(['t']), slashed: false, paymentsInFlight: 0n } }),
      holder(7, { specializations: [] }),
      holder(8, {}, { registration: { stake: 100n, specializations: new Set(['other']), slashed: false, paymentsInFlight: 0n } }),
      holder(9, { datasets: [D] }),
      holder(10, { datasets: [D, E] })
    ]
    expect(datasetVerifiers(cs, { taskId: 't', datasets: [D, E] }, 'peer-1', new Set(['peer-3']), 50n)).toEqual(['peer-10'])
  })
})
