/**
 * Settlement end to end through an unmodified @solana/web3.js Connection against the local chain
 * server (issue 6): the network config with a 4-member committee, three registered and staked nodes
 * (owner keys apart from operator keys), an escrowed execution, a primary assignment settled with a
 * 3-of-4 Ed25519 quorum over a seed the program recomputes from SlotHashes, the asserter's commitment,
 * the sampling decision, a verification by quorum, mismatching reveals, a slash recorded with quorum
 * and evidence and executed after the challenge delay (measured on the chain's Clock), then a SIGKILL
 * and restart that keeps every confirmed account byte for byte, and new settlement transactions
 * (a reassignment seeded from pre-crash SlotHashes, the verifier's payment) landing afterwards.
 *
 * Nodes: the asserter (cheats), a worker (takes the reassignment after the restart) and a validator
 * (the verifier: DESIGN.md gives verification to a staked daemon with the validator role; roles are
 * not on chain, so all three register the same way).
 *
 * Parameters are the local network's (bootstrap/local.yaml) except: p = 1, so the one task is sampled
 * without trying seeds until one is (the safety check p > C / ((1 - r)(R + S)) holds a fortiori), and
 * a 3 s challenge delay instead of 10 s to keep the test short.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Connection, Keypair, LAMPORTS_PER_SOL, PublicKey, Transaction, type TransactionInstruction } from '@solana/web3.js'
import {
  AssignmentKind, AssignmentStatus, NO_ATTEMPT, NodeStatus, PPM, ProgramError, Sampling, SlashStatus, TOKEN_PROGRAM_ID,
  TaskFlag, TaskStatus, Verdict, assign, assignmentAddress, assignmentDigest, attemptSeed, blacklistHash, canonicalBlacklist,
  commit, configAddress, decideSampling, decodeAssignment, decodeConfig, decodeExecution, decodeNode, decodeSlash,
  decodeTaskState, deadlineSeconds, escrowAddress, executeSlash, executionAddress, initializeConfig, isSampled,
  nodeAddress, openExecution, paramsAreSafe, pay, quorumInstruction, recordSlash, registerNode, reveal, slashAddress,
  slashDigest, taskShare, taskStateAddress, vaultAddress, verificationPayment, type Params
} from '../../../programs/client/index.js'
import { airdrop, createStakeMint, fundOwners, sendAndConfirm, startLocalChain, type LocalChain } from '../../../programs/chain/testnet.js'
import { signTransaction } from '../../../programs/chain/signer.js'
import { loadNetworkPreset } from '../../../daemon/preset.js'
import { toProgramParams } from '../../../daemon/settlement/params.js'
import { bytes32, output, taskId } from '../programs/fixtures.js'
import { ensureProgramBuilt, readClock, readSlotHashes, snapshotAccounts, tokenAmount, until, waitForSlotHash } from './helpers.js'

const SLOT_MS = 50
const PARAMS: Params = { ...toProgramParams(loadNetworkPreset('local').settlement), samplingPpm: PPM, challengeDelay: 3n }
const TASK = taskId('e2e/resnet')
const PRICE = 1_000_000n
/** deadline = 5 s + 1 s per 100 CU on the local network: 30 s leaves a loaded machine room to commit */
const COMPUTE_UNITS = 2_500

/** The transaction is refused (in preflight) with the program's own error code. */
async function expectRefused (sending: Promise<string>, code: ProgramError): Promise<void> {
  await expect(sending).rejects.toThrow(`custom program error: 0x${code.toString(16)}`)
}

interface Party {
  name: string
  owner: Keypair
  operator: Keypair
  stake: bigint
  ownerToken: PublicKey
  node: PublicKey
  vault: PublicKey
}

let root: string
let chainDir: string
let chain: LocalChain | undefined
let connection: Connection
const payer = Keypair.generate()

beforeAll(async () => {
  ensureProgramBuilt()
  root = mkdtempSync(join(tmpdir(), 'bitflow-settlement-e2e-'))
  chainDir = join(root, 'chain')
  chain = await startLocalChain({ dir: chainDir, slotMs: SLOT_MS, logLevel: 'warn' })
  connection = new Connection(chain.rpcUrl, 'confirmed')
  await airdrop(connection, payer.publicKey, 100 * LAMPORTS_PER_SOL)
})

afterAll(async () => {
  await chain?.stop({ timeoutMs: 5000 })
  if (root !== undefined) rmSync(root, { recursive: true, force: true })
})

describe('settlement end to end on the local chain (web3.js Connection)', () => {
  let programId: PublicKey
  let genesisHash: Uint8Array
  let config: PublicKey
  let mint: PublicKey
  let mintAuthority: Keypair
  let treasury: PublicKey
  let requesterToken: PublicKey
  let supply: bigint
  const committee = Array.from({ length: 4 }, () => Keypair.generate())
  const requester = Keypair.generate()
  const parties: Party[] = []
  let asserter: Party
  let worker: Party
  let validator: Party
  const executionId = bytes32('e2e/execution/1')
  let execution: PublicKey
  let escrow: PublicKey
  const taskState = (): PublicKey => taskStateAddress(programId, execution, TASK)[0]
  const assignmentKey = (attempt: number): PublicKey => assignmentAddress(programId, execution, TASK, attempt)[0]
  const asserterOut = output('e2e/asserter: a wrong output')
  const validatorOut = output('e2e/validator: the right output')
  let slash: PublicKey
  /** every transaction signature, to check their statuses after the restart */
  const signatures: string[] = []

  const send = async (ixs: TransactionInstruction[], signers: Keypair[] = []): Promise<string> => {
    const sig = await sendAndConfirm(connection, ixs, payer, signers)
    signatures.push(sig)
    return sig
  }
  const account = async (key: PublicKey): Promise<Buffer> => {
    const a = await connection.getAccountInfo(key)
    if (a === null) throw new Error(`no account ${key.toBase58()}`)
    return a.data
  }
  const cfgEpoch = async (): Promise<bigint> => decodeConfig(await account(config)).committeeEpoch
  /** the sum of every token account of the stake mint (owners, vaults, escrow, treasury) */
  const tokensHeld = async (): Promise<bigint> => {
    const all = await connection.getProgramAccounts(TOKEN_PROGRAM_ID, { filters: [{ dataSize: 165 }, { memcmp: { offset: 0, bytes: mint.toBase58() } }] })
    return all.reduce((sum, a) => sum + a.account.data.readBigUInt64LE(64), 0n)
  }
  const slotOf = async (signature: string): Promise<bigint> => BigInt((await connection.getSignatureStatus(signature)).value!.slot)

  /** [Ed25519 quorum of `signers`, assign] for (TASK, attempt), seeded exactly as the program seeds it. */
  async function assignIxs (o: { attempt: number, kind: AssignmentKind, party: Party, blacklist: PublicKey[], signers: Keypair[] }): Promise<{ ixs: TransactionInstruction[], seed: Uint8Array }> {
    const ts = await connection.getAccountInfo(taskState())
    const trigger = ts === null ? decodeExecution(await account(execution)).readySlot : decodeTaskState(ts.data).triggerSlot
    const seedSlot = trigger + BigInt(PARAMS.seedDelaySlots)
    const entry = await waitForSlotHash(connection, seedSlot)
    const seed = attemptSeed({ genesisHash, executionId, taskId: TASK, attempt: o.attempt, slot: seedSlot, slotHash: entry.hash })
    const blacklist = canonicalBlacklist(o.blacklist)
    const expirySlot = BigInt(await connection.getSlot()) + 600n
    const livenessRound = 1n
    const digest = assignmentDigest({
      programId, genesisHash, committeeEpoch: await cfgEpoch(), executionId, taskId: TASK, attempt: o.attempt, node: o.party.operator.publicKey,
      kind: o.kind, blacklistHash: blacklistHash(blacklist), seed, livenessRound, computeUnits: BigInt(COMPUTE_UNITS), expirySlot
    })
    return {
      seed,
      ixs: [
        quorumInstruction(digest, o.signers),
        assign({ programId, payer: payer.publicKey, config, execution, taskId: TASK, attempt: o.attempt, kind: o.kind, node: o.party.node, livenessRound, expirySlot, blacklist })
      ]
    }
  }

  it('initializes a 4-member committee (threshold 3) and registers three staked nodes, owners apart from operators', async () => {
    programId = new PublicKey(chain!.programId)
    genesisHash = new PublicKey(chain!.genesisHash).toBytes()
    config = configAddress(programId, genesisHash)[0]
    expect(paramsAreSafe(PARAMS)).toBe(true)
    expect(PARAMS.challengeDelay).toBeLessThan(PARAMS.unbondingDelay)
    ;({ mint, mintAuthority } = await createStakeMint(connection, { payer }))
    const specs = [taskId('e2e/other'), TASK]
    const stakes: Array<[string, bigint]> = [['asserter', 2_000_000_000n], ['worker', 1_500_000_000n], ['validator', 3_000_000_000n]]
    for (const [name, stake] of stakes) {
      const owner = Keypair.generate()
      const operator = Keypair.generate()
      const node = nodeAddress(programId, config, operator.publicKey)[0]
      parties.push({ name, owner, operator, stake, ownerToken: PublicKey.default, node, vault: vaultAddress(programId, node)[0] })
    }
    ;[asserter, worker, validator] = parties as [Party, Party, Party]
    const treasuryOwner = Keypair.generate().publicKey
    const OWNER_TOKENS = 5_000_000_000n
    const REQUESTER_TOKENS = 100_000_000n
    const funded = await fundOwners(connection, {
      payer, mint, mintAuthority,
      owners: [
        ...parties.map(p => ({ owner: p.owner.publicKey, lamports: LAMPORTS_PER_SOL, tokens: OWNER_TOKENS })),
        { owner: treasuryOwner },
        { owner: requester.publicKey, lamports: LAMPORTS_PER_SOL, tokens: REQUESTER_TOKENS }
      ]
    })
    parties.forEach((p, i) => { p.ownerToken = funded[i]!.tokenAccount })
    treasury = funded[3]!.tokenAccount
    requesterToken = funded[4]!.tokenAccount
    supply = 3n * OWNER_TOKENS + REQUESTER_TOKENS
    expect(BigInt((await connection.getTokenSupply(mint)).value.amount)).toBe(supply)

    await send([initializeConfig({ programId, payer: payer.publicKey, genesisHash, stakeMint: mint, treasury, committee: committee.map(k => k.publicKey), params: PARAMS })])
    const cfg = decodeConfig(await account(config))
    expect(cfg.committeeLen).toBe(4)
    expect(cfg.threshold).toBe(3)
    expect(cfg.committee.map(k => k.toBase58())).toEqual(committee.map(k => k.publicKey.toBase58()))
    expect(cfg.committeeEpoch).toBe(0n)
    expect(cfg.params).toEqual(PARAMS)
    expect(cfg.stakeMint.equals(mint)).toBe(true)
    expect(cfg.treasury.equals(treasury)).toBe(true)
    expect(cfg.mintDecimals).toBe(6)

    for (const p of parties) {
      // the owner funds the stake; the operator (the daemon's identity) co-signs and holds no tokens
      await send([registerNode({ programId, config, owner: p.owner.publicKey, operator: p.operator.publicKey, ownerToken: p.ownerToken, stakeMint: mint, amount: p.stake, capacity: 4, specializations: specs })], [p.owner, p.operator])
      const n = decodeNode(await account(p.node))
      expect(n.owner.equals(p.owner.publicKey)).toBe(true)
      expect(n.operator.equals(p.operator.publicKey)).toBe(true)
      expect(n.owner.equals(n.operator)).toBe(false)
      expect(n.config.equals(config)).toBe(true)
      expect(n.vault.equals(p.vault)).toBe(true)
      expect(n.status).toBe(NodeStatus.Active)
      expect(n.stake).toBe(p.stake)
      expect(n.paymentsInFlight).toBe(0n)
      expect(n.specializations.map(s => Buffer.from(s).toString('hex'))).toEqual(specs.map(s => Buffer.from(s).toString('hex')))
      expect(await tokenAmount(connection, p.vault)).toBe(p.stake)
      expect(await tokenAmount(connection, p.ownerToken)).toBe(OWNER_TOKENS - p.stake)
    }
    expect(decodeConfig(await account(config)).nodeCount).toBe(3n)
    expect(await tokensHeld()).toBe(supply)
  })

  it('escrows an execution and settles a primary assignment with a 3-of-4 quorum over the SlotHashes seed', async () => {
    execution = executionAddress(programId, config, executionId)[0]
    escrow = escrowAddress(programId, execution)[0]
    await send([openExecution({ programId, config, requester: requester.publicKey, requesterToken, stakeMint: mint, executionId, tasks: [{ taskId: TASK, price: PRICE, computeUnits: COMPUTE_UNITS }] })], [requester])
    const e = decodeExecution(await account(execution))
    const deposit = taskShare(PARAMS, PRICE)
    expect(deposit).toBe(PRICE + verificationPayment(PARAMS, PRICE)) // p = 1: a whole verification is escrowed
    expect(e.deposited).toBe(deposit)
    expect(e.balance).toBe(deposit)
    expect(e.reservedAmount).toBe(0n)
    expect(e.requester.equals(requester.publicKey)).toBe(true)
    expect(e.escrow.equals(escrow)).toBe(true)
    expect(e.requestSlot).toBe(await slotOf(signatures.at(-1)!))
    expect(await tokenAmount(connection, escrow)).toBe(deposit)

    // the program refuses the assignment until the seed slot (request slot + K) has a SlotHashes entry:
    // assignIxs waits for it on the chain, then the committee signs the seed the program will recompute
    const before = await readClock(connection)
    const { ixs, seed } = await assignIxs({ attempt: 0, kind: AssignmentKind.Primary, party: asserter, blacklist: [], signers: committee.slice(1, 4) })
    const sig = await send(ixs)
    const after = await readClock(connection)
    const a = decodeAssignment(await account(assignmentKey(0)))
    expect(a.kind).toBe(AssignmentKind.Primary)
    expect(a.status).toBe(AssignmentStatus.Assigned)
    expect(a.node.equals(asserter.node)).toBe(true)
    expect(a.execution.equals(execution)).toBe(true)
    expect(Buffer.from(a.taskId).equals(Buffer.from(TASK))).toBe(true)
    expect(a.attempt).toBe(0)
    expect(a.verifies).toBe(NO_ATTEMPT)
    expect(a.payment).toBe(PRICE)
    expect(a.assignedSlot).toBe(await slotOf(sig))
    expect(a.assignedSlot).toBeGreaterThan(e.requestSlot + BigInt(PARAMS.seedDelaySlots))
    expect(Buffer.from(a.seed).equals(Buffer.from(seed))).toBe(true)
    const d = deadlineSeconds(PARAMS, COMPUTE_UNITS)
    expect(d).toBe(30n)
    expect(a.deadline).toBeGreaterThanOrEqual(before.unixTimestamp + d)
    expect(a.deadline).toBeLessThanOrEqual(after.unixTimestamp + d)
    const ts = decodeTaskState(await account(taskState()))
    expect(ts.status).toBe(TaskStatus.Assigned)
    expect(ts.sampling).toBe(Sampling.Undecided)
    expect(ts.execution.equals(execution)).toBe(true)
    expect(ts.primaryNode.equals(asserter.node)).toBe(true)
    expect(ts.primaryAttempt).toBe(0)
    expect(ts.verifierAttempt).toBe(NO_ATTEMPT)
    expect(ts.nextAttempt).toBe(1)
    expect(ts.triggerSlot).toBe(e.requestSlot)
    const e2 = decodeExecution(await account(execution))
    expect(e2.reservedAmount).toBe(PRICE)
    expect(e2.tasks[0]!.flags & TaskFlag.Assigned).toBe(TaskFlag.Assigned)
    expect(decodeNode(await account(asserter.node)).paymentsInFlight).toBe(PRICE)
    // the same signed assignment again is refused (its account exists) and changes nothing
    await expectRefused(sendAndConfirm(connection, ixs, payer), ProgramError.AssignmentExists)
    expect(decodeTaskState(await account(taskState())).nextAttempt).toBe(1)
  })

  it('commits, decides sampling at commit slot + K, verifies by quorum, and records mismatching reveals', async () => {
    const primary = assignmentKey(0)
    const verification = assignmentKey(1)
    const commitSig = await send([commit({ programId, operator: asserter.operator.publicKey, node: asserter.node, execution, taskId: TASK, assignment: primary, commitment: asserterOut.commitment })], [asserter.operator])
    const a0 = decodeAssignment(await account(primary))
    expect(a0.status).toBe(AssignmentStatus.Committed)
    expect(a0.commitSlot).toBe(await slotOf(commitSig))
    expect(Buffer.from(a0.commitment).equals(Buffer.from(asserterOut.commitment))).toBe(true)
    expect(decodeTaskState(await account(taskState())).status).toBe(TaskStatus.Completed)

    // the decision draws from SlotHashes[commit slot + K], unknown when the asserter committed
    const decisionSlot = a0.commitSlot + BigInt(PARAMS.seedDelaySlots)
    const entry = await waitForSlotHash(connection, decisionSlot)
    expect(isSampled({ genesisHash, executionId, taskId: TASK, attempt: 0, slot: decisionSlot, slotHash: entry.hash }, a0.commitment, PARAMS.samplingPpm)).toBe(true)
    const decideSig = await send([decideSampling({ programId, config, execution, taskId: TASK, assignment: primary })])
    let ts = decodeTaskState(await account(taskState()))
    expect(ts.sampling).toBe(Sampling.Sampled)
    expect(ts.status).toBe(TaskStatus.PendingVerification)
    expect(ts.triggerSlot).toBe(await slotOf(decideSig))

    // a verification by another quorum (members 0, 2, 3), the asserter blacklisted, seeded from decision slot + K
    const { ixs, seed } = await assignIxs({ attempt: 1, kind: AssignmentKind.Verification, party: validator, blacklist: [asserter.operator.publicKey], signers: [committee[0]!, committee[2]!, committee[3]!] })
    await send(ixs)
    const v = decodeAssignment(await account(verification))
    expect(v.kind).toBe(AssignmentKind.Verification)
    expect(v.status).toBe(AssignmentStatus.Assigned)
    expect(v.node.equals(validator.node)).toBe(true)
    expect(v.attempt).toBe(1)
    expect(v.verifies).toBe(0)
    expect(v.payment).toBe(verificationPayment(PARAMS, PRICE))
    expect(v.payment).toBe(1_200_000n)
    expect(Buffer.from(v.seed).equals(Buffer.from(seed))).toBe(true)
    ts = decodeTaskState(await account(taskState()))
    expect(ts.verifierAttempt).toBe(1)
    expect(ts.nextAttempt).toBe(2)
    expect(decodeExecution(await account(execution)).reservedAmount).toBe(PRICE + v.payment)
    expect(decodeNode(await account(validator.node)).paymentsInFlight).toBe(v.payment)

    await send([commit({ programId, operator: validator.operator.publicKey, node: validator.node, execution, taskId: TASK, assignment: verification, commitment: validatorOut.commitment, other: primary })], [validator.operator])
    expect(decodeAssignment(await account(verification)).status).toBe(AssignmentStatus.Committed)
    await send([reveal({ programId, operator: validator.operator.publicKey, node: validator.node, execution, taskId: TASK, assignment: verification, outputRoot: validatorOut.root, salt: validatorOut.salt, verdict: Verdict.Mismatch, other: primary })], [validator.operator])
    expect(decodeTaskState(await account(taskState())).status).toBe(TaskStatus.PendingVerification)
    const failSig = await send([reveal({ programId, operator: asserter.operator.publicKey, node: asserter.node, execution, taskId: TASK, assignment: primary, outputRoot: asserterOut.root, salt: asserterOut.salt, other: verification })], [asserter.operator])
    const revealedA = decodeAssignment(await account(primary))
    const revealedV = decodeAssignment(await account(verification))
    expect(revealedA.status).toBe(AssignmentStatus.Revealed)
    expect(revealedV.status).toBe(AssignmentStatus.Revealed)
    expect(revealedV.verdict).toBe(Verdict.Mismatch)
    expect(revealedV.resolved).toBe(true)
    expect(Buffer.from(revealedA.outputRoot).equals(Buffer.from(asserterOut.root))).toBe(true)
    expect(Buffer.from(revealedV.outputRoot).equals(Buffer.from(validatorOut.root))).toBe(true)
    expect(Buffer.from(revealedA.outputRoot).equals(Buffer.from(revealedV.outputRoot))).toBe(false)
    ts = decodeTaskState(await account(taskState()))
    expect(ts.status).toBe(TaskStatus.VerificationFailed)
    expect(ts.triggerSlot).toBe(await slotOf(failSig))
    // the failed primary's payment no longer counts against the escrow; the verification's does
    expect(decodeExecution(await account(execution)).reservedAmount).toBe(v.payment)
  })

  it('records the slash with quorum and evidence, and executes it once the chain\'s Clock passes the challenge delay', async () => {
    const a = decodeAssignment(await account(assignmentKey(0)))
    const v = decodeAssignment(await account(assignmentKey(1)))
    slash = slashAddress(programId, execution, TASK, 0, asserter.node)[0]
    const bountyTo = validator.ownerToken // the proving validator's owner
    const expirySlot = BigInt(await connection.getSlot()) + 600n
    const digest = slashDigest({
      programId, genesisHash, committeeEpoch: await cfgEpoch(), executionId, taskId: TASK, attempt: 0, accused: asserter.operator.publicKey,
      asserterCommitment: a.commitment, verifierCommitment: v.commitment, asserterOutputRoot: a.outputRoot, verifierOutputRoot: v.outputRoot,
      bountyTo, expirySlot
    })
    const recordSig = await send([
      quorumInstruction(digest, [committee[0]!, committee[1]!, committee[3]!]),
      recordSlash({
        programId, payer: payer.publicKey, config, execution, taskId: TASK, asserterAssignment: assignmentKey(0), verifierAssignment: assignmentKey(1),
        attempt: 0, accusedNode: asserter.node, proverNode: validator.node, bountyTo, expirySlot
      })
    ])
    const recordedTx = await connection.getTransaction(recordSig, { maxSupportedTransactionVersion: 0, commitment: 'confirmed' })
    expect(recordedTx?.meta?.err).toBeNull()
    const s = decodeSlash(await account(slash))
    expect(s.status).toBe(SlashStatus.Recorded)
    expect(s.attempt).toBe(0)
    expect(s.config.equals(config)).toBe(true)
    expect(s.execution.equals(execution)).toBe(true)
    expect(s.accused.equals(asserter.node)).toBe(true)
    expect(s.bountyTo.equals(bountyTo)).toBe(true)
    expect(s.executableAt).toBe(s.recordedAt + PARAMS.challengeDelay)
    expect(decodeNode(await account(asserter.node)).status).toBe(NodeStatus.Slashed)

    const execIx = executeSlash({ programId, config, slash, accusedNode: asserter.node, bountyTo, treasury })
    // before the delay the program refuses: simulated against the chain's current Clock; the check
    // only counts when the Clock read after the simulation is still short of executable_at
    const { blockhash } = await connection.getLatestBlockhash()
    const early = new Transaction({ feePayer: payer.publicKey, recentBlockhash: blockhash }).add(execIx)
    signTransaction(early, [payer])
    const sim = await connection.simulateTransaction(early)
    if ((await readClock(connection)).unixTimestamp < s.executableAt) {
      expect(sim.value.err).toEqual({ InstructionError: [0, { Custom: ProgramError.ChallengePending }] })
    }

    const held = await tokenAmount(connection, asserter.vault)
    expect(held).toBe(asserter.stake)
    const bounty0 = await tokenAmount(connection, bountyTo)
    const treasury0 = await tokenAmount(connection, treasury)
    expect(treasury0).toBe(0n)
    await until('the chain\'s Clock to reach the slash\'s executable_at', async () => (await readClock(connection)).unixTimestamp >= s.executableAt, Number(PARAMS.challengeDelay) * 1000 + 15_000)
    await send([execIx])

    const done = decodeSlash(await account(slash))
    expect(done.status).toBe(SlashStatus.Executed)
    expect(done.amount).toBe(held * BigInt(PARAMS.slashBps) / 10_000n)
    expect(done.amount).toBe(asserter.stake) // 100% on the local network
    expect(done.bounty).toBe(done.amount * BigInt(PARAMS.bountyBps) / 10_000n)
    expect(done.bounty * 2n).toBeLessThanOrEqual(done.amount) // at most half to the prover
    expect(await tokenAmount(connection, asserter.vault)).toBe(held - done.amount)
    expect(await tokenAmount(connection, bountyTo)).toBe(bounty0 + done.bounty)
    expect(await tokenAmount(connection, treasury)).toBe(treasury0 + done.amount - done.bounty)
    const n = decodeNode(await account(asserter.node))
    expect(n.status).toBe(NodeStatus.SlashExecuted)
    expect(n.stake).toBe(0n)
    expect(n.paymentsInFlight).toBe(0n)
    // the verifier and the bystander keep their stake; no token was created or destroyed
    expect(await tokenAmount(connection, validator.vault)).toBe(validator.stake)
    expect(await tokenAmount(connection, worker.vault)).toBe(worker.stake)
    expect(await tokensHeld()).toBe(supply)
    expect(BigInt((await connection.getTokenSupply(mint)).value.amount)).toBe(supply)
    // executed once
    await expectRefused(sendAndConfirm(connection, [execIx], payer), ProgramError.AlreadySlashed)
  })

  it('keeps every confirmed account across SIGKILL and restart; settlement transactions land afterwards', async () => {
    const programAccountKeys = [config, ...parties.map(p => p.node), execution, taskState(), assignmentKey(0), assignmentKey(1), slash]
    const tokenKeys = [...parties.flatMap(p => [p.vault, p.ownerToken]), escrow, treasury, requesterToken]
    const keys = [...programAccountKeys, ...tokenKeys, mint, payer.publicKey, ...parties.map(p => p.owner.publicKey), requester.publicKey]
    const before = await snapshotAccounts(connection, keys)
    for (const k of keys) expect(before.get(k.toBase58()), k.toBase58()).not.toBeNull()
    for (const k of programAccountKeys) expect(before.get(k.toBase58())?.owner).toBe(programId.toBase58())
    for (const k of tokenKeys) expect(before.get(k.toBase58())?.owner).toBe(TOKEN_PROGRAM_ID.toBase58())
    const listing = async (owner: PublicKey): Promise<string[]> => (await connection.getProgramAccounts(owner)).map(p => `${p.pubkey.toBase58()}:${p.account.data.toString('hex')}`).sort()
    const programBefore = await listing(programId)
    expect(programBefore.length).toBe(programAccountKeys.length)
    const tokenBefore = await listing(TOKEN_PROGRAM_ID)
    const statuses = (await connection.getSignatureStatuses(signatures)).value
    for (const st of statuses) {
      expect(st?.confirmationStatus).toBe('finalized')
      expect(st?.err).toBeNull()
    }
    const slotHashesBefore = await readSlotHashes(connection)
    const slot = await connection.getSlot()

    await chain!.kill()
    const port = Number(new URL(chain!.rpcUrl).port)
    chain = await startLocalChain({ dir: chainDir, slotMs: SLOT_MS, logLevel: 'warn', port })
    connection = new Connection(chain.rpcUrl, 'confirmed')
    expect(chain.programId).toBe(programId.toBase58())
    expect(new PublicKey(chain.genesisHash).toBytes()).toEqual(genesisHash)
    expect(await connection.getSlot()).toBeGreaterThanOrEqual(slot)

    const after = await snapshotAccounts(connection, keys)
    for (const k of keys) expect(after.get(k.toBase58()), k.toBase58()).toEqual(before.get(k.toBase58()))
    expect(await listing(programId)).toEqual(programBefore)
    expect(await listing(TOKEN_PROGRAM_ID)).toEqual(tokenBefore)
    const statusesAfter = (await connection.getSignatureStatuses(signatures)).value
    statusesAfter.forEach((st, i) => {
      expect(st?.slot).toBe(statuses[i]!.slot)
      expect(st?.confirmationStatus).toBe('finalized')
      expect(st?.err).toBeNull()
    })
    // SlotHashes of the slots before the crash come back unchanged (seeds derive from them)
    const slotHashesAfter = await readSlotHashes(connection)
    const hex = (entries: typeof slotHashesBefore): Map<string, string> => new Map(entries.map(e => [String(e.slot), Buffer.from(e.hash).toString('hex')]))
    const afterMap = hex(slotHashesAfter)
    for (const [s, h] of hex(slotHashesBefore)) if (afterMap.has(s)) expect(afterMap.get(s), `SlotHashes[${s}]`).toBe(h)
    expect(afterMap.has(String(slotHashesBefore[0]!.slot))).toBe(true)

    // new settlement transactions land: the failed task's reassignment to the worker node (seeded from
    // the failure slot + K, a pre-crash SlotHashes entry), then the verifier's 1.2x payment
    const { ixs, seed } = await assignIxs({ attempt: 2, kind: AssignmentKind.Primary, party: worker, blacklist: [asserter.operator.publicKey], signers: committee.slice(0, 3) })
    const failSlot = decodeTaskState(await account(taskState())).triggerSlot + BigInt(PARAMS.seedDelaySlots)
    const preCrash = slotHashesBefore.find(e => e.slot === failSlot)
    expect(preCrash, `SlotHashes[${failSlot}] before the crash`).toBeDefined()
    expect(seed).toEqual(attemptSeed({ genesisHash, executionId, taskId: TASK, attempt: 2, slot: failSlot, slotHash: preCrash!.hash }))
    await send(ixs)
    const a2 = decodeAssignment(await account(assignmentKey(2)))
    expect(a2.node.equals(worker.node)).toBe(true)
    expect(a2.kind).toBe(AssignmentKind.Primary)
    expect(Buffer.from(a2.seed).equals(Buffer.from(seed))).toBe(true)
    const ts = decodeTaskState(await account(taskState()))
    expect(ts.status).toBe(TaskStatus.Assigned)
    expect(ts.primaryAttempt).toBe(2)
    expect(ts.primaryNode.equals(worker.node)).toBe(true)

    const v0 = await tokenAmount(connection, validator.ownerToken)
    await send([pay({ programId, config, execution, taskId: TASK, assignment: assignmentKey(1), node: validator.node, destination: validator.ownerToken })])
    expect(await tokenAmount(connection, validator.ownerToken)).toBe(v0 + verificationPayment(PARAMS, PRICE))
    expect(decodeAssignment(await account(assignmentKey(1))).paid).toBe(true)
    expect(decodeNode(await account(validator.node)).paymentsInFlight).toBe(0n)
    const e = decodeExecution(await account(execution))
    expect(e.reservedAmount).toBe(PRICE) // the reassigned attempt's payment
    expect(e.balance).toBe(taskShare(PARAMS, PRICE) - verificationPayment(PARAMS, PRICE))
    expect(await tokensHeld()).toBe(supply)
    const last = (await connection.getSignatureStatuses(signatures.slice(-2))).value
    for (const st of last) expect(st?.confirmationStatus).toBe('finalized')
  })
})
