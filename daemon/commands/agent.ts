/**
 * `bitflowd agent submit|score|rankings`: the agent-scoring flow. By default the commands talk to
 * the running daemon (bitflow_submitAgent, bitflow_scoreAgents, bitflow_getRankings; scoring needs
 * a daemon with the validator role); with `--store DIR` they work offline on a store directory and
 * score in this machine's sandbox.
 */
import { readFile } from 'node:fs/promises'
import { basename, resolve } from 'node:path'
import type { Command } from 'commander'
import { BitflowError } from '../errors.js'
import { SandboxError } from '../../sandbox/errors.js'
import { SandboxRunner } from '../../sandbox/runner.js'
import { AgentStore, MAX_AGENT_BYTES, type AgentMeta } from '../../sandbox/agents/store.js'
import { emptyRankings, formatRankings, scoreAgents, type Rankings } from '../../sandbox/agents/score.js'
import { addDaemonOptions, daemonCall, daemonClient, type DaemonFlags } from './daemon-client.js'

interface StoreFlags extends DaemonFlags {
  offline?: boolean
  store?: string
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value]

function offlineStore (flags: StoreFlags): AgentStore | undefined {
  if (flags.store !== undefined) return new AgentStore(resolve(flags.store))
  if (flags.offline === true) throw new BitflowError('ERR_OPTION', '--offline needs --store DIR (the directory that holds the agents)')
  return undefined
}

async function local<T> (fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof SandboxError) throw new BitflowError(err.code, err.message, { cause: err })
    throw err
  }
}

function addStoreOptions (cmd: Command): Command {
  return addDaemonOptions(cmd)
    .option('--offline', 'do not use a daemon: work on --store DIR')
    .option('--store <dir>', 'agent store directory (implies --offline)')
    .option('--json', 'print JSON')
}

function defaultSubmitter (file: string): string {
  const id = basename(file).replace(/\.py$/, '').replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64)
  return id === '' ? 'agent' : id
}

function printRankings (r: Rankings, json: boolean): void {
  if (json) console.log(JSON.stringify(r, null, 2))
  else console.log(formatRankings(r))
}

export function registerAgentCommands (program: Command): Command {
  const agent = program.command('agent').description('submit Python agents, score them against the coding suite in the sandbox, show rankings')

  addStoreOptions(agent.command('submit')
    .description('submit a single Python file that imports only the standard library (checked on its syntax tree)')
    .argument('<file>', 'agent.py')
    .option('--submitter <id>', 'who submits it; a new submission replaces the old one (default: the file name)'))
    .action(async (file: string, flags: StoreFlags & { submitter?: string }) => {
      let source: Buffer
      try {
        source = await readFile(file)
      } catch (err) {
        throw new BitflowError('ERR_AGENT_FILE', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
      }
      if (source.length > MAX_AGENT_BYTES) throw new BitflowError('ERR_AGENT_SIZE', `${file} is ${source.length} bytes; the limit is ${MAX_AGENT_BYTES}`)
      const submitter = flags.submitter ?? defaultSubmitter(file)
      const store = offlineStore(flags)
      const meta: AgentMeta = store !== undefined
        ? await local(async () => await store.submit(submitter, source))
        : await daemonCall(async () => await daemonClient(flags).call<AgentMeta>('bitflow_submitAgent', { submitter, source: source.toString('utf8') }))
      if (flags.json === true) { console.log(JSON.stringify(meta, null, 2)); return }
      console.log(`accepted agent of '${meta.submitter}': ${meta.bytes} bytes, sha256 ${meta.sha256}`)
      console.log(`  imports: ${meta.imports.join(', ') || '(none)'}`)
      for (const w of meta.warnings) console.log(`  warning: ${w}`)
    })

  addStoreOptions(agent.command('score')
    .description('run every stored agent against the suite in the sandbox (10 s per task) and rank them; online this needs a validator daemon')
    .option('--submitter <id>', 'score only this submitter (repeatable)', collect)
    .option('--seed <n>', 'seed of the randomly drawn cases (offline; default: from the clock)')
    .option('--timeout <seconds>', 'limit per task (offline; default 10)')
    .option('--pool <amount>', 'simulated reward pool split by score (offline; default 100)'))
    .action(async (flags: StoreFlags & { submitter?: string[], seed?: string, timeout?: string, pool?: string }) => {
      const num = (v: string | undefined, name: string, check: (n: number) => boolean): number | undefined => {
        if (v === undefined) return undefined
        const n = Number(v)
        if (!check(n)) throw new BitflowError('ERR_OPTION', `${name} is invalid: '${v}'`)
        return n
      }
      const seed = num(flags.seed, '--seed', n => Number.isSafeInteger(n) && n >= 0 && n < 2 ** 32)
      const timeout = num(flags.timeout, '--timeout', n => Number.isFinite(n) && n > 0 && n <= 600)
      const pool = num(flags.pool, '--pool', n => Number.isFinite(n) && n >= 0)
      const store = offlineStore(flags)
      let rankings: Rankings
      if (store !== undefined) {
        const abort = new AbortController()
        const onSignal = (): void => { abort.abort(new Error('interrupted')) }
        process.once('SIGINT', onSignal)
        const runner = new SandboxRunner({ config: { owner: `cli-${process.pid}`, slots: 2 } })
        try {
          rankings = await local(async () => {
            await runner.start({ signal: abort.signal })
            return await scoreAgents(store, runner, {
              signal: abort.signal,
              ...(flags.submitter !== undefined ? { submitters: flags.submitter } : {}),
              ...(seed !== undefined ? { seed } : {}),
              ...(timeout !== undefined ? { taskTimeoutMs: Math.round(timeout * 1000) } : {}),
              ...(pool !== undefined ? { rewardPool: pool } : {}),
              onRun: (who, t) => { if (flags.json !== true) process.stderr.write(`  ${who} ${t.task}: ${t.passed}/${t.total}${t.reason !== undefined ? ` (${t.reason})` : ''}\n`) }
            })
          })
        } finally {
          process.off('SIGINT', onSignal)
          await runner.stop()
        }
      } else {
        if (seed !== undefined || timeout !== undefined || pool !== undefined) throw new BitflowError('ERR_OPTION', '--seed, --timeout and --pool apply to offline scoring (--store DIR); a daemon scores with its own settings')
        rankings = await daemonCall(async () => await daemonClient(flags).call<Rankings>('bitflow_scoreAgents', flags.submitter !== undefined ? { submitters: flags.submitter } : {}))
      }
      printRankings(rankings, flags.json === true)
    })

  addStoreOptions(agent.command('rankings').description('show the rankings of the last scoring round'))
    .action(async (flags: StoreFlags) => {
      const store = offlineStore(flags)
      const rankings = store !== undefined
        ? (await store.loadRankings<Rankings>()) ?? emptyRankings()
        : await daemonCall(async () => await daemonClient(flags).call<Rankings>('bitflow_getRankings'))
      printRankings(rankings, flags.json === true)
    })

  return agent
}
