import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { Command } from 'commander'
import { Connection, Keypair, PublicKey, Transaction, sendAndConfirmTransaction, type TransactionInstruction } from '@solana/web3.js'
import {
  addStake, configAddress, decodeConfig, decodeNode, nodeAddress, registerNode, unbond, withdraw, NodeStatus,
  type ConfigAccount
} from '../../programs/client/index.js'
import { associatedTokenAddress } from '../../programs/chain/spl.js'
import { genesisHash as hashGenesis } from '../../protocols/genesis.js'
import { taskKey } from '../../protocols/execution/ids.js'
import { BitflowError, OptionError } from '../errors.js'
import { resolveOptions, type DaemonOptions, type PartialOptions } from '../options.js'
import { loadGenesis } from '../node.js'
import { DataDir } from '../datadir.js'
import { readableParams, safetyOf } from '../services/settlement.js'

interface ChainFlags { network?: string, dataDir?: string, config?: string, genesisFile?: string, solanaRpc?: string, programId?: string, json?: boolean }

interface Chain { options: DaemonOptions, connection: Connection, programId: PublicKey, config: PublicKey, account: ConfigAccount }

function chainOptions (cmd: Command): Command {
  return cmd
    .option('--network <name>', 'network preset')
    .option('--data-dir <path>', 'the daemon\'s data dir (its identity is the operator key)')
    .option('--config <file>', 'YAML config file')
    .option('--genesis-file <path>', 'genesis JSON (local test nets: .testnet/genesis.json)')
    .option('--solana-rpc <url>', 'Solana JSON-RPC URL')
    .option('--program-id <address>', 'settlement program id')
    .option('--json', 'print JSON')
}

async function openChain (f: ChainFlags): Promise<Chain> {
  const flags: PartialOptions = {}
  if (f.network !== undefined) flags.network = f.network
  if (f.dataDir !== undefined) flags.dataDir = resolve(f.dataDir)
  if (f.genesisFile !== undefined) flags.genesisFile = resolve(f.genesisFile)
  if (f.solanaRpc !== undefined) flags.solanaRpc = f.solanaRpc
  if (f.programId !== undefined) flags.programId = f.programId
  const { options, preset } = resolveOptions({ flags, env: process.env, ...(f.config !== undefined ? { configPath: f.config } : {}) })
  if (options.programId === undefined) throw new OptionError('no settlement program: pass --program-id (a local test net records it in .testnet/testnet.json under chain.programId)')
  const genesis = loadGenesis(options, preset)
  const programId = new PublicKey(options.programId)
  const connection = new Connection(options.solanaRpc, 'confirmed')
  const config = configAddress(programId, Buffer.from(hashGenesis(genesis), 'hex'))[0]
  let info
  try {
    info = await connection.getAccountInfo(config)
  } catch (err) {
    throw new BitflowError('ERR_CHAIN_UNREACHABLE', `cannot reach the Solana RPC at ${options.solanaRpc}: ${(err as Error).message}`)
  }
  if (info === null) throw new BitflowError('ERR_NO_NETWORK_CONFIG', `network '${options.network}' has no config account ${config.toBase58()} under program ${programId.toBase58()} on ${options.solanaRpc}`)
  return { options, connection, programId, config, account: decodeConfig(info.data) }
}

function loadKeypair (path: string, what: string): Keypair {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new OptionError(`cannot read the ${what} keypair ${path}: ${(err as Error).message}`)
  }
  if (!Array.isArray(raw) || raw.length !== 64) throw new OptionError(`${path} is not a Solana keypair file (a JSON array of 64 bytes)`)
  return Keypair.fromSecretKey(Uint8Array.from(raw as number[]))
}

/** "12.5" tokens with `decimals` decimals -> base units. */
export function parseAmount (text: string, decimals: number): bigint {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(text.trim())
  if (m === null || (m[2]?.length ?? 0) > decimals) throw new OptionError(`invalid amount '${text}': expected a number of tokens with at most ${decimals} decimals`)
  return BigInt(m[1]!) * 10n ** BigInt(decimals) + BigInt((m[2] ?? '').padEnd(decimals, '0') || '0')
}

export function formatAmount (units: bigint, decimals: number): string {
  const s = units.toString().padStart(decimals + 1, '0')
  const whole = s.slice(0, s.length - decimals)
  const frac = s.slice(s.length - decimals).replace(/0+$/, '')
  return frac === '' ? whole : `${whole}.${frac}`
}

function operatorOf (chain: Chain, f: { operator?: string }): PublicKey {
  if (f.operator !== undefined) return new PublicKey(f.operator)
  return new PublicKey(DataDir.open(chain.options.dataDir).loadIdentity().solanaAddress)
}

async function send (chain: Chain, ixs: TransactionInstruction[], feePayer: Keypair, signers: Keypair[]): Promise<string> {
  try {
    return await sendAndConfirmTransaction(chain.connection, new Transaction().add(...ixs), [feePayer, ...signers.filter(s => !s.publicKey.equals(feePayer.publicKey))])
  } catch (err) {
    throw new BitflowError('ERR_TRANSACTION_FAILED', `the transaction failed: ${(err as Error).message}`)
  }
}

async function status (chain: Chain, operator: PublicKey): Promise<Record<string, unknown>> {
  const node = nodeAddress(chain.programId, chain.config, operator)[0]
  const info = await chain.connection.getAccountInfo(node)
  if (info === null) return { operator: operator.toBase58(), registered: false }
  const n = decodeNode(info.data)
  const d = chain.account.mintDecimals
  return {
    operator: operator.toBase58(),
    registered: true,
    account: node.toBase58(),
    owner: n.owner.toBase58(),
    status: NodeStatus[n.status],
    stake: formatAmount(n.stake, d),
    unbonding: formatAmount(n.unbonding, d),
    unbondingEndsAt: n.unbonding > 0n ? new Date(Number(n.unbondingEndsAt) * 1000).toISOString() : null,
    paymentsInFlight: formatAmount(n.paymentsInFlight, d),
    capacity: n.capacity,
    specializations: n.specializations.length
  }
}

function print (result: Record<string, unknown>, json: boolean | undefined): void {
  if (json === true) { console.log(JSON.stringify(result, null, 2)); return }
  for (const [k, v] of Object.entries(result)) console.log(`${k.padEnd(18)} ${Array.isArray(v) ? v.join(', ') : String(v)}`)
}

/**
 * `bitflowd stake register|add|unbond|withdraw|status` and `bitflowd committee show`. Stake belongs
 * to the owner key (given by path); the daemon's identity is only the operator and co-signs the
 * registration. None of these take the data-dir lock.
 */
export function registerStakeCommands (program: Command): void {
  const stake = program.command('stake').description('stake on the settlement program: the owner key funds, unbonds and withdraws; the operator (this daemon) never can')

  chainOptions(stake.command('register').description('register this daemon as a node, staking from the owner\'s token account'))
    .requiredOption('--owner <keypair>', 'owner keypair file (pays and owns the stake)')
    .requiredOption('--amount <tokens>', 'stake, in tokens')
    .option('--capacity <n>', 'task slots', '1')
    .option('--specialization <taskId>', 'task id (repeatable; default: the daemon\'s configured specializations)', (v: string, p: string[] | undefined) => [...(p ?? []), v])
    .action(async (f: ChainFlags & { owner: string, amount: string, capacity: string, specialization?: string[] }) => {
      const chain = await openChain(f)
      const owner = loadKeypair(f.owner, 'owner')
      const identity = DataDir.open(chain.options.dataDir).loadIdentity()
      const operator = Keypair.fromSecretKey(Uint8Array.from([...identity.seed, ...identity.publicKey]))
      const specs = f.specialization ?? chain.options.node.specializations
      if (specs.length === 0) throw new OptionError('a node registers with at least one specialization: pass --specialization TASK_ID')
      const amount = parseAmount(f.amount, chain.account.mintDecimals)
      const ownerToken = associatedTokenAddress(owner.publicKey, chain.account.stakeMint)
      const sig = await send(chain, [registerNode({
        programId: chain.programId, config: chain.config, owner: owner.publicKey, operator: operator.publicKey, ownerToken,
        stakeMint: chain.account.stakeMint, amount, capacity: Number(f.capacity), specializations: specs.map(taskKey)
      })], owner, [operator])
      print({ ...(await status(chain, operator.publicKey)), signature: sig }, f.json)
    })

  type OwnerFlags = ChainFlags & { owner: string, amount?: string, operator?: string }
  interface OwnerContext { chain: Chain, owner: Keypair, node: PublicKey, amount: () => bigint }
  /** add, unbond and withdraw: signed by the owner key alone, then print the node's status */
  const ownerAction = (name: string, description: string, withAmount: boolean, build: (c: OwnerContext) => TransactionInstruction): void => {
    const cmd = chainOptions(stake.command(name).description(description))
      .requiredOption('--owner <keypair>', 'owner keypair file')
      .option('--operator <address>', 'the node\'s operator address (default: this data dir\'s identity)')
    if (withAmount) cmd.requiredOption('--amount <tokens>', `tokens to ${name}`)
    cmd.action(async (f: OwnerFlags) => {
      const chain = await openChain(f)
      const owner = loadKeypair(f.owner, 'owner')
      const operator = operatorOf(chain, f)
      const node = nodeAddress(chain.programId, chain.config, operator)[0]
      const sig = await send(chain, [build({ chain, owner, node, amount: () => parseAmount(f.amount ?? '', chain.account.mintDecimals) })], owner, [])
      print({ ...(await status(chain, operator)), signature: sig }, f.json)
    })
  }
  ownerAction('add', 'add stake from the owner\'s token account', true, c =>
    addStake({ programId: c.chain.programId, owner: c.owner.publicKey, node: c.node, amount: c.amount(), ownerToken: associatedTokenAddress(c.owner.publicKey, c.chain.account.stakeMint) }))
  ownerAction('unbond', 'start unbonding stake (it stays slashable until withdrawn)', true, c =>
    unbond({ programId: c.chain.programId, owner: c.owner.publicKey, node: c.node, config: c.chain.config, amount: c.amount() }))
  ownerAction('withdraw', 'withdraw unbonded stake after the unbonding delay, to the owner\'s token account', false, c =>
    withdraw({ programId: c.chain.programId, owner: c.owner.publicKey, node: c.node, destination: associatedTokenAddress(c.owner.publicKey, c.chain.account.stakeMint) }))

  chainOptions(stake.command('status').description('the node\'s on-chain registration and stake'))
    .option('--operator <address>', 'operator address (default: this data dir\'s identity)')
    .action(async (f: ChainFlags & { operator?: string }) => {
      const chain = await openChain(f)
      print(await status(chain, operatorOf(chain, f)), f.json)
    })

  const committee = program.command('committee').description('the oracle committee on chain')
  chainOptions(committee.command('show').description('committee members, threshold, epoch and network parameters'))
    .action(async (f: ChainFlags) => {
      const chain = await openChain(f)
      const c = chain.account
      const safety = safetyOf(c.params)
      print({
        config: chain.config.toBase58(),
        committeeEpoch: Number(c.committeeEpoch),
        threshold: `${c.threshold} of ${c.committeeLen}`,
        members: c.committee.map(k => k.toBase58()),
        stakeMint: c.stakeMint.toBase58(),
        registeredNodes: Number(c.nodeCount),
        ...readableParams(c.params),
        safety: safety.explanation
      }, f.json)
    })
}
