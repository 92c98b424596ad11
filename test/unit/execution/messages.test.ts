import { describe, it, expect } from 'vitest'
import { createHash } from 'node:crypto'
import { PublicKey } from '@solana/web3.js'
import { assignmentDigest, blacklistHash, canonicalBlacklist } from '../../../programs/client/index.js'
import { Ed25519Signer, ed25519Verify } from '../../../protocols/ed25519.js'
import {
  encodeAssignmentVote, encodeExecutionMessage, outputRoot, peekMessageType, validateAssignmentVote, validateExecutionMessage, withDigest,
  executionKey, taskKey, modelTaskId, parseModelTaskId,
  type AssignmentDigestFn, type AssignmentVoteBody, type CompletionBody, type ExecutionMessage, type ExecutionTopicContext, type VoteContext
} from '../../../protocols/execution/messages.js'
import { ExecutionError } from '../../../protocols/execution/errors.js'

const GENESIS = 'ab'.repeat(32)
const seed = (s: string): Uint8Array => new Uint8Array(createHash('sha256').update(s).digest())
const signers = new Map(['oracleA', 'oracleB', 'oracleC', 'nodeA', 'nodeB', 'nodeC', 'req'].map(p => [p, new Ed25519Signer(seed(p))]))
const publicKeyOf = (p: string): Uint8Array | undefined => signers.get(p)?.publicKey
const sign = (p: string) => (b: Uint8Array): Uint8Array => signers.get(p)!.sign(b)

const programId = new PublicKey(seed('program'))
const genesisBytes = new Uint8Array(Buffer.from(GENESIS, 'hex'))
/** the daemon's adapter over programs/client */
const digestOf: AssignmentDigestFn = f => assignmentDigest({ ...f, programId, genesisHash: genesisBytes, blacklistHash: blacklistHash(canonicalBlacklist(f.blacklist)) })

const MODEL = 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'
const OUT = 'ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'
const NOW = 1_700_000_000_000

describe('execution and task ids', () => {
  it('maps strings to 32 bytes by the documented rule', () => {
    expect(Buffer.from(executionKey('exec-1')).toString('hex')).toBe(createHash('sha256').update('bitflow/execution-id/v1\nexec-1').digest('hex'))
    expect(Buffer.from(taskKey(`${MODEL}/1`)).toString('hex')).toBe(createHash('sha256').update(`bitflow/task-id/v1\n${MODEL}/1`).digest('hex'))
    expect(executionKey('x')).not.toEqual(taskKey('x'))
    expect(modelTaskId(MODEL, 3)).toBe(`${MODEL}/3`)
    expect(parseModelTaskId(`${MODEL}/3`)).toEqual({ modelId: MODEL, task: 3 })
    expect(parseModelTaskId('plain')).toBeUndefined()
    expect(() => executionKey('has space')).toThrow(ExecutionError)
    expect(() => taskKey('')).toThrow(ExecutionError)
    expect(() => modelTaskId(MODEL, 0)).toThrow(ExecutionError)
  })
})

describe('execution topic messages', () => {
  const ctx = (over: Partial<ExecutionTopicContext> = {}): ExecutionTopicContext => ({
    genesisHash: GENESIS, nowMs: NOW, clockWindowMs: 30_000, currentSlot: 1000, maxRequestAgeSlots: 500, maxSlotsAhead: 4,
    committee: new Set(['oracleA', 'oracleB', 'oracleC']), publicKeyOf, verify: ed25519Verify, ...over
  })
  const request: ExecutionMessage = { type: 'execution-request', body: { v: 1, executionId: 'exec-1', modelId: MODEL, inputs: { x: OUT }, requester: 'req', fee: '18446744073709551615', requestSlot: 990, timestampMs: NOW } }
  const outputs = { y: OUT }
  const completion: CompletionBody = { v: 1, node: 'nodeA', executionId: 'exec-1', taskId: `${MODEL}/1`, attempt: 0, outputs, outputRoot: outputRoot(outputs), startedAtMs: NOW - 500, completedAtMs: NOW - 10, timestampMs: NOW }
  const notice: ExecutionMessage = { type: 'assignment-notice', body: { v: 1, oracle: 'oracleB', executionId: 'exec-1', taskId: `${MODEL}/1`, attempt: 0, kind: 'primary', node: 'nodeA', taskpack: MODEL, inputs: { in: OUT }, computeUnits: 100, assignedSlot: 1000, deadlineMs: NOW + 6000, timestampMs: NOW } }

  it('accepts each kind signed by its author', () => {
    expect(validateExecutionMessage(encodeExecutionMessage(request, GENESIS, sign('req')), ctx())).toEqual({ result: 'accept', value: request })
    expect(validateExecutionMessage(encodeExecutionMessage({ type: 'task-completion', body: completion }, GENESIS, sign('nodeA')), ctx()).result).toBe('accept')
    expect(validateExecutionMessage(encodeExecutionMessage(notice, GENESIS, sign('oracleB')), ctx()).result).toBe('accept')
    const failure: ExecutionMessage = { type: 'task-failure', body: { v: 1, node: 'nodeA', executionId: 'exec-1', taskId: `${MODEL}/1`, attempt: 0, reason: 'exit 1', timestampMs: NOW } }
    expect(validateExecutionMessage(encodeExecutionMessage(failure, GENESIS, sign('nodeA')), ctx()).result).toBe('accept')
    expect(peekMessageType(encodeExecutionMessage(failure, GENESIS, sign('nodeA')))).toBe('task-failure')
  })

  it('rejects a signature by someone else, for another network, or for another kind', () => {
    const r = (data: Uint8Array): string => { const v = validateExecutionMessage(data, ctx()); return v.result === 'accept' ? 'accept' : `${v.result}: ${v.reason}` }
    expect(r(encodeExecutionMessage(request, GENESIS, sign('nodeA')))).toBe('reject: execution-request signature is invalid for this network')
    expect(r(encodeExecutionMessage(request, 'cd'.repeat(32), sign('req')))).toMatch(/^reject: .*invalid for this network/)
    // a failure report's signature replayed as a completion body of the same author is worthless
    const data = JSON.parse(new TextDecoder().decode(encodeExecutionMessage({ type: 'task-completion', body: completion }, GENESIS, sign('nodeA')))) as { sig: string }
    const forged = new TextEncoder().encode(JSON.stringify({ type: 'task-failure', body: { v: 1, node: 'nodeA', executionId: 'exec-1', taskId: `${MODEL}/1`, attempt: 0, reason: 'x', timestampMs: NOW }, sig: data.sig }))
    expect(r(forged)).toMatch(/^reject: task-failure signature is invalid/)
    // an unknown signer
    expect(r(encodeExecutionMessage({ ...request, body: { ...request.body, requester: 'stranger' } } as ExecutionMessage, GENESIS, sign('req')))).toMatch(/carries no Ed25519 key/)
  })

  it('rejects oversized, non-JSON and malformed messages', () => {
    const v = (data: Uint8Array) => validateExecutionMessage(data, ctx())
    expect(v(new Uint8Array(33 * 1024))).toMatchObject({ result: 'reject', reason: expect.stringMatching(/exceeds/) })
    expect(v(new Uint8Array([0xff, 0xfe]))).toMatchObject({ result: 'reject', reason: 'execution message is not UTF-8 JSON' })
    const bad = (body: unknown) => v(new TextEncoder().encode(JSON.stringify({ type: 'execution-request', body, sig: 'A'.repeat(86) + '==' })))
    expect(bad({ ...request.body, fee: '-1' })).toMatchObject({ result: 'reject', reason: expect.stringMatching(/schema at '\/body\/fee'/) })
    expect(bad({ ...request.body, inputs: { x: 'http://example.com/x' } })).toMatchObject({ result: 'reject' })
    expect(bad({ ...request.body, extra: 1 })).toMatchObject({ result: 'reject' })
    expect(() => encodeExecutionMessage({ ...request, body: { ...request.body, executionId: 'bad id' } } as ExecutionMessage, GENESIS, sign('req'))).toThrow(ExecutionError)
  })

  it('checks consistency, membership and freshness', () => {
    const v = (m: ExecutionMessage, signer: string, over: Partial<ExecutionTopicContext> = {}) => validateExecutionMessage(encodeExecutionMessage(m, GENESIS, sign(signer)), ctx(over))
    expect(v({ type: 'task-completion', body: { ...completion, outputRoot: 'f'.repeat(64) } }, 'nodeA')).toMatchObject({ result: 'reject', reason: 'completion output root does not match its outputs' })
    expect(v({ type: 'task-completion', body: { ...completion, completedAtMs: completion.startedAtMs - 1 } }, 'nodeA')).toMatchObject({ result: 'reject' })
    expect(v({ type: 'task-completion', body: completion }, 'nodeA', { nowMs: NOW + 60_000 })).toMatchObject({ result: 'ignore' })
    expect(v({ ...notice, body: { ...notice.body, oracle: 'nodeB' } } as ExecutionMessage, 'nodeB')).toMatchObject({ result: 'reject', reason: expect.stringMatching(/not a committee member/) })
    expect(v(notice, 'oracleB', { nowMs: NOW + 40_000 })).toMatchObject({ result: 'ignore' })
    expect(v(request, 'req', { currentSlot: 2000 })).toMatchObject({ result: 'ignore', reason: expect.stringMatching(/older than 500 slots/) })
    expect(v(request, 'req', { currentSlot: 900 })).toMatchObject({ result: 'ignore', reason: expect.stringMatching(/ahead of the chain/) })
  })

  it('binds the output root to the exact outputs, independent of key order', () => {
    expect(outputRoot({ a: OUT, b: OUT })).toBe(outputRoot({ b: OUT, a: OUT }))
    expect(outputRoot({ a: OUT })).not.toBe(outputRoot({ b: OUT }))
  })
})

describe('assignment votes', () => {
  const committee = new Set(['oracleA', 'oracleB', 'oracleC'])
  const vctx = (over: Partial<VoteContext> = {}): VoteContext => ({
    genesisHash: GENESIS, committee, committeeEpoch: 2n, currentSlot: 1000, maxExpiryAheadSlots: 300, publicKeyOf, verify: ed25519Verify, digestOf, ...over
  })
  const fields: Omit<AssignmentVoteBody, 'digest'> = {
    v: 1, oracle: 'oracleA', committeeEpoch: '2', executionId: 'exec-1', taskId: `${MODEL}/1`, attempt: 1, ballot: 0, kind: 'primary',
    node: 'nodeA', blacklist: ['nodeC', 'nodeB'], seedSlot: 995, seed: 'cd'.repeat(32), livenessRound: 77, computeUnits: 250, expirySlot: 1100,
    selection: { ranked: ['nodeA'], eligible: 1 }
  }
  const body = (over: Partial<Omit<AssignmentVoteBody, 'digest'>> = {}): AssignmentVoteBody => withDigest({ ...fields, ...over }, publicKeyOf, digestOf)
  const vote = (b: AssignmentVoteBody, signer = b.oracle): Uint8Array => encodeAssignmentVote(b, GENESIS, sign(signer))

  it('carries the program digest and a signature over it that the Ed25519 instruction can use', () => {
    const b = body()
    const expected = assignmentDigest({
      programId, genesisHash: genesisBytes, committeeEpoch: 2n, executionId: executionKey('exec-1'), taskId: taskKey(`${MODEL}/1`), attempt: 1,
      node: publicKeyOf('nodeA')!, kind: 0, blacklistHash: blacklistHash(canonicalBlacklist([publicKeyOf('nodeB')!, publicKeyOf('nodeC')!])),
      seed: new Uint8Array(Buffer.from('cd'.repeat(32), 'hex')), livenessRound: 77n, computeUnits: 250n, expirySlot: 1100n
    })
    expect(b.digest).toBe(Buffer.from(expected).toString('hex'))
    const v = validateAssignmentVote(vote(b), vctx())
    expect(v.result).toBe('accept')
    if (v.result !== 'accept') return
    expect(ed25519Verify(publicKeyOf('oracleA')!, expected, v.value.digestSig)).toBe(true)
    expect(v.value.body).toEqual(b)
    // the blacklist order does not change the digest
    expect(body({ blacklist: ['nodeB', 'nodeC'] }).digest).toBe(b.digest)
    expect(body({ attempt: 2 }).digest).not.toBe(b.digest)
  })

  it('rejects non-members, bad signatures and a digest that does not match the fields', () => {
    const reason = (data: Uint8Array, over: Partial<VoteContext> = {}): string => { const v = validateAssignmentVote(data, vctx(over)); return v.result === 'accept' ? 'accept' : `${v.result}: ${v.reason}` }
    expect(reason(vote(body({ oracle: 'nodeB' })))).toBe('reject: assignment vote from a peer that is not a committee member')
    expect(reason(vote(body(), 'oracleB'))).toBe('reject: assignment vote signature is invalid for this network')
    expect(reason(encodeAssignmentVote(body(), 'ee'.repeat(32), sign('oracleA')))).toBe('reject: assignment vote signature is invalid for this network')
    expect(reason(vote({ ...body(), digest: 'ee'.repeat(32) }))).toBe('reject: assignment vote digest does not match its fields')
    // a correct envelope over a digest signature made by someone else
    const wire = JSON.parse(new TextDecoder().decode(vote(body()))) as Record<string, unknown>
    const other = JSON.parse(new TextDecoder().decode(vote(body({ oracle: 'oracleB' })))) as Record<string, unknown>
    wire.digestSig = other.digestSig
    expect(reason(new TextEncoder().encode(JSON.stringify(wire)))).toBe('reject: assignment vote signature over the digest is invalid')
    expect(reason(vote(body({ selection: { ranked: ['nodeB'], eligible: 1 } })))).toMatch(/does not rank/)
    expect(reason(vote(body({ node: 'nodeB', selection: { ranked: ['nodeB'], eligible: 1 } })))).toMatch(/blacklisted/)
    expect(reason(vote(body({ selection: { ranked: ['nodeA', 'nodeB'], eligible: 1 } })))).toMatch(/^reject/)
    expect(() => body({ node: 'stranger', selection: { ranked: ['stranger'], eligible: 1 } })).toThrow(ExecutionError)
    expect(reason(vote({ ...fields, node: 'stranger', selection: { ranked: ['stranger'], eligible: 1 }, digest: 'ee'.repeat(32) }))).toBe('reject: assignment vote names a peer id without an Ed25519 key')
  })

  it('ignores stale votes: another committee epoch, expired', () => {
    expect(validateAssignmentVote(vote(body()), vctx({ committeeEpoch: 3n }))).toMatchObject({ result: 'ignore' })
    expect(validateAssignmentVote(vote(body()), vctx({ currentSlot: 1101 }))).toMatchObject({ result: 'ignore', reason: 'assignment vote expired' })
    expect(validateAssignmentVote(vote(body()), vctx({ currentSlot: 700 }))).toMatchObject({ result: 'ignore' })
  })
})
