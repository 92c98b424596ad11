import { describe, it, expect } from 'vitest'
import { createHash } from 'node:crypto'
import { PublicKey } from '@solana/web3.js'
import { slashDigest } from '../../../programs/client/index.js'
import { Ed25519Signer, ed25519Verify } from '../../../protocols/ed25519.js'
import { executionKey, taskKey } from '../../../protocols/execution/ids.js'
import { ExecutionError } from '../../../protocols/execution/errors.js'
import { encodeAssignmentVote, withDigest, type AssignmentDigestFn } from '../../../protocols/execution/messages.js'
import { assignmentDigest, blacklistHash, canonicalBlacklist } from '../../../programs/client/index.js'
import {
  SlashVoteCollector, encodeSlashVote, slashKey, validateSlashVote, withSlashDigest, SLASH_VOTE_KIND,
  type SlashDigestFn, type SlashVoteBody, type SlashVoteContext
} from '../../../protocols/execution/slash-votes.js'
import { peekMessageType } from '../../../protocols/execution/messages.js'

const GENESIS = 'ab'.repeat(32)
const OTHER_GENESIS = 'cd'.repeat(32)
const seed = (s: string): Uint8Array => new Uint8Array(createHash('sha256').update(s).digest())
const signers = new Map(['oracleA', 'oracleB', 'oracleC', 'outsider', 'nodeA', 'validatorA'].map(p => [p, new Ed25519Signer(seed(p))]))
const publicKeyOf = (p: string): Uint8Array | undefined => signers.get(p)?.publicKey
const sign = (p: string) => (b: Uint8Array): Uint8Array => signers.get(p)!.sign(b)
const programId = new PublicKey(seed('program'))
const digestFor = (genesis: string): SlashDigestFn => f => slashDigest({ ...f, programId, genesisHash: new Uint8Array(Buffer.from(genesis, 'hex')) })
const digestOf = digestFor(GENESIS)
const MODEL = 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'

const committee = new Set(['oracleA', 'oracleB', 'oracleC'])
const ctx = (over: Partial<SlashVoteContext> = {}): SlashVoteContext => ({
  genesisHash: GENESIS, committee, committeeEpoch: 0n, currentSlot: 1000, maxExpiryAheadSlots: 900, publicKeyOf, verify: ed25519Verify, digestOf, ...over
})
const fields: Omit<SlashVoteBody, 'digest'> = {
  v: 1, oracle: 'oracleA', committeeEpoch: '0', executionId: 'exec-1', taskId: `${MODEL}/1`, attempt: 0, verifierAttempt: 1, ballot: 0,
  accused: 'nodeA', prover: 'validatorA', asserterCommitment: '11'.repeat(32), verifierCommitment: '22'.repeat(32),
  asserterOutputRoot: '33'.repeat(32), verifierOutputRoot: '44'.repeat(32), bountyTo: '55'.repeat(32), expirySlot: 1500,
  reason: 'the re-execution agrees with the verifier'
}
const body = (over: Partial<Omit<SlashVoteBody, 'digest'>> = {}): SlashVoteBody => withSlashDigest({ ...fields, ...over }, publicKeyOf, digestOf)
const vote = (b: SlashVoteBody, signer = b.oracle, genesis = GENESIS): Uint8Array => encodeSlashVote(b, genesis, sign(signer))
const verdictOf = (data: Uint8Array, over: Partial<SlashVoteContext> = {}): string => {
  const v = validateSlashVote(data, ctx(over))
  return v.result === 'accept' ? 'accept' : `${v.result}: ${v.reason}`
}
const rewire = (data: Uint8Array, edit: (w: Record<string, unknown>) => void): Uint8Array => {
  const w = JSON.parse(new TextDecoder().decode(data)) as Record<string, unknown>
  edit(w)
  return new TextEncoder().encode(JSON.stringify(w))
}

describe('slash votes', () => {
  it('carry the program\'s slash digest and a signature over it that the Ed25519 instruction can use', () => {
    const b = body()
    const expected = slashDigest({
      programId, genesisHash: new Uint8Array(Buffer.from(GENESIS, 'hex')), committeeEpoch: 0n, executionId: executionKey('exec-1'), taskId: taskKey(`${MODEL}/1`),
      attempt: 0, accused: publicKeyOf('nodeA')!, asserterCommitment: Buffer.from('11'.repeat(32), 'hex'), verifierCommitment: Buffer.from('22'.repeat(32), 'hex'),
      asserterOutputRoot: Buffer.from('33'.repeat(32), 'hex'), verifierOutputRoot: Buffer.from('44'.repeat(32), 'hex'), bountyTo: Buffer.from('55'.repeat(32), 'hex'), expirySlot: 1500n
    })
    expect(b.digest).toBe(Buffer.from(expected).toString('hex'))
    const data = vote(b)
    expect(peekMessageType(data)).toBe(SLASH_VOTE_KIND)
    const v = validateSlashVote(data, ctx())
    expect(v.result).toBe('accept')
    if (v.result !== 'accept') return
    expect(v.value.body).toEqual(b)
    expect(ed25519Verify(publicKeyOf('oracleA')!, expected, v.value.digestSig)).toBe(true)
    // the reason and the prover are not part of the digest; the accused, the roots and the expiry are
    expect(body({ reason: 'other words' }).digest).toBe(b.digest)
    expect(body({ accused: 'validatorA', prover: 'nodeA' }).digest).not.toBe(b.digest)
    expect(body({ expirySlot: 1501 }).digest).not.toBe(b.digest)
  })

  it('rejects forged signatures', () => {
    // envelope signed by another member than the one named
    expect(verdictOf(vote(body(), 'oracleB'))).toBe('reject: slash vote signature is invalid for this network')
    // correct envelope, but the digest signature is another oracle's
    const other = JSON.parse(new TextDecoder().decode(vote(body({ oracle: 'oracleB' })))) as { digestSig: string }
    expect(verdictOf(rewire(vote(body()), w => { w.digestSig = other.digestSig }))).toBe('reject: slash vote signature over the digest is invalid')
    // a tampered field breaks the envelope signature
    expect(verdictOf(rewire(vote(body()), w => { (w.body as SlashVoteBody).accused = 'validatorA' }))).toBe('reject: slash vote signature is invalid for this network')
    // a digest that does not match the fields, signed consistently by the oracle
    expect(verdictOf(vote({ ...body(), digest: 'ee'.repeat(32) }))).toBe('reject: slash vote digest does not match its fields')
    // non-canonical base64 of a valid signature
    const data = vote(body())
    const sig = (JSON.parse(new TextDecoder().decode(data)) as { sig: string }).sig
    const last = sig[85]!
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
    const tweaked = sig.slice(0, 85) + alphabet[alphabet.indexOf(last) ^ 1] + '=='
    expect(verdictOf(rewire(data, w => { w.sig = tweaked }))).toMatch(/^reject/)
    // an assignment vote's digest signature cannot stand in for a slash digest signature (domain separation)
    const assignmentDigestOf: AssignmentDigestFn = f => assignmentDigest({ ...f, programId, genesisHash: new Uint8Array(Buffer.from(GENESIS, 'hex')), blacklistHash: blacklistHash(canonicalBlacklist(f.blacklist)) })
    const a = withDigest({
      v: 1, oracle: 'oracleA', committeeEpoch: '0', executionId: 'exec-1', taskId: `${MODEL}/1`, attempt: 0, ballot: 0, kind: 'primary', node: 'nodeA', blacklist: [],
      seedSlot: 995, seed: 'cd'.repeat(32), livenessRound: 7, computeUnits: 100, expirySlot: 1500, selection: { ranked: ['nodeA'], eligible: 1 }
    }, publicKeyOf, assignmentDigestOf)
    const assignmentWire = JSON.parse(new TextDecoder().decode(encodeAssignmentVote(a, GENESIS, sign('oracleA')))) as { digestSig: string, sig: string }
    expect(verdictOf(rewire(vote(body()), w => { w.digestSig = assignmentWire.digestSig }))).toBe('reject: slash vote signature over the digest is invalid')
    expect(verdictOf(rewire(vote(body()), w => { w.sig = assignmentWire.sig }))).toBe('reject: slash vote signature is invalid for this network')
  })

  it('rejects a vote made for another network (wrong genesis)', () => {
    // signed for another genesis: the envelope does not verify here
    expect(verdictOf(vote(body(), 'oracleA', OTHER_GENESIS))).toBe('reject: slash vote signature is invalid for this network')
    // envelope for this network but the digest of another network's program config
    const foreign = withSlashDigest(fields, publicKeyOf, digestFor(OTHER_GENESIS))
    expect(verdictOf(vote(foreign))).toBe('reject: slash vote digest does not match its fields')
  })

  it('rejects non-members and inconsistent votes', () => {
    expect(verdictOf(vote(body({ oracle: 'outsider' })))).toBe('reject: slash vote from a peer that is not a committee member')
    expect(verdictOf(vote(body({ oracle: 'nodeA' })))).toBe('reject: slash vote from a peer that is not a committee member')
    expect(verdictOf(vote(body({ prover: 'nodeA' })))).toBe('reject: slash vote names the accused as its own prover')
    expect(verdictOf(vote(body({ verifierOutputRoot: '33'.repeat(32) })))).toMatch(/without evidence/)
    expect(verdictOf(vote(body({ verifierCommitment: '11'.repeat(32) })))).toMatch(/equal commitments/)
    expect(verdictOf(vote(body({ verifierAttempt: 0 })))).toMatch(/its own verification/)
    expect(() => body({ accused: 'stranger' })).toThrow(ExecutionError)
    expect(verdictOf(vote({ ...fields, accused: 'stranger', digest: 'ee'.repeat(32) }))).toBe('reject: slash vote names an accused peer id without an Ed25519 key')
    expect(verdictOf(rewire(vote(body()), w => { (w.body as Record<string, unknown>).extra = 1 }))).toMatch(/^reject: slash vote does not match the schema/)
    expect(verdictOf(new TextEncoder().encode('not json'))).toBe('reject: slash vote is not UTF-8 JSON')
    expect(verdictOf(new Uint8Array(5000))).toMatch(/^reject: slash vote of 5000 bytes/)
  })

  it('ignores replays: after expiry, in another committee epoch, far-future expiries; and counts a repeated vote once', () => {
    const data = vote(body())
    expect(verdictOf(data, { currentSlot: 1501 })).toBe('ignore: slash vote expired')
    expect(verdictOf(data, { committeeEpoch: 1n })).toMatch(/^ignore: slash vote for committee epoch 0/)
    expect(verdictOf(data, { currentSlot: 100 })).toMatch(/^ignore: slash vote expires more than/)
    const collector = new SlashVoteCollector(['oracleA', 'oracleB', 'oracleC'], 2)
    const accepted = validateSlashVote(data, ctx())
    if (accepted.result !== 'accept') throw new Error('expected accept')
    expect(collector.add(accepted.value)).toBe('added')
    expect(collector.add(accepted.value)).toBe('duplicate')
    const key = slashKey('exec-1', `${MODEL}/1`, 0, 'nodeA')
    expect(collector.quorum(key)).toBeUndefined()
  })

  it('collects a quorum of matching digests per ballot and drops equivocators', () => {
    const collector = new SlashVoteCollector(['oracleA', 'oracleB', 'oracleC'], 2)
    const accept = (b: SlashVoteBody) => { const v = validateSlashVote(vote(b), ctx()); if (v.result !== 'accept') throw new Error(v.reason); return v.value }
    const key = slashKey('exec-1', `${MODEL}/1`, 0, 'nodeA')
    expect(collector.add(accept(body({ oracle: 'oracleA' })))).toBe('added')
    // oracleB votes another expiry in the same ballot: no quorum
    expect(collector.add(accept(body({ oracle: 'oracleB', expirySlot: 1600 })))).toBe('added')
    expect(collector.quorum(key)).toBeUndefined()
    // oracleB then votes the same digest as oracleA in that ballot: equivocation, its votes dropped
    expect(collector.add(accept(body({ oracle: 'oracleB' })))).toBe('equivocation')
    expect(collector.equivocators(key)).toEqual(['oracleB'])
    expect(collector.quorum(key)).toBeUndefined()
    // a later ballot is not equivocation
    expect(collector.add(accept(body({ oracle: 'oracleB', ballot: 1, expirySlot: 1700 })))).toBe('added')
    expect(collector.add(accept(body({ oracle: 'oracleC', ballot: 1, expirySlot: 1700 })))).toBe('added')
    const q = collector.quorum(key)
    expect(q?.ballot).toBe(1)
    expect(q?.signatures.map(s => s.oracle)).toEqual(['oracleB', 'oracleC'])
    expect(collector.quorum(key, 1701)).toBeUndefined()
    expect(collector.ballots(key).map(b => b.ballot)).toEqual([0, 1])
  })
})
