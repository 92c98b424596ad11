import { describe, it, expect } from 'vitest'
import { createHash } from 'node:crypto'
import { isSampled, paramsAreSafe, type Params } from '../../../programs/client/index.js'
import { assertSafeParams, safetyCondition, safetyFromParams, samplingBounds, type SafetyParams } from '../../../protocols/execution/sampling.js'
import { ExecutionError } from '../../../protocols/execution/errors.js'

const h = (s: string): Uint8Array => new Uint8Array(createHash('sha256').update(s).digest())

const defaults: SafetyParams = { samplingPpm: 80_000, computeCostBps: 10_000, collusionBps: 1_000, validatorRewardBps: 12_000, slashBps: 10_000, minStakeRatioBps: 20_000 }

describe('Proof of Sampling safety condition', () => {
  it('computes the threshold and margin, and explains with the numbers', () => {
    const c = safetyCondition({ p: 0.08, computeCost: 1, collusion: 0.1, reward: 1.2, slash: 2 })
    expect(c.threshold).toBeCloseTo(1 / (0.9 * 3.2), 12)
    expect(c.margin).toBeCloseTo(0.08 - 1 / 2.88, 12)
    expect(c.safe).toBe(false)
    expect(c.explanation).toContain('0.08 <= 1 / ((1 - 0.1)(1.2 + 2)) = 0.347222')
    expect(c.explanation).toMatch(/unsafe by 0\.267222: raise p above 0\.347222/)
    const ok = safetyCondition({ p: 0.08, computeCost: 1, collusion: 0.1, reward: 1.2, slash: 20 })
    expect(ok.safe).toBe(true)
    expect(ok.margin).toBeCloseTo(0.08 - 1 / (0.9 * 21.2), 12)
    expect(ok.explanation).toMatch(/safe, margin 0\.0275891/)
    expect(safetyCondition({ p: 1, computeCost: 1, collusion: 1, reward: 1, slash: 1 })).toMatchObject({ safe: false, threshold: Infinity })
  })

  it('gives the same verdict as the settlement program on on-chain parameters', () => {
    let s = 12345
    const rnd = (n: number): number => { s = (Math.imul(s, 1103515245) + 12345) >>> 0; return s % n }
    let safe = 0
    for (let i = 0; i < 2000; i++) {
      const p: SafetyParams = { samplingPpm: rnd(1_000_001), computeCostBps: rnd(30_000), collusionBps: rnd(10_001), validatorRewardBps: rnd(30_000), slashBps: rnd(10_001), minStakeRatioBps: rnd(200_000) }
      const mine = safetyFromParams(p).safe
      expect(mine).toBe(paramsAreSafe(p as unknown as Params))
      if (mine) safe++
    }
    expect(safe).toBeGreaterThan(100)
    expect(safe).toBeLessThan(1900)
  })

  it('refuses unsafe parameters with an explanation, accepts safe ones', () => {
    expect(assertSafeParams({ ...defaults, minStakeRatioBps: 150_000 }, 'local').safe).toBe(true)
    try {
      assertSafeParams(defaults, 'devnet')
      expect.unreachable()
    } catch (e) {
      expect(e).toBeInstanceOf(ExecutionError)
      expect((e as ExecutionError).code).toBe('ERR_EXECUTION_UNSAFE_PARAMS')
      expect((e as Error).message).toMatch(/refusing to run network 'devnet'.*0\.08 <= 1 \/ \(\(1 - 0\.1\)\(1\.2 \+ 2\)\)/)
    }
    expect(() => safetyFromParams({ ...defaults, samplingPpm: 2_000_000 })).toThrow(ExecutionError)
    expect(() => safetyCondition({ p: -1, computeCost: 1, collusion: 0, reward: 1, slash: 1 })).toThrow(ExecutionError)
  })
})

describe('sampling decisions (programs/client isSampled)', () => {
  const genesisHash = h('genesis')
  const draw = (i: number) => ({ genesisHash, executionId: h(`exec-${i}`), taskId: h(`task-${i % 7}`), attempt: i % 3, slot: BigInt(1000 + i), slotHash: h(`slot-${i}`) })

  it('samples about p = 0.08 of 20,000 decisions, within binomial bounds', () => {
    const n = 20_000
    let sampled = 0
    for (let i = 0; i < n; i++) if (isSampled(draw(i), h(`commit-${i}`), 80_000)) sampled++
    const b = samplingBounds(n, 0.08)
    expect(b.expected).toBe(1600)
    expect(b.low).toBeGreaterThan(1400)
    expect(b.high).toBeLessThan(1800)
    expect(sampled).toBeGreaterThanOrEqual(b.low)
    expect(sampled).toBeLessThanOrEqual(b.high)
    // and not trivially constant across halves of the sample
    let firstHalf = 0
    for (let i = 0; i < n / 2; i++) if (isSampled(draw(i), h(`commit-${i}`), 80_000)) firstHalf++
    const half = samplingBounds(n / 2, 0.08)
    expect(firstHalf).toBeGreaterThanOrEqual(half.low)
    expect(firstHalf).toBeLessThanOrEqual(half.high)
  })

  it('depends on the slot hash, so a node cannot know the decision when it commits', () => {
    let changed = 0
    for (let i = 0; i < 2000; i++) {
      const a = isSampled(draw(i), h(`c${i}`), 500_000)
      const b = isSampled({ ...draw(i), slotHash: h(`other-${i}`) }, h(`c${i}`), 500_000)
      if (a !== b) changed++
    }
    expect(changed).toBeGreaterThan(850) // about half
    expect(changed).toBeLessThan(1150)
  })

  it('never samples at p = 0 and always at p = 1', () => {
    for (let i = 0; i < 500; i++) {
      expect(isSampled(draw(i), h(`c${i}`), 0)).toBe(false)
      expect(isSampled(draw(i), h(`c${i}`), 1_000_000)).toBe(true)
    }
  })
})
