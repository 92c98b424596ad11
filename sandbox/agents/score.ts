/**
 * The validator's side of agent scoring: every stored agent runs against every task of the suite in
 * the sandbox (one container per agent and task, 10 s each by default), prints its answers as JSON,
 * and the hidden assertions are checked here, outside the container. Score = 100 × assertions passed
 * / assertions, rounded. Rankings come with simulated rewards: a pool split in proportion to scores.
 */
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { SandboxRunner, SandboxResult } from '../runner.js'
import { scanPython, type PyScanOptions } from '../pyscan.js'
import { wipeDir } from '../wipe.js'
import { AGENT_SUITE, checkAnswers, parseAgentOutput, taskInput, type AgentCase, type AgentTask } from './suite.js'
import { DEFAULT_AGENT_POLICY, disqualification, type AgentMeta, type AgentPolicy, type AgentStore } from './store.js'

export const DEFAULT_TASK_TIMEOUT_MS = 10_000
export const DEFAULT_REWARD_POOL = 100
export const REWARD_UNIT = 'TAO (simulated)'

export type TaskOutcome = 'passed' | 'failed' | 'timeout' | 'oom' | 'error' | 'bad-output'

export interface TaskScore {
  task: string
  passed: number
  total: number
  outcome: TaskOutcome
  /** why assertions failed, for the submitter */
  reason?: string
  durationMs?: number
}

export interface AgentScore {
  rank: number
  submitter: string
  sha256: string
  score: number
  passed: number
  total: number
  reward: number
  /** one line: why the score is what it is ('' for 100) */
  reason: string
  disqualified: boolean
  tasks: TaskScore[]
}

export interface Rankings {
  /** null until a round has been scored */
  scoredAt: string | null
  seed: number
  suite: { tasks: string[], assertions: number }
  taskTimeoutMs: number
  rewardPool: number
  rewardUnit: string
  rankings: AgentScore[]
}

export interface ScoreOptions {
  /** which agents (default: all stored) */
  submitters?: string[]
  /** seeds the cases drawn at random (default: derived from the time of the round) */
  seed?: number
  taskTimeoutMs?: number
  memoryBytes?: number
  rewardPool?: number
  policy?: AgentPolicy
  suite?: readonly AgentTask[]
  /** where agents are staged (default os.tmpdir()) */
  workDir?: string
  python?: PyScanOptions['python']
  signal?: AbortSignal
  /** progress, per finished run */
  onRun?: (submitter: string, task: TaskScore) => void
}

export function emptyRankings (): Rankings {
  return { scoredAt: null, seed: 0, suite: { tasks: AGENT_SUITE.map(t => t.id), assertions: 0 }, taskTimeoutMs: DEFAULT_TASK_TIMEOUT_MS, rewardPool: DEFAULT_REWARD_POOL, rewardUnit: REWARD_UNIT, rankings: [] }
}

/** Orders scores (score, then assertions passed, then earlier submission, then id), ranks ties equally, splits the pool. */
export function rank (scores: Array<Omit<AgentScore, 'rank' | 'reward'> & { submittedAt: string }>, pool: number): AgentScore[] {
  const sorted = [...scores].sort((a, b) => b.score - a.score || b.passed - a.passed || a.submittedAt.localeCompare(b.submittedAt) || (a.submitter < b.submitter ? -1 : 1))
  const sum = sorted.reduce((s, a) => s + a.score, 0)
  let prev: { score: number, passed: number, rank: number } | undefined
  return sorted.map((a, i) => {
    const r = prev !== undefined && prev.score === a.score && prev.passed === a.passed ? prev.rank : i + 1
    prev = { score: a.score, passed: a.passed, rank: r }
    const { submittedAt: _drop, ...rest } = a
    return { ...rest, rank: r, reward: sum === 0 ? 0 : Math.round(pool * a.score / sum * 1e6) / 1e6 }
  })
}

function tailLine (buf: Buffer): string {
  const lines = buf.toString('utf8').trim().split('\n')
  return (lines[lines.length - 1] ?? '').slice(0, 300)
}

/** Scores one run's result against the task's hidden cases. */
export function scoreRun (task: AgentTask, cases: readonly AgentCase[], r: Pick<SandboxResult, 'status' | 'exitCode' | 'stdout' | 'stderr' | 'durationMs' | 'resources'>): TaskScore {
  const base = { task: task.id, passed: 0, total: cases.length, durationMs: r.durationMs }
  if (r.status === 'timeout') return { ...base, outcome: 'timeout', reason: `timed out after ${r.resources.timeoutMs / 1000} s` }
  if (r.status === 'oom') return { ...base, outcome: 'oom', reason: `ran out of its ${Math.round(r.resources.memoryBytes / 2 ** 20)} MiB of memory` }
  if (r.exitCode !== 0) return { ...base, outcome: 'error', reason: `exited with ${r.exitCode}${tailLine(r.stderr) !== '' ? `: ${tailLine(r.stderr)}` : ''}` }
  const parsed = parseAgentOutput(r.stdout.toString('utf8'))
  if (!parsed.ok) return { ...base, outcome: 'bad-output', reason: parsed.reason }
  const { passed, failed } = checkAnswers(cases, parsed.results)
  return {
    ...base,
    passed,
    outcome: failed.length === 0 ? 'passed' : 'failed',
    ...(failed.length > 0 ? { reason: `${failed.length} of ${cases.length} assertions failed (cases ${failed.map(i => i + 1).join(', ')})` } : {})
  }
}

function summary (tasks: TaskScore[]): string {
  return tasks.filter(t => t.outcome !== 'passed').map(t => `${t.task}: ${t.reason ?? t.outcome}`).join('; ')
}

async function runOne (runner: SandboxRunner, agent: { meta: AgentMeta, source: string }, task: AgentTask, cases: AgentCase[], seed: number, options: ScoreOptions): Promise<TaskScore> {
  const parent = options.workDir ?? tmpdir()
  await mkdir(parent, { recursive: true, mode: 0o700 })
  const root = await mkdtemp(join(parent, 'bitflow-agent-'))
  try {
    const taskDir = join(root, 'task')
    await mkdir(taskDir, { mode: 0o755 })
    await chmod(taskDir, 0o755)
    for (const [name, text] of [['agent.py', agent.source], ['task.json', JSON.stringify(taskInput(task, cases))]] as const) {
      await writeFile(join(taskDir, name), text, { mode: 0o644, flag: 'wx' })
      await chmod(join(taskDir, name), 0o644)
    }
    const r = await runner.run({
      id: `agent-${agent.meta.submitter}-${task.id}`.slice(0, 128),
      taskDir,
      // -I: isolated (no environment, no user site, the script's directory not on sys.path)
      command: ['python3', '-I', '/task/agent.py', '--task', task.id, '--input', '/task/task.json'],
      seed: String(seed),
      resources: { timeoutMs: options.taskTimeoutMs ?? DEFAULT_TASK_TIMEOUT_MS, memoryBytes: options.memoryBytes ?? 256 * 2 ** 20, cpus: 1, gpu: 'none', outputBytes: 64 * 1024 }
    }, options.signal !== undefined ? { signal: options.signal } : {})
    return scoreRun(task, cases, r)
  } finally {
    await wipeDir(root).catch(() => {})
  }
}

/**
 * Runs the round: static disqualification first (forbidden modules score 0 without running), then
 * every agent × task in the sandbox, bounded by the runner's slots. Saves and returns the rankings.
 */
export async function scoreAgents (store: AgentStore, runner: SandboxRunner, options: ScoreOptions = {}): Promise<Rankings> {
  const suite = options.suite ?? AGENT_SUITE
  const seed = options.seed ?? (Date.now() % 2 ** 32)
  const pool = options.rewardPool ?? DEFAULT_REWARD_POOL
  const policy = options.policy ?? DEFAULT_AGENT_POLICY
  const metas = await store.list()
  const wanted = options.submitters !== undefined ? new Set(options.submitters) : undefined
  if (wanted !== undefined) for (const s of wanted) if (!metas.some(m => m.submitter === s)) await store.get(s) // AgentNotFoundError
  const agents = await Promise.all(metas.filter(m => wanted === undefined || wanted.has(m.submitter)).map(async m => await store.get(m.submitter)))
  const casesByTask = new Map(suite.map(t => [t.id, t.cases(seed)]))
  const assertions = [...casesByTask.values()].reduce((s, c) => s + c.length, 0)

  // re-checked at every round: the policy may have changed since the submission
  const scans = agents.length === 0 ? [] : (await scanPython(agents.map(a => ({ path: a.meta.submitter, source: a.source })), { ...(options.python !== undefined ? { python: options.python } : {}), ...(options.signal !== undefined ? { signal: options.signal } : {}) })).files
  const scored = await Promise.all(agents.map(async (agent, i) => {
    const scan = scans[i]!
    const dq = scan.error !== undefined ? `does not parse: line ${scan.error.line}: ${scan.error.message}` : disqualification(scan, policy)
    if (dq !== undefined) {
      return { submitter: agent.meta.submitter, sha256: agent.meta.sha256, submittedAt: agent.meta.submittedAt, score: 0, passed: 0, total: assertions, disqualified: true, reason: `disqualified: ${dq}`, tasks: [] as TaskScore[] }
    }
    const tasks = await Promise.all(suite.map(async task => {
      const t = await runOne(runner, agent, task, casesByTask.get(task.id)!, seed, options)
      options.onRun?.(agent.meta.submitter, t)
      return t
    }))
    const passed = tasks.reduce((s, t) => s + t.passed, 0)
    return { submitter: agent.meta.submitter, sha256: agent.meta.sha256, submittedAt: agent.meta.submittedAt, score: assertions === 0 ? 0 : Math.round(100 * passed / assertions), passed, total: assertions, disqualified: false, reason: summary(tasks), tasks }
  }))
  const rankings: Rankings = {
    scoredAt: new Date().toISOString(),
    seed,
    suite: { tasks: suite.map(t => t.id), assertions },
    taskTimeoutMs: options.taskTimeoutMs ?? DEFAULT_TASK_TIMEOUT_MS,
    rewardPool: pool,
    rewardUnit: REWARD_UNIT,
    rankings: rank(scored, pool)
  }
  await store.saveRankings(rankings)
  return rankings
}

/** The rankings as a text table (rank, submitter, score, assertions, reward, reason). */
export function formatRankings (r: Rankings): string {
  if (r.scoredAt === null) return 'no agents have been scored yet; run `bitflowd agent score`'
  const rows = [['rank', 'submitter', 'score', 'passed', `reward (${r.rewardUnit})`, 'reason']]
  for (const a of r.rankings) rows.push([String(a.rank), a.submitter, String(a.score), `${a.passed}/${a.total}`, a.reward.toFixed(2), a.reason === '' ? '-' : a.reason])
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map(row => c === 5 ? 0 : row[c]!.length)))
  const lines = rows.map(row => row.map((cell, c) => c === 5 ? cell : cell.padEnd(widths[c]!)).join('  ').trimEnd())
  lines.splice(1, 0, widths.map((w, c) => c === 5 ? '------' : '-'.repeat(w)).join('  '))
  return `${lines.join('\n')}\n\nscored ${r.scoredAt}: ${r.suite.tasks.length} tasks, ${r.suite.assertions} assertions, ${r.taskTimeoutMs / 1000} s per task, seed ${r.seed}; pool ${r.rewardPool} ${r.rewardUnit} split by score`
}
