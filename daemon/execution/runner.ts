/**
 * The node side of execution (issue 7, step 3) — HALF-DONE: the pipeline is here and type-checks,
 * but it is NOT wired into ExecutionService yet and has not run end to end (the demo taskpacks that
 * read/write model tensors do not exist yet; see the session report).
 *
 * On an assignment notice addressed to this node: check the assignment on chain (the notice is only
 * a hint), fetch the taskpack DAG and the input tensors through the content service, authenticate
 * the taskpack, run it in the sandbox (SandboxRunner with an owner distinct per daemon), store the
 * outputs as tensors and publish a signed task-completion (or a task-failure with the reason).
 *
 * Tensor convention (to be confirmed with the demo taskpacks): input `name` is staged as
 * `/in/<name>.safetensors`; the task writes `/out/<name>.safetensors` for each output name.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PublicKey } from '@solana/web3.js'
import { CID } from 'multiformats/cid'
import { assignmentAddress, decodeAssignment, executionAddress, nodeAddress } from '../../programs/client/index.js'
import { collectTaskpack } from '../../protocols/taskpack/pack.js'
import {
  encodeExecutionMessage, outputRoot, COMPLETION_KIND, FAILURE_KIND, type AssignmentNoticeBody
} from '../../protocols/execution/messages.js'
import { executionKey, taskKey } from '../../protocols/execution/ids.js'
import { authenticateTaskpack, defaultAuthPolicy, formatFinding, sandboxCapabilities } from '../../sandbox/authenticate.js'
import { SandboxRunner } from '../../sandbox/runner.js'
import { stageRun } from '../../sandbox/stage.js'
import type { ServiceContext } from '../services/service.js'
import type { SettlementService } from '../services/settlement.js'
import type { ContentService } from '../content/service.js'
import type { TrackedExecution } from '../services/execution.js'

export interface NodeRunnerDeps {
  ctx: ServiceContext
  /** the execution as this daemon tracks it (for the model's output names), if known */
  execution: (executionId: string) => TrackedExecution | undefined
}

/** Writes a UnixFS DAG (a taskpack directory) from the local store into `dir`. */
async function exportDag (content: ContentService, cid: CID, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 })
  for await (const entry of content.store.unixfs.ls(cid)) {
    if (entry.name === '' || entry.name === '.' || entry.name === '..' || entry.name.includes('/') || entry.name.includes('\0')) throw new Error(`taskpack entry name '${entry.name}' is not a plain name`)
    const target = join(dir, entry.name)
    const stat = await content.store.unixfs.stat(entry.cid)
    if (stat.type === 'directory') await exportDag(content, entry.cid, target)
    else {
      const chunks: Uint8Array[] = []
      for await (const c of content.store.unixfs.cat(entry.cid)) chunks.push(c)
      await writeFile(target, Buffer.concat(chunks), { mode: 0o644 })
    }
  }
}

export class NodeTaskRunner {
  readonly #deps: NodeRunnerDeps
  readonly #runner: SandboxRunner
  readonly #running = new Set<string>()
  #started = false

  constructor (deps: NodeRunnerDeps) {
    this.#deps = deps
    // one owner per daemon, so daemons sharing an engine never touch each other's containers
    this.#runner = new SandboxRunner({ config: { owner: `bitflowd-${deps.ctx.identity.peerId.toString().slice(-12).toLowerCase()}`, slots: 1 }, logger: deps.ctx.log })
  }

  async stop (): Promise<void> {
    if (this.#started) await this.#runner.stop()
  }

  /** Handles an assignment notice; runs the task when it is addressed to this node and on chain. */
  async onNotice (notice: AssignmentNoticeBody): Promise<void> {
    const { ctx } = this.#deps
    if (notice.node !== ctx.identity.peerId.toString()) return
    const key = `${notice.executionId}|${notice.taskId}|${notice.attempt}`
    if (this.#running.has(key)) return
    this.#running.add(key)
    try {
      if (!await this.#onChain(notice)) {
        ctx.log.warn({ executionId: notice.executionId, taskId: notice.taskId, attempt: notice.attempt }, 'assignment notice not backed by the chain: ignored')
        return
      }
      const startedAt = Date.now()
      try {
        const outputs = await this.#run(notice)
        await this.#publish({ type: COMPLETION_KIND, body: { v: 1, node: notice.node, executionId: notice.executionId, taskId: notice.taskId, attempt: notice.attempt, outputs, outputRoot: outputRoot(outputs), startedAtMs: startedAt, completedAtMs: Date.now(), timestampMs: Date.now() } })
      } catch (err) {
        const reason = (err as Error).message.slice(0, 1000) || 'the run failed'
        ctx.log.warn({ err, executionId: notice.executionId, taskId: notice.taskId }, 'task run failed')
        await this.#publish({ type: FAILURE_KIND, body: { v: 1, node: notice.node, executionId: notice.executionId, taskId: notice.taskId, attempt: notice.attempt, reason, timestampMs: Date.now() } })
      }
    } finally {
      this.#running.delete(key)
    }
  }

  async #publish (msg: Parameters<typeof encodeExecutionMessage>[0]): Promise<void> {
    const { ctx } = this.#deps
    await ctx.gossip.publish('execution', encodeExecutionMessage(msg, ctx.genesisHash, b => ctx.identity.sign(b)))
  }

  /** The assignment account of (execution, task, attempt) exists and names this node's account. */
  async #onChain (n: AssignmentNoticeBody): Promise<boolean> {
    const { ctx } = this.#deps
    const settlement = ctx.services.get<SettlementService>('settlement')
    const connection = settlement.connection
    const config = settlement.configAddress
    if (connection === undefined || config === undefined || ctx.options.programId === undefined) return false
    const programId = new PublicKey(ctx.options.programId)
    const execution = executionAddress(programId, config, executionKey(n.executionId))[0]
    const info = await connection.getAccountInfo(assignmentAddress(programId, execution, taskKey(n.taskId), n.attempt)[0], 'confirmed')
    if (info === null || !info.owner.equals(programId)) return false
    const a = decodeAssignment(info.data)
    return a.node.equals(nodeAddress(programId, config, new PublicKey(ctx.identity.publicKey))[0])
  }

  /** Fetch, authenticate, stage, run, store: returns the output URIs by tensor name. */
  async #run (n: AssignmentNoticeBody): Promise<Record<string, string>> {
    const { ctx } = this.#deps
    const content = ctx.services.get<ContentService>('content')
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(Math.max(1000, n.deadlineMs - Date.now()))])
    if (!this.#started) { await this.#runner.start({ signal }); this.#started = true }
    const work = await mkdtemp(join(tmpdir(), 'bitflow-node-'))
    try {
      // taskpack
      const packCid = CID.parse(n.taskpack)
      await content.transfer.fetch(packCid, { signal })
      const packDir = join(work, 'pack')
      await exportDag(content, packCid, packDir)
      const report = await authenticateTaskpack(packDir, defaultAuthPolicy({
        capabilities: sandboxCapabilities(this.#runner.config),
        allowList: ctx.options.publishers?.allow ?? [],
        skipDryRun: 'TODO: dry run on sample inputs once the node keeps an authenticated-pack cache'
      }), { signal })
      if (!report.ok || report.taskpack === undefined) {
        const f = report.findings.find(x => x.severity === 'refuse') ?? report.findings[0]
        throw new Error(`taskpack ${n.taskpack} refused: ${f !== undefined ? formatFinding(f) : 'not a taskpack'}`)
      }
      const collected = await collectTaskpack(packDir)
      // inputs
      const inputs: Record<string, { file: string, bytes: Uint8Array }> = {}
      for (const [name, uri] of Object.entries(n.inputs)) {
        const file = join(work, `in-${name}.safetensors`)
        await content.getTensor(uri, { out: file, signal })
        inputs[name] = { file: `${name}.safetensors`, bytes: new Uint8Array(await readFile(file)) }
      }
      const spec = report.taskpack.parsed.manifest.spec
      const staged = await stageRun(collected, { inputs, seed: 0, taskId: n.taskId.slice(0, 128), ...(spec.entrypoint !== undefined ? { entrypoint: spec.entrypoint } : {}) }, { parent: work })
      try {
        const job = staged.sandboxJob(`${n.executionId}-${n.attempt}`.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 128), {
          memoryBytes: report.taskpack.parsed.resources.memoryBytes,
          gpu: report.taskpack.parsed.resources.gpu,
          timeoutMs: Math.max(1000, n.deadlineMs - Date.now() - 500)
        })
        const result = await this.#runner.run(job, { signal })
        if (result.status !== 'succeeded') throw new Error(`sandbox run ${result.status} (exit ${result.exitCode}): ${result.stderr.toString('utf8').slice(-500)}`)
        // outputs: every output the model reads from this task
        const tracked = this.#deps.execution(n.executionId)
        const task = tracked?.model.tasks.find(t => `${tracked.state.modelId}/${t.id}` === n.taskId)
        const names = task?.outputs.map(o => o.name) ?? result.outputs.map(o => o.path.replace(/\.safetensors$/, ''))
        const outputs: Record<string, string> = {}
        for (const name of names) {
          const put = await content.putTensor({ path: join(staged.outputDir, `${name}.safetensors`) }, signal)
          outputs[name] = put.uri
        }
        return outputs
      } finally {
        await staged.wipe().catch(() => {})
      }
    } finally {
      await rm(work, { recursive: true, force: true }).catch(() => {})
    }
  }
}
