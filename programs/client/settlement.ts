/**
 * TypeScript client of the BitFlow settlement program: PDA helpers, instruction builders and account
 * decoders. Layouts mirror programs/settlement/src/settlement.h byte for byte.
 */
import { PublicKey, SystemProgram, TransactionInstruction, type AccountMeta } from '@solana/web3.js'

export const TOKEN_PROGRAM_ID = new PublicKey('TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA')

/** Version byte of the instruction envelope `[version u8][tag u8][reserved 6 bytes = 0][args]`. */
export const INSTRUCTION_VERSION = 1
export const INSTRUCTION_HEADER_SIZE = 8

export enum Instruction {
  InitializeConfig = 0,
  RegisterNode = 1,
  AddStake = 2,
  UpdateCapacity = 3,
  Unbond = 4,
  Withdraw = 5,
  ChangeCommittee = 6,
  OpenExecution = 7,
  CancelTasks = 8,
  Assign = 9,
  Commit = 10,
  DecideSampling = 11,
  Reveal = 12,
  Expire = 13,
  Pay = 14,
  RecordSlash = 15,
  ExecuteSlash = 16,
  TopUp = 17,
  RefreshSeed = 18,
  CloseExecution = 19
}

/** a seed older than trigger + K + this many slots may be refreshed (SlotHashes keeps 512 slots) */
export const SEED_STALE_SLOTS = 400

export const MAX_COMMITTEE = 7
export const MAX_SPECIALIZATIONS = 16
export const MAX_TASKS = 16
export const MAX_BLACKLIST = 8
export const CONFIG_SIZE = 424
export const NODE_SIZE = 696
export const PARAMS_SIZE = 80
export const EXECUTION_SIZE = 208 + 48 * MAX_TASKS
export const TASK_STATE_SIZE = 128
export const ASSIGNMENT_SIZE = 272
export const SLASH_SIZE = 200
/** `attempt` value meaning "none" in task states and assignments */
export const NO_ATTEMPT = 0xffffffff
export const PPM = 1_000_000
export const BPS = 10_000

export enum AccountKind { Config = 1, Node = 2, Execution = 3, Task = 4, Assignment = 5, Slash = 6 }
/** Slashed: a slash is recorded and the stake frozen; SlashExecuted: what the slash left is withdrawable. */
export enum NodeStatus { Active = 0, Slashed = 1, SlashExecuted = 2 }
/** Flags of a task in an execution. */
export enum TaskFlag { Assigned = 1, Cancelled = 2, Paid = 4 }
/** Task states of DESIGN.md; UNASSIGNED is a task without a task-state account. */
export enum TaskStatus { Assigned = 1, Completed = 2, PendingVerification = 3, Verified = 4, VerificationFailed = 5, Failed = 6 }
/** Unverifiable: the live primary attempt was assigned as unverifiable and is never sampled. */
export enum Sampling { Undecided = 0, Sampled = 1, Skipped = 2, Unverifiable = 3 }
/** Unverifiable: a primary attempt nobody else could re-execute (see DESIGN.md, Proof of Sampling). */
export enum AssignmentKind { Primary = 0, Verification = 1, Unverifiable = 2 }
export enum AssignmentStatus { Assigned = 1, Committed = 2, Revealed = 3, Failed = 4 }
export enum Verdict { None = 0, Match = 1, Mismatch = 2 }
export enum SlashStatus { Recorded = 1, Executed = 2 }

/** Protocol parameters, in the program's fixed-point units (ppm: 1e6 = 1, bps: 1e4 = 1). */
export interface Params {
  /** stake-mint base units */
  minStake: bigint
  /** seconds; must exceed challengeDelay */
  unbondingDelay: bigint
  /** seconds */
  challengeDelay: bigint
  /** stake-mint base units per task */
  minFee: bigint
  /** p, sampling probability */
  samplingPpm: number
  /** R, validator reward multiple (12_000 = 1.2) */
  validatorRewardBps: number
  /** slash fraction (10_000 = 100%) */
  slashBps: number
  /** share of a slash paid to the proving validator, at most 5_000 */
  bountyBps: number
  /** C, compute cost in units of the task payment */
  computeCostBps: number
  /** r, assumed colluding fraction */
  collusionBps: number
  /** minimum stake / payments-in-flight ratio */
  minStakeRatioBps: number
  /** K: seeds and the sampling decision use the SlotHashes entry K slots after their event (1..256) */
  seedDelaySlots: number
  /** assignment deadline = base + per100Cu x ceil(compute units / 100), seconds */
  deadlineBaseSecs: number
  deadlinePer100CuSecs: number
  /** an unverifiable attempt is paid this x the task price (0 < x < 1) */
  unverifiablePayBps: number
}

/** Whether p > C / ((1 - r)(R + S)) holds with S = slash x min stake ratio, exactly as the program checks it. */
export function paramsAreSafe (p: Params): boolean {
  const slashUnits = BigInt(p.slashBps) * BigInt(p.minStakeRatioBps) / BigInt(BPS)
  const lhs = BigInt(p.samplingPpm) * BigInt(BPS - p.collusionBps) * (BigInt(p.validatorRewardBps) + slashUnits)
  return lhs > BigInt(p.computeCostBps) * BigInt(PPM) * BigInt(BPS)
}

// ---- PDAs ----------------------------------------------------------------------------------------

const enc = new TextEncoder()

/** PDA derivations are memoized: each costs SHA-256 and curve checks, and daemons re-derive the same few often */
const PDA_CACHE_LIMIT = 20_000
const pdaCache = new Map<string, [PublicKey, number]>()

function programAddress (seeds: Uint8Array[], programId: PublicKey): [PublicKey, number] {
  const key = programId.toBase58() + seeds.map(x => Buffer.from(x).toString('hex')).join(':')
  const hit = pdaCache.get(key)
  if (hit !== undefined) return [hit[0], hit[1]]
  const derived = PublicKey.findProgramAddressSync(seeds, programId)
  if (pdaCache.size >= PDA_CACHE_LIMIT) pdaCache.clear()
  pdaCache.set(key, derived)
  return [derived[0], derived[1]]
}

export function configAddress (programId: PublicKey, genesisHash: Uint8Array): [PublicKey, number] {
  if (genesisHash.length !== 32) throw new RangeError('genesis hash must be 32 bytes')
  return programAddress([enc.encode('config'), genesisHash], programId)
}

export function nodeAddress (programId: PublicKey, config: PublicKey, operator: PublicKey): [PublicKey, number] {
  return programAddress([enc.encode('node'), config.toBytes(), operator.toBytes()], programId)
}

export function vaultAddress (programId: PublicKey, node: PublicKey): [PublicKey, number] {
  return programAddress([enc.encode('vault'), node.toBytes()], programId)
}

// ---- encoding ------------------------------------------------------------------------------------

function header (tag: Instruction, argsLen: number): { data: Uint8Array, view: DataView } {
  const data = new Uint8Array(INSTRUCTION_HEADER_SIZE + argsLen)
  data[0] = INSTRUCTION_VERSION
  data[1] = tag
  return { data, view: new DataView(data.buffer) }
}

function writeParams (view: DataView, at: number, p: Params): void {
  view.setBigUint64(at, p.minStake, true)
  view.setBigUint64(at + 8, p.unbondingDelay, true)
  view.setBigUint64(at + 16, p.challengeDelay, true)
  view.setBigUint64(at + 24, p.minFee, true)
  view.setUint32(at + 32, p.samplingPpm, true)
  view.setUint32(at + 36, p.validatorRewardBps, true)
  view.setUint32(at + 40, p.slashBps, true)
  view.setUint32(at + 44, p.bountyBps, true)
  view.setUint32(at + 48, p.computeCostBps, true)
  view.setUint32(at + 52, p.collusionBps, true)
  view.setUint32(at + 56, p.minStakeRatioBps, true)
  view.setUint32(at + 60, p.seedDelaySlots, true)
  view.setUint32(at + 64, p.deadlineBaseSecs, true)
  view.setUint32(at + 68, p.deadlinePer100CuSecs, true)
  view.setUint32(at + 72, p.unverifiablePayBps, true)
  view.setUint32(at + 76, 0, true)
}

function readParams (view: DataView, at: number): Params {
  return {
    minStake: view.getBigUint64(at, true),
    unbondingDelay: view.getBigUint64(at + 8, true),
    challengeDelay: view.getBigUint64(at + 16, true),
    minFee: view.getBigUint64(at + 24, true),
    samplingPpm: view.getUint32(at + 32, true),
    validatorRewardBps: view.getUint32(at + 36, true),
    slashBps: view.getUint32(at + 40, true),
    bountyBps: view.getUint32(at + 44, true),
    computeCostBps: view.getUint32(at + 48, true),
    collusionBps: view.getUint32(at + 52, true),
    minStakeRatioBps: view.getUint32(at + 56, true),
    seedDelaySlots: view.getUint32(at + 60, true),
    deadlineBaseSecs: view.getUint32(at + 64, true),
    deadlinePer100CuSecs: view.getUint32(at + 68, true),
    unverifiablePayBps: view.getUint32(at + 72, true)
  }
}

const w = (pubkey: PublicKey, isSigner = false): AccountMeta => ({ pubkey, isSigner, isWritable: true })
const r = (pubkey: PublicKey, isSigner = false): AccountMeta => ({ pubkey, isSigner, isWritable: false })

// ---- instruction builders ------------------------------------------------------------------------

export interface InitializeConfigArgs {
  programId: PublicKey
  payer: PublicKey
  genesisHash: Uint8Array
  stakeMint: PublicKey
  /** token account of the stake mint that receives the treasury's part of slashes */
  treasury: PublicKey
  committee: PublicKey[]
  params: Params
  /** override the derived config address (tests) */
  config?: PublicKey
}

export function initializeConfig (a: InitializeConfigArgs): TransactionInstruction {
  const n = a.committee.length
  const { data, view } = header(Instruction.InitializeConfig, 120 + 32 * n)
  const args = INSTRUCTION_HEADER_SIZE
  data.set(a.genesisHash, args)
  writeParams(view, args + 32, a.params)
  data[args + 112] = n
  a.committee.forEach((m, i) => data.set(m.toBytes(), args + 120 + 32 * i))
  const config = a.config ?? configAddress(a.programId, a.genesisHash)[0]
  return new TransactionInstruction({
    programId: a.programId,
    keys: [w(a.payer, true), w(config), r(a.stakeMint), r(a.treasury), r(SystemProgram.programId)],
    data: Buffer.from(data)
  })
}

export interface RegisterNodeArgs {
  programId: PublicKey
  config: PublicKey
  owner: PublicKey
  operator: PublicKey
  /** the owner's token account of the stake mint that funds the stake */
  ownerToken: PublicKey
  stakeMint: PublicKey
  amount: bigint
  capacity: number
  /** 32-byte task ids (hashes of the task CIDs) */
  specializations: Uint8Array[]
  /** overrides of derived addresses (tests) */
  node?: PublicKey
  vault?: PublicKey
}

export function registerNode (a: RegisterNodeArgs): TransactionInstruction {
  const { data, view } = header(Instruction.RegisterNode, 16 + 32 * a.specializations.length)
  const args = INSTRUCTION_HEADER_SIZE
  view.setBigUint64(args, a.amount, true)
  view.setUint32(args + 8, a.capacity, true)
  data[args + 12] = a.specializations.length
  a.specializations.forEach((s, i) => {
    if (s.length !== 32) throw new RangeError('a specialization is a 32-byte task id')
    data.set(s, args + 16 + 32 * i)
  })
  const node = a.node ?? nodeAddress(a.programId, a.config, a.operator)[0]
  const vault = a.vault ?? vaultAddress(a.programId, node)[0]
  return new TransactionInstruction({
    programId: a.programId,
    keys: [
      w(a.owner, true), r(a.operator, true), w(a.config), w(node), w(vault), w(a.ownerToken), r(a.stakeMint),
      r(TOKEN_PROGRAM_ID), r(SystemProgram.programId)
    ],
    data: Buffer.from(data)
  })
}

export interface StakeArgs {
  programId: PublicKey
  /** the node's owner key (the program refuses any other signer) */
  owner: PublicKey
  node: PublicKey
  amount: bigint
}

export function addStake (a: StakeArgs & { ownerToken: PublicKey, vault?: PublicKey }): TransactionInstruction {
  const { data, view } = header(Instruction.AddStake, 8)
  view.setBigUint64(INSTRUCTION_HEADER_SIZE, a.amount, true)
  const vault = a.vault ?? vaultAddress(a.programId, a.node)[0]
  return new TransactionInstruction({
    programId: a.programId,
    keys: [r(a.owner, true), w(a.node), w(vault), w(a.ownerToken), r(TOKEN_PROGRAM_ID)],
    data: Buffer.from(data)
  })
}

export function updateCapacity (a: { programId: PublicKey, signer: PublicKey, node: PublicKey, capacity: number }): TransactionInstruction {
  const { data, view } = header(Instruction.UpdateCapacity, 8)
  view.setUint32(INSTRUCTION_HEADER_SIZE, a.capacity, true)
  return new TransactionInstruction({ programId: a.programId, keys: [r(a.signer, true), w(a.node)], data: Buffer.from(data) })
}

export function unbond (a: StakeArgs & { config: PublicKey }): TransactionInstruction {
  const { data, view } = header(Instruction.Unbond, 8)
  view.setBigUint64(INSTRUCTION_HEADER_SIZE, a.amount, true)
  return new TransactionInstruction({
    programId: a.programId,
    keys: [r(a.owner, true), r(a.config), w(a.node)],
    data: Buffer.from(data)
  })
}

export function withdraw (a: Omit<StakeArgs, 'amount'> & { destination: PublicKey, vault?: PublicKey }): TransactionInstruction {
  const { data } = header(Instruction.Withdraw, 0)
  const vault = a.vault ?? vaultAddress(a.programId, a.node)[0]
  return new TransactionInstruction({
    programId: a.programId,
    keys: [r(a.owner, true), w(a.node), w(vault), w(a.destination), r(TOKEN_PROGRAM_ID)],
    data: Buffer.from(data)
  })
}

// ---- account decoders ----------------------------------------------------------------------------

export interface ConfigAccount {
  bump: number
  committeeLen: number
  threshold: number
  mintDecimals: number
  genesisHash: Uint8Array
  stakeMint: PublicKey
  treasury: PublicKey
  committeeEpoch: bigint
  nodeCount: bigint
  params: Params
  committee: PublicKey[]
}

export class AccountDecodeError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'AccountDecodeError'
  }
}

function checkKind (data: Uint8Array, kind: AccountKind, size: number): DataView {
  if (data.length < size) throw new AccountDecodeError(`account is ${data.length} bytes, expected ${size}`)
  if (data[0] !== kind) throw new AccountDecodeError(`account kind ${data[0]}, expected ${kind}`)
  if (data[1] !== 1) throw new AccountDecodeError(`unknown account layout version ${data[1]}`)
  return new DataView(data.buffer, data.byteOffset, data.byteLength)
}

const key = (data: Uint8Array, at: number): PublicKey => new PublicKey(data.subarray(at, at + 32))

export function decodeConfig (data: Uint8Array): ConfigAccount {
  const v = checkKind(data, AccountKind.Config, CONFIG_SIZE)
  const committeeLen = data[3]!
  return {
    bump: data[2]!,
    committeeLen,
    threshold: data[4]!,
    mintDecimals: data[5]!,
    genesisHash: data.slice(8, 40),
    stakeMint: key(data, 40),
    treasury: key(data, 72),
    committeeEpoch: v.getBigUint64(104, true),
    nodeCount: v.getBigUint64(112, true),
    params: readParams(v, 120),
    committee: Array.from({ length: committeeLen }, (_, i) => key(data, 200 + 32 * i))
  }
}

export interface NodeAccount {
  bump: number
  vaultBump: number
  status: NodeStatus
  config: PublicKey
  owner: PublicKey
  operator: PublicKey
  vault: PublicKey
  stake: bigint
  unbonding: bigint
  /** unix seconds */
  unbondingEndsAt: bigint
  paymentsInFlight: bigint
  registeredSlot: bigint
  capacity: number
  specializations: Uint8Array[]
}

export function decodeNode (data: Uint8Array): NodeAccount {
  const v = checkKind(data, AccountKind.Node, NODE_SIZE)
  const count = data[5]!
  return {
    bump: data[2]!,
    vaultBump: data[3]!,
    status: data[4]! as NodeStatus,
    config: key(data, 8),
    owner: key(data, 40),
    operator: key(data, 72),
    vault: key(data, 104),
    stake: v.getBigUint64(136, true),
    unbonding: v.getBigUint64(144, true),
    unbondingEndsAt: v.getBigInt64(152, true),
    paymentsInFlight: v.getBigUint64(160, true),
    registeredSlot: v.getBigUint64(168, true),
    capacity: v.getUint32(176, true),
    specializations: Array.from({ length: count }, (_, i) => data.slice(184 + 32 * i, 216 + 32 * i))
  }
}

/** Byte offset of `stake` in a node account (tests set it directly to probe overflow handling). */
export const NODE_STAKE_OFFSET = 136

// ---- executions, tasks, assignments, slashes ------------------------------------------------------

export const INSTRUCTIONS_SYSVAR_ID = new PublicKey('Sysvar1nstructions1111111111111111111111111')

const u32le = (v: number): Uint8Array => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v >>> 0, true); return b }

function id32 (b: Uint8Array, what: string): Uint8Array {
  if (b.length !== 32) throw new RangeError(`${what} must be 32 bytes`)
  return b
}

export function executionAddress (programId: PublicKey, config: PublicKey, executionId: Uint8Array): [PublicKey, number] {
  return programAddress([enc.encode('execution'), config.toBytes(), id32(executionId, 'execution id')], programId)
}

export function escrowAddress (programId: PublicKey, execution: PublicKey): [PublicKey, number] {
  return programAddress([enc.encode('escrow'), execution.toBytes()], programId)
}

export function taskStateAddress (programId: PublicKey, execution: PublicKey, taskId: Uint8Array): [PublicKey, number] {
  return programAddress([enc.encode('task'), execution.toBytes(), id32(taskId, 'task id')], programId)
}

export function assignmentAddress (programId: PublicKey, execution: PublicKey, taskId: Uint8Array, attempt: number): [PublicKey, number] {
  return programAddress([enc.encode('assignment'), execution.toBytes(), id32(taskId, 'task id'), u32le(attempt)], programId)
}

export function slashAddress (programId: PublicKey, execution: PublicKey, taskId: Uint8Array, attempt: number, accusedNode: PublicKey): [PublicKey, number] {
  return programAddress(
    [enc.encode('slash'), execution.toBytes(), id32(taskId, 'task id'), u32le(attempt), accusedNode.toBytes()], programId)
}

export interface ChangeCommitteeArgs {
  programId: PublicKey
  config: PublicKey
  members: PublicKey[]
  expirySlot: bigint
}

/** Send after the Ed25519 instruction carrying the current committee's quorum over committeeDigest(). */
export function changeCommittee (a: ChangeCommitteeArgs): TransactionInstruction {
  const { data, view } = header(Instruction.ChangeCommittee, 16 + 32 * a.members.length)
  const at = INSTRUCTION_HEADER_SIZE
  view.setBigUint64(at, a.expirySlot, true)
  data[at + 8] = a.members.length
  a.members.forEach((m, i) => data.set(m.toBytes(), at + 16 + 32 * i))
  return new TransactionInstruction({ programId: a.programId, keys: [w(a.config), r(INSTRUCTIONS_SYSVAR_ID)], data: Buffer.from(data) })
}

export interface ExecutionTask {
  /** 32-byte task id */
  taskId: Uint8Array
  /** primary payment, stake-mint base units (>= the network's minimum fee) */
  price: bigint
  computeUnits: number
}

export interface OpenExecutionArgs {
  programId: PublicKey
  config: PublicKey
  requester: PublicKey
  /** requester's token account of the stake mint: pays the escrow, receives refunds */
  requesterToken: PublicKey
  stakeMint: PublicKey
  executionId: Uint8Array
  tasks: ExecutionTask[]
  execution?: PublicKey
  escrow?: PublicKey
}

export function openExecution (a: OpenExecutionArgs): TransactionInstruction {
  const { data, view } = header(Instruction.OpenExecution, 40 + 48 * a.tasks.length)
  const at = INSTRUCTION_HEADER_SIZE
  data.set(id32(a.executionId, 'execution id'), at)
  data[at + 32] = a.tasks.length
  a.tasks.forEach((t, i) => {
    const o = at + 40 + 48 * i
    data.set(id32(t.taskId, 'task id'), o)
    view.setBigUint64(o + 32, t.price, true)
    view.setUint32(o + 40, t.computeUnits, true)
  })
  const execution = a.execution ?? executionAddress(a.programId, a.config, a.executionId)[0]
  const escrow = a.escrow ?? escrowAddress(a.programId, execution)[0]
  return new TransactionInstruction({
    programId: a.programId,
    keys: [w(a.requester, true), r(a.config), w(execution), w(escrow), w(a.requesterToken), r(a.stakeMint), r(TOKEN_PROGRAM_ID), r(SystemProgram.programId)],
    data: Buffer.from(data)
  })
}

export interface CancelTasksArgs {
  programId: PublicKey
  config: PublicKey
  requester: PublicKey
  execution: PublicKey
  /** the token account recorded when the execution was opened */
  refundTo: PublicKey
  /** indices (in the execution's task list) to cancel and refund */
  taskIndices: number[]
  escrow?: PublicKey
}

export function cancelTasks (a: CancelTasksArgs): TransactionInstruction {
  const { data, view } = header(Instruction.CancelTasks, 8)
  let mask = 0
  for (const i of a.taskIndices) mask |= 1 << i
  view.setUint32(INSTRUCTION_HEADER_SIZE, mask >>> 0, true)
  const escrow = a.escrow ?? escrowAddress(a.programId, a.execution)[0]
  return new TransactionInstruction({
    programId: a.programId,
    keys: [r(a.requester, true), r(a.config), w(a.execution), w(escrow), w(a.refundTo), r(TOKEN_PROGRAM_ID)],
    data: Buffer.from(data)
  })
}

/**
 * Close: once nothing in the escrow is reserved (every attempt settled, every earned payment
 * collected), the requester takes back the remaining balance and every unpaid task is cancelled.
 */
export function closeExecution (a: Omit<CancelTasksArgs, 'taskIndices'>): TransactionInstruction {
  const { data } = header(Instruction.CloseExecution, 0)
  const escrow = a.escrow ?? escrowAddress(a.programId, a.execution)[0]
  return new TransactionInstruction({
    programId: a.programId,
    keys: [r(a.requester, true), r(a.config), w(a.execution), w(escrow), w(a.refundTo), r(TOKEN_PROGRAM_ID)],
    data: Buffer.from(data)
  })
}

export interface AssignArgs {
  programId: PublicKey
  payer: PublicKey
  config: PublicKey
  execution: PublicKey
  taskId: Uint8Array
  attempt: number
  kind: number
  /** the node account (PDA of its operator) */
  node: PublicKey
  livenessRound: bigint
  expirySlot: bigint
  /** operator keys in canonical order (see canonicalBlacklist) */
  blacklist: Uint8Array[]
  taskState?: PublicKey
  assignment?: PublicKey
  instructionsSysvar?: PublicKey
}

/** Send after the Ed25519 instruction carrying the committee's quorum over assignmentDigest(). */
export function assign (a: AssignArgs): TransactionInstruction {
  const { data, view } = header(Instruction.Assign, 56 + 32 * a.blacklist.length)
  const at = INSTRUCTION_HEADER_SIZE
  data.set(id32(a.taskId, 'task id'), at)
  view.setUint32(at + 32, a.attempt, true)
  data[at + 36] = a.kind
  data[at + 37] = a.blacklist.length
  view.setBigUint64(at + 40, a.livenessRound, true)
  view.setBigUint64(at + 48, a.expirySlot, true)
  a.blacklist.forEach((k, i) => data.set(id32(k, 'blacklisted key'), at + 56 + 32 * i))
  const taskState = a.taskState ?? taskStateAddress(a.programId, a.execution, a.taskId)[0]
  const assignment = a.assignment ?? assignmentAddress(a.programId, a.execution, a.taskId, a.attempt)[0]
  return new TransactionInstruction({
    programId: a.programId,
    keys: [
      w(a.payer, true), r(a.config), w(a.execution), w(taskState), w(assignment), w(a.node),
      r(a.instructionsSysvar ?? INSTRUCTIONS_SYSVAR_ID), r(SystemProgram.programId)
    ],
    data: Buffer.from(data)
  })
}

export interface OutcomeArgs {
  programId: PublicKey
  /** the assigned node's operator key */
  operator: PublicKey
  node: PublicKey
  execution: PublicKey
  taskId: Uint8Array
  assignment: PublicKey
  /** verifier's commit and reveal: the primary assignment; a sampled asserter's reveal: the verifier's */
  other?: PublicKey
}

function outcomeKeys (a: OutcomeArgs, executionWritable: boolean): AccountMeta[] {
  const keys = [
    r(a.operator, true), r(a.node), executionWritable ? w(a.execution) : r(a.execution),
    w(taskStateAddress(a.programId, a.execution, a.taskId)[0]), w(a.assignment)
  ]
  if (a.other !== undefined) keys.push(executionWritable ? w(a.other) : r(a.other))
  return keys
}

export function commit (a: OutcomeArgs & { commitment: Uint8Array }): TransactionInstruction {
  const { data } = header(Instruction.Commit, 32)
  data.set(id32(a.commitment, 'commitment'), INSTRUCTION_HEADER_SIZE)
  return new TransactionInstruction({ programId: a.programId, keys: outcomeKeys(a, false), data: Buffer.from(data) })
}

export function reveal (a: OutcomeArgs & { outputRoot: Uint8Array, salt: Uint8Array, verdict?: number }): TransactionInstruction {
  const { data } = header(Instruction.Reveal, 72)
  data.set(id32(a.outputRoot, 'output root'), INSTRUCTION_HEADER_SIZE)
  data.set(id32(a.salt, 'salt'), INSTRUCTION_HEADER_SIZE + 32)
  data[INSTRUCTION_HEADER_SIZE + 64] = a.verdict ?? 0
  return new TransactionInstruction({ programId: a.programId, keys: outcomeKeys(a, true), data: Buffer.from(data) })
}

export function decideSampling (a: { programId: PublicKey, config: PublicKey, execution: PublicKey, taskId: Uint8Array, assignment: PublicKey }): TransactionInstruction {
  const { data } = header(Instruction.DecideSampling, 0)
  return new TransactionInstruction({
    programId: a.programId,
    keys: [r(a.config), r(a.execution), w(taskStateAddress(a.programId, a.execution, a.taskId)[0]), r(a.assignment)],
    data: Buffer.from(data)
  })
}

/**
 * Gives a task waiting for an assignment a new trigger slot (the current one) once its seed slot is
 * about to leave SlotHashes; anyone may send it (the new seed is unknown when it is sent).
 */
export function refreshSeed (a: { programId: PublicKey, config: PublicKey, execution: PublicKey, taskId: Uint8Array }): TransactionInstruction {
  const { data } = header(Instruction.RefreshSeed, 32)
  data.set(id32(a.taskId, 'task id'), INSTRUCTION_HEADER_SIZE)
  return new TransactionInstruction({
    programId: a.programId,
    keys: [r(a.config), w(a.execution), w(taskStateAddress(a.programId, a.execution, a.taskId)[0])],
    data: Buffer.from(data)
  })
}

export function expire (a: { programId: PublicKey, execution: PublicKey, taskId: Uint8Array, assignment: PublicKey, node: PublicKey }): TransactionInstruction {
  const { data } = header(Instruction.Expire, 0)
  return new TransactionInstruction({
    programId: a.programId,
    keys: [w(a.execution), w(taskStateAddress(a.programId, a.execution, a.taskId)[0]), w(a.assignment), w(a.node)],
    data: Buffer.from(data)
  })
}

export interface PayArgs {
  programId: PublicKey
  config: PublicKey
  execution: PublicKey
  taskId: Uint8Array
  assignment: PublicKey
  node: PublicKey
  /** token account of the stake mint owned by the node's owner key */
  destination: PublicKey
  escrow?: PublicKey
}

export function pay (a: PayArgs): TransactionInstruction {
  const { data } = header(Instruction.Pay, 0)
  const escrow = a.escrow ?? escrowAddress(a.programId, a.execution)[0]
  return new TransactionInstruction({
    programId: a.programId,
    keys: [
      r(a.config), w(a.execution), w(escrow), r(taskStateAddress(a.programId, a.execution, a.taskId)[0]), w(a.assignment),
      w(a.node), w(a.destination), r(TOKEN_PROGRAM_ID)
    ],
    data: Buffer.from(data)
  })
}

export interface RecordSlashArgs {
  programId: PublicKey
  payer: PublicKey
  config: PublicKey
  execution: PublicKey
  taskId: Uint8Array
  /** the primary attempt's assignment and its verification's */
  asserterAssignment: PublicKey
  verifierAssignment: PublicKey
  /** the asserter's attempt number (the slash key) */
  attempt: number
  accusedNode: PublicKey
  proverNode: PublicKey
  /** token account of the prover node's owner */
  bountyTo: PublicKey
  expirySlot: bigint
  slash?: PublicKey
  instructionsSysvar?: PublicKey
}

/** Send after the Ed25519 instruction carrying the committee's quorum over slashDigest(). */
export function recordSlash (a: RecordSlashArgs): TransactionInstruction {
  const { data, view } = header(Instruction.RecordSlash, 8)
  view.setBigUint64(INSTRUCTION_HEADER_SIZE, a.expirySlot, true)
  const slash = a.slash ?? slashAddress(a.programId, a.execution, a.taskId, a.attempt, a.accusedNode)[0]
  return new TransactionInstruction({
    programId: a.programId,
    keys: [
      w(a.payer, true), r(a.config), r(a.execution), r(taskStateAddress(a.programId, a.execution, a.taskId)[0]),
      r(a.asserterAssignment), r(a.verifierAssignment), w(a.accusedNode), r(a.proverNode), r(a.bountyTo), w(slash),
      r(a.instructionsSysvar ?? INSTRUCTIONS_SYSVAR_ID), r(SystemProgram.programId)
    ],
    data: Buffer.from(data)
  })
}

export interface ExecuteSlashArgs {
  programId: PublicKey
  config: PublicKey
  slash: PublicKey
  accusedNode: PublicKey
  bountyTo: PublicKey
  treasury: PublicKey
  vault?: PublicKey
}

export function executeSlash (a: ExecuteSlashArgs): TransactionInstruction {
  const { data } = header(Instruction.ExecuteSlash, 0)
  const vault = a.vault ?? vaultAddress(a.programId, a.accusedNode)[0]
  return new TransactionInstruction({
    programId: a.programId,
    keys: [r(a.config), w(a.slash), w(a.accusedNode), w(vault), w(a.bountyTo), w(a.treasury), r(TOKEN_PROGRAM_ID)],
    data: Buffer.from(data)
  })
}

// ---- decoders --------------------------------------------------------------------------------------

export interface ExecutionTaskEntry extends ExecutionTask { flags: number }

export interface ExecutionAccount {
  bump: number
  vaultBump: number
  config: PublicKey
  requester: PublicKey
  refundTo: PublicKey
  escrow: PublicKey
  executionId: Uint8Array
  requestSlot: bigint
  /** the slot first attempts derive their seed from (request, then the latest task becoming VERIFIED) */
  readySlot: bigint
  deposited: bigint
  balance: bigint
  /** payments of live assignments */
  reservedAmount: bigint
  tasks: ExecutionTaskEntry[]
}

export function decodeExecution (data: Uint8Array): ExecutionAccount {
  const v = checkKind(data, AccountKind.Execution, EXECUTION_SIZE)
  const count = data[4]!
  return {
    bump: data[2]!,
    vaultBump: data[3]!,
    config: key(data, 8),
    requester: key(data, 40),
    refundTo: key(data, 72),
    escrow: key(data, 104),
    executionId: data.slice(136, 168),
    requestSlot: v.getBigUint64(168, true),
    deposited: v.getBigUint64(176, true),
    balance: v.getBigUint64(184, true),
    reservedAmount: v.getBigUint64(192, true),
    readySlot: v.getBigUint64(200, true),
    tasks: Array.from({ length: count }, (_, i) => {
      const o = 208 + 48 * i
      return { taskId: data.slice(o, o + 32), price: v.getBigUint64(o + 32, true), computeUnits: v.getUint32(o + 40, true), flags: v.getUint32(o + 44, true) }
    })
  }
}

export interface TaskStateAccount {
  bump: number
  status: TaskStatus
  sampling: Sampling
  taskIndex: number
  execution: PublicKey
  taskId: Uint8Array
  primaryNode: PublicKey
  nextAttempt: number
  primaryAttempt: number
  verifierAttempt: number
  triggerSlot: bigint
}

export function decodeTaskState (data: Uint8Array): TaskStateAccount {
  const v = checkKind(data, AccountKind.Task, TASK_STATE_SIZE)
  return {
    bump: data[2]!,
    status: data[3]! as TaskStatus,
    sampling: data[4]! as Sampling,
    taskIndex: data[5]!,
    execution: key(data, 8),
    taskId: data.slice(40, 72),
    primaryNode: key(data, 72),
    nextAttempt: v.getUint32(104, true),
    primaryAttempt: v.getUint32(108, true),
    verifierAttempt: v.getUint32(112, true),
    triggerSlot: v.getBigUint64(120, true)
  }
}

export interface AssignmentAccount {
  bump: number
  kind: AssignmentKind
  status: AssignmentStatus
  verdict: Verdict
  paid: boolean
  /** verification: the result is recorded */
  resolved: boolean
  execution: PublicKey
  taskId: Uint8Array
  node: PublicKey
  attempt: number
  verifies: number
  payment: bigint
  assignedSlot: bigint
  /** unix seconds */
  deadline: bigint
  commitSlot: bigint
  commitment: Uint8Array
  outputRoot: Uint8Array
  salt: Uint8Array
  seed: Uint8Array
}

export function decodeAssignment (data: Uint8Array): AssignmentAccount {
  const v = checkKind(data, AccountKind.Assignment, ASSIGNMENT_SIZE)
  return {
    bump: data[2]!,
    kind: data[3]! as AssignmentKind,
    status: data[4]! as AssignmentStatus,
    verdict: data[5]! as Verdict,
    paid: data[6] !== 0,
    resolved: data[7] !== 0,
    execution: key(data, 8),
    taskId: data.slice(40, 72),
    node: key(data, 72),
    attempt: v.getUint32(104, true),
    verifies: v.getUint32(108, true),
    payment: v.getBigUint64(112, true),
    assignedSlot: v.getBigUint64(120, true),
    deadline: v.getBigInt64(128, true),
    commitSlot: v.getBigUint64(136, true),
    commitment: data.slice(144, 176),
    outputRoot: data.slice(176, 208),
    salt: data.slice(208, 240),
    seed: data.slice(240, 272)
  }
}

export interface SlashAccount {
  bump: number
  status: SlashStatus
  attempt: number
  config: PublicKey
  execution: PublicKey
  taskId: Uint8Array
  accused: PublicKey
  bountyTo: PublicKey
  recordedAt: bigint
  executableAt: bigint
  amount: bigint
  bounty: bigint
}

export function decodeSlash (data: Uint8Array): SlashAccount {
  const v = checkKind(data, AccountKind.Slash, SLASH_SIZE)
  return {
    bump: data[2]!,
    status: data[3]! as SlashStatus,
    attempt: v.getUint32(4, true),
    config: key(data, 8),
    execution: key(data, 40),
    taskId: data.slice(72, 104),
    accused: key(data, 104),
    bountyTo: key(data, 136),
    recordedAt: v.getBigInt64(168, true),
    executableAt: v.getBigInt64(176, true),
    amount: v.getBigUint64(184, true),
    bounty: v.getBigUint64(192, true)
  }
}

/** Byte offset of `payments_in_flight` in a node account. */
export const NODE_PAYMENTS_IN_FLIGHT_OFFSET = 160

export interface TopUpArgs {
  programId: PublicKey
  funder: PublicKey
  /** funder's token account of the stake mint */
  funderToken: PublicKey
  execution: PublicKey
  amount: bigint
  escrow?: PublicKey
}

/** Adds to an execution's escrow (needed when sampled verifications exceed the expected cost). */
export function topUp (a: TopUpArgs): TransactionInstruction {
  const { data, view } = header(Instruction.TopUp, 8)
  view.setBigUint64(INSTRUCTION_HEADER_SIZE, a.amount, true)
  const escrow = a.escrow ?? escrowAddress(a.programId, a.execution)[0]
  return new TransactionInstruction({
    programId: a.programId,
    keys: [r(a.funder, true), w(a.execution), w(escrow), w(a.funderToken), r(TOKEN_PROGRAM_ID)],
    data: Buffer.from(data)
  })
}
