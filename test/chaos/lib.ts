/**
 * Shared parts of the chaos suite (`npm run test:chaos`): one test net per file with the local chain,
 * the demo model, and the checks every scenario ends with — every execution reached the right
 * terminal state, the token books balance on chain, and every daemon still answers JSON-RPC.
 */
import { expect } from 'vitest'
import { join } from 'node:path'
import { Connection, PublicKey } from '@solana/web3.js'
import { Testnet, type TestnetFile, type TestnetDaemon, type UpOptions } from '../../scripts/lib/testnet.js'
import { buildDemoModel, compareWithReference, demoTaskpackCid, prepareDemo, type PreparedDemo } from '../../scripts/lib/demo-model.js'
import { decodeExecution, executionAddress, escrowAddress } from '../../programs/client/index.js'
import { TOKEN_PROGRAM_ID, decodeTokenAccount } from '../../programs/chain/spl.js'
import { executionKey } from '../../protocols/execution/ids.js'
import type { BitflowClient } from '../../daemon/rpc/client.js'
import { cleanup, eventually, tempDir } from '../helpers/daemon.js'

export interface Status {
  overallStatus: string
  reason: string | null
  outputUris: Record<string, string | null>
  taskStatuses: Array<{ taskId: string, task: number, status: string, attempt: number | null, assignedNode: string | null, blacklist: string[], failures: Array<{ attempt: number, node: string, reason: string }> }>
}

export class ChaosNet {
  readonly dir: string
  readonly net: Testnet
  file!: TestnetFile
  demo!: PreparedDemo
  requester!: BitflowClient
  #supply = 0n

  constructor (name: string) {
    this.dir = tempDir(`chaos-${name}`)
    this.net = new Testnet(join(this.dir, 'net'))
  }

  byName (name: string): TestnetDaemon { return this.net.load()!.daemons.find(d => d.name === name)! }
  client (name: string): BitflowClient { return this.net.client(this.byName(name)) }
  connection (): Connection { return new Connection(this.file.chain!.rpcUrl, 'confirmed') }

  async up (over: Partial<UpOptions> = {}): Promise<void> {
    const model = buildDemoModel(await demoTaskpackCid())
    this.file = await this.net.up({ oracles: 4, nodes: 3, validators: 1, logLevel: 'info', specializationsFor: () => model.taskIds, ...over })
    this.requester = this.client('oracle-1')
    this.demo = await prepareDemo(this.requester)
    this.#supply = await this.#tokenTotal()
  }

  async down (): Promise<void> {
    await this.net.down().catch(() => {})
    cleanup([...(this.net.load()?.daemons.map(d => d.pid) ?? []), ...(this.file?.chain !== undefined ? [this.file.chain.pid] : [])],
      process.env.BITFLOW_KEEP_TEST_DIRS === '1' ? [] : [this.dir])
  }

  async request (executionId: string, client = this.requester): Promise<void> {
    await client.call('bitflow_requestExecution', [{ modelId: this.demo.modelId, inputs: this.demo.inputs, maxFee: '100000', executionId }])
  }

  async status (executionId: string, client = this.requester): Promise<Status> {
    return await client.call<Status>('bitflow_getExecutionStatus', [executionId])
  }

  async finished (executionId: string, timeoutMs: number, client = this.requester): Promise<Status> {
    return await eventually(`execution ${executionId} to finish`, async () => {
      const s = await this.status(executionId, client)
      return ['completed', 'failed', 'cancelled'].includes(s.overallStatus) ? s : undefined
    }, timeoutMs)
  }

  /** The execution completed and its output equals the reference. */
  async expectCorrect (executionId: string, timeoutMs = 180_000): Promise<Status> {
    const s = await this.finished(executionId, timeoutMs)
    expect(s.overallStatus, `${executionId}: ${JSON.stringify(s.reason)}`).toBe('completed')
    const got = await this.requester.call<{ safetensorsBase64: string }>('bitflow_getTensor', [s.outputUris.y])
    expect(compareWithReference('y', new Uint8Array(Buffer.from(got.safetensorsBase64, 'base64')), this.demo.reference).match, `${executionId} output`).toBe(true)
    return s
  }

  /** Every stake-mint token on chain, summed over every token account of the mint. */
  async #tokenTotal (): Promise<bigint> {
    const mint = new PublicKey(this.file.chain!.stakeMint)
    const accounts = await this.connection().getProgramAccounts(TOKEN_PROGRAM_ID, { filters: [{ dataSize: 165 }, { memcmp: { offset: 0, bytes: mint.toBase58() } }] })
    let total = 0n
    for (const a of accounts) total += decodeTokenAccount(a.account.data)?.amount ?? 0n
    return total
  }

  /**
   * The books balance: no stake-mint token was created or lost since the net came up, and each
   * execution's escrow vault holds exactly the balance its account records.
   */
  async expectBooksBalance (executionIds: string[]): Promise<void> {
    expect(await this.#tokenTotal(), 'stake-mint tokens on chain').toBe(this.#supply)
    const connection = this.connection()
    const programId = new PublicKey(this.file.chain!.programId)
    const config = new PublicKey(this.file.chain!.config)
    for (const id of executionIds) {
      const execution = executionAddress(programId, config, executionKey(id))[0]
      const info = await connection.getAccountInfo(execution, 'confirmed')
      expect(info, `execution account of ${id}`).not.toBeNull()
      const e = decodeExecution(info!.data)
      const vault = await connection.getAccountInfo(escrowAddress(programId, execution)[0], 'confirmed')
      expect(decodeTokenAccount(vault!.data)!.amount, `escrow of ${id}`).toBe(e.balance)
      expect(e.balance <= e.deposited).toBe(true)
    }
  }

  /** Every daemon of the net answers JSON-RPC. */
  async expectAllAnswer (): Promise<void> {
    for (const d of this.net.load()!.daemons) {
      const info = await this.net.client(d).call<{ peerId: string }>('bitflow_nodeInfo', [])
      expect(info.peerId, d.name).toBe(d.peerId)
    }
  }
}
