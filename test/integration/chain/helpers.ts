/**
 * Small helpers shared by the local-chain tests: polling observable chain state (never sleeping in
 * place of synchronization), reading the Clock and SlotHashes sysvars through a web3.js Connection,
 * and snapshots of accounts for byte-for-byte comparisons across a restart.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { SYSVAR_CLOCK_PUBKEY, SYSVAR_SLOT_HASHES_PUBKEY, type AccountInfo, type Connection, type PublicKey } from '@solana/web3.js'
import { projectRoot } from '../../../daemon/paths.js'

/** Builds the settlement program when its .so is missing (the chain server preloads it). */
export function ensureProgramBuilt (): void {
  if (!existsSync(join(projectRoot(), 'programs', 'settlement', 'build', 'bitflow_settlement.so'))) {
    execFileSync('sh', [join(projectRoot(), 'scripts', 'build-program.sh'), '--quiet'], { stdio: ['ignore', 'ignore', 'inherit'] })
  }
}

/** Polls until check() returns a value; the failure names what was awaited. */
export async function until<T> (what: string, check: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

export interface SlotHashEntry { slot: bigint, hash: Uint8Array }

/** The SlotHashes sysvar's entries, newest first, as the program reads them. */
export async function readSlotHashes (connection: Connection): Promise<SlotHashEntry[]> {
  const data = (await connection.getAccountInfo(SYSVAR_SLOT_HASHES_PUBKEY))!.data
  const n = Number(data.readBigUInt64LE(0))
  return Array.from({ length: n }, (_, i) => ({
    slot: data.readBigUInt64LE(8 + 40 * i),
    hash: Uint8Array.from(data.subarray(16 + 40 * i, 48 + 40 * i))
  }))
}

/** The entry the program uses for `slot`: the first slot >= `slot` that has one (a skipped slot has none). */
export function slotHashAtOrAfter (entries: SlotHashEntry[], slot: bigint): SlotHashEntry | undefined {
  let found: SlotHashEntry | undefined
  for (const e of entries) { // newest first: the last entry still >= slot is the first slot >= slot
    if (e.slot < slot) break
    found = e
  }
  return found !== undefined && entries.at(-1)!.slot <= slot ? found : undefined
}

/**
 * Waits until SlotHashes holds an entry at or after `slot` (the program refuses a seed slot that has
 * not passed) and returns the hash the program will use for it.
 */
export async function waitForSlotHash (connection: Connection, slot: bigint, timeoutMs = 20_000): Promise<SlotHashEntry> {
  return await until(`a SlotHashes entry for slot ${slot}`, async () => slotHashAtOrAfter(await readSlotHashes(connection), slot), timeoutMs)
}

export interface ClockSysvar { slot: bigint, unixTimestamp: bigint }

/** The Clock sysvar the next transaction sees: [slot u64][epoch start i64][epoch u64][leader schedule epoch u64][unix i64]. */
export async function readClock (connection: Connection): Promise<ClockSysvar> {
  const data = (await connection.getAccountInfo(SYSVAR_CLOCK_PUBKEY))!.data
  return { slot: data.readBigUInt64LE(0), unixTimestamp: data.readBigInt64LE(32) }
}

export async function tokenAmount (connection: Connection, account: PublicKey): Promise<bigint> {
  return BigInt((await connection.getTokenAccountBalance(account)).value.amount)
}

export interface AccountSnapshot { lamports: number, owner: string, executable: boolean, data: string }

export function snapshotOf (a: AccountInfo<Buffer> | null): AccountSnapshot | null {
  return a === null ? null : { lamports: a.lamports, owner: a.owner.toBase58(), executable: a.executable, data: a.data.toString('hex') }
}

/** Every account in `keys`, for a byte-for-byte comparison (getMultipleAccounts takes up to 100 keys). */
export async function snapshotAccounts (connection: Connection, keys: PublicKey[]): Promise<Map<string, AccountSnapshot | null>> {
  const out = new Map<string, AccountSnapshot | null>()
  for (let i = 0; i < keys.length; i += 100) {
    const batch = keys.slice(i, i + 100)
    const infos = await connection.getMultipleAccountsInfo(batch)
    batch.forEach((k, j) => out.set(k.toBase58(), snapshotOf(infos[j] ?? null)))
  }
  return out
}
