/**
 * The local chain server through an unmodified @solana/web3.js Connection: faucet, SPL tokens, the
 * settlement program's instructions, getProgramAccounts filters, blockhash expiry, SlotHashes, bad
 * requests, and a SIGKILL + restart that keeps every confirmed account.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { appendFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { WebSocket } from 'ws'
import {
  Connection, Keypair, LAMPORTS_PER_SOL, PublicKey, SYSVAR_SLOT_HASHES_PUBKEY, SystemProgram, Transaction,
  sendAndConfirmTransaction, type AccountInfo
} from '@solana/web3.js'
import {
  CONFIG_SIZE, NODE_SIZE, configAddress, decodeConfig, decodeNode, initializeConfig, nodeAddress, paramsAreSafe,
  registerNode, updateCapacity, vaultAddress, type Params
} from '../../../programs/client/index.js'
import { airdrop, createStakeMint, fundOwners, localChainRunning, startLocalChain, stopLocalChain, type LocalChain } from '../../../programs/chain/testnet.js'
import { base58Encode } from '../../../programs/chain/codec.js'
import { BLOCKHASH_TTL_SLOTS } from '../../../programs/chain/constants.js'
import { ensureProgramBuilt, until } from './helpers.js'

/** Network parameters of the test network (the program checks them: paramsAreSafe). */
const PARAMS: Params = {
  minStake: 1_000_000_000n,
  unbondingDelay: 7n * 24n * 3600n,
  challengeDelay: 3600n,
  minFee: 1_000n,
  samplingPpm: 80_000,
  validatorRewardBps: 12_000,
  slashBps: 10_000,
  bountyBps: 5_000,
  computeCostBps: 5_000,
  collusionBps: 3_000,
  minStakeRatioBps: 100_000,
  seedDelaySlots: 4,
  deadlineBaseSecs: 30,
  deadlinePer100CuSecs: 5,
  unverifiablePayBps: 5_000
}
const taskId = (name: string): Uint8Array => createHash('sha256').update(name).digest()

let root: string
let chainDir: string
let chain: LocalChain | undefined
let connection: Connection
const payer = Keypair.generate()

async function rpc (url: string, body: string, contentType = 'application/json'): Promise<{ status: number, json: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body })
  const text = await res.text()
  let json: unknown
  try { json = JSON.parse(text) } catch { json = text }
  return { status: res.status, json }
}

beforeAll(async () => {
  ensureProgramBuilt()
  root = mkdtempSync(join(tmpdir(), 'bitflow-chain-'))
  chainDir = join(root, 'chain')
  chain = await startLocalChain({ dir: chainDir, slotMs: 25, logLevel: 'warn' })
  connection = new Connection(chain.rpcUrl, 'confirmed')
  await airdrop(connection, payer.publicKey, 100 * LAMPORTS_PER_SOL)
})

afterAll(async () => {
  await chain?.stop({ timeoutMs: 5000 })
  if (root !== undefined) rmSync(root, { recursive: true, force: true })
})

describe('local chain through web3.js', () => {
  // state shared by the tests below, in order
  let mint: PublicKey
  let mintAuthority: Keypair
  const owner = Keypair.generate()
  const operator = Keypair.generate()
  let ownerToken: PublicKey
  let treasury: PublicKey
  let config: PublicKey
  let node: PublicKey
  const signatures: string[] = []

  it('answers the cluster methods and advances slots', async () => {
    const version = await connection.getVersion()
    expect(version['solana-core']).toMatch(/^\d+\.\d+\.\d+/)
    expect(await connection.getGenesisHash()).toBe(chain!.genesisHash)
    const health = await rpc(chain!.rpcUrl, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'getHealth' }))
    expect(health.json.result).toBe('ok')
    const s0 = await connection.getSlot()
    const epoch = await connection.getEpochInfo()
    expect(epoch.absoluteSlot).toBeGreaterThanOrEqual(s0)
    expect(epoch.slotsInEpoch).toBeGreaterThan(0)
    await until('the slot to advance', async () => (await connection.getSlot()) > s0 + 2)
    expect(await connection.getBlockHeight()).toBeGreaterThan(s0)
    expect(await connection.getBalance(payer.publicKey)).toBe(100 * LAMPORTS_PER_SOL)
    expect(await connection.getMinimumBalanceForRentExemption(165)).toBeGreaterThan(0)
  })

  it('creates a 6-decimal stake mint and funds owner token accounts', async () => {
    ;({ mint, mintAuthority } = await createStakeMint(connection, { payer }))
    const treasuryOwner = Keypair.generate().publicKey
    const funded = await fundOwners(connection, {
      payer, mint, mintAuthority,
      owners: [{ owner: owner.publicKey, lamports: LAMPORTS_PER_SOL, tokens: 5_000_000_000n }, { owner: treasuryOwner }]
    })
    ownerToken = funded[0]!.tokenAccount
    treasury = funded[1]!.tokenAccount
    const balance = await connection.getTokenAccountBalance(ownerToken)
    expect(balance.value).toMatchObject({ amount: '5000000000', decimals: 6, uiAmount: 5000 })
    expect(await connection.getBalance(owner.publicKey)).toBe(LAMPORTS_PER_SOL)
    const parsed = await connection.getParsedAccountInfo(ownerToken)
    expect((parsed.value?.data as any).parsed.info.mint).toBe(mint.toBase58())
    const supply = await connection.getTokenSupply(mint)
    expect(supply.value.decimals).toBe(6)
  })

  it('runs InitializeConfig and RegisterNode with sendAndConfirmTransaction', async () => {
    const programId = new PublicKey(chain!.programId)
    const genesisHash = new PublicKey(chain!.genesisHash).toBytes()
    expect(paramsAreSafe(PARAMS)).toBe(true)
    config = configAddress(programId, genesisHash)[0]
    const committee = Array.from({ length: 4 }, () => Keypair.generate().publicKey)
    const init = new Transaction().add(initializeConfig({ programId, payer: payer.publicKey, genesisHash, stakeMint: mint, treasury, committee, params: PARAMS }))
    signatures.push(await sendAndConfirmTransaction(connection, init, [payer]))
    const cfg = decodeConfig((await connection.getAccountInfo(config))!.data)
    expect(cfg.threshold).toBe(3)
    expect(cfg.stakeMint.equals(mint)).toBe(true)

    const register = new Transaction().add(registerNode({
      programId, config, owner: owner.publicKey, operator: operator.publicKey, ownerToken, stakeMint: mint,
      amount: 2_000_000_000n, capacity: 4, specializations: [taskId('resnet/0')]
    }))
    register.feePayer = payer.publicKey
    signatures.push(await sendAndConfirmTransaction(connection, register, [payer, owner, operator]))
    node = nodeAddress(programId, config, operator.publicKey)[0]
    const decoded = decodeNode((await connection.getAccountInfo(node))!.data)
    expect(decoded.owner.equals(owner.publicKey)).toBe(true)
    expect(decoded.stake).toBe(2_000_000_000n)
    expect((await connection.getTokenAccountBalance(vaultAddress(programId, node)[0])).value.amount).toBe('2000000000')
    expect((await connection.getTokenAccountBalance(ownerToken)).value.amount).toBe('3000000000')

    const tx = await connection.getTransaction(signatures[1]!, { maxSupportedTransactionVersion: 0, commitment: 'confirmed' })
    expect(tx?.meta?.err).toBeNull()
    expect(tx?.meta?.computeUnitsConsumed).toBeGreaterThan(0)
    expect(tx?.meta?.logMessages?.some(l => l.includes(programId.toBase58()))).toBe(true)
    const statuses = await connection.getSignatureStatuses(signatures)
    for (const s of statuses.value) expect(s?.confirmationStatus).toBe('finalized')
  })

  it('filters getProgramAccounts by memcmp and dataSize', async () => {
    const programId = new PublicKey(chain!.programId)
    const nodes = await connection.getProgramAccounts(programId, {
      filters: [{ dataSize: NODE_SIZE }, { memcmp: { offset: 0, bytes: base58Encode(Uint8Array.of(2)) } }, { memcmp: { offset: 8, bytes: config.toBase58() } }]
    })
    expect(nodes.map(n => n.pubkey.toBase58())).toEqual([node.toBase58()])
    const configs = await connection.getProgramAccounts(programId, { filters: [{ dataSize: CONFIG_SIZE }] })
    expect(configs.map(c => c.pubkey.toBase58())).toEqual([config.toBase58()])
    const none = await connection.getProgramAccounts(programId, { filters: [{ memcmp: { offset: 8, bytes: Keypair.generate().publicKey.toBase58() } }] })
    expect(none).toEqual([])
    // base58 encoding of a small slice
    const sliced = await rpc(chain!.rpcUrl, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'getProgramAccounts', params: [programId.toBase58(), { encoding: 'base58', dataSlice: { offset: 0, length: 8 }, filters: [{ dataSize: NODE_SIZE }] }] }))
    expect(sliced.json.result[0].account.data[1]).toBe('base58')
  })

  it('simulates without committing and reports compute units', async () => {
    const programId = new PublicKey(chain!.programId)
    const other = Keypair.generate()
    const before = (await connection.getTokenAccountBalance(ownerToken)).value.amount
    const tx = new Transaction().add(registerNode({
      programId, config, owner: owner.publicKey, operator: other.publicKey, ownerToken, stakeMint: mint,
      amount: 1_000_000_000n, capacity: 1, specializations: [taskId('resnet/1')]
    }))
    tx.feePayer = payer.publicKey
    const sim = await connection.simulateTransaction(tx, [payer, owner, other])
    expect(sim.value.err).toBeNull()
    expect(sim.value.unitsConsumed).toBeGreaterThan(0)
    expect((await connection.getTokenAccountBalance(ownerToken)).value.amount).toBe(before)
    expect(await connection.getAccountInfo(nodeAddress(programId, config, other.publicKey)[0])).toBeNull()
  })

  it('accepts base58 and base64 wire transactions, reports status and fee, refuses duplicates', async () => {
    const to = Keypair.generate().publicKey
    const wires: Buffer[] = []
    const send = async (wire: Buffer, encoding?: 'base64'): Promise<any> => {
      const params = encoding === 'base64' ? [wire.toString('base64'), { encoding }] : [base58Encode(wire)] // base58 is the default
      return (await rpc(chain!.rpcUrl, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'sendTransaction', params }))).json
    }
    const { blockhash } = await connection.getLatestBlockhash()
    for (const lamports of [1_000_000, 2_000_000]) {
      const tx = new Transaction({ feePayer: payer.publicKey, recentBlockhash: blockhash }).add(SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: to, lamports }))
      tx.sign(payer)
      wires.push(tx.serialize())
    }
    const a = (await send(wires[0]!)).result as string
    const b = (await send(wires[1]!, 'base64')).result as string
    await until('both transfers finalized', async () => (await connection.getSignatureStatuses([a, b])).value.every(s => s?.confirmationStatus === 'finalized'))
    expect(await connection.getBalance(to)).toBe(3_000_000)
    const tx = await connection.getTransaction(a, { maxSupportedTransactionVersion: 0 })
    expect(tx?.meta?.fee).toBe(5000)
    expect(tx?.meta?.postBalances[0]).toBe(tx!.meta!.preBalances[0]! - 1_000_000 - 5000)
    const duplicate = await send(wires[0]!, 'base64')
    expect(duplicate.error.code).toBe(-32002)
    expect(duplicate.error.message).toMatch(/already been processed/)
    expect(await connection.getBalance(to)).toBe(3_000_000)
  })

  it('refuses a transaction whose blockhash expired (150 slots)', async () => {
    // the shared chain keeps blockhashes for 60 s (web3.js caches them for 30 s); this one for 150 slots of 10 ms
    expect(chain!.blockhashTtlSlots * chain!.slotMs).toBeGreaterThanOrEqual(60_000)
    const fast = await startLocalChain({ dir: join(root, 'fast'), slotMs: 10, blockhashTtlSlots: BLOCKHASH_TTL_SLOTS, logLevel: 'warn' })
    try {
      expect(fast.blockhashTtlSlots).toBe(150)
      const c = new Connection(fast.rpcUrl, 'confirmed')
      const from = Keypair.generate()
      await airdrop(c, from.publicKey, LAMPORTS_PER_SOL)
      const { blockhash, lastValidBlockHeight } = await c.getLatestBlockhash()
      expect(lastValidBlockHeight - await c.getBlockHeight()).toBeLessThanOrEqual(BLOCKHASH_TTL_SLOTS)
      const tx = new Transaction({ feePayer: from.publicKey, blockhash, lastValidBlockHeight })
        .add(SystemProgram.transfer({ fromPubkey: from.publicKey, toPubkey: Keypair.generate().publicKey, lamports: 1_000_000 }))
      tx.sign(from)
      const wire = tx.serialize()
      expect((await c.isBlockhashValid(blockhash)).value).toBe(true)
      await until(`block height past ${lastValidBlockHeight}`, async () => (await c.getBlockHeight()) > lastValidBlockHeight, 30_000)
      expect((await c.isBlockhashValid(blockhash)).value).toBe(false)
      await expect(c.sendRawTransaction(wire)).rejects.toThrow(/Blockhash not found/)
      // without preflight the validator drops it: a signature comes back but never a status
      const sig = await c.sendRawTransaction(wire, { skipPreflight: true })
      const slot = await c.getSlot()
      await until('two more slots', async () => (await c.getSlot()) > slot + 2)
      expect((await c.getSignatureStatus(sig)).value).toBeNull()
      expect(await c.getBalance(from.publicKey)).toBe(LAMPORTS_PER_SOL)
    } finally {
      await fast.stop()
    }
  })

  it('advances the SlotHashes sysvar with the chain\'s blockhashes', async () => {
    const read = async (): Promise<Array<{ slot: bigint, hash: string }>> => {
      const data = (await connection.getAccountInfo(SYSVAR_SLOT_HASHES_PUBKEY))!.data
      const n = Number(data.readBigUInt64LE(0))
      return Array.from({ length: n }, (_, i) => ({ slot: data.readBigUInt64LE(8 + 40 * i), hash: new PublicKey(data.subarray(16 + 40 * i, 48 + 40 * i)).toBase58() }))
    }
    const first = await read()
    expect(first.length).toBe(Math.min(512, Number(first[0]!.slot) + 1)) // every slot since genesis (slot 0), at most 512
    for (let i = 1; i < first.length; i++) expect(first[i - 1]!.slot).toBe(first[i]!.slot + 1n) // newest first, no gaps
    const later = await until('a newer SlotHashes entry', async () => { const e = await read(); return e[0]!.slot > first[0]!.slot ? e : undefined })
    expect(later.some(e => e.slot === first[0]!.slot && e.hash === first[0]!.hash)).toBe(true)
    const { blockhash } = await connection.getLatestBlockhash()
    const entries = await read()
    expect(entries.some(e => e.hash === blockhash)).toBe(true)
  })

  it('answers bad requests with JSON-RPC errors and keeps serving', async () => {
    const url = chain!.rpcUrl
    const call = async (method: string, params: unknown): Promise<any> => (await rpc(url, JSON.stringify({ jsonrpc: '2.0', id: 7, method, params }))).json
    expect((await rpc(url, '{"jsonrpc":"2.0","id":1,"method":')).json.error.code).toBe(-32700)
    expect((await call('noSuchMethod', [])).error.code).toBe(-32601)
    expect((await call('getBalance', ['not-a-key'])).error.code).toBe(-32602)
    expect((await call('getBalance', [Keypair.generate().publicKey.toBase58(), { commitment: 'sometime' }])).error.code).toBe(-32602)
    expect((await call('getAccountInfo', 42)).error.code).toBe(-32602)
    expect((await call('getMultipleAccounts', [Array.from({ length: 101 }, () => Keypair.generate().publicKey.toBase58())])).error.code).toBe(-32602)
    expect((await call('sendTransaction', ['AAAA', { encoding: 'base64' }])).error.code).toBe(-32602)
    expect((await call('sendTransaction', ['!!!', { encoding: 'base64' }])).error.code).toBe(-32602)
    expect((await call('requestAirdrop', [payer.publicKey.toBase58(), 1e15])).error.code).toBe(-32010)
    expect((await call('getProgramAccounts', [chain!.programId, { filters: [{ memcmp: { offset: -1, bytes: '1' } }] }])).error.code).toBe(-32602)
    expect((await call('signatureSubscribe', ['x'])).error.code).toBe(-32601) // subscriptions need a WebSocket
    expect((await rpc(url, '{}', 'text/plain')).status).toBe(415)
    const batch = (await rpc(url, JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'getSlot' }, { jsonrpc: '2.0', id: 2, method: 'nope' }]))).json
    expect(batch[0].result).toBeGreaterThan(0)
    expect(batch[1].error.code).toBe(-32601)

    // WebSocket: garbage, then a subscription on the same connection still works
    const ws = new WebSocket(chain!.wsUrl)
    const messages: any[] = []
    ws.on('message', d => { messages.push(JSON.parse(String(d))) })
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    ws.send('not json')
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'accountSubscribe', params: ['bad'] }))
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'slotSubscribe' }))
    await until('a slot notification', async () => messages.some(m => m.method === 'slotNotification'))
    expect(messages.find(m => m.error?.code === -32700)).toBeDefined()
    expect(messages.find(m => m.id === 2).error.code).toBe(-32602)
    const subId = messages.find(m => m.id === 3).result
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'slotUnsubscribe', params: [subId] }))
    await until('the unsubscribe answer', async () => messages.find(m => m.id === 4))
    expect(messages.find(m => m.id === 4).result).toBe(true)
    ws.close()

    // the same port serves WebSocket too
    const ws2 = new WebSocket(url.replace('http://', 'ws://'))
    await new Promise((resolve, reject) => { ws2.once('open', resolve); ws2.once('error', reject) })
    ws2.close()
    expect(await connection.getSlot()).toBeGreaterThan(0)
  })

  it('notifies account, program and logs subscribers through web3.js', async () => {
    const programId = new PublicKey(chain!.programId)
    const target = Keypair.generate().publicKey
    const accountSeen = new Promise<number>(resolve => {
      const id = connection.onAccountChange(target, info => { void connection.removeAccountChangeListener(id); resolve(info.lamports) }, { commitment: 'confirmed' })
    })
    const programSeen = new Promise<string>(resolve => {
      const id = connection.onProgramAccountChange(programId, info => { void connection.removeProgramAccountChangeListener(id); resolve(info.accountId.toBase58()) }, { commitment: 'confirmed', filters: [{ dataSize: NODE_SIZE }] })
    })
    const logsSeen = new Promise<string[]>(resolve => {
      const id = connection.onLogs(target, l => { void connection.removeOnLogsListener(id); resolve(l.logs) }, 'confirmed')
    })
    // subscriptions are set up asynchronously: keep acting until the notifications arrive
    let lamports = 0
    const poke = async (): Promise<void> => {
      lamports += 1_000_000
      await sendAndConfirmTransaction(connection, new Transaction().add(SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: target, lamports: 1_000_000 })), [payer])
      await sendAndConfirmTransaction(connection, new Transaction().add(updateCapacity({ programId, signer: operator.publicKey, node, capacity: 5 + (lamports / 1_000_000) % 3 })), [payer, operator])
    }
    const done = Promise.all([accountSeen, programSeen, logsSeen])
    let settled = false
    void done.finally(() => { settled = true })
    await until('subscription notifications', async () => { if (!settled) await poke(); return settled })
    const [seenLamports, seenNode, logs] = await done
    expect(seenLamports % 1_000_000).toBe(0)
    expect(seenNode).toBe(node.toBase58())
    expect(logs.some(l => l.includes('11111111111111111111111111111111'))).toBe(true)
  })

  it('keeps every confirmed account, status and recent blockhash across SIGKILL and restart', async () => {
    const programId = new PublicKey(chain!.programId)
    // one more transaction, killed right after its confirmation
    const recipient = Keypair.generate().publicKey
    signatures.push(await sendAndConfirmTransaction(connection, new Transaction().add(SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: recipient, lamports: 12_345_678 })), [payer]))
    const keys = [payer.publicKey, owner.publicKey, recipient, mint, ownerToken, treasury, config, node, vaultAddress(programId, node)[0]]
    const before = await connection.getMultipleAccountsInfo(keys)
    const programAccounts = await connection.getProgramAccounts(programId)
    const statuses = (await connection.getSignatureStatuses(signatures)).value
    const { blockhash } = await connection.getLatestBlockhash()
    const slot = await connection.getSlot()
    const genesis = chain!.genesisHash

    await chain!.kill()
    appendFileSync(join(chainDir, 'ledger.log'), Buffer.from([0x40, 0, 0, 0, 1, 2, 3])) // a torn frame, as a crash mid-write leaves
    // same port: clients of the old process (their web3.js WebSocket reconnects) find the chain again
    const port = Number(new URL(chain!.rpcUrl).port)
    chain = await startLocalChain({ dir: chainDir, slotMs: 25, logLevel: 'warn', port })
    expect(chain.rpcUrl).toBe(`http://127.0.0.1:${port}`)
    connection = new Connection(chain.rpcUrl, 'confirmed')

    expect(chain.genesisHash).toBe(genesis)
    expect(chain.programId).toBe(programId.toBase58())
    expect(await connection.getSlot()).toBeGreaterThanOrEqual(slot)
    const after = await connection.getMultipleAccountsInfo(keys)
    const same = (a: AccountInfo<Buffer> | null, b: AccountInfo<Buffer> | null): void => {
      expect(b).not.toBeNull()
      expect(b!.lamports).toBe(a!.lamports)
      expect(b!.owner.toBase58()).toBe(a!.owner.toBase58())
      expect(Buffer.compare(b!.data, a!.data)).toBe(0)
    }
    before.forEach((a, i) => { same(a, after[i]!) })
    expect(after[2]!.lamports).toBe(12_345_678)
    const programAfter = await connection.getProgramAccounts(programId)
    expect(programAfter.map(p => [p.pubkey.toBase58(), p.account.data.toString('hex')]).sort())
      .toEqual(programAccounts.map(p => [p.pubkey.toBase58(), p.account.data.toString('hex')]).sort())
    const registered = await connection.getTransaction(signatures[1]!, { maxSupportedTransactionVersion: 0 })
    expect(registered?.meta?.logMessages?.length).toBeGreaterThan(0)
    const statusesAfter = (await connection.getSignatureStatuses(signatures)).value
    statusesAfter.forEach((s, i) => {
      expect(s?.slot).toBe(statuses[i]!.slot)
      expect(s?.confirmationStatus).toBe('finalized')
    })
    expect((await connection.isBlockhashValid(blockhash)).value).toBe(true)
    // a transaction signed against the pre-crash blockhash still lands
    const tx = new Transaction({ feePayer: payer.publicKey, recentBlockhash: blockhash }).add(SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: recipient, lamports: 1 }))
    tx.sign(payer)
    const sig = await connection.sendRawTransaction(tx.serialize())
    await until('the post-restart transfer', async () => (await connection.getSignatureStatus(sig)).value?.confirmationStatus === 'finalized')
    expect(await connection.getBalance(recipient)).toBe(12_345_679)
    expect((await connection.getTokenAccountBalance(ownerToken)).value.amount).toBe('3000000000')
  })

  it('stops cleanly on SIGTERM by its recorded pid and removes ready.json', async () => {
    expect(localChainRunning(chainDir)?.pid).toBe(chain!.pid)
    expect(await stopLocalChain(chainDir)).toBe('stopped')
    expect(existsSync(join(chainDir, 'ready.json'))).toBe(false)
    expect(localChainRunning(chainDir)).toBeUndefined()
    await chain!.stop() // reaps the child; a no-op for the process
    chain = undefined
  })
})
