import { describe, it, expect } from 'vitest'
import { attemptKey, submitSchedule, submitterAt, submitterOrder, VoteCollector } from '../../../protocols/execution/votes.js'
import type { AssignmentVote, AssignmentVoteBody } from '../../../protocols/execution/messages.js'
import { ExecutionError } from '../../../protocols/execution/errors.js'

const members = ['o1', 'o2', 'o3', 'o4']
const T = 'model/1'

function vote (oracle: string, digestChar: string, over: Partial<AssignmentVoteBody> = {}): AssignmentVote {
  const body: AssignmentVoteBody = {
    v: 1, oracle, committeeEpoch: '0', executionId: 'e1', taskId: T, attempt: 0, ballot: 0, kind: 'primary', node: 'n1', blacklist: [],
    seedSlot: 10, seed: '00'.repeat(32), livenessRound: 5, computeUnits: 100, expirySlot: 200, selection: { ranked: ['n1'], eligible: 1 },
    digest: digestChar.repeat(64), ...over
  }
  return { body, digestSig: new Uint8Array(64).fill(oracle.charCodeAt(1)) }
}

describe('vote collection', () => {
  it('reaches a quorum at the threshold of matching digests, with signatures in committee order', () => {
    const c = new VoteCollector(members, 3)
    expect(c.add(vote('o3', 'a'))).toBe('added')
    expect(c.add(vote('o1', 'a'))).toBe('added')
    expect(c.quorum('e1', T, 0)).toBeUndefined()
    expect(c.tally('e1', T, 0, 0)).toMatchObject({ status: 'collecting', missing: ['o2', 'o4'] })
    expect(c.add(vote('o3', 'a'))).toBe('duplicate')
    expect(c.add(vote('o2', 'a'))).toBe('added')
    const q = c.quorum('e1', T, 0)!
    expect(q).toMatchObject({ executionId: 'e1', taskId: T, attempt: 0, ballot: 0, digest: 'a'.repeat(64) })
    expect(q.signatures.map(s => s.oracle)).toEqual(['o1', 'o2', 'o3'])
    expect(q.signatures[1]!.signature[0]).toBe('2'.charCodeAt(0))
    expect(c.tally('e1', T, 0, 0).status).toBe('quorum')
  })

  it('does not count votes for another digest, attempt or execution towards the quorum', () => {
    const c = new VoteCollector(members, 3)
    c.add(vote('o1', 'a'))
    c.add(vote('o2', 'a'))
    c.add(vote('o3', 'b'))
    c.add(vote('o4', 'a', { attempt: 1 }))
    c.add(vote('o4', 'a', { executionId: 'e2' }))
    expect(c.quorum('e1', T, 0)).toBeUndefined()
    expect(c.tally('e1', T, 0, 0).digests).toEqual([{ digest: 'a'.repeat(64), oracles: ['o1', 'o2'] }, { digest: 'b'.repeat(64), oracles: ['o3'] }])
    c.add(vote('o4', 'a'))
    expect(c.quorum('e1', T, 0)!.signatures.map(s => s.oracle)).toEqual(['o1', 'o2', 'o4'])
  })

  it('ignores an equivocating oracle for the attempt, in that ballot, and reports it', () => {
    const c = new VoteCollector(members, 3)
    c.add(vote('o1', 'a'))
    c.add(vote('o2', 'a'))
    expect(c.add(vote('o2', 'b'))).toBe('equivocation')
    expect(c.add(vote('o2', 'a'))).toBe('equivocation') // its first vote does not come back
    expect(c.add(vote('o3', 'a'))).toBe('added')
    expect(c.quorum('e1', T, 0)).toBeUndefined() // o1 + o3 only
    expect(c.equivocators('e1', T, 0)).toEqual(['o2'])
    expect(c.tally('e1', T, 0, 0)).toMatchObject({ status: 'collecting', missing: ['o4'], equivocators: ['o2'] })
    c.add(vote('o4', 'a'))
    expect(c.quorum('e1', T, 0)!.signatures.map(s => s.oracle)).toEqual(['o1', 'o3', 'o4'])
  })

  it('detects a split ballot, and a later ballot can still reach a quorum without equivocation', () => {
    const c = new VoteCollector(members, 3)
    c.add(vote('o1', 'a'))
    c.add(vote('o2', 'a'))
    c.add(vote('o3', 'b'))
    c.add(vote('o4', 'b'))
    expect(c.tally('e1', T, 0, 0).status).toBe('split')
    for (const o of ['o1', 'o2', 'o3']) expect(c.add(vote(o, 'c', { ballot: 1, livenessRound: 6 }))).toBe('added')
    expect(c.equivocators('e1', T, 0)).toEqual([])
    expect(c.ballots('e1', T, 0)).toEqual([0, 1])
    expect(c.quorum('e1', T, 0)).toMatchObject({ ballot: 1, digest: 'c'.repeat(64) })
  })

  it('refuses non-members and bad thresholds; forgets settled attempts', () => {
    expect(() => new VoteCollector(members, 5)).toThrow(ExecutionError)
    expect(() => new VoteCollector(['a', 'a'], 1)).toThrow(ExecutionError)
    const c = new VoteCollector(members, 3)
    expect(c.add(vote('x9', 'a'))).toBe('not-member')
    c.add(vote('o1', 'a'))
    c.add(vote('o1', 'a', { executionId: 'e2' }))
    c.forgetAttempt('e1', T, 0)
    expect(c.size).toBe(1)
    c.forgetExecution('e2')
    expect(c.size).toBe(0)
  })
})

describe('submitter choice', () => {
  it('is the same permutation on every oracle, whatever order they list the committee in', () => {
    const key = attemptKey('e1', T, 0)
    expect(key).toBe(`e1|${T}|0`)
    const order = submitterOrder(key, members)
    expect([...order].sort()).toEqual(members)
    expect(submitterOrder(key, [...members].reverse())).toEqual(order)
  })

  it('spreads first submitters across attempts', () => {
    const firsts = new Map<string, number>()
    for (let i = 0; i < 400; i++) {
      const f = submitterOrder(attemptKey(`e${i}`, T, 0), members)[0]!
      firsts.set(f, (firsts.get(f) ?? 0) + 1)
    }
    expect(firsts.size).toBe(4)
    for (const n of firsts.values()) expect(n).toBeGreaterThan(60) // 100 expected each
  })

  it('lets exactly one oracle submit at a time, the next taking over after the timeout', () => {
    const key = attemptKey('e1', T, 3)
    const order = submitterOrder(key, members)
    const schedules = members.map(m => ({ m, s: submitSchedule(key, members, m, 1000)! }))
    expect(schedules.map(x => x.s.firstAtMs).sort((a, b) => a - b)).toEqual([0, 1000, 2000, 3000])
    for (const { m, s } of schedules) expect(order[s.rank]).toBe(m)
    expect(schedules[0]!.s.everyMs).toBe(4000)
    expect(submitterAt(key, members, 0, 1000)).toBe(order[0])
    expect(submitterAt(key, members, 999, 1000)).toBe(order[0])
    expect(submitterAt(key, members, 1000, 1000)).toBe(order[1])
    expect(submitterAt(key, members, 4500, 1000)).toBe(order[0]) // wraps around
    expect(submitSchedule(key, members, 'outsider', 1000)).toBeUndefined()
    expect(() => submitSchedule(key, members, 'o1', 0)).toThrow(ExecutionError)
  })
})
