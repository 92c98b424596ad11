import { describe, expect, it } from 'vitest'
import { createHash, createPublicKey, verify } from 'node:crypto'
import { Ed25519Program, Keypair, PublicKey } from '@solana/web3.js'
import {
  DOMAIN_BLACKLIST, ED25519_SELF, assignmentDigest, assignmentMessage, blacklistHash, canonicalBlacklist, commitment,
  committeeMessage, deadlineSeconds, ed25519Instruction, ed25519PublicKeyOffset, isSampled, quorumInstruction,
  sha256, signEd25519, slashMessage, stakeNeeded, taskShare, verificationPayment, type Params
} from '../../../programs/client/index.js'

const h = (s: string): Uint8Array => new Uint8Array(createHash('sha256').update(s).digest())
const params: Params = {
  minStake: 1_000_000_000n, unbondingDelay: 604_800n, challengeDelay: 3600n, minFee: 1000n, samplingPpm: 80_000,
  validatorRewardBps: 12_000, slashBps: 10_000, bountyBps: 5_000, computeCostBps: 5_000, collusionBps: 3_000,
  minStakeRatioBps: 100_000, seedDelaySlots: 4, deadlineBaseSecs: 30, deadlinePer100CuSecs: 5, unverifiablePayBps: 5_000
}
const programId = new PublicKey(h('program'))

describe('canonical messages', () => {
  const fields = {
    programId, genesisHash: h('genesis'), committeeEpoch: 3n, executionId: h('exec'), taskId: h('task'), attempt: 2,
    node: new PublicKey(h('node')), kind: 1, blacklistHash: blacklistHash([]), seed: h('seed'), livenessRound: 9n,
    computeUnits: 250n, expirySlot: 1234n
  }

  it('lays out the assignment message field by field, little-endian', () => {
    const m = assignmentMessage(fields)
    expect(m.length).toBe(21 + 32 + 32 + 8 + 32 + 32 + 4 + 32 + 1 + 32 + 32 + 8 + 8 + 8)
    expect(Buffer.from(m.subarray(0, 21)).toString()).toBe('bitflow/assignment/v1')
    expect(Buffer.from(m.subarray(21, 53)).equals(programId.toBuffer())).toBe(true)
    const v = new DataView(m.buffer)
    expect(v.getBigUint64(85, true)).toBe(3n) // committee epoch
    expect(v.getUint32(157, true)).toBe(2) // attempt
    expect(m[193]).toBe(1) // kind
    expect(v.getBigUint64(m.length - 8, true)).toBe(1234n)
    expect(Buffer.from(assignmentDigest(fields)).equals(Buffer.from(sha256(m)))).toBe(true)
  })

  it('changes the digest with every field', () => {
    const base = Buffer.from(assignmentDigest(fields)).toString('hex')
    const variants = [{ attempt: 3 }, { kind: 0 }, { committeeEpoch: 4n }, { livenessRound: 10n }, { computeUnits: 251n }, { expirySlot: 1235n }, { seed: h('other') }]
    for (const v of variants) expect(Buffer.from(assignmentDigest({ ...fields, ...v })).toString('hex')).not.toBe(base)
  })

  it('orders blacklists canonically and hashes them with their count', () => {
    const keys = [Keypair.generate().publicKey, Keypair.generate().publicKey, Keypair.generate().publicKey]
    const canon = canonicalBlacklist([...keys, keys[0]!])
    expect(canon.length).toBe(3)
    for (let i = 1; i < canon.length; i++) expect(Buffer.compare(Buffer.from(canon[i - 1]!), Buffer.from(canon[i]!))).toBeLessThan(0)
    expect(Buffer.from(blacklistHash([])).equals(Buffer.from(sha256(Buffer.from(DOMAIN_BLACKLIST), Uint8Array.of(0))))).toBe(true)
    expect(Buffer.from(blacklistHash(canon)).equals(Buffer.from(blacklistHash(canonicalBlacklist(keys.reverse()))))).toBe(true)
  })

  it('builds committee and slash messages of the documented length', () => {
    const members = [new PublicKey(h('a')), new PublicKey(h('b'))]
    expect(committeeMessage({ programId, genesisHash: h('g'), committeeEpoch: 0n, members, expirySlot: 5n }).length).toBe(20 + 64 + 8 + 1 + 64 + 8)
    const slash = slashMessage({
      programId, genesisHash: h('g'), committeeEpoch: 0n, executionId: h('e'), taskId: h('t'), attempt: 0, accused: h('n'),
      asserterCommitment: h('1'), verifierCommitment: h('2'), asserterOutputRoot: h('3'), verifierOutputRoot: h('4'), bountyTo: h('5'), expirySlot: 1n
    })
    expect(slash.length).toBe(16 + 64 + 8 + 64 + 4 + 32 + 128 + 32 + 8)
  })

  it('commits to H(outputRoot || salt)', () => {
    expect(Buffer.from(commitment(h('r'), h('s'))).equals(Buffer.from(sha256(h('r'), h('s'))))).toBe(true)
    expect(() => commitment(new Uint8Array(31), h('s'))).toThrow(RangeError)
  })

  it('samples with probability p (deterministic draws)', () => {
    let sampled = 0
    const n = 4_000
    for (let i = 0; i < n; i++) {
      if (isSampled({ genesisHash: h('g'), executionId: h('e'), taskId: h('t'), attempt: 0, slot: BigInt(i), slotHash: h(`slot ${i}`) }, h('c'), 80_000)) sampled++
    }
    expect(sampled / n).toBeGreaterThan(0.06)
    expect(sampled / n).toBeLessThan(0.10)
  })
})

describe('economics', () => {
  it('escrows price x (1 + p R), pays validators R x price, needs ratio x in-flight stake', () => {
    expect(verificationPayment(params, 1_000_000n)).toBe(1_200_000n)
    expect(taskShare(params, 1_000_000n)).toBe(1_096_000n)
    expect(taskShare(params, 1_001n)).toBe(1_001n + 97n) // 1201 x 0.08 = 96.08, rounded up
    expect(stakeNeeded(params, 150_000_000n)).toBe(1_500_000_000n)
    expect(deadlineSeconds(params, 250)).toBe(45n)
    expect(deadlineSeconds(params, 0)).toBe(30n)
    expect(() => taskShare(params, (1n << 64n) - 1n)).toThrow(RangeError)
  })
})

describe('Ed25519 quorum instructions', () => {
  it('puts every key, signature and the digest inside the instruction, offsets pointing to itself', () => {
    const signers = [Keypair.generate(), Keypair.generate(), Keypair.generate()]
    const digest = h('digest')
    const ix = quorumInstruction(digest, signers)
    const d = new Uint8Array(ix.data)
    const v = new DataView(d.buffer, d.byteOffset)
    expect(d[0]).toBe(3)
    expect(d.length).toBe(2 + 14 * 3 + 96 * 3 + 32)
    signers.forEach((k, i) => {
      const o = 2 + 14 * i
      const sigAt = v.getUint16(o, true)
      const pkAt = v.getUint16(o + 4, true)
      expect(pkAt).toBe(ed25519PublicKeyOffset(3, i))
      for (const idx of [2, 6, 12]) expect(v.getUint16(o + idx, true)).toBe(ED25519_SELF)
      expect(v.getUint16(o + 10, true)).toBe(32)
      expect(Buffer.from(d.subarray(pkAt, pkAt + 32)).equals(k.publicKey.toBuffer())).toBe(true)
      const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), k.publicKey.toBuffer()])
      const pub = createPublicKey({ key: spki, format: 'der', type: 'spki' })
      expect(verify(null, digest, pub, d.subarray(sigAt, sigAt + 64))).toBe(true)
    })
    expect(Buffer.from(d.subarray(d.length - 32)).equals(Buffer.from(digest))).toBe(true)
  })

  it('signs like web3.js (same Ed25519 signatures)', () => {
    const k = Keypair.generate()
    const m = h('m')
    const ix = ed25519Instruction(m, [{ publicKey: k.publicKey, signature: signEd25519(k, m) }])
    expect(ix.programId.toBase58()).toBe('Ed25519SigVerify111111111111111111111111111')
    const theirs = Ed25519Program.createInstructionWithPrivateKey({ privateKey: k.secretKey, message: m })
    const sigAt = new DataView(theirs.data.buffer, theirs.data.byteOffset).getUint16(2, true)
    expect(Buffer.from(theirs.data.subarray(sigAt, sigAt + 64)).equals(Buffer.from(signEd25519(k, m)))).toBe(true)
    expect(() => quorumInstruction(new Uint8Array(31), [k])).toThrow(RangeError)
  })
})
