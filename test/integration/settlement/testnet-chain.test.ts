import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { join } from 'node:path'
import { Connection, PublicKey } from '@solana/web3.js'
import { Testnet, type TestnetFile, type TestnetDaemon } from '../../../scripts/lib/testnet.js'
import { operatorKeypair } from '../../../scripts/lib/testnet-chain.js'
import { configAddress, decodeConfig, decodeNode, nodeAddress, vaultAddress, registerNode, NodeStatus } from '../../../programs/client/index.js'
import { fundOwners, loadOrCreateKeypair, sendAndConfirm } from '../../../programs/chain/testnet.js'
import { genesisHash } from '../../../protocols/genesis.js'
import { taskKey } from '../../../protocols/execution/ids.js'
import { loadNetworkPreset } from '../../../daemon/preset.js'
import { DataDir } from '../../../daemon/datadir.js'
import { tempDir, spawnDaemon, cleanup, eventually, runCli, type SpawnedDaemon } from '../../helpers/daemon.js'
import { readFileSync } from 'node:fs'

const dir = tempDir('settle')
const net = new Testnet(join(dir, 'net'))
let file: TestnetFile
let outsider: SpawnedDaemon | undefined
const byName = (name: string): TestnetDaemon => file.daemons.find(d => d.name === name)!
const preset = loadNetworkPreset('local')

beforeAll(async () => {
  file = await net.up({ oracles: 3, nodes: 1, validators: 1, logLevel: 'warn', specializationsFor: () => ['task-a'] })
}, 180_000)

afterAll(async () => {
  await net.down().catch(() => {})
  cleanup([...(file?.daemons.map(d => d.pid) ?? []), ...(outsider !== undefined ? [outsider.pid] : []), ...(file?.chain !== undefined ? [file.chain.pid] : [])], [dir])
})

describe('a test net settled on the local chain', () => {
  it('writes chain {rpcUrl, wsUrl, programId} and settles the genesis: committee, stake mint, registered and staked nodes', async () => {
    expect(file.chain?.rpcUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(file.chain?.wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/)
    const connection = new Connection(file.chain!.rpcUrl, 'confirmed')
    const programId = new PublicKey(file.chain!.programId)
    const genesis = JSON.parse(readFileSync(file.genesisFile, 'utf8'))
    const config = configAddress(programId, Buffer.from(genesisHash(genesis), 'hex'))[0]
    expect(config.toBase58()).toBe(file.chain!.config)
    const cfg = decodeConfig((await connection.getAccountInfo(config))!.data)
    expect(cfg.committee.map(k => k.toBase58()).sort()).toEqual(file.daemons.filter(d => d.role === 'oracle').map(d => d.solanaAddress).sort())
    expect(cfg.threshold).toBe(2)
    expect(cfg.mintDecimals).toBe(6)
    const stake = BigInt(preset.settlement.minStake) * 10n
    for (const d of file.daemons.filter(x => x.role !== 'oracle')) {
      const node = nodeAddress(programId, config, new PublicKey(d.solanaAddress))[0]
      const acct = decodeNode((await connection.getAccountInfo(node))!.data)
      expect(acct.stake).toBe(stake)
      expect(acct.status).toBe(NodeStatus.Active)
      // the owner key is not the daemon's operator key
      expect(acct.owner.toBase58()).not.toBe(d.solanaAddress)
      expect(acct.specializations.map(s => Buffer.from(s).toString('hex'))).toEqual([Buffer.from(taskKey('task-a')).toString('hex')])
      expect((await connection.getTokenAccountBalance(vaultAddress(programId, node)[0])).value.amount).toBe(stake.toString())
    }
  })

  it('bitflow_networkParams reports the on-chain parameters and a positive safety margin; bitflow_registry lists the nodes', async () => {
    const client = net.client(byName('oracle-1'))
    const params = await eventually('the daemon to read the chain', async () => {
      const p = await client.call<{ source: string, safety: { safe: boolean, margin: number, explanation: string }, params: Record<string, number | string>, threshold: number }>('bitflow_networkParams')
      return p.source === 'chain' ? p : undefined
    })
    expect(params.safety.safe).toBe(true)
    expect(params.safety.margin).toBeGreaterThan(0)
    expect(params.safety.explanation).toMatch(/0\.08 > 0\.5 \/ \(\(1 - 0\.3\)/)
    expect(params.params.samplingProbability).toBe(preset.settlement.samplingProbability)
    expect(params.params.minStake).toBe(String(preset.settlement.minStake))
    expect(params.threshold).toBe(2)
    const registry = await client.call<Array<{ operator: string, stake: string, status: string }>>('bitflow_registry')
    expect(registry.map(r => r.operator).sort()).toEqual(file.daemons.filter(d => d.role !== 'oracle').map(d => d.solanaAddress).sort())
    for (const r of registry) expect(r.status).toBe('Active')
  })

  it('bitflowd stake and committee commands work against the chain; only the owner key moves stake', async () => {
    const node = byName('node-1')
    const chainFlags = ['--genesis-file', file.genesisFile, '--solana-rpc', file.chain!.rpcUrl, '--program-id', file.chain!.programId, '--json']
    const show = await runCli(['committee', 'show', ...chainFlags])
    expect(show.code, show.stderr).toBe(0)
    const committee = JSON.parse(show.stdout)
    expect(committee.members.sort()).toEqual(file.daemons.filter(d => d.role === 'oracle').map(d => d.solanaAddress).sort())
    expect(committee.threshold).toBe('2 of 3')
    const status = await runCli(['stake', 'status', '--data-dir', node.dataDir, ...chainFlags])
    expect(status.code, status.stderr).toBe(0)
    expect(JSON.parse(status.stdout)).toMatchObject({ registered: true, status: 'Active', stake: String(BigInt(preset.settlement.minStake) * 10n / 1_000_000n) })
    // the operator key (the daemon's identity file) cannot unbond: the program wants the owner
    const byOperator = await runCli(['stake', 'unbond', '--data-dir', node.dataDir, '--owner', join(node.dataDir, 'identity.json'), '--amount', '1', ...chainFlags])
    expect(byOperator.code).toBe(1)
    expect(byOperator.stderr).toMatch(/ERR_TRANSACTION_FAILED/)
    const owner = join(net.dir, 'keys', 'owner-node-1.json')
    const unbonded = await runCli(['stake', 'unbond', '--data-dir', node.dataDir, '--owner', owner, '--amount', '1.5', ...chainFlags])
    expect(unbonded.code, unbonded.stderr).toBe(0)
    expect(JSON.parse(unbonded.stdout)).toMatchObject({ unbonding: '1.5' })
    // the unbonding delay has not passed
    const early = await runCli(['stake', 'withdraw', '--data-dir', node.dataDir, '--owner', owner, ...chainFlags])
    expect(early.code).toBe(1)
    expect(early.stderr).toMatch(/ERR_TRANSACTION_FAILED/)
    const bad = await runCli(['stake', 'add', '--data-dir', node.dataDir, '--owner', owner, '--amount', '1.1234567', ...chainFlags])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/at most 6 decimals/)
  })

  it('a node outside the genesis is admitted to liveness once it is registered and staked on chain', async () => {
    const outsiderDir = join(dir, 'outsider')
    DataDir.init(outsiderDir, 'local')
    outsider = await spawnDaemon(outsiderDir, ['--genesis-file', file.genesisFile, '--role', 'node', '--specialization', 'task-a', '--log-level', 'warn',
      '--solana-rpc', file.chain!.rpcUrl, '--program-id', file.chain!.programId, '--bootstrap', byName('oracle-1').multiaddrs[0]!])
    const oracle = net.client(byName('oracle-2'))
    const listed = async (): Promise<boolean> => (await oracle.call<{ nodes: Array<{ peerId: string }> }>('bitflow_liveness')).nodes.some(n => n.peerId === outsider!.runtime.peerId)
    // its heartbeats reach the oracles but are ignored: not admitted
    await eventually('the outsider to reach the mesh', async () => (await outsider!.client.peers()).length >= 3 ? true : undefined)
    expect(await listed()).toBe(false)

    const keys = join(net.dir, 'keys')
    const connection = new Connection(file.chain!.rpcUrl, 'confirmed')
    const payer = loadOrCreateKeypair(join(keys, 'payer.json'))
    const mintAuthority = loadOrCreateKeypair(join(keys, 'mint-authority.json'))
    const owner = loadOrCreateKeypair(join(dir, 'outsider-owner.json'))
    const mint = new PublicKey(file.chain!.stakeMint)
    const stake = BigInt(preset.settlement.minStake)
    const [funded] = await fundOwners(connection, { payer, mint, mintAuthority, owners: [{ owner: owner.publicKey, lamports: 1e9, tokens: stake }] })
    const operator = operatorKeypair(outsiderDir)
    await sendAndConfirm(connection, [registerNode({
      programId: new PublicKey(file.chain!.programId), config: new PublicKey(file.chain!.config), owner: owner.publicKey, operator: operator.publicKey,
      ownerToken: funded!.tokenAccount, stakeMint: mint, amount: stake, capacity: 1, specializations: [taskKey('task-a')]
    })], payer, [owner, operator])
    await eventually('the staked outsider to be admitted', async () => (await listed()) ? true : undefined, 30_000)
  })
})
