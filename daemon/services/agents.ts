import { Type } from '@sinclair/typebox'
import { AgentStore, AgentRejectedError, AgentNotFoundError, MAX_AGENT_BYTES, SUBMITTER_PATTERN, type AgentMeta } from '../../sandbox/agents/store.js'
import { emptyRankings, scoreAgents, type Rankings } from '../../sandbox/agents/score.js'
import { SandboxError } from '../../sandbox/errors.js'
import { SandboxRunner } from '../../sandbox/runner.js'
import { param } from '../rpc/registry.js'
import { RpcError, RpcErrorCode } from '../rpc/errors.js'
import { AgentRankingsSchema, AgentSubmissionSchema } from '../rpc/types.js'
import type { DaemonService, ServiceContext } from './service.js'

const SUBMITTER = Type.String({ pattern: SUBMITTER_PATTERN, description: 'submitter id: 1-64 letters, digits, ".", "_", "-"' })

/**
 * Agent scoring (the seed's platform API and validator): any daemon stores submitted agents in
 * <data-dir>/agents and serves the last rankings; a validator also scores them in its sandbox.
 * The sandbox runner starts on the first scoring round, so a validator without Docker still runs
 * (and says what to install when asked to score). One round runs at a time.
 */
export class AgentService implements DaemonService {
  readonly name = 'agents'
  readonly store: AgentStore
  readonly #ctx: ServiceContext
  readonly #validator: boolean
  readonly #controller = new AbortController()
  #runner: SandboxRunner | undefined
  #round: Promise<unknown> = Promise.resolve()

  constructor (ctx: ServiceContext) {
    this.#ctx = ctx
    this.#validator = ctx.options.roles.includes('validator')
    this.store = new AgentStore(ctx.dataDir.sub('agents'))
    this.#registerRpc()
  }

  async stop (): Promise<void> {
    this.#controller.abort(new SandboxError('ERR_SANDBOX_STOPPING', 'the daemon is stopping'))
    await this.#round.catch(() => {})
    await this.#runner?.stop()
    this.#runner = undefined
  }

  async submit (submitter: string, source: string, signal?: AbortSignal): Promise<AgentMeta> {
    try {
      const meta = await this.store.submit(submitter, source, signal !== undefined ? { signal } : {})
      this.#ctx.metrics.agentSubmissions.inc({ outcome: 'accepted' })
      this.#ctx.log.info({ submitter, sha256: meta.sha256, bytes: meta.bytes }, 'agent submitted')
      return meta
    } catch (err) {
      if (err instanceof AgentRejectedError) {
        this.#ctx.metrics.agentSubmissions.inc({ outcome: 'rejected' })
        throw new RpcError(RpcErrorCode.InvalidParams, err.message, { code: err.code })
      }
      throw err
    }
  }

  async #startedRunner (signal: AbortSignal): Promise<SandboxRunner> {
    if (this.#runner === undefined) {
      // one owner per daemon identity: a restarted validator removes what its last run left behind
      const runner = new SandboxRunner({ config: { owner: `agents-${this.#ctx.identity.peerId.toString()}`.slice(0, 63), slots: 2 }, logger: this.#ctx.log })
      await runner.start({ signal })
      this.#runner = runner
    }
    return this.#runner
  }

  /** Scores the stored agents (validator only); rounds queue behind each other. */
  async score (submitters: string[] | undefined, callSignal: AbortSignal): Promise<Rankings> {
    if (!this.#validator) throw new RpcError(RpcErrorCode.Unavailable, 'scoring agents needs the validator role; start bitflowd with --role validator')
    const signal = AbortSignal.any([callSignal, this.#controller.signal, this.#ctx.signal])
    const run = async (): Promise<Rankings> => {
      const runner = await this.#startedRunner(signal)
      const started = performance.now()
      const rankings = await scoreAgents(this.store, runner, {
        signal,
        ...(submitters !== undefined ? { submitters } : {}),
        onRun: (_who, t) => { this.#ctx.metrics.agentRuns.inc({ outcome: t.outcome }) }
      })
      this.#ctx.metrics.agentRounds.inc()
      this.#ctx.log.info({ agents: rankings.rankings.length, ms: Math.round(performance.now() - started) }, 'agents scored')
      return rankings
    }
    const next = this.#round.catch(() => {}).then(run)
    this.#round = next
    try {
      return await next
    } catch (err) {
      if (err instanceof AgentNotFoundError) throw new RpcError(RpcErrorCode.NotFound, err.message, { code: err.code })
      if (err instanceof SandboxError && (err.code === 'ERR_SANDBOX_ENGINE_UNAVAILABLE' || err.code === 'ERR_SANDBOX_IMAGE_UNAVAILABLE')) {
        throw new RpcError(RpcErrorCode.Unavailable, err.message, { code: err.code })
      }
      if (err instanceof SandboxError) throw new RpcError(RpcErrorCode.InternalError, err.message, { code: err.code })
      throw err
    }
  }

  async rankings (): Promise<Rankings> {
    return (await this.store.loadRankings<Rankings>()) ?? emptyRankings()
  }

  #registerRpc (): void {
    const registry = this.#ctx.registry
    registry.add({
      name: 'bitflow_submitAgent',
      summary: 'Store a Python agent (one file, standard library only, checked on its syntax tree) under the submitter\'s id; replaces an earlier one',
      params: [
        param('submitter', SUBMITTER),
        param('source', Type.String({ minLength: 1, maxLength: MAX_AGENT_BYTES, description: 'agent.py, UTF-8' }))
      ],
      result: { name: 'submission', schema: AgentSubmissionSchema },
      mutating: true,
      handler: async (p, ctx) => await this.submit(p.submitter as string, p.source as string, ctx.signal)
    })
    registry.add({
      name: 'bitflow_scoreAgents',
      summary: 'Validators: run every stored agent (or the named ones) against the coding suite in the sandbox, 10 s per task, score 0-100 by hidden assertions and rank them with simulated rewards',
      params: [param('submitters', Type.Array(SUBMITTER, { minItems: 1, maxItems: 1000 }), { required: false, description: 'score only these submitters' })],
      result: { name: 'rankings', schema: AgentRankingsSchema },
      mutating: true,
      handler: async (p, ctx) => await this.score(p.submitters as string[] | undefined, ctx.signal)
    })
    registry.add({
      name: 'bitflow_getRankings',
      summary: 'The rankings of the last agent-scoring round (scoredAt is null before the first)',
      params: [],
      result: { name: 'rankings', schema: AgentRankingsSchema },
      mutating: false,
      handler: async () => await this.rankings()
    })
  }
}
