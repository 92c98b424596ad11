/**
 * The node side of execution (issue 7, step 3). When this daemon is assigned a task (the assignment
 * is on chain; gossip only makes it learn sooner), it fetches the taskpack DAG and the input tensors
 * (and the task's weights) through the content service, authenticates the taskpack, runs it in the
 * sandbox, stores the outputs as tensors, and settles the outcome on chain in the Proof-of-Sampling
 * order: commit H(outputRoot || salt) first (serving no outputs), decide sampling from the SlotHashes
 * entry K slots later, then — not sampled — reveal, collect the payment and publish the signed
 * completion with the output URIs. A failed run is reported with its reason (the chain expires the
 * attempt at its deadline and the committee reassigns it).
 *
 * Staging convention: input tensor `name` is staged as `<name>.safetensors`; the task's weights
 * (model task `weightUri`) as input `weights`; the model task's `params` are the job params; the task
 * writes `<output>.safetensors` for each output name.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { PublicKey, type Connection } from '@solana/web3.js'
import { Key } from 'interface-datastore'
import { CID } from 'multiformats/cid'
import {
  assignmentAddress, commit, decideSampling, decodeAssignment, decodeNode, decodeTaskState, executionAddress, nodeAddress, pay, reveal,
  taskStateAddress, AssignmentKind, AssignmentStatus, NO_ATTEMPT, Sampling, TaskStatus, Verdict
} from '../../programs/client/index.js'
import { compareOutputs, type PrecisionClass } from '../../protocols/execution/compare.js'
import { createTensor, decodeSafetensors, encodeSafetensors, tensorValues, type Tensor } from '../../protocols/tensor/safetensors.js'
import { associatedTokenAddress, createAssociatedTokenAccountIdempotent } from '../../programs/chain/spl.js'
import { collectTaskpack } from '../../protocols/taskpack/pack.js'
import { outputRoot, type CompletionBody, type FailureBody } from '../../protocols/execution/messages.js'
import { executionKey, taskKey } from '../../protocols/execution/ids.js'
import { DATASET_URI_PREFIX } from '../../protocols/content/dataset.js'
import { authenticateTaskpack, defaultAuthPolicy, formatFinding, sandboxCapabilities, type PublisherRecord } from '../../sandbox/authenticate.js'
import { parseManifest, MANIFEST_FILE } from '../../protocols/taskpack/manifest.js'
import { SandboxRunner } from '../../sandbox/runner.js'
import { stageRun, type StageJob } from '../../sandbox/stage.js'
import type { ServiceContext } from '../services/service.js'
import type { SettlementService } from '../services/settlement.js'
import type { ContentService } from '../content/service.js'
import type { HeartbeatService } from '../services/liveness.js'
import { operatorKeypair, sendTransaction } from './chain.js'

/** what a node needs to run one assigned attempt */
export interface NodeAssignment {
  executionId: string
  taskId: string
  attempt: number
  taskpack: string
  /** input name -> tensor URI */
  inputs: Record<string, string>
  weightUri?: string
  params?: Record<string, unknown>
  /** output names the task must write */
  outputs: string[]
  /** unix ms; the commitment must be on chain before it */
  deadlineMs: number
}

export interface NodeRunnerDeps {
  ctx: ServiceContext
  publishCompletion: (body: CompletionBody) => Promise<void>
  publishFailure: (body: FailureBody) => Promise<void>
  /** the signed completion (outputs) of an attempt, once its node published it */
  completionOf: (executionId: string, taskId: string, attempt: number) => CompletionBody | undefined
}

/** a verification attempt: re-run `verifies`' task and judge the asserter's outputs */
export interface VerificationAssignment extends NodeAssignment {
  verifies: number
}

/** time kept before the deadline for the commitment to land on chain */
const COMMIT_MARGIN_MS = 1500
const SLOT_WAIT_MS = 50
const CHAIN_POLL_MS = 250
/** results committed but maybe not revealed yet, by attempt */
const RESULTS_PREFIX = '/bitflow/node-results'
/** how long a sampled asserter waits for its verifier, and a verifier for the asserter's reveal */
const COUNTERPART_WAIT_MS = 5 * 60_000

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

/** H(outputRoot || salt), as the program opens it */
export function commitmentOf (root: Uint8Array, salt: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(root).update(salt).digest())
}

export class NodeTaskRunner {
  readonly #deps: NodeRunnerDeps
  readonly #runner: SandboxRunner
  readonly #running = new Set<string>()
  /** precision class of each taskpack run, for verification */
  readonly #precision = new Map<string, PrecisionClass>()
  #started = false
  #stopped = false
  /** attempts between assignment and settlement on this node, advertised as busy task slots */
  #busy = 0

  constructor (deps: NodeRunnerDeps) {
    this.#deps = deps
    // one owner per daemon, so daemons sharing an engine never touch each other's containers
    this.#runner = new SandboxRunner({ config: { owner: `bitflowd-${deps.ctx.identity.peerId.toString().slice(-12).toLowerCase()}`, slots: Math.max(1, deps.ctx.options.node?.taskSlots ?? 1) }, logger: deps.ctx.log })
  }

  async stop (): Promise<void> {
    this.#stopped = true
    if (this.#started) await this.#runner.stop()
  }

  get #settlement (): SettlementService { return this.#deps.ctx.services.get<SettlementService>('settlement') }

  /**
   * After a restart: finishes every attempt this node committed but did not reveal (the salt and the
   * outputs are in its datastore), so a crash between commit and reveal does not strand the task.
   */
  async resume (): Promise<number> {
    const { ctx } = this.#deps
    let resumed = 0
    for await (const { key, value } of ctx.datastore.query({ prefix: RESULTS_PREFIX })) {
      let r: { executionId: string, taskId: string, attempt: number, outputs: Record<string, string>, salt: string }
      try { r = JSON.parse(new TextDecoder().decode(value)) } catch { continue }
      const log = ctx.log.child({ executionId: r.executionId, taskId: r.taskId, attempt: r.attempt })
      try {
        const { connection } = this.#chain()
        const info = await connection.getAccountInfo(this.#addresses(r).assignment, 'confirmed')
        const status = info !== null ? decodeAssignment(info.data).status : undefined
        if (status !== AssignmentStatus.Committed) {
          if (status !== AssignmentStatus.Assigned) await ctx.datastore.delete(key) // revealed, expired or gone: nothing left to do
          continue
        }
        resumed++
        log.info('resuming an attempt committed before a restart')
        void this.#afterCommit(r, Buffer.from(outputRoot(r.outputs), 'hex'), Buffer.from(r.salt, 'hex'), log).then(async revealed => {
          if (revealed === false) return
          await this.#deps.publishCompletion({
            v: 1, node: ctx.identity.peerId.toString(), executionId: r.executionId, taskId: r.taskId, attempt: r.attempt,
            outputs: r.outputs, outputRoot: outputRoot(r.outputs), startedAtMs: Date.now(), completedAtMs: Date.now(), timestampMs: Date.now()
          })
          if (revealed === 'sampled') await this.#collectWhenVerified(r, r.attempt, log)
        }).catch(err => { log.warn({ err }, 'resuming the attempt failed') })
      } catch (err) {
        log.debug({ err }, 'checking a kept result failed')
      }
    }
    return resumed
  }

  /** Runs an attempt assigned to this node (once per attempt); never throws. */
  async run (a: NodeAssignment): Promise<void> {
    const { ctx } = this.#deps
    const key = `${a.executionId}|${a.taskId}|${a.attempt}`
    if (this.#running.has(key) || this.#stopped) return
    this.#running.add(key)
    this.#setBusy(+1)
    const log = ctx.log.child({ executionId: a.executionId, taskId: a.taskId, attempt: a.attempt })
    try {
      if (!await this.#assignedOnChain(a)) {
        log.warn('assignment not found on chain for this node (or already settled): not running it')
        return
      }
      const startedAt = Date.now()
      let outputs: Record<string, string>
      try {
        if (ctx.options.byzantine === 'no-show') { log.warn('byzantine no-show: ignoring the assignment'); return }
        outputs = await this.#execute(a, 'primary')
      } catch (err) {
        const reason = (err as Error).message.slice(0, 1000) || 'the run failed'
        log.warn({ err }, 'task run failed')
        await this.#deps.publishFailure({ v: 1, node: ctx.identity.peerId.toString(), executionId: a.executionId, taskId: a.taskId, attempt: a.attempt, reason, timestampMs: Date.now() })
          .catch(e => { log.warn({ err: e }, 'publishing the failure failed') })
        return
      }
      if (ctx.options.byzantine === 'wrong-output') outputs = await this.#corrupt(outputs, log)
      const completedAt = Date.now()
      const revealed = await this.#settle(a, outputs, log)
      if (!revealed) return
      await this.#deps.publishCompletion({
        v: 1, node: ctx.identity.peerId.toString(), executionId: a.executionId, taskId: a.taskId, attempt: a.attempt,
        outputs, outputRoot: outputRoot(outputs), startedAtMs: startedAt, completedAtMs: completedAt, timestampMs: Date.now()
      })
      log.info({ ms: Date.now() - startedAt, sampled: revealed === 'sampled' }, 'task completed, revealed and announced')
      if (revealed === 'sampled') await this.#collectWhenVerified(a, a.attempt, log)
    } catch (err) {
      log.warn({ err }, 'settling the task failed')
    } finally {
      this.#running.delete(key)
      this.#setBusy(-1)
    }
  }

  /** Heartbeats advertise the free task slots, so the committee stops drawing a full node. */
  #setBusy (delta: number): void {
    this.#busy = Math.max(0, this.#busy + delta)
    this.#deps.ctx.services.find<HeartbeatService>('heartbeat')?.setBusySlots(this.#busy)
  }

  #chain (): { connection: Connection, programId: PublicKey, config: PublicKey } {
    const connection = this.#settlement.connection
    const config = this.#settlement.configAddress
    if (connection === undefined || config === undefined || this.#deps.ctx.options.programId === undefined) throw new Error('settlement is not available')
    return { connection, config, programId: new PublicKey(this.#deps.ctx.options.programId) }
  }

  #addresses (a: Pick<NodeAssignment, 'executionId' | 'taskId' | 'attempt'>): { execution: PublicKey, assignment: PublicKey, node: PublicKey } {
    const { programId, config } = this.#chain()
    const execution = executionAddress(programId, config, executionKey(a.executionId))[0]
    return {
      execution,
      assignment: assignmentAddress(programId, execution, taskKey(a.taskId), a.attempt)[0],
      node: nodeAddress(programId, config, new PublicKey(this.#deps.ctx.identity.publicKey))[0]
    }
  }

  /** The assignment account exists, names this node, and awaits its commitment. */
  async #assignedOnChain (a: NodeAssignment): Promise<boolean> {
    const { connection, programId } = this.#chain()
    const { assignment, node } = this.#addresses(a)
    const info = await connection.getAccountInfo(assignment, 'confirmed')
    if (info === null || !info.owner.equals(programId)) return false
    const as = decodeAssignment(info.data)
    return as.node.equals(node) && as.status === AssignmentStatus.Assigned
  }

  /**
   * Commit, wait for the sampling decision, and reveal when not sampled (then collect the payment).
   * Returns whether the outputs were revealed.
   */
  async #settle (a: NodeAssignment, outputs: Record<string, string>, log: ServiceContext['log']): Promise<false | 'skipped' | 'sampled'> {
    const { ctx } = this.#deps
    const { connection, programId, config } = this.#chain()
    const { execution, assignment, node } = this.#addresses(a)
    const operator = operatorKeypair(ctx.identity)
    const taskId = taskKey(a.taskId)
    const root = Buffer.from(outputRoot(outputs), 'hex')
    const salt = randomBytes(32)
    // kept so the reveal survives a restart of this daemon
    await ctx.datastore.put(new Key(`${RESULTS_PREFIX}/${createHash('sha256').update(`${a.executionId}|${a.taskId}|${a.attempt}`).digest('hex')}`),
      new TextEncoder().encode(JSON.stringify({ executionId: a.executionId, taskId: a.taskId, attempt: a.attempt, outputs, salt: salt.toString('hex') })))
    const outcome = { programId, operator: operator.publicKey, node, execution, taskId, assignment }
    await sendTransaction(connection, [commit({ ...outcome, commitment: commitmentOf(root, salt) })], operator)
    log.debug('commitment on chain')
    return await this.#afterCommit(a, root, salt, log)
  }

  /** From a commitment on chain: the sampling decision, then the reveal (see #settle). */
  async #afterCommit (a: Pick<NodeAssignment, 'executionId' | 'taskId' | 'attempt'>, root: Buffer, salt: Buffer, log: ServiceContext['log']): Promise<false | 'skipped' | 'sampled'> {
    const { ctx } = this.#deps
    const { connection, programId, config } = this.#chain()
    const { execution, assignment, node } = this.#addresses(a)
    const operator = operatorKeypair(ctx.identity)
    const taskId = taskKey(a.taskId)
    const outcome = { programId, operator: operator.publicKey, node, execution, taskId, assignment }
    const committed = decodeAssignment((await connection.getAccountInfo(assignment, 'confirmed'))!.data)
    const params = this.#settlement.config?.params
    if (params === undefined) throw new Error('the settlement config is not loaded')
    const taskState = taskStateAddress(programId, execution, taskId)[0]
    // an unverifiable attempt is never sampled: it reveals at once
    if (committed.kind !== AssignmentKind.Unverifiable) {
      const decisionSlot = committed.commitSlot + BigInt(params.seedDelaySlots)
      const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(120_000)])
      while (BigInt(await connection.getSlot('confirmed')) <= decisionSlot) await sleep(SLOT_WAIT_MS, undefined, { signal })
    }
    let state = decodeTaskState((await connection.getAccountInfo(taskState, 'confirmed'))!.data)
    if (state.sampling === Sampling.Undecided) {
      await sendTransaction(connection, [decideSampling({ programId, config, execution, taskId, assignment })], operator)
        .catch(err => { log.debug({ err }, 'deciding sampling failed (someone else may have)') })
      state = decodeTaskState((await connection.getAccountInfo(taskState, 'confirmed'))!.data)
    }
    if (state.sampling === Sampling.Skipped || state.sampling === Sampling.Unverifiable) {
      await sendTransaction(connection, [reveal({ ...outcome, outputRoot: root, salt })], operator)
      await this.#collect(a, a.attempt, log)
      return 'skipped'
    }
    if (state.sampling !== Sampling.Sampled) return false
    log.info('sampled for verification: the reveal waits for the verifier\'s commitment')
    // the verifier commits first, so it cannot copy; then both reveal
    const verifier = await this.#poll(async () => {
      const t = decodeTaskState((await connection.getAccountInfo(taskState, 'confirmed'))!.data)
      if (t.verifierAttempt === NO_ATTEMPT) return undefined
      const address = assignmentAddress(programId, execution, taskId, t.verifierAttempt)[0]
      const info = await connection.getAccountInfo(address, 'confirmed')
      const v = info !== null ? decodeAssignment(info.data) : undefined
      return v !== undefined && (v.status === AssignmentStatus.Committed || v.status === AssignmentStatus.Revealed) ? address : undefined
    }, 'the verifier\'s commitment')
    await sendTransaction(connection, [reveal({ ...outcome, outputRoot: root, salt, other: verifier })], operator)
    return 'sampled'
  }

  /** Polls `check` until it gives a value (bounded; aborted with the daemon). */
  async #poll<T> (check: () => Promise<T | undefined>, what: string): Promise<T> {
    const signal = AbortSignal.any([this.#deps.ctx.signal, AbortSignal.timeout(COUNTERPART_WAIT_MS)])
    for (;;) {
      const v = await check().catch(() => undefined)
      if (v !== undefined) return v
      if (signal.aborted) throw new Error(`gave up waiting for ${what}`)
      await sleep(CHAIN_POLL_MS, undefined, { signal }).catch(() => {})
    }
  }

  /** After a sampled attempt: collect the payment once verification settled it as VERIFIED. */
  async #collectWhenVerified (a: Pick<NodeAssignment, 'executionId' | 'taskId' | 'attempt'>, attempt: number, log: ServiceContext['log']): Promise<void> {
    const { connection, programId, config: _config } = this.#chain()
    const { execution } = this.#addresses(a)
    const taskState = taskStateAddress(programId, execution, taskKey(a.taskId))[0]
    const status = await this.#poll(async () => {
      const t = decodeTaskState((await connection.getAccountInfo(taskState, 'confirmed'))!.data)
      return t.status === TaskStatus.Verified || t.status === TaskStatus.VerificationFailed ? t.status : undefined
    }, 'the verification result')
    if (status === TaskStatus.Verified) await this.#collect(a, attempt, log)
    else log.warn('verification disagreed with this node\'s result')
  }

  /** byzantine wrong-output: perturbs every float output (local networks only; for demos of slashing). */
  async #corrupt (outputs: Record<string, string>, log: ServiceContext['log']): Promise<Record<string, string>> {
    const content = this.#deps.ctx.services.get<ContentService>('content')
    const out: Record<string, string> = {}
    for (const [name, uri] of Object.entries(outputs)) {
      const got = await content.getTensor(uri, { inline: true })
      const { tensors } = decodeSafetensors(new Uint8Array(Buffer.from(got.safetensorsBase64 ?? '', 'base64')), { copy: true })
      const changed: Record<string, Tensor> = {}
      for (const [k, t] of tensors) {
        const v = tensorValues(t)
        changed[k] = v instanceof Float32Array || v instanceof Float64Array ? createTensor(t.dtype, t.shape, v.map(x => x + 0.5)) : t
      }
      out[name] = (await content.putTensor({ safetensorsBase64: Buffer.from(encodeSafetensors(changed)).toString('base64') })).uri
    }
    log.warn({ outputs: out }, 'byzantine wrong-output: reporting perturbed outputs')
    return out
  }

  /**
   * A verification: re-run the task, commit to this result before the asserter reveals, then judge
   * the asserter's revealed outputs with the tolerant comparison and reveal with the verdict.
   */
  async verify (a: VerificationAssignment): Promise<void> {
    const { ctx } = this.#deps
    const key = `${a.executionId}|${a.taskId}|${a.attempt}`
    if (this.#running.has(key) || this.#stopped) return
    this.#running.add(key)
    this.#setBusy(+1)
    const log = ctx.log.child({ executionId: a.executionId, taskId: a.taskId, attempt: a.attempt, verifies: a.verifies })
    try {
      if (!await this.#assignedOnChain(a)) return
      const { connection, programId } = this.#chain()
      const { execution, assignment, node } = this.#addresses(a)
      const primary = assignmentAddress(programId, execution, taskKey(a.taskId), a.verifies)[0]
      const operator = operatorKeypair(ctx.identity)
      const lazy = ctx.options.byzantine === 'lazy-copy'
      // a lazy validator skips the work and commits to nothing it computed
      const mine = lazy ? {} : await this.#execute(a, 'verification')
      const root = lazy ? randomBytes(32) : Buffer.from(outputRoot(mine), 'hex')
      const salt = randomBytes(32)
      const outcome = { programId, operator: operator.publicKey, node, execution, taskId: taskKey(a.taskId), assignment, other: primary }
      await sendTransaction(connection, [commit({ ...outcome, commitment: commitmentOf(root, salt) })], operator)
      log.debug('verifier commitment on chain')
      await this.#poll(async () => {
        const info = await connection.getAccountInfo(primary, 'confirmed')
        return info !== null && decodeAssignment(info.data).status === AssignmentStatus.Revealed ? true : undefined
      }, 'the asserter\'s reveal')
      const asserted = await this.#poll(async () => this.#deps.completionOf(a.executionId, a.taskId, a.verifies), 'the asserter\'s outputs')
      const revealedRoot = Buffer.from(decodeAssignment((await connection.getAccountInfo(primary, 'confirmed'))!.data).outputRoot).toString('hex')
      let verdict: Verdict
      let reason: string
      if (asserted.outputRoot !== revealedRoot || outputRoot(asserted.outputs) !== revealedRoot) {
        verdict = Verdict.Mismatch
        reason = 'the announced outputs are not the ones the asserter revealed'
      } else if (lazy) {
        verdict = Verdict.Match
        reason = 'lazy: copied the verdict without re-running'
      } else {
        const cmp = await this.#compare(mine, asserted.outputs, a)
        verdict = cmp.match ? Verdict.Match : Verdict.Mismatch
        reason = cmp.reason
      }
      await sendTransaction(connection, [reveal({ ...outcome, outputRoot: root, salt, verdict })], operator)
      log.info({ verdict: Verdict[verdict], reason }, 'verification revealed')
      if (!lazy) {
        await this.#deps.publishCompletion({
          v: 1, node: ctx.identity.peerId.toString(), executionId: a.executionId, taskId: a.taskId, attempt: a.attempt,
          outputs: mine, outputRoot: outputRoot(mine), startedAtMs: Date.now(), completedAtMs: Date.now(), timestampMs: Date.now()
        })
      }
      await this.#collect(a, a.attempt, log)
    } catch (err) {
      log.warn({ err }, 'verification failed')
    } finally {
      this.#running.delete(key)
      this.#setBusy(-1)
    }
  }

  /** Compares this node's outputs with the asserter's by the task's precision class. */
  async #compare (mine: Record<string, string>, theirs: Record<string, string>, a: NodeAssignment): Promise<{ match: boolean, reason: string }> {
    if (outputRoot(mine) === outputRoot(theirs)) return { match: true, reason: 'identical outputs' }
    const content = this.#deps.ctx.services.get<ContentService>('content')
    const load = async (uris: Record<string, string>): Promise<Record<string, Tensor>> => {
      const out: Record<string, Tensor> = {}
      for (const [name, uri] of Object.entries(uris)) {
        const got = await content.getTensor(uri, { inline: true })
        const { tensors } = decodeSafetensors(new Uint8Array(Buffer.from(got.safetensorsBase64 ?? '', 'base64')), { copy: true })
        for (const [k, t] of tensors) out[tensors.size === 1 ? name : `${name}/${k}`] = t
      }
      return out
    }
    const cmp = compareOutputs(await load(theirs), await load(mine), this.#precision.get(a.taskpack) ?? 'standard')
    return { match: cmp.match, reason: cmp.match ? 'within tolerance' : JSON.stringify(cmp).slice(0, 300) }
  }

  /** Sends the payment of a settled attempt to the node owner's token account (created if needed). */
  async #collect (a: Pick<NodeAssignment, 'executionId' | 'taskId' | 'attempt'>, attempt: number, log: ServiceContext['log']): Promise<void> {
    const { connection, programId, config } = this.#chain()
    const { execution, node } = this.#addresses(a)
    const assignment = assignmentAddress(programId, execution, taskKey(a.taskId), attempt)[0]
    const stakeMint = this.#settlement.config?.stakeMint
    const nodeInfo = await connection.getAccountInfo(node, 'confirmed')
    if (stakeMint === undefined || nodeInfo === null) return
    const owner = decodeNode(nodeInfo.data).owner
    const operator = operatorKeypair(this.#deps.ctx.identity)
    await sendTransaction(connection, [
      createAssociatedTokenAccountIdempotent({ payer: operator.publicKey, owner, mint: stakeMint }),
      pay({ programId, config, execution, taskId: taskKey(a.taskId), assignment, node, destination: associatedTokenAddress(owner, stakeMint) })
    ], operator).catch(err => { log.warn({ err }, 'collecting the payment failed') })
  }

  /**
   * Who published this pack: the registry record of the manifest's name@version whose CID is this
   * pack's (records are signature-checked before the registry keeps them).
   */
  async #publisherOf (packDir: string, cid: string, signal: AbortSignal): Promise<PublisherRecord | undefined> {
    let name: string, version: string
    try {
      const { manifest } = parseManifest(await readFile(join(packDir, MANIFEST_FILE), 'utf8'))
      name = manifest.metadata.name
      version = manifest.metadata.version
    } catch {
      return undefined // the manifest check reports it
    }
    const resolved = await this.#deps.ctx.services.get<ContentService>('content').registry.resolve(name, version, signal)
    const entry = resolved.publishers.find(e => e.cid === cid)
    return entry !== undefined ? { publisher: entry.publisher, verified: true } : undefined
  }

  /** Fetch, authenticate, stage, run, store: returns the output URIs by tensor name. */
  async #execute (a: NodeAssignment, kind: 'primary' | 'verification'): Promise<Record<string, string>> {
    const { ctx } = this.#deps
    const content = ctx.services.get<ContentService>('content')
    const budgetMs = a.deadlineMs - Date.now() - COMMIT_MARGIN_MS
    if (budgetMs < 500) throw new Error(`too little time left before the deadline (${budgetMs} ms)`)
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(budgetMs)])
    if (!this.#started) { await this.#runner.start({ signal }); this.#started = true }
    const work = await mkdtemp(join(tmpdir(), 'bitflow-node-'))
    try {
      const packCid = CID.parse(a.taskpack)
      await content.transfer.fetch(packCid, { signal })
      const packDir = join(work, 'pack')
      await exportDag(content, packCid, packDir)
      const publisher = await this.#publisherOf(packDir, a.taskpack, signal)
      let allowList = ctx.options.publishers?.allow ?? []
      if (allowList.length === 0 && ctx.preset.local && publisher !== undefined) {
        // a local test net has no curated publishers: any publisher whose signed record names this CID
        allowList = [publisher.publisher]
      }
      const report = await authenticateTaskpack(packDir, defaultAuthPolicy({
        capabilities: sandboxCapabilities(this.#runner.config),
        allowList,
        verifyPublisher: async cid => cid === a.taskpack ? publisher : undefined,
        // the dry run belongs to publishing and operator review; per assignment it would double the cost
        skipDryRun: 'not repeated per assignment'
      }), { signal })
      if (!report.ok || report.taskpack === undefined) {
        const f = report.findings.find(x => x.severity === 'refuse') ?? report.findings[0]
        throw new Error(`taskpack ${a.taskpack} refused: ${f !== undefined ? formatFinding(f) : 'not a taskpack'}`)
      }
      const collected = await collectTaskpack(packDir)
      const uris: Record<string, string> = { ...a.inputs, ...(a.weightUri !== undefined ? { weights: a.weightUri } : {}) }
      const inputs: StageJob['inputs'] = {}
      for (const [name, uri] of Object.entries(uris)) {
        if (uri.startsWith(DATASET_URI_PREFIX)) {
          // private data: read from this node's own disk, never fetched or served
          const local = await content.localDataset(uri, signal)
          inputs[name] = local.isFile ? join(local.root, local.files[0]!) : { tree: local.root, files: local.files }
          continue
        }
        const file = join(work, `in-${name}.safetensors`)
        await content.getTensor(uri, { out: file, signal })
        inputs[name] = { file: `${name}.safetensors`, bytes: new Uint8Array(await readFile(file)) }
      }
      const spec = report.taskpack.parsed.manifest.spec
      this.#precision.set(a.taskpack, report.taskpack.parsed.precision)
      const staged = await stageRun(collected, {
        inputs, seed: 0, taskId: a.taskId.slice(0, 128),
        ...(a.params !== undefined ? { params: a.params } : {}),
        ...(spec.entrypoint !== undefined ? { entrypoint: spec.entrypoint } : {})
      }, { parent: work })
      try {
        const job = staged.sandboxJob(`${a.executionId}-${a.attempt}`.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 128), {
          memoryBytes: report.taskpack.parsed.resources.memoryBytes,
          gpu: report.taskpack.parsed.resources.gpu,
          timeoutMs: Math.max(500, a.deadlineMs - Date.now() - COMMIT_MARGIN_MS)
        })
        const result = await this.#runner.run(job, { signal })
        // the compute a task costs (the benchmarks sum these per kind)
        ctx.log.info({ executionId: a.executionId, taskId: a.taskId, attempt: a.attempt, kind, status: result.status, sandboxMs: result.durationMs }, 'task ran in the sandbox')
        if (result.status !== 'succeeded') throw new Error(`sandbox run ${result.status} (exit ${result.exitCode}): ${result.stderr.toString('utf8').slice(-500)}`)
        const outputs: Record<string, string> = {}
        for (const name of a.outputs) {
          const put = await content.putTensor({ path: join(staged.outputDir, `${name}.safetensors`) }, signal)
            .catch(err => { throw new Error(`the task did not write output '${name}' (${name}.safetensors): ${(err as Error).message}`) })
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
