import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { Keypair, PublicKey, SystemProgram, Transaction } from '@solana/web3.js'
import {
  AssignmentKind, AssignmentStatus, NodeStatus, ProgramError, Sampling, SlashStatus, TaskFlag, TaskStatus, Verdict,
  NODE_PAYMENTS_IN_FLIGHT_OFFSET, NO_ATTEMPT, cancelTasks, changeCommittee, closeExecution, commitment, committeeDigest, decodeNode,
  decodeSlash, deadlineSeconds, ed25519Instruction, ed25519PublicKeyOffset, executeSlash, expire, quorumInstruction,
  signEd25519, taskShare, unbond, verificationPayment, refreshSeed, SEED_STALE_SLOTS
} from '../../../programs/client/index.js'
import { Chain, buildProgram } from './harness.js'
import {
  World, bytes32, computeUnits, expectError, expectOk, output, recordUnits, taskId, type ExecutionHandle, type NodeKeys
} from './fixtures.js'

let program: Uint8Array
beforeAll(() => { program = buildProgram() })
afterAll(() => {
  // compute units per instruction, for the settlement benchmark
  const rows = [...computeUnits.entries()].sort(([a], [b]) => a.localeCompare(b))
  if (rows.length > 0) console.log(`settlement compute units per transaction (max seen):\n${rows.map(([k, v]) => `  ${k.padEnd(36)} ${v}`).join('\n')}`)
})

const T0 = taskId('resnet/0')
const T1 = taskId('resnet/1')
const T2 = taskId('resnet/2')
const PRICE = 1_000_000n

describe('settlement program: quorum verification (through assign)', () => {
  let chain: Chain
  let world: World
  let node: NodeKeys
  let h: ExecutionHandle
  beforeEach(() => {
    chain = new Chain(program)
    world = new World(chain)
    node = world.registerNode([T0, T1])
    h = world.open('e1', [{ taskId: T0, price: PRICE, computeUnits: 250 }, { taskId: T1, price: PRICE, computeUnits: 100 }])
  })

  /** Nothing was created and no escrow moved. */
  function unchanged (): void {
    expect(chain.account(world.assignmentKey(h, T0, 0))).toBeUndefined()
    expect(world.execution(h).reservedAmount).toBe(0n)
    expect(node.account.paymentsInFlight).toBe(0n)
    expect(chain.tokenBalance(h.escrow)).toBe(2n * taskShare(world.params, PRICE))
  }

  it('assigns with a quorum: records node, kind, deadline, seed; creates the task state', () => {
    const before = chain.now()
    recordUnits('assign (3-of-4 quorum)', world.assign(h, { taskId: T0, attempt: 0, node }))
    const a = world.assignment(h, T0, 0)
    expect(a.node.equals(node.node)).toBe(true)
    expect(a.kind).toBe(AssignmentKind.Primary)
    expect(a.status).toBe(AssignmentStatus.Assigned)
    expect(a.attempt).toBe(0)
    expect(a.payment).toBe(PRICE)
    expect(a.deadline).toBe(before + deadlineSeconds(world.params, 250))
    expect(a.deadline).toBe(before + 30n + 15n)
    expect(Buffer.from(a.seed).equals(Buffer.from(world.seedFor(h, T0, 0)))).toBe(true)
    const ts = world.taskState(h, T0)!
    expect(ts.status).toBe(TaskStatus.Assigned)
    expect(ts.nextAttempt).toBe(1)
    expect(ts.primaryAttempt).toBe(0)
    expect(ts.verifierAttempt).toBe(NO_ATTEMPT)
    expect(ts.primaryNode.equals(node.node)).toBe(true)
    expect(world.execution(h).reservedAmount).toBe(PRICE)
    expect(world.execution(h).tasks[0]!.flags & TaskFlag.Assigned).toBe(TaskFlag.Assigned)
    expect(node.account.paymentsInFlight).toBe(PRICE)
  })

  it('refuses a missing payer signature', () => {
    const ixs = world.assignIxs(h, { taskId: T0, attempt: 0, node, over: { payer: Keypair.generate().publicKey } })
    ixs[1]!.keys[0]!.isSigner = false
    expectError(chain.send(ixs), ProgramError.MissingSigner)
    unchanged()
  })

  it('refuses a non-member signer', () => {
    const outsider = Keypair.generate()
    expectError(world.assign(h, { taskId: T0, attempt: 0, node, signers: [world.committee[0]!, world.committee[1]!, outsider] }), ProgramError.NotCommitteeMember)
    unchanged()
  })

  it('refuses one member counted twice', () => {
    const [m0, m1] = world.committee
    expectError(world.assign(h, { taskId: T0, attempt: 0, node, signers: [m0!, m1!, m1!] }), ProgramError.DuplicateSigner)
    // the same member twice across two Ed25519 instructions
    const digest = world.assignDigest(h, { taskId: T0, attempt: 0, node, expirySlot: chain.slot() + 50n })
    const ixs = world.assignIxs(h, { taskId: T0, attempt: 0, node, expirySlot: chain.slot() + 50n, quorum: quorumInstruction(digest, [m0!, m1!]) })
    expectError(chain.send([quorumInstruction(digest, [m1!]), ...ixs]), ProgramError.DuplicateSigner)
    unchanged()
  })

  it('refuses fewer than threshold signatures, and no signatures at all', () => {
    expectError(world.assign(h, { taskId: T0, attempt: 0, node, signers: world.committee.slice(0, 2) }), ProgramError.QuorumNotReached)
    expectError(world.assign(h, { taskId: T0, attempt: 0, node, quorum: null }), ProgramError.QuorumNotReached)
    unchanged()
  })

  it('refuses signatures over different bytes (another attempt, round or node; the raw message)', () => {
    expectError(world.assign(h, { taskId: T0, attempt: 0, node, signedOverrides: { attempt: 1 } }), ProgramError.SignedMessageMismatch)
    expectError(world.assign(h, { taskId: T0, attempt: 0, node, signedOverrides: { livenessRound: 8n } }), ProgramError.SignedMessageMismatch)
    expectError(world.assign(h, { taskId: T0, attempt: 0, node, signedOverrides: { seed: bytes32('ground seed') } }), ProgramError.SignedMessageMismatch)
    expectError(world.assign(h, { taskId: T0, attempt: 0, node, digest: bytes32('anything else') }), ProgramError.SignedMessageMismatch)
    unchanged()
  })

  it('refuses a fake instructions-sysvar account', () => {
    const fake = Keypair.generate().publicKey
    // a copy of plausible sysvar contents listing a forged quorum, owned by the sysvar program id or not
    chain.setAccount(fake, new Uint8Array(64), SystemProgram.programId)
    expectError(world.assign(h, { taskId: T0, attempt: 0, node, over: { instructionsSysvar: fake } }), ProgramError.WrongSysvar)
    unchanged()
  })

  it('refuses Ed25519 offsets that point into another instruction', () => {
    // The attacker signs the digest itself and puts its key in a second Ed25519 instruction; the first
    // one carries a member's key in its own data but points the verified public key at the attacker's.
    const attacker = Keypair.generate()
    const expirySlot = chain.slot() + 50n
    const digest = world.assignDigest(h, { taskId: T0, attempt: 0, node, expirySlot })
    const members = world.quorumSigners()
    const forged = ed25519Instruction(digest, members.map(m => ({ publicKey: m.publicKey, signature: signEd25519(attacker, digest) })),
      members.map(() => ({ publicKeyInstructionIndex: 1, publicKeyOffset: ed25519PublicKeyOffset(1, 0) })))
    const attackerOwn = quorumInstruction(digest, [attacker])
    const assignIx = world.assignIxs(h, { taskId: T0, attempt: 0, node, expirySlot, quorum: null })[0]!
    expectError(chain.send([forged, attackerOwn, assignIx]), ProgramError.Ed25519Offsets)
    // the message taken from another instruction
    const other = world.assignIxs(h, { taskId: T0, attempt: 0, node, expirySlot, quorum: null })[0]!
    const msgElsewhere = ed25519Instruction(digest, members.map(m => ({ publicKey: m.publicKey, signature: signEd25519(m, digest) })),
      members.map(() => ({ messageInstructionIndex: 1, messageOffset: ed25519PublicKeyOffset(members.length, members.length) })))
    expectError(chain.send([msgElsewhere, quorumInstruction(digest, members), other]), ProgramError.Ed25519Offsets)
    unchanged()
  })

  it('refuses signatures by a member of an old committee epoch, and old-epoch messages', () => {
    // replace member 0 by a newcomer: epoch 0 -> 1
    const newcomer = Keypair.generate()
    const members = [newcomer, ...world.committee.slice(1)]
    const expirySlot = chain.slot() + 10n
    const digest = committeeDigest({ programId: chain.programId, genesisHash: world.genesisHash, committeeEpoch: 0n, members: members.map(m => m.publicKey), expirySlot })
    recordUnits('change_committee (3-of-4 quorum)', chain.send([quorumInstruction(digest, world.quorumSigners()),
      changeCommittee({ programId: chain.programId, config: world.config, members: members.map(m => m.publicKey), expirySlot })]))
    const cfg = world.configAccount
    expect(cfg.committeeEpoch).toBe(1n)
    expect(cfg.committee[0]!.equals(newcomer.publicKey)).toBe(true)
    // the departed member 0 signs the current (epoch 1) message
    expectError(world.assign(h, { taskId: T0, attempt: 0, node, signers: world.committee.slice(0, 3) }), ProgramError.NotCommitteeMember)
    // current members sign the epoch-0 message
    expectError(world.assign(h, { taskId: T0, attempt: 0, node, signers: members.slice(0, 3), signedOverrides: { committeeEpoch: 0n } }), ProgramError.SignedMessageMismatch)
    unchanged()
    expectOk(world.assign(h, { taskId: T0, attempt: 0, node, signers: members.slice(1, 4) }))
  })

  it('refuses committee changes without quorum, replayed, or expired', () => {
    const members = [Keypair.generate().publicKey, Keypair.generate().publicKey, Keypair.generate().publicKey]
    const expirySlot = chain.slot() + 10n
    const digest = committeeDigest({ programId: chain.programId, genesisHash: world.genesisHash, committeeEpoch: 0n, members, expirySlot })
    const ix = changeCommittee({ programId: chain.programId, config: world.config, members, expirySlot })
    expectError(chain.send([quorumInstruction(digest, world.committee.slice(0, 2)), ix]), ProgramError.QuorumNotReached)
    expectOk(chain.send([quorumInstruction(digest, world.quorumSigners()), ix]))
    expect(world.configAccount.threshold).toBe(2)
    // the same signed change again: epoch moved on, the digest no longer matches
    expectError(chain.send([quorumInstruction(digest, world.quorumSigners()), ix]), ProgramError.SignedMessageMismatch)
    const later = committeeDigest({ programId: chain.programId, genesisHash: world.genesisHash, committeeEpoch: 1n, members, expirySlot })
    chain.advanceSlots(11)
    expectError(chain.send([quorumInstruction(later, world.committee.slice(0, 3)), ix]), ProgramError.Expired)
  })

  it('settles a 7-member committee (5 signatures) in one transaction', () => {
    const c2 = new Chain(program)
    const w7 = new World(c2, { committeeSize: 7 })
    expect(w7.configAccount.threshold).toBe(5)
    const n = w7.registerNode([T0])
    const h7 = w7.open('seven', [{ taskId: T0, price: PRICE, computeUnits: 100 }])
    const blacklist = [Keypair.generate().publicKey]
    const ixs = w7.assignIxs(h7, { taskId: T0, attempt: 0, node: n, blacklist })
    const tx = new Transaction().add(...ixs)
    tx.recentBlockhash = c2.svm.latestBlockhash()
    tx.feePayer = c2.payer.publicKey
    tx.sign(c2.payer)
    const size = tx.serialize().length
    expect(size).toBeLessThanOrEqual(1232)
    recordUnits('assign (5-of-7 quorum, 1 blacklisted)', c2.send(ixs))
    expect(w7.assignment(h7, T0, 0).node.equals(n.node)).toBe(true)
  })
})

describe('settlement program: assignment rules', () => {
  let chain: Chain
  let world: World
  let node: NodeKeys
  let h: ExecutionHandle
  beforeEach(() => {
    chain = new Chain(program)
    world = new World(chain)
    node = world.registerNode([T0, T1])
    h = world.open('e1', [{ taskId: T0, price: PRICE, computeUnits: 250 }, { taskId: T1, price: PRICE, computeUnits: 100 }])
  })

  it('refuses a replayed assignment and a second live attempt', () => {
    const expirySlot = chain.slot() + 50n
    const ixs = world.assignIxs(h, { taskId: T0, attempt: 0, node, expirySlot })
    expectOk(chain.send(ixs))
    expectError(chain.send(ixs), ProgramError.AssignmentExists)
    const other = world.registerNode([T0])
    expectError(world.assign(h, { taskId: T0, attempt: 1, node: other }), ProgramError.TaskBusy)
    expectError(world.assign(h, { taskId: T0, attempt: 5, node: other }), ProgramError.WrongAttempt)
    expect(world.execution(h).reservedAmount).toBe(PRICE)
    expect(other.account.paymentsInFlight).toBe(0n)
  })

  it('refuses a wrong assignment or task-state PDA, and a non-canonical bump', () => {
    const wrong = world.assignmentKey(h, T0, 3)
    expectError(world.assign(h, { taskId: T0, attempt: 0, node, over: { assignment: wrong } }), ProgramError.WrongPda)
    const [, bump] = PublicKey.findProgramAddressSync([Buffer.from('assignment'), h.execution.toBytes(), T0, Buffer.alloc(4)], chain.programId)
    let offBump: PublicKey | undefined
    for (let b = bump - 1; b >= 0 && offBump === undefined; b--) {
      try { offBump = PublicKey.createProgramAddressSync([Buffer.from('assignment'), h.execution.toBytes(), T0, Buffer.alloc(4), Buffer.from([b])], chain.programId) } catch { /* on curve */ }
    }
    expectError(world.assign(h, { taskId: T0, attempt: 0, node, over: { assignment: offBump! } }), ProgramError.WrongPda)
    const wrongTask = PublicKey.findProgramAddressSync([Buffer.from('task'), h.execution.toBytes(), T1], chain.programId)[0]
    expectError(world.assign(h, { taskId: T0, attempt: 0, node, over: { taskState: wrongTask } }), ProgramError.WrongPda)
    expect(world.execution(h).reservedAmount).toBe(0n)
  })

  it('refuses accounts owned by the wrong program (execution, node)', () => {
    const fakeExec = Keypair.generate().publicKey
    chain.setAccount(fakeExec, chain.account(h.execution)!.data, SystemProgram.programId)
    expectError(world.assign(h, { taskId: T0, attempt: 0, node, over: { execution: fakeExec } }), ProgramError.WrongAccountOwner)
    const fakeNode = Keypair.generate().publicKey
    chain.setAccount(fakeNode, chain.account(node.node)!.data, SystemProgram.programId)
    expectError(world.assign(h, { taskId: T0, attempt: 0, node, over: { node: fakeNode } }), ProgramError.WrongAccountOwner)
    expect(world.execution(h).reservedAmount).toBe(0n)
  })

  it('refuses an unregistered, unspecialized, slashed or blacklisted node', () => {
    const stranger = { operator: Keypair.generate(), node: PublicKey.findProgramAddressSync([Buffer.from('node'), world.config.toBytes(), Keypair.generate().publicKey.toBytes()], chain.programId)[0] }
    expectError(world.assign(h, { taskId: T0, attempt: 0, node: stranger as unknown as NodeKeys }), ProgramError.WrongAccountOwner)
    const narrow = world.registerNode([T1])
    expectError(world.assign(h, { taskId: T0, attempt: 0, node: narrow }), ProgramError.NodeNotSpecialized)
    expectError(world.assign(h, { taskId: T0, attempt: 0, node, blacklist: [Keypair.generate().publicKey, node.operator.publicKey] }), ProgramError.NodeBlacklisted)
    const slashed = world.registerNode([T0])
    const acc = chain.account(slashed.node)!
    acc.data[4] = NodeStatus.Slashed
    chain.setAccount(slashed.node, acc.data, chain.programId, acc.lamports)
    expectError(world.assign(h, { taskId: T0, attempt: 0, node: slashed }), ProgramError.NodeSlashed)
    // a task the execution does not have
    expectError(world.assign(h, { taskId: T2, attempt: 0, node }), ProgramError.WrongExecution)
    expect(world.execution(h).reservedAmount).toBe(0n)
  })

  it('refuses a node whose stake is too low for another payment in flight', () => {
    // stake 2000 units, ratio 10x: 150 units in flight need 1500, a second 150 would need 3000
    const big = 150_000_000n
    const hb = world.open('big', [{ taskId: T0, price: big, computeUnits: 100 }, { taskId: T1, price: big, computeUnits: 100 }])
    expectOk(world.assign(hb, { taskId: T0, attempt: 0, node }))
    expectError(world.assign(hb, { taskId: T1, attempt: 0, node }), ProgramError.StakeTooLowForPayments)
    expect(node.account.paymentsInFlight).toBe(big)
    expect(world.execution(hb).reservedAmount).toBe(big)
    // payments in flight near u64::MAX: the sum overflows and is refused
    const acc = chain.account(node.node)!
    new DataView(acc.data.buffer).setBigUint64(NODE_PAYMENTS_IN_FLIGHT_OFFSET, (1n << 64n) - 10n, true)
    chain.setAccount(node.node, acc.data, chain.programId, acc.lamports)
    expectError(world.assign(hb, { taskId: T1, attempt: 0, node }), ProgramError.ArithmeticOverflow)
  })

  it('refuses a seed slot not yet (or no longer) in SlotHashes, and an expired assignment', () => {
    const h2 = world.handle('fresh', [{ taskId: T0, price: PRICE, computeUnits: 100 }])
    expectOk(chain.send([world.openIx(h2)], [h2.requester]))
    chain.advanceSlots(world.params.seedDelaySlots) // seed slot = request + K = current slot: not passed
    expectError(world.assign(h2, { taskId: T0, attempt: 0, node }), ProgramError.SeedUnavailable)
    chain.advanceSlots(1)
    expectError(world.assign(h2, { taskId: T0, attempt: 0, node, expirySlot: chain.slot() - 1n }), ProgramError.Expired)
    chain.advanceSlots(600) // the seed slot fell out of the 512-slot window
    expectError(world.assign(h2, { taskId: T0, attempt: 0, node }), ProgramError.SeedUnavailable)
  })

  it('refreshes a stale seed only when it is about to leave SlotHashes, for a task waiting for an assignment', () => {
    const h2 = world.handle('stale', [{ taskId: T0, price: PRICE, computeUnits: 100 }])
    expectOk(chain.send([world.openIx(h2)], [h2.requester]))
    const ready = world.execution(h2).readySlot
    const refresh = (): ReturnType<Chain['send']> => chain.send([refreshSeed({ programId: chain.programId, config: world.config, execution: h2.execution, taskId: T0 })])
    chain.advanceSlots(world.params.seedDelaySlots + 10)
    expectError(refresh(), ProgramError.WrongState) // the seed is still usable
    chain.advanceSlots(SEED_STALE_SLOTS)
    expectOk(refresh())
    const moved = world.execution(h2).readySlot
    expect(moved).toBeGreaterThan(ready + BigInt(SEED_STALE_SLOTS))
    expectError(refresh(), ProgramError.WrongState) // fresh again
    // the task can be assigned with the new seed
    chain.advanceSlots(world.params.seedDelaySlots + 1)
    expectOk(world.assign(h2, { taskId: T0, attempt: 0, node }))
    // a task with a live attempt is not waiting: no refresh
    chain.advanceSlots(SEED_STALE_SLOTS + world.params.seedDelaySlots + 1)
    expectError(refresh(), ProgramError.TaskBusy)
  })

  it('uses the next recorded slot when the seed slot was skipped', () => {
    const h2 = world.handle('skipped', [{ taskId: T0, price: PRICE, computeUnits: 100 }])
    expectOk(chain.send([world.openIx(h2)], [h2.requester]))
    const seedSlot = world.execution(h2).readySlot + BigInt(world.params.seedDelaySlots)
    chain.warpToSlot(seedSlot + 3n, new Set([seedSlot]))
    // the seed uses the hash of seedSlot + 1 (the first slot >= seedSlot with an entry)
    chain.slotHashOverrides.set(seedSlot, chain.slotHashOf(seedSlot + 1n))
    expectOk(world.assign(h2, { taskId: T0, attempt: 0, node }))
  })
})

describe('settlement program: escrow', () => {
  let chain: Chain
  let world: World
  beforeEach(() => {
    chain = new Chain(program)
    world = new World(chain)
  })

  it('escrows price x (1 + p R) per task and records the request slot', () => {
    const h = world.handle('e', [{ taskId: T0, price: PRICE, computeUnits: 100 }, { taskId: T1, price: 3n * PRICE, computeUnits: 900 }])
    const slot = chain.slot()
    recordUnits('open_execution', chain.send([world.openIx(h)], [h.requester]))
    const e = world.execution(h)
    // 1.2 x 0.08 = 0.096 of the price on top
    expect(taskShare(world.params, PRICE)).toBe(1_096_000n)
    expect(e.deposited).toBe(taskShare(world.params, PRICE) + taskShare(world.params, 3n * PRICE))
    expect(e.balance).toBe(e.deposited)
    expect(e.requestSlot).toBe(slot)
    expect(e.requester.equals(h.requester.publicKey)).toBe(true)
    expect(e.tasks.map(t => t.computeUnits)).toEqual([100, 900])
    expect(chain.tokenBalance(h.escrow)).toBe(e.deposited)
    expect(chain.tokenBalance(h.requesterToken)).toBe(1_000_000_000_000n - e.deposited)
  })

  it('refuses a fee below the minimum, duplicate tasks, an overflowing total, the wrong mint and a substituted escrow', () => {
    const start = 1_000_000_000_000n
    const t = (price: bigint, id = T0): { taskId: Uint8Array, price: bigint, computeUnits: number } => ({ taskId: id, price, computeUnits: 1 })
    const send = (h: ExecutionHandle, over = {}): ReturnType<Chain['send']> => chain.send([world.openIx(h, over)], [h.requester])
    const req = world.requester(start)
    expectError(send(world.handle('a', [t(999n)], req)), ProgramError.FeeBelowMinimum)
    expectError(send(world.handle('b', [t(PRICE), t(PRICE)], req)), ProgramError.InvalidTasks)
    expectError(send(world.handle('c', [t((1n << 64n) - 1n)], req)), ProgramError.ArithmeticOverflow)
    expectError(send(world.handle('d', [t(1n << 63n), t(1n << 63n, T1)], req)), ProgramError.ArithmeticOverflow)
    const otherMint = chain.createMint(6)
    expectError(send(world.handle('e', [t(PRICE)], req), { stakeMint: otherMint }), ProgramError.WrongMint)
    const foreign = chain.createTokenAccount(otherMint, req.kp.publicKey, start)
    expectError(send(world.handle('f', [t(PRICE)], { kp: req.kp, token: foreign })), ProgramError.WrongMint)
    const h = world.handle('g', [t(PRICE)], req)
    const mine = chain.createTokenAccount(world.mint, req.kp.publicKey, 0n)
    expectError(send(h, { escrow: mine }), ProgramError.WrongPda)
    expectError(send(h, { escrow: Keypair.generate().publicKey }), ProgramError.WrongPda)
    const noSig = world.openIx(h)
    noSig.keys[0]!.isSigner = false
    expectError(chain.send([noSig]), ProgramError.MissingSigner)
    expect(chain.tokenBalance(req.token)).toBe(start)
    expect(chain.tokenBalance(foreign)).toBe(start)
  })

  it('cancel refunds unassigned tasks only, to the paying account, once', () => {
    const node = world.registerNode([T0, T1, T2])
    const h = world.open('c', [{ taskId: T0, price: PRICE, computeUnits: 1 }, { taskId: T1, price: PRICE, computeUnits: 1 }, { taskId: T2, price: PRICE, computeUnits: 1 }])
    expectOk(world.assign(h, { taskId: T0, attempt: 0, node }))
    const before = chain.tokenBalance(h.requesterToken)
    const cancel = (indices: number[], over = {}): ReturnType<Chain['send']> => chain.send([cancelTasks({
      programId: chain.programId, config: world.config, requester: h.requester.publicKey, execution: h.execution, refundTo: h.requesterToken, taskIndices: indices, ...over
    })], [h.requester])
    expectError(cancel([0, 1]), ProgramError.TaskAlreadyAssigned)
    const stranger = chain.funded()
    expectError(chain.send([cancelTasks({ programId: chain.programId, config: world.config, requester: stranger.publicKey, execution: h.execution, refundTo: h.requesterToken, taskIndices: [1] })], [stranger]), ProgramError.NotRequester)
    const elsewhere = chain.createTokenAccount(world.mint, h.requester.publicKey, 0n)
    expectError(cancel([1], { refundTo: elsewhere }), ProgramError.WrongRecipient)
    const h2 = world.open('other', [{ taskId: T0, price: PRICE, computeUnits: 1 }])
    expectError(cancel([1], { escrow: h2.escrow }), ProgramError.WrongVault)
    expect(chain.tokenBalance(h.requesterToken)).toBe(before)

    recordUnits('cancel_tasks', cancel([1]))
    expect(chain.tokenBalance(h.requesterToken)).toBe(before + taskShare(world.params, PRICE))
    expectError(cancel([1]), ProgramError.TaskCancelled)
    expectError(world.assign(h, { taskId: T1, attempt: 0, node }), ProgramError.TaskCancelled)
    expect(world.execution(h).tasks[1]!.flags & TaskFlag.Cancelled).toBe(TaskFlag.Cancelled)
    expect(chain.tokenBalance(h.requesterToken)).toBe(before + taskShare(world.params, PRICE))
  })
})

describe('settlement program: outcomes, sampling, payments', () => {
  let chain: Chain
  let world: World
  let asserter: NodeKeys
  let verifier: NodeKeys
  let h: ExecutionHandle
  beforeEach(() => {
    chain = new Chain(program)
    world = new World(chain)
    asserter = world.registerNode([T0, T1])
    verifier = world.registerNode([T0, T1])
    h = world.open('e', [{ taskId: T0, price: PRICE, computeUnits: 100 }, { taskId: T1, price: PRICE, computeUnits: 100 }])
    expectOk(world.assign(h, { taskId: T0, attempt: 0, node: asserter }))
  })

  it('not sampled: commit, decide, reveal, pay the node once', () => {
    const out = output('a')
    const commitIx = world.commitIx(h, T0, 0, asserter, out.commitment)
    expectError(chain.send([world.commitIx(h, T0, 0, verifier, out.commitment)], [verifier.operator]), ProgramError.WrongExecution)
    const wrongSigner = world.commitIx(h, T0, 0, asserter, out.commitment)
    wrongSigner.keys[0]!.pubkey = asserter.owner.publicKey
    expectError(chain.send([wrongSigner], [asserter.owner]), ProgramError.NotOperator)
    const unsigned = world.commitIx(h, T0, 0, asserter, out.commitment)
    unsigned.keys[0]!.isSigner = false
    expectError(chain.send([unsigned]), ProgramError.MissingSigner)
    recordUnits('commit', chain.send([commitIx], [asserter.operator]))
    expect(world.taskState(h, T0)!.status).toBe(TaskStatus.Completed)
    // revealing before the decision, or deciding before commit slot + K, is refused
    expectError(chain.send([world.revealIx(h, T0, 0, asserter, out.root, out.salt)], [asserter.operator]), ProgramError.WrongState)
    expectError(chain.send([world.decideIx(h, T0, 0)]), ProgramError.SeedUnavailable)
    world.forceSampling(h, T0, 0, false)
    recordUnits('decide_sampling', chain.send([world.decideIx(h, T0, 0)]))
    expect(world.taskState(h, T0)!.sampling).toBe(Sampling.Skipped)
    expectError(chain.send([world.decideIx(h, T0, 0)]), ProgramError.WrongState)
    // paying before the reveal
    expectError(chain.send([world.payIx(h, T0, 0, asserter)]), ProgramError.NotPayable)
    expectError(chain.send([world.revealIx(h, T0, 0, asserter, out.root, bytes32('wrong salt'))], [asserter.operator]), ProgramError.CommitmentMismatch)
    const readyBefore = world.execution(h).readySlot
    recordUnits('reveal (not sampled)', chain.send([world.revealIx(h, T0, 0, asserter, out.root, out.salt)], [asserter.operator]))
    expect(world.taskState(h, T0)!.status).toBe(TaskStatus.Verified)
    // dependents' first seeds derive from this moment, not from the request
    expect(world.execution(h).readySlot).toBe(chain.slot())
    expect(world.execution(h).readySlot).toBeGreaterThan(readyBefore)

    const escrowBefore = chain.tokenBalance(h.escrow)
    // only to the owner's token account, only from this execution's escrow
    const operatorToken = chain.createTokenAccount(world.mint, asserter.operator.publicKey, 0n)
    expectError(chain.send([world.payIx(h, T0, 0, asserter, operatorToken)]), ProgramError.WrongRecipient)
    const h2 = world.open('other', [{ taskId: T0, price: PRICE, computeUnits: 1 }])
    expectError(chain.send([world.payIx(h, T0, 0, asserter, asserter.ownerToken, { escrow: h2.escrow })]), ProgramError.WrongVault)
    const foreign = chain.createTokenAccount(chain.createMint(6), asserter.owner.publicKey, 0n)
    expectError(chain.send([world.payIx(h, T0, 0, asserter, foreign)]), ProgramError.WrongMint)
    expect(chain.tokenBalance(h.escrow)).toBe(escrowBefore)

    const ownerBefore = chain.tokenBalance(asserter.ownerToken)
    recordUnits('pay', chain.send([world.payIx(h, T0, 0, asserter)]))
    expect(chain.tokenBalance(asserter.ownerToken)).toBe(ownerBefore + PRICE)
    expect(asserter.account.paymentsInFlight).toBe(0n)
    expect(world.execution(h).reservedAmount).toBe(0n)
    expect(world.assignment(h, T0, 0).paid).toBe(true)
    // paying the task twice
    expectError(chain.send([world.payIx(h, T0, 0, asserter)]), ProgramError.AlreadyPaid)
    expect(chain.tokenBalance(asserter.ownerToken)).toBe(ownerBefore + PRICE)
    // a verified task takes no new attempt
    expectError(world.assign(h, { taskId: T0, attempt: 1, node: verifier }), ProgramError.TaskBusy)
  })

  it('sampled: verifier assigned (asserter blacklisted), commits first, both reveal; node paid 1x, validator 1.2x', () => {
    const out = output('a')
    expectOk(chain.send([world.commitIx(h, T0, 0, asserter, out.commitment)], [asserter.operator]))
    world.forceSampling(h, T0, 0, true)
    expectOk(chain.send([world.decideIx(h, T0, 0)]))
    const ts = world.taskState(h, T0)!
    expect(ts.sampling).toBe(Sampling.Sampled)
    expect(ts.status).toBe(TaskStatus.PendingVerification)
    // the asserter cannot reveal before a verifier committed
    expectError(chain.send([world.revealIx(h, T0, 0, asserter, out.root, out.salt, { other: world.assignmentKey(h, T0, 1) })], [asserter.operator]), ProgramError.WrongState)
    // the verifier's seed derives from the decision's slot + K
    chain.advanceSlots(world.params.seedDelaySlots + 1)
    expectError(world.assign(h, { taskId: T0, attempt: 1, kind: AssignmentKind.Verification, node: asserter, blacklist: [] }), ProgramError.NodeBlacklisted)
    // the escrow holds the *expected* verification cost: 2 x 0.096 + 1 (T1 unassigned) is 8_000 short
    // of this 1.2x verification with the primary's payment reserved; the requester tops it up
    expectError(world.assign(h, { taskId: T0, attempt: 1, kind: AssignmentKind.Verification, node: verifier, blacklist: [asserter.operator.publicKey] }), ProgramError.EscrowInsufficient)
    const e = world.execution(h)
    expect(e.balance - e.reservedAmount).toBe(1_192_000n)
    world.topUp(h, 8_000n)
    recordUnits('assign verification (3-of-4 quorum)', world.assign(h, { taskId: T0, attempt: 1, kind: AssignmentKind.Verification, node: verifier, blacklist: [asserter.operator.publicKey] }))
    const va = world.assignment(h, T0, 1)
    expect(va.kind).toBe(AssignmentKind.Verification)
    expect(va.verifies).toBe(0)
    expect(va.payment).toBe(verificationPayment(world.params, PRICE))
    expect(va.payment).toBe(1_200_000n)
    const primary = world.assignmentKey(h, T0, 0)
    const verifierKey = world.assignmentKey(h, T0, 1)
    // copying the asserter's commitment is refused
    expectError(chain.send([world.commitIx(h, T0, 1, verifier, out.commitment, primary)], [verifier.operator]), ProgramError.CopiedCommitment)
    // the verifier computes the same output, under its own salt
    const verifierOutput = { root: out.root, salt: bytes32('verifier salt') }
    const verifierCommitment = commitment(verifierOutput.root, verifierOutput.salt)
    recordUnits('commit (verifier)', chain.send([world.commitIx(h, T0, 1, verifier, verifierCommitment, primary)], [verifier.operator]))
    recordUnits('reveal (asserter, sampled)', chain.send([world.revealIx(h, T0, 0, asserter, out.root, out.salt, { other: verifierKey })], [asserter.operator]))
    expectError(chain.send([world.payIx(h, T0, 1, verifier)]), ProgramError.NotPayable)
    recordUnits('reveal (verifier)', chain.send([world.revealIx(h, T0, 1, verifier, verifierOutput.root, verifierOutput.salt, { verdict: Verdict.Match, other: primary })], [verifier.operator]))
    expect(world.taskState(h, T0)!.status).toBe(TaskStatus.Verified)
    const a0 = chain.tokenBalance(asserter.ownerToken)
    const v0 = chain.tokenBalance(verifier.ownerToken)
    expectOk(chain.send([world.payIx(h, T0, 0, asserter)]))
    recordUnits('pay (verifier)', chain.send([world.payIx(h, T0, 1, verifier)]))
    expect(chain.tokenBalance(asserter.ownerToken)).toBe(a0 + PRICE)
    expect(chain.tokenBalance(verifier.ownerToken)).toBe(v0 + 1_200_000n)
    expectError(chain.send([world.payIx(h, T0, 1, verifier)]), ProgramError.AlreadyPaid)
    expect(world.execution(h).reservedAmount).toBe(0n)
    expect(verifier.account.paymentsInFlight).toBe(0n)
    // agreeing outputs are no evidence of fraud
    expectError(chain.send(world.slashIxs(h, T0, 0, 1, asserter, verifier)), ProgramError.NoFraudEvidence)
  })

  it('unverifiable: never sampled, reveals right after its commitment, paid the reduced rate, never verified or slashed', () => {
    // T1 assigned as unverifiable (nobody else holds its dataset); T0's attempt stays as set up
    chain.advanceSlots(1)
    expectOk(world.assign(h, { taskId: T1, attempt: 0, kind: AssignmentKind.Unverifiable, node: asserter }))
    const a = world.assignment(h, T1, 0)
    expect(a.kind).toBe(AssignmentKind.Unverifiable)
    expect(a.payment).toBe(PRICE * BigInt(world.params.unverifiablePayBps) / 10_000n)
    expect(a.payment).toBeLessThan(PRICE)
    expect(world.taskState(h, T1)!.sampling).toBe(Sampling.Unverifiable)
    const out = output('private')
    expectOk(chain.send([world.commitIx(h, T1, 0, asserter, out.commitment)], [asserter.operator]))
    // no sampling decision exists for it, and no verifier can be assigned
    expectError(chain.send([world.decideIx(h, T1, 0)]), ProgramError.WrongState)
    chain.advanceSlots(world.params.seedDelaySlots + 1)
    expectError(world.assign(h, { taskId: T1, attempt: 1, kind: AssignmentKind.Verification, node: verifier, blacklist: [asserter.operator.publicKey] }), ProgramError.TaskBusy)
    // it reveals at once (a sampled-or-not task waits for commit slot + K and the decision)
    expectOk(chain.send([world.revealIx(h, T1, 0, asserter, out.root, out.salt)], [asserter.operator]))
    expect(world.taskState(h, T1)!.status).toBe(TaskStatus.Verified)
    expect(world.taskState(h, T1)!.sampling).toBe(Sampling.Unverifiable)
    const before = chain.tokenBalance(asserter.ownerToken)
    expectOk(chain.send([world.payIx(h, T1, 0, asserter)]))
    expect(chain.tokenBalance(asserter.ownerToken)).toBe(before + a.payment)
    expect(world.execution(h).reservedAmount).toBe(PRICE) // only T0's attempt is still reserved
    expectError(chain.send([world.payIx(h, T1, 0, asserter)]), ProgramError.AlreadyPaid)
  })

  it('close: refused while an assignment holds a reservation; then returns the whole remainder to the requester and cancels unpaid tasks', () => {
    const close = (over: Partial<Parameters<typeof closeExecution>[0]> = {}, signer = h.requester): ReturnType<Chain['send']> => chain.send([closeExecution({
      programId: chain.programId, config: world.config, requester: h.requester.publicKey, execution: h.execution, refundTo: h.requesterToken, ...over
    })], [signer])
    // T0's attempt is live: its payment is reserved
    expectError(close(), ProgramError.PaymentsReserved)
    const out = output('a')
    expectOk(chain.send([world.commitIx(h, T0, 0, asserter, out.commitment)], [asserter.operator]))
    world.forceSampling(h, T0, 0, false)
    expectOk(chain.send([world.decideIx(h, T0, 0)]))
    expectOk(chain.send([world.revealIx(h, T0, 0, asserter, out.root, out.salt)], [asserter.operator]))
    // verified but not collected yet: still reserved
    expectError(close(), ProgramError.PaymentsReserved)
    expectOk(chain.send([world.payIx(h, T0, 0, asserter)]))
    const stranger = chain.funded()
    expectError(close({ requester: stranger.publicKey }, stranger), ProgramError.NotRequester)
    expectError(close({ refundTo: chain.createTokenAccount(world.mint, h.requester.publicKey, 0n) }), ProgramError.WrongRecipient)
    const before = chain.tokenBalance(h.requesterToken)
    const left = world.execution(h).balance
    expect(left).toBeGreaterThan(0n) // T1 never ran, and T0's expected verification cost was not spent
    recordUnits('close_execution', close())
    expect(chain.tokenBalance(h.requesterToken)).toBe(before + left)
    expect(chain.tokenBalance(h.escrow)).toBe(0n)
    const e = world.execution(h)
    expect(e.balance).toBe(0n)
    expect(e.tasks[0]!.flags & TaskFlag.Cancelled).toBe(0)
    expect(e.tasks[1]!.flags & TaskFlag.Cancelled).toBe(TaskFlag.Cancelled)
    chain.advanceSlots(world.params.seedDelaySlots + 1)
    expectError(world.assign(h, { taskId: T1, attempt: 0, node: verifier }), ProgramError.TaskCancelled)
    // closing again moves nothing
    expectOk(close())
    expect(chain.tokenBalance(h.requesterToken)).toBe(before + left)
  })

  it('an expired attempt fails, is superseded by a reassignment, and is never paid', () => {
    const out = output('late')
    expectError(chain.send([expire({ programId: chain.programId, execution: h.execution, taskId: T0, assignment: world.assignmentKey(h, T0, 0), node: asserter.node })]), ProgramError.DeadlineNotPassed)
    chain.setTime(chain.now() + deadlineSeconds(world.params, 100) + 1n)
    expectError(chain.send([world.commitIx(h, T0, 0, asserter, out.commitment)], [asserter.operator]), ProgramError.DeadlinePassed)
    recordUnits('expire', chain.send([expire({ programId: chain.programId, execution: h.execution, taskId: T0, assignment: world.assignmentKey(h, T0, 0), node: asserter.node })]))
    expect(world.taskState(h, T0)!.status).toBe(TaskStatus.Failed)
    expect(asserter.account.paymentsInFlight).toBe(0n)
    expect(world.execution(h).reservedAmount).toBe(0n)
    // reassignment: seed from the failure slot + K, failed node blacklisted
    expectError(world.assign(h, { taskId: T0, attempt: 1, node: verifier, blacklist: [asserter.operator.publicKey] }), ProgramError.SeedUnavailable)
    chain.advanceSlots(world.params.seedDelaySlots + 1)
    expectOk(world.assign(h, { taskId: T0, attempt: 1, node: verifier, blacklist: [asserter.operator.publicKey] }))
    expect(world.taskState(h, T0)!.primaryAttempt).toBe(1)
    // the superseded attempt can neither commit nor be paid
    expectError(chain.send([world.commitIx(h, T0, 0, asserter, out.commitment)], [asserter.operator]), ProgramError.WrongState)
    expectError(chain.send([world.payIx(h, T0, 0, asserter)]), ProgramError.NotPayable)
  })
})

describe('settlement program: slashing', () => {
  let chain: Chain
  let world: World
  let asserter: NodeKeys
  let verifier: NodeKeys
  let h: ExecutionHandle
  /** asserter committed root A, verifier root B and a mismatch verdict: VERIFICATION_FAILED */
  beforeEach(() => {
    chain = new Chain(program)
    world = new World(chain)
    asserter = world.registerNode([T0])
    verifier = world.registerNode([T0])
    h = world.open('e', [{ taskId: T0, price: PRICE, computeUnits: 100 }])
    expectOk(world.assign(h, { taskId: T0, attempt: 0, node: asserter }))
    const a = output('wrong')
    const v = output('right')
    expectOk(chain.send([world.commitIx(h, T0, 0, asserter, a.commitment)], [asserter.operator]))
    world.forceSampling(h, T0, 0, true)
    expectOk(chain.send([world.decideIx(h, T0, 0)]))
    chain.advanceSlots(world.params.seedDelaySlots + 1)
    world.topUp(h, 2_000_000n)
    expectOk(world.assign(h, { taskId: T0, attempt: 1, kind: AssignmentKind.Verification, node: verifier, blacklist: [asserter.operator.publicKey] }))
    const primary = world.assignmentKey(h, T0, 0)
    expectOk(chain.send([world.commitIx(h, T0, 1, verifier, v.commitment, primary)], [verifier.operator]))
    expectOk(chain.send([world.revealIx(h, T0, 1, verifier, v.root, v.salt, { verdict: Verdict.Mismatch, other: primary })], [verifier.operator]))
    expectOk(chain.send([world.revealIx(h, T0, 0, asserter, a.root, a.salt, { other: world.assignmentKey(h, T0, 1) })], [asserter.operator]))
    expect(world.taskState(h, T0)!.status).toBe(TaskStatus.VerificationFailed)
  })

  it('records a slash with quorum and evidence, executes it after the challenge delay: half bounty, half treasury', () => {
    const slashKey = world.slashKey(h, T0, 0, asserter)
    // without quorum
    expectError(chain.send(world.slashIxs(h, T0, 0, 1, asserter, verifier, { signers: world.committee.slice(0, 2) })), ProgramError.QuorumNotReached)
    // bounty to someone other than the prover's owner
    const thief = chain.createTokenAccount(world.mint, Keypair.generate().publicKey, 0n)
    expectError(chain.send(world.slashIxs(h, T0, 0, 1, asserter, verifier, { bountyTo: thief })), ProgramError.WrongRecipient)
    const t0 = chain.now()
    recordUnits('record_slash (3-of-4 quorum)', chain.send(world.slashIxs(h, T0, 0, 1, asserter, verifier)))
    const s = decodeSlash(chain.account(slashKey)!.data)
    expect(s.status).toBe(SlashStatus.Recorded)
    expect(s.executableAt).toBe(t0 + world.params.challengeDelay)
    expect(asserter.account.status).toBe(NodeStatus.Slashed)
    // the double slash
    expectError(chain.send(world.slashIxs(h, T0, 0, 1, asserter, verifier)), ProgramError.AlreadySlashed)
    // a slashed node cannot be assigned, cannot unbond or withdraw while the slash is pending
    expectError(world.assign(h, { taskId: T0, attempt: 2, node: asserter }), ProgramError.NodeSlashed)

    const execIx = executeSlash({ programId: chain.programId, config: world.config, slash: slashKey, accusedNode: asserter.node, bountyTo: verifier.ownerToken, treasury: world.treasury })
    chain.setTime(t0 + world.params.challengeDelay - 1n)
    expectError(chain.send([execIx]), ProgramError.ChallengePending)
    expect(chain.tokenBalance(asserter.vault)).toBe(2_000_000_000n)
    chain.setTime(t0 + world.params.challengeDelay)
    const wrongTreasury = executeSlash({ programId: chain.programId, config: world.config, slash: slashKey, accusedNode: asserter.node, bountyTo: verifier.ownerToken, treasury: thief })
    expectError(chain.send([wrongTreasury]), ProgramError.WrongRecipient)
    const substituted = executeSlash({ programId: chain.programId, config: world.config, slash: slashKey, accusedNode: asserter.node, bountyTo: verifier.ownerToken, treasury: world.treasury, vault: verifier.vault })
    expectError(chain.send([substituted]), ProgramError.WrongVault)
    const v0 = chain.tokenBalance(verifier.ownerToken)
    recordUnits('execute_slash', chain.send([execIx]))
    expect(chain.tokenBalance(asserter.vault)).toBe(0n)
    expect(chain.tokenBalance(verifier.ownerToken)).toBe(v0 + 1_000_000_000n)
    expect(chain.tokenBalance(world.treasury)).toBe(1_000_000_000n)
    const after = decodeSlash(chain.account(slashKey)!.data)
    expect(after.status).toBe(SlashStatus.Executed)
    expect(after.amount).toBe(2_000_000_000n)
    expect(after.bounty).toBe(1_000_000_000n)
    expect(asserter.account.status).toBe(NodeStatus.SlashExecuted)
    expectError(chain.send([execIx]), ProgramError.AlreadySlashed)
    // the verifier was paid for the verification; the failed asserter is not
    expectOk(chain.send([world.payIx(h, T0, 1, verifier)]))
    expectError(chain.send([world.payIx(h, T0, 0, asserter)]), ProgramError.NodeSlashed)
    // a new primary attempt after VERIFICATION_FAILED, seeded from the failure's slot + K
    const third = world.registerNode([T0])
    chain.advanceSlots(world.params.seedDelaySlots + 1)
    expectOk(world.assign(h, { taskId: T0, attempt: 2, node: third, blacklist: [asserter.operator.publicKey] }))
  })

  it('keeps unbonding stake slashable; pays the verifier after the task moved on', () => {
    // the asserter unbonds everything right after cheating: still slashed in full
    expectOk(chain.send([unbond({ programId: chain.programId, owner: asserter.owner.publicKey, config: world.config, node: asserter.node, amount: 2_000_000_000n })], [asserter.owner]))
    expectOk(chain.send(world.slashIxs(h, T0, 0, 1, asserter, verifier)))
    chain.setTime(chain.now() + world.params.challengeDelay)
    expectOk(chain.send([executeSlash({ programId: chain.programId, config: world.config, slash: world.slashKey(h, T0, 0, asserter), accusedNode: asserter.node, bountyTo: verifier.ownerToken, treasury: world.treasury })]))
    expect(chain.tokenBalance(asserter.vault)).toBe(0n)
    expect(chain.tokenBalance(world.treasury)).toBe(1_000_000_000n)
    expect(decodeNode(chain.account(asserter.node)!.data).unbonding).toBe(0n)
    // reassigned first, the verification is still paid, once
    const third = world.registerNode([T0])
    chain.advanceSlots(world.params.seedDelaySlots + 1)
    expectOk(world.assign(h, { taskId: T0, attempt: 2, node: third, blacklist: [asserter.operator.publicKey] }))
    const v0 = chain.tokenBalance(verifier.ownerToken)
    expectOk(chain.send([world.payIx(h, T0, 1, verifier)]))
    expect(chain.tokenBalance(verifier.ownerToken)).toBe(v0 + 1_200_000n)
    expectError(chain.send([world.payIx(h, T0, 1, verifier)]), ProgramError.AlreadyPaid)
  })
})
