/**
 * A settlement network on LiteSVM for tests: config and committee, registered nodes, requesters,
 * executions, and committee-signed assignments and slashes built with the client exactly as a
 * committee would build them.
 */
import { createHash } from 'node:crypto'
import { Keypair, PublicKey, type TransactionInstruction } from '@solana/web3.js'
import {
  AssignmentKind, ProgramError, assign, assignmentAddress, assignmentDigest, attemptSeed, blacklistHash,
  canonicalBlacklist, commit, commitment, configAddress, decideSampling, decodeAssignment, decodeConfig,
  decodeExecution, decodeNode, decodeTaskState, escrowAddress, executionAddress, initializeConfig, isSampled,
  nodeAddress, openExecution, pay, quorumInstruction, recordSlash, registerNode, reveal, slashAddress, slashDigest,
  taskStateAddress, topUp, vaultAddress, type ExecutionTask, type Params
} from '../../../programs/client/index.js'
import { Chain, DEFAULT_PARAMS, type Outcome } from './harness.js'

export const taskId = (name: string): Uint8Array => new Uint8Array(createHash('sha256').update(`task:${name}`).digest())
export const bytes32 = (name: string): Uint8Array => new Uint8Array(createHash('sha256').update(name).digest())

export function expectError (outcome: Outcome, code: ProgramError): void {
  if (outcome.customError !== code) {
    throw new Error(`expected ${ProgramError[code]} (${code}), got ${outcome.ok ? 'success' : `${String(outcome.customError)} ${ProgramError[outcome.customError ?? -1] ?? ''}`}\n${outcome.describe()}`)
  }
}

export function expectOk (outcome: Outcome): Outcome {
  if (!outcome.ok) throw new Error(`transaction failed:\n${outcome.describe()}`)
  return outcome
}

/** Compute units per instruction, collected by the tests (the benchmark reports them). */
export const computeUnits = new Map<string, bigint>()
export function recordUnits (name: string, outcome: Outcome): Outcome {
  expectOk(outcome)
  const prev = computeUnits.get(name)
  if (prev === undefined || outcome.computeUnits > prev) computeUnits.set(name, outcome.computeUnits)
  return outcome
}

export class NodeKeys {
  readonly owner: Keypair
  readonly operator: Keypair
  readonly ownerToken: PublicKey
  readonly node: PublicKey
  readonly vault: PublicKey
  constructor (readonly world: World) {
    const chain = world.chain
    this.owner = chain.funded()
    this.operator = chain.funded()
    this.ownerToken = chain.createTokenAccount(world.mint, this.owner.publicKey, 10_000_000_000n)
    this.node = nodeAddress(chain.programId, world.config, this.operator.publicKey)[0]
    this.vault = vaultAddress(chain.programId, this.node)[0]
  }

  get account (): ReturnType<typeof decodeNode> { return decodeNode(this.world.chain.account(this.node)!.data) }
}

export interface ExecutionHandle {
  id: Uint8Array
  execution: PublicKey
  escrow: PublicKey
  requester: Keypair
  requesterToken: PublicKey
  tasks: ExecutionTask[]
}

export interface AssignOptions {
  taskId: Uint8Array
  attempt: number
  kind?: AssignmentKind
  node: NodeKeys
  blacklist?: PublicKey[]
  /** committee members who sign; default: the first `threshold` */
  signers?: Keypair[]
  livenessRound?: bigint
  expirySlot?: bigint
  /** members sign this digest instead of the canonical one */
  digest?: Uint8Array
  /** message fields to sign differently from what the program will rebuild */
  signedOverrides?: Partial<Parameters<typeof assignmentDigest>[0]>
  /** replace or drop the Ed25519 instruction */
  quorum?: TransactionInstruction | null
  over?: Partial<Parameters<typeof assign>[0]>
}

export class World {
  readonly mint: PublicKey
  readonly treasury: PublicKey
  readonly committee: Keypair[]
  readonly genesisHash: Uint8Array
  readonly config: PublicKey
  readonly params: Params

  constructor (readonly chain: Chain, opts: { committeeSize?: number, params?: Partial<Params>, name?: string } = {}) {
    this.mint = chain.createMint(6)
    this.treasury = chain.createTokenAccount(this.mint, Keypair.generate().publicKey, 0n)
    this.committee = Array.from({ length: opts.committeeSize ?? 4 }, () => Keypair.generate())
    this.genesisHash = bytes32(`genesis:${opts.name ?? 'world'}`)
    this.config = configAddress(chain.programId, this.genesisHash)[0]
    this.params = { ...DEFAULT_PARAMS, ...opts.params }
    expectOk(chain.send([initializeConfig({
      programId: chain.programId,
      payer: chain.payer.publicKey,
      genesisHash: this.genesisHash,
      stakeMint: this.mint,
      treasury: this.treasury,
      committee: this.committee.map(k => k.publicKey),
      params: this.params
    })]))
  }

  get configAccount (): ReturnType<typeof decodeConfig> { return decodeConfig(this.chain.account(this.config)!.data) }

  /** The first `threshold` members of the current committee, as keypairs. */
  quorumSigners (members: Keypair[] = this.committee): Keypair[] {
    return members.slice(0, this.configAccount.threshold)
  }

  registerNode (specializations: Uint8Array[], stake = 2_000_000_000n): NodeKeys {
    const n = new NodeKeys(this)
    recordUnits('register_node', this.chain.send([registerNode({
      programId: this.chain.programId,
      config: this.config,
      owner: n.owner.publicKey,
      operator: n.operator.publicKey,
      ownerToken: n.ownerToken,
      stakeMint: this.mint,
      amount: stake,
      capacity: 4,
      specializations
    })], [n.owner, n.operator]))
    return n
  }

  requester (balance = 1_000_000_000_000n): { kp: Keypair, token: PublicKey } {
    const kp = this.chain.funded()
    return { kp, token: this.chain.createTokenAccount(this.mint, kp.publicKey, balance) }
  }

  openIx (h: Omit<ExecutionHandle, 'execution' | 'escrow'>, over: Partial<Parameters<typeof openExecution>[0]> = {}): TransactionInstruction {
    return openExecution({
      programId: this.chain.programId,
      config: this.config,
      requester: h.requester.publicKey,
      requesterToken: h.requesterToken,
      stakeMint: this.mint,
      executionId: h.id,
      tasks: h.tasks,
      ...over
    })
  }

  handle (name: string, tasks: ExecutionTask[], req = this.requester()): ExecutionHandle {
    const id = bytes32(`execution:${name}`)
    const execution = executionAddress(this.chain.programId, this.config, id)[0]
    return { id, execution, escrow: escrowAddress(this.chain.programId, execution)[0], requester: req.kp, requesterToken: req.token, tasks }
  }

  /** Opens an execution and moves the chain K+1 slots on, so first attempts' seeds are available. */
  open (name: string, tasks: ExecutionTask[]): ExecutionHandle {
    const h = this.handle(name, tasks)
    recordUnits('open_execution', this.chain.send([this.openIx(h)], [h.requester]))
    this.chain.advanceSlots(this.params.seedDelaySlots + 1)
    return h
  }

  /** The requester adds `amount` to the execution's escrow. */
  topUp (h: ExecutionHandle, amount: bigint): Outcome {
    return recordUnits('top_up', this.chain.send([topUp({
      programId: this.chain.programId, funder: h.requester.publicKey, funderToken: h.requesterToken, execution: h.execution, amount
    })], [h.requester]))
  }

  execution (h: ExecutionHandle): ReturnType<typeof decodeExecution> { return decodeExecution(this.chain.account(h.execution)!.data) }

  taskState (h: ExecutionHandle, task: Uint8Array): ReturnType<typeof decodeTaskState> | undefined {
    const a = this.chain.account(taskStateAddress(this.chain.programId, h.execution, task)[0])
    return a === undefined ? undefined : decodeTaskState(a.data)
  }

  assignmentKey (h: ExecutionHandle, task: Uint8Array, attempt: number): PublicKey {
    return assignmentAddress(this.chain.programId, h.execution, task, attempt)[0]
  }

  assignment (h: ExecutionHandle, task: Uint8Array, attempt: number): ReturnType<typeof decodeAssignment> {
    return decodeAssignment(this.chain.account(this.assignmentKey(h, task, attempt))!.data)
  }

  /** The seed the program will compute for the task's next attempt at the current slot. */
  seedFor (h: ExecutionHandle, task: Uint8Array, attempt: number): Uint8Array {
    const ts = this.taskState(h, task)
    const trigger = ts === undefined ? this.execution(h).readySlot : ts.triggerSlot
    const slot = trigger + BigInt(this.params.seedDelaySlots)
    return attemptSeed({ genesisHash: this.genesisHash, executionId: h.id, taskId: task, attempt, slot, slotHash: this.chain.slotHashOf(slot) })
  }

  assignDigest (h: ExecutionHandle, o: AssignOptions): Uint8Array {
    const entry = h.tasks.find(t => Buffer.from(t.taskId).equals(Buffer.from(o.taskId)))
    return assignmentDigest({
      programId: this.chain.programId,
      genesisHash: this.genesisHash,
      committeeEpoch: this.configAccount.committeeEpoch,
      executionId: h.id,
      taskId: o.taskId,
      attempt: o.attempt,
      node: o.node.operator.publicKey,
      kind: o.kind ?? AssignmentKind.Primary,
      blacklistHash: blacklistHash(canonicalBlacklist(o.blacklist ?? [])),
      seed: this.seedFor(h, o.taskId, o.attempt),
      livenessRound: o.livenessRound ?? 7n,
      computeUnits: BigInt(entry?.computeUnits ?? 0),
      expirySlot: o.expirySlot ?? this.chain.slot() + 50n,
      ...o.signedOverrides
    })
  }

  /** [Ed25519 quorum instruction, assign instruction] */
  assignIxs (h: ExecutionHandle, o: AssignOptions): TransactionInstruction[] {
    const expirySlot = o.expirySlot ?? this.chain.slot() + 50n
    const digest = o.digest ?? this.assignDigest(h, { ...o, expirySlot })
    const quorum = o.quorum === undefined ? quorumInstruction(digest, o.signers ?? this.quorumSigners()) : o.quorum
    const ix = assign({
      programId: this.chain.programId,
      payer: this.chain.payer.publicKey,
      config: this.config,
      execution: h.execution,
      taskId: o.taskId,
      attempt: o.attempt,
      kind: o.kind ?? AssignmentKind.Primary,
      node: o.node.node,
      livenessRound: o.livenessRound ?? 7n,
      expirySlot,
      blacklist: canonicalBlacklist(o.blacklist ?? []),
      ...o.over
    })
    return quorum === null ? [ix] : [quorum, ix]
  }

  assign (h: ExecutionHandle, o: AssignOptions): Outcome {
    return this.chain.send(this.assignIxs(h, o))
  }

  commitIx (h: ExecutionHandle, task: Uint8Array, attempt: number, n: NodeKeys, c: Uint8Array, other?: PublicKey): TransactionInstruction {
    return commit({
      programId: this.chain.programId, operator: n.operator.publicKey, node: n.node, execution: h.execution, taskId: task,
      assignment: this.assignmentKey(h, task, attempt), commitment: c, other
    })
  }

  revealIx (h: ExecutionHandle, task: Uint8Array, attempt: number, n: NodeKeys, root: Uint8Array, salt: Uint8Array, opts: { verdict?: number, other?: PublicKey } = {}): TransactionInstruction {
    return reveal({
      programId: this.chain.programId, operator: n.operator.publicKey, node: n.node, execution: h.execution, taskId: task,
      assignment: this.assignmentKey(h, task, attempt), outputRoot: root, salt, verdict: opts.verdict, other: opts.other
    })
  }

  decideIx (h: ExecutionHandle, task: Uint8Array, attempt: number): TransactionInstruction {
    return decideSampling({ programId: this.chain.programId, config: this.config, execution: h.execution, taskId: task, assignment: this.assignmentKey(h, task, attempt) })
  }

  /**
   * Makes the sampling decision of (task, attempt) come out as `sampled`: picks the SlotHashes entry
   * of the decision slot (commit slot + K) so that the draw, computed as anyone can, falls that way.
   */
  forceSampling (h: ExecutionHandle, task: Uint8Array, attempt: number, sampled: boolean): void {
    const a = this.assignment(h, task, attempt)
    const slot = a.commitSlot + BigInt(this.params.seedDelaySlots)
    for (let i = 0; ; i++) {
      const slotHash = bytes32(`force:${slot}:${i}`)
      if (isSampled({ genesisHash: this.genesisHash, executionId: h.id, taskId: task, attempt, slot, slotHash }, a.commitment, this.params.samplingPpm) === sampled) {
        this.chain.slotHashOverrides.set(slot, slotHash)
        break
      }
    }
    this.chain.warpToSlot(slot + 1n > this.chain.slot() ? slot + 1n : this.chain.slot())
  }

  payIx (h: ExecutionHandle, task: Uint8Array, attempt: number, n: NodeKeys, destination = n.ownerToken, over: Partial<Parameters<typeof pay>[0]> = {}): TransactionInstruction {
    return pay({
      programId: this.chain.programId, config: this.config, execution: h.execution, taskId: task,
      assignment: this.assignmentKey(h, task, attempt), node: n.node, destination, ...over
    })
  }

  slashKey (h: ExecutionHandle, task: Uint8Array, attempt: number, accused: NodeKeys): PublicKey {
    return slashAddress(this.chain.programId, h.execution, task, attempt, accused.node)[0]
  }

  /** [Ed25519 quorum, record_slash] for the fraud of `accused` at (task, attempt) verified by `verifierAttempt`. */
  slashIxs (h: ExecutionHandle, task: Uint8Array, attempt: number, verifierAttempt: number, accused: NodeKeys, prover: NodeKeys,
    opts: { signers?: Keypair[], bountyTo?: PublicKey, expirySlot?: bigint } = {}): TransactionInstruction[] {
    const asserter = this.assignment(h, task, attempt)
    const verifier = this.assignment(h, task, verifierAttempt)
    const expirySlot = opts.expirySlot ?? this.chain.slot() + 50n
    const bountyTo = opts.bountyTo ?? prover.ownerToken
    const digest = slashDigest({
      programId: this.chain.programId,
      genesisHash: this.genesisHash,
      committeeEpoch: this.configAccount.committeeEpoch,
      executionId: h.id,
      taskId: task,
      attempt,
      accused: accused.operator.publicKey,
      asserterCommitment: asserter.commitment,
      verifierCommitment: verifier.commitment,
      asserterOutputRoot: asserter.outputRoot,
      verifierOutputRoot: verifier.outputRoot,
      bountyTo,
      expirySlot
    })
    return [
      quorumInstruction(digest, opts.signers ?? this.quorumSigners()),
      recordSlash({
        programId: this.chain.programId,
        payer: this.chain.payer.publicKey,
        config: this.config,
        execution: h.execution,
        taskId: task,
        asserterAssignment: this.assignmentKey(h, task, attempt),
        verifierAssignment: this.assignmentKey(h, task, verifierAttempt),
        attempt,
        accusedNode: accused.node,
        proverNode: prover.node,
        bountyTo,
        expirySlot
      })
    ]
  }
}

/** An output and its commitment. */
export function output (name: string): { root: Uint8Array, salt: Uint8Array, commitment: Uint8Array } {
  const root = bytes32(`root:${name}`)
  const salt = bytes32(`salt:${name}`)
  return { root, salt, commitment: commitment(root, salt) }
}
