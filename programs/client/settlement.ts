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
  Withdraw = 5
}

export const MAX_COMMITTEE = 7
export const MAX_SPECIALIZATIONS = 16
export const CONFIG_SIZE = 408
export const NODE_SIZE = 696
export const PARAMS_SIZE = 64
export const PPM = 1_000_000
export const BPS = 10_000

export enum AccountKind { Config = 1, Node = 2 }
export enum NodeStatus { Active = 0, Slashed = 1 }

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
}

/** Whether p > C / ((1 - r)(R + S)) holds with S = slash x min stake ratio, exactly as the program checks it. */
export function paramsAreSafe (p: Params): boolean {
  const slashUnits = BigInt(p.slashBps) * BigInt(p.minStakeRatioBps) / BigInt(BPS)
  const lhs = BigInt(p.samplingPpm) * BigInt(BPS - p.collusionBps) * (BigInt(p.validatorRewardBps) + slashUnits)
  return lhs > BigInt(p.computeCostBps) * BigInt(PPM) * BigInt(BPS)
}

// ---- PDAs ----------------------------------------------------------------------------------------

const enc = new TextEncoder()

export function configAddress (programId: PublicKey, genesisHash: Uint8Array): [PublicKey, number] {
  if (genesisHash.length !== 32) throw new RangeError('genesis hash must be 32 bytes')
  return PublicKey.findProgramAddressSync([enc.encode('config'), genesisHash], programId)
}

export function nodeAddress (programId: PublicKey, config: PublicKey, operator: PublicKey): [PublicKey, number] {
  return PublicKey.findProgramAddressSync([enc.encode('node'), config.toBytes(), operator.toBytes()], programId)
}

export function vaultAddress (programId: PublicKey, node: PublicKey): [PublicKey, number] {
  return PublicKey.findProgramAddressSync([enc.encode('vault'), node.toBytes()], programId)
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
  view.setUint32(at + 60, 0, true)
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
    minStakeRatioBps: view.getUint32(at + 56, true)
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
  const { data, view } = header(Instruction.InitializeConfig, 104 + 32 * n)
  const args = INSTRUCTION_HEADER_SIZE
  data.set(a.genesisHash, args)
  writeParams(view, args + 32, a.params)
  data[args + 96] = n
  a.committee.forEach((m, i) => data.set(m.toBytes(), args + 104 + 32 * i))
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
    committee: Array.from({ length: committeeLen }, (_, i) => key(data, 184 + 32 * i))
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
