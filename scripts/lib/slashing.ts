/**
 * Test-net helpers for the slashing demo and tests: more stake for one node (selection is
 * stake-weighted, so a demo can make its dishonest node the likely pick) and the slashes read back
 * from the chain, with the numbers a person checks (stake before and after, bounty, treasury share).
 */
import { join } from 'node:path'
import { Connection, PublicKey } from '@solana/web3.js'
import {
  addStake, decodeNode, decodeSlash, nodeAddress, vaultAddress, SLASH_SIZE, SlashStatus, type NodeAccount, type SlashAccount
} from '../../programs/client/index.js'
import { associatedTokenAddress, loadOrCreateKeypair, sendAndConfirm } from '../../programs/chain/testnet.js'
import { mintToInstruction } from '../../programs/chain/spl.js'
import type { TestnetDaemon } from './testnet.js'
import type { TestnetChain } from './testnet-chain.js'
import { operatorKeypair } from './testnet-chain.js'

export function chainConnection (chain: TestnetChain): Connection {
  return new Connection(chain.rpcUrl, { commitment: 'confirmed', wsEndpoint: chain.wsUrl })
}

export function nodeAccountOf (chain: TestnetChain, d: Pick<TestnetDaemon, 'dataDir'>): PublicKey {
  return nodeAddress(new PublicKey(chain.programId), new PublicKey(chain.config), operatorKeypair(d.dataDir).publicKey)[0]
}

/**
 * Adds `amount` stake to a test-net node: mints it to the node owner's token account (the test net
 * keeps the owner and mint-authority keys in its directory) and stakes it with the owner's key.
 */
export async function addTestnetStake (dir: string, chain: TestnetChain, d: Pick<TestnetDaemon, 'name' | 'dataDir'>, amount: bigint): Promise<void> {
  const keys = join(dir, 'keys')
  const connection = chainConnection(chain)
  const payer = loadOrCreateKeypair(join(keys, 'payer.json'))
  const mintAuthority = loadOrCreateKeypair(join(keys, 'mint-authority.json'))
  const owner = loadOrCreateKeypair(join(keys, `owner-${d.name}.json`))
  const mint = new PublicKey(chain.stakeMint)
  const ownerToken = associatedTokenAddress(owner.publicKey, mint)
  await sendAndConfirm(connection, [
    mintToInstruction({ mint, destination: ownerToken, authority: mintAuthority.publicKey, amount }),
    addStake({ programId: new PublicKey(chain.programId), owner: owner.publicKey, node: nodeAccountOf(chain, d), amount, ownerToken })
  ], payer, [mintAuthority, owner])
}

export async function tokenBalance (connection: Connection, account: PublicKey): Promise<bigint> {
  return await connection.getTokenAccountBalance(account, 'confirmed').then(r => BigInt(r.value.amount), () => 0n)
}

export async function readNode (connection: Connection, account: PublicKey): Promise<NodeAccount> {
  const info = await connection.getAccountInfo(account, 'confirmed')
  if (info === null) throw new Error(`no node account ${account.toBase58()}`)
  return decodeNode(info.data)
}

export interface ChainSlash {
  address: PublicKey
  slash: SlashAccount
  node: NodeAccount
  /** stake + unbonding now; for an executed slash: what the slash left */
  stakeAfter: bigint
  /** stake + unbonding the slash took its share of (executed: stakeAfter + amount) */
  stakeBefore: bigint | undefined
}

/** Every slash account of the network (optionally of one execution account), read from the chain. */
export async function readChainSlashes (connection: Connection, chain: TestnetChain, execution?: PublicKey): Promise<ChainSlash[]> {
  const accounts = await connection.getProgramAccounts(new PublicKey(chain.programId), {
    commitment: 'confirmed',
    filters: [{ dataSize: SLASH_SIZE }, { memcmp: { offset: 8, bytes: chain.config } }, ...(execution !== undefined ? [{ memcmp: { offset: 40, bytes: execution.toBase58() } }] : [])]
  })
  const out: ChainSlash[] = []
  for (const a of accounts) {
    const slash = decodeSlash(a.account.data)
    const node = await readNode(connection, slash.accused)
    const stakeAfter = node.stake + node.unbonding
    out.push({ address: a.pubkey, slash, node, stakeAfter, stakeBefore: slash.status === SlashStatus.Executed ? stakeAfter + slash.amount : undefined })
  }
  return out.sort((x, y) => Number(x.slash.recordedAt - y.slash.recordedAt))
}

/** `SLASHED node=<node account> stake_before=<n> stake_after=<n> bounty=<n>` for an executed slash. */
export function slashedLine (s: ChainSlash): string {
  return `SLASHED node=${s.slash.accused.toBase58()} stake_before=${s.stakeBefore ?? '?'} stake_after=${s.stakeAfter} bounty=${s.slash.bounty}`
}

export { vaultAddress }
