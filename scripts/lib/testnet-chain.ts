import { join } from 'node:path'
import { mkdirSync, readFileSync } from 'node:fs'
import { Connection, Keypair, PublicKey, LAMPORTS_PER_SOL } from '@solana/web3.js'
import { startLocalChain, stopLocalChain, localChainRunning, airdrop, createStakeMint, fundOwners, loadOrCreateKeypair, sendAndConfirm, type LocalChain } from '../../programs/chain/testnet.js'
import { configAddress, initializeConfig, registerNode, paramsAreSafe } from '../../programs/client/index.js'
import { toProgramParams } from '../../daemon/settlement/params.js'
import type { SettlementParams } from '../../daemon/preset.js'
import { loadNetworkPreset } from '../../daemon/preset.js'
import { taskKey } from '../../protocols/execution/ids.js'

/** What `testnet.json` records about the chain (its `chain` field). */
export interface TestnetChain {
  rpcUrl: string
  wsUrl: string
  programId: string
  /** the network's config account (PDA of the genesis hash) */
  config: string
  stakeMint: string
  treasury: string
  pid: number
  dir: string
}

export interface ChainMember {
  name: string
  role: 'oracle' | 'node' | 'validator'
  dataDir: string
  specializations: string[]
  taskSlots: number
}

/** Stake each test-net node and validator puts up: 10x the network minimum. */
const STAKE_MULTIPLE = 10n

/**
 * Starts the local chain for a test net and settles its genesis on it: a test stablecoin (6
 * decimals) as the stake mint, the network config with the oracles as committee, and every node and
 * validator registered and staked by an owner key kept in the test net directory (the daemon's own
 * key is its operator key and never holds stake).
 */
export async function setupTestnetChain (options: {
  dir: string
  genesisHash: string
  members: ChainMember[]
  slotMs?: number
  /** 'solana-test-validator' uses Agave's validator when it is on PATH */
  kind?: 'litesvm' | 'solana-test-validator'
  /** settlement parameters that differ from the local preset (e.g. samplingProbability 1 for a fraud demo) */
  settlement?: Partial<SettlementParams>
  onProgress?: (m: string) => void
}): Promise<TestnetChain> {
  const progress = options.onProgress ?? (() => {})
  const chainDir = join(options.dir, 'chain')
  const keysDir = join(options.dir, 'keys')
  mkdirSync(keysDir, { recursive: true, mode: 0o700 })
  const chain: LocalChain = await startLocalChain({ dir: chainDir, slotMs: options.slotMs ?? 100, logLevel: 'warn', ...(options.kind !== undefined ? { chain: options.kind } : {}) })
  progress(`local chain at ${chain.rpcUrl} (program ${chain.programId})`)
  const connection = new Connection(chain.rpcUrl, { commitment: 'confirmed', wsEndpoint: chain.wsUrl })
  const programId = new PublicKey(chain.programId)
  const payer = loadOrCreateKeypair(join(keysDir, 'payer.json'))
  await airdrop(connection, payer.publicKey, 1000 * LAMPORTS_PER_SOL)
  const { mint, mintAuthority } = await createStakeMint(connection, { payer, mintAuthority: loadOrCreateKeypair(join(keysDir, 'mint-authority.json')), decimals: 6 })
  const treasuryOwner = loadOrCreateKeypair(join(keysDir, 'treasury.json'))

  const params = toProgramParams({ ...loadNetworkPreset('local').settlement, ...options.settlement })
  if (!paramsAreSafe(params)) throw new Error('the local preset settlement parameters violate p > C / ((1 - r)(R + S))')
  const stake = params.minStake * STAKE_MULTIPLE
  const staked = options.members.filter(m => m.role !== 'oracle')
  const owners = staked.map(m => ({ member: m, owner: loadOrCreateKeypair(join(keysDir, `owner-${m.name}.json`)) }))
  const [treasury, ...ownerTokens] = await fundOwners(connection, {
    payer, mint, mintAuthority,
    owners: [{ owner: treasuryOwner.publicKey }, ...owners.map(o => ({ owner: o.owner.publicKey, lamports: LAMPORTS_PER_SOL, tokens: stake * 2n }))]
  })

  const genesisHash = Buffer.from(options.genesisHash, 'hex')
  const committee = options.members.filter(m => m.role === 'oracle').map(m => operatorKeypair(m.dataDir).publicKey)
  const config = configAddress(programId, genesisHash)[0]
  await sendAndConfirm(connection, [initializeConfig({ programId, payer: payer.publicKey, genesisHash, stakeMint: mint, treasury: treasury!.tokenAccount, committee, params })], payer)
  progress(`network config ${config.toBase58()} with a committee of ${committee.length}`)

  await Promise.all(owners.map(async ({ member, owner }, i) => {
    const operator = operatorKeypair(member.dataDir)
    // the operator co-signs its registration; the payer pays the fees
    await sendAndConfirm(connection, [registerNode({
      programId, config, owner: owner.publicKey, operator: operator.publicKey,
      ownerToken: ownerTokens[i]!.tokenAccount,
      stakeMint: mint, amount: stake, capacity: member.taskSlots,
      specializations: member.specializations.slice(0, 16).map(taskKey)
    })], payer, [owner, operator])
  }))
  progress(`registered and staked ${owners.length} nodes and validators (${stake} base units each)`)
  return { rpcUrl: chain.rpcUrl, wsUrl: chain.wsUrl, programId: chain.programId, config: config.toBase58(), stakeMint: mint.toBase58(), treasury: treasury!.tokenAccount.toBase58(), pid: chain.pid, dir: chainDir }
}

/** Stake-mint base units each daemon's operator key receives for execution escrows: 1000 tokens (6 decimals). */
export const OPERATOR_TOKENS = 1_000_000_000n

/**
 * Funds every daemon's operator key (its identity) so it can pay fees and request executions: one
 * SOL and `tokens` of the stake mint in its associated token account. Uses the payer and mint
 * authority keys that setupTestnetChain kept in the test net directory. Separate from the stake,
 * which stays with the owner keys.
 */
export async function fundTestnetOperators (options: { dir: string, chain: TestnetChain, dataDirs: string[], tokens?: bigint }): Promise<void> {
  const keysDir = join(options.dir, 'keys')
  const connection = new Connection(options.chain.rpcUrl, { commitment: 'confirmed', wsEndpoint: options.chain.wsUrl })
  await fundOwners(connection, {
    payer: loadOrCreateKeypair(join(keysDir, 'payer.json')),
    mint: new PublicKey(options.chain.stakeMint),
    mintAuthority: loadOrCreateKeypair(join(keysDir, 'mint-authority.json')),
    owners: options.dataDirs.map(d => ({ owner: operatorKeypair(d).publicKey, lamports: LAMPORTS_PER_SOL, tokens: options.tokens ?? OPERATOR_TOKENS }))
  })
}

/** The daemon's identity as a Solana keypair (the file is in the Solana keypair format). */
export function operatorKeypair (dataDir: string): Keypair {
  return Keypair.fromSecretKey(Uint8Array.from(JSON.parse(readFileSync(join(dataDir, 'identity.json'), 'utf8')) as number[]))
}

export async function stopTestnetChain (dir: string): Promise<'stopped' | 'killed' | 'not-running'> {
  return await stopLocalChain(join(dir, 'chain'))
}

export function testnetChainRunning (dir: string): boolean {
  return localChainRunning(join(dir, 'chain')) !== undefined
}
