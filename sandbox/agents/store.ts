/**
 * Submitted agents: a single Python file that imports only the standard library, checked on its
 * syntax tree (python3's `ast`, never a regex), stored under the submitter's id:
 *
 *   <dir>/agents/<submitter>/agent.py     the source, as submitted
 *   <dir>/agents/<submitter>/meta.json    sha256, size, time, imports, warnings
 *   <dir>/rankings.json                   the last scoring round
 */
import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { SandboxError } from '../errors.js'
import { DEFAULT_FORBIDDEN_MODULES } from '../authenticate.js'
import { moduleWithin, scanPython, topLevel, type PyFileScan, type PyScanOptions } from '../pyscan.js'

export const MAX_AGENT_BYTES = 256 * 1024
export const SUBMITTER_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'
const SUBMITTER = new RegExp(SUBMITTER_PATTERN)

/** An agent submission was refused; `code` says which rule it broke. */
export class AgentRejectedError extends SandboxError {
  constructor (code: 'ERR_AGENT_SUBMITTER' | 'ERR_AGENT_SIZE' | 'ERR_AGENT_ENCODING' | 'ERR_AGENT_SYNTAX' | 'ERR_AGENT_IMPORT' | 'ERR_AGENT_DYNAMIC_CODE' | 'ERR_AGENT_STORE_FULL', message: string) {
    super(code, message)
  }
}

/** The named submitter has no agent. */
export class AgentNotFoundError extends SandboxError {
  constructor (submitter: string) { super('ERR_AGENT_NOT_FOUND', `no agent is stored for submitter '${submitter}'; submit one with \`bitflowd agent submit agent.py --submitter ${submitter}\``) }
}

export interface AgentMeta {
  submitter: string
  sha256: string
  bytes: number
  submittedAt: string
  /** top-level modules it imports */
  imports: string[]
  /** accepted, but worth knowing (e.g. a module the validator disqualifies) */
  warnings: string[]
}

export interface AgentPolicy {
  /** standard-library modules agents may not use; an agent importing one scores 0 */
  forbiddenModules: readonly string[]
}

export const DEFAULT_AGENT_POLICY: AgentPolicy = { forbiddenModules: [...DEFAULT_FORBIDDEN_MODULES, 'multiprocessing', 'concurrent.futures.process'] }

export function checkSubmitter (submitter: string): void {
  if (typeof submitter !== 'string' || !SUBMITTER.test(submitter)) {
    throw new AgentRejectedError('ERR_AGENT_SUBMITTER', `submitter id ${JSON.stringify(submitter)} must be 1-64 characters of letters, digits, '.', '_' and '-', starting with a letter or digit`)
  }
}

/** Why an agent is disqualified from scoring (a forbidden module), from its scan; undefined if it is not. */
export function disqualification (scan: PyFileScan, policy: AgentPolicy = DEFAULT_AGENT_POLICY): string | undefined {
  for (const imp of scan.imports ?? []) {
    const hit = policy.forbiddenModules.find(m => moduleWithin(imp.module, m))
    if (hit !== undefined) return `imports ${imp.module} (line ${imp.line}), which agents may not use`
  }
  return undefined
}

/**
 * Checks an agent's source: size, UTF-8, that it parses, and that every import is of the standard
 * library (of the runtime's Python). Code built at run time (`__import__` of a computed name, exec,
 * eval, compile) is refused, since the rule could not be checked on it. Throws AgentRejectedError.
 */
export async function checkAgentSource (source: Uint8Array | string, options: PyScanOptions & { policy?: AgentPolicy } = {}): Promise<{ imports: string[], warnings: string[], scan: PyFileScan }> {
  const bytes = typeof source === 'string' ? Buffer.from(source, 'utf8') : Buffer.from(source)
  if (bytes.length === 0) throw new AgentRejectedError('ERR_AGENT_SIZE', 'agent.py is empty')
  if (bytes.length > MAX_AGENT_BYTES) throw new AgentRejectedError('ERR_AGENT_SIZE', `agent.py is ${bytes.length} bytes; the limit is ${MAX_AGENT_BYTES}`)
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    throw new AgentRejectedError('ERR_AGENT_ENCODING', 'agent.py is not valid UTF-8')
  }
  if (text.includes('\0')) throw new AgentRejectedError('ERR_AGENT_ENCODING', 'agent.py contains a NUL byte')
  const report = await scanPython([{ path: 'agent.py', source: text }], options)
  const scan = report.files[0]!
  if (scan.error !== undefined) throw new AgentRejectedError('ERR_AGENT_SYNTAX', `agent.py${scan.error.line > 0 ? ` line ${scan.error.line}` : ''}: ${scan.error.message} (Python ${report.python})`)
  const isStdlib = (m: string): boolean => report.stdlib.has(topLevel(m)) || topLevel(m) === '__future__'
  const problems: string[] = []
  for (const imp of scan.imports ?? []) {
    if (imp.from === true) continue // `from a import b`: `a` is checked
    if (imp.level > 0) problems.push(`line ${imp.line}: a relative import (from ${'.'.repeat(imp.level)}${imp.module}); an agent is a single file`)
    else if (!isStdlib(imp.module)) problems.push(`line ${imp.line}: ${imp.module} is not in the Python ${report.python} standard library`)
  }
  if (problems.length > 0) throw new AgentRejectedError('ERR_AGENT_IMPORT', `agent.py may import only the standard library: ${problems.join('; ')}`)
  const dynamic: string[] = []
  for (const d of scan.dynamic ?? []) {
    if (d.kind === 'import' && d.literal !== null && isStdlib(d.literal)) continue
    dynamic.push(`line ${d.line}: ${d.call}(${d.literal !== null ? JSON.stringify(d.literal.slice(0, 40)) : '...'})`)
  }
  if (dynamic.length > 0) throw new AgentRejectedError('ERR_AGENT_DYNAMIC_CODE', `agent.py builds code or imports at run time, which the standard-library check cannot see: ${dynamic.join('; ')}; import modules with import statements`)
  const imports = [...new Set((scan.imports ?? []).filter(i => i.from !== true).map(i => topLevel(i.module)))].sort()
  const dq = disqualification(scan, options.policy)
  return { imports, warnings: dq !== undefined ? [`${dq}: the validator scores it 0`] : [], scan }
}

export interface StoredAgent { meta: AgentMeta, source: string }

export interface RankingsFile { [k: string]: unknown }

/** A directory of submitted agents (the daemon's <data-dir>/agents, or --store DIR offline). */
export class AgentStore {
  readonly dir: string
  readonly maxAgents: number

  constructor (dir: string, options: { maxAgents?: number } = {}) {
    this.dir = dir
    this.maxAgents = options.maxAgents ?? 1000
  }

  private agentDir (submitter: string): string { return join(this.dir, 'agents', submitter) }

  /** Checks and stores (or replaces) a submitter's agent. Throws AgentRejectedError. */
  async submit (submitter: string, source: Uint8Array | string, options: PyScanOptions = {}): Promise<AgentMeta> {
    checkSubmitter(submitter)
    const bytes = typeof source === 'string' ? Buffer.from(source, 'utf8') : Buffer.from(source)
    const { imports, warnings } = await checkAgentSource(bytes, options)
    const existing = await this.list()
    if (!existing.some(m => m.submitter === submitter) && existing.length >= this.maxAgents) {
      throw new AgentRejectedError('ERR_AGENT_STORE_FULL', `the store holds ${existing.length} agents, its limit`)
    }
    const meta: AgentMeta = {
      submitter,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      bytes: bytes.length,
      submittedAt: new Date().toISOString(),
      imports,
      warnings
    }
    const dir = this.agentDir(submitter)
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await atomicWrite(join(dir, 'agent.py'), bytes)
    await atomicWrite(join(dir, 'meta.json'), Buffer.from(JSON.stringify(meta, null, 2) + '\n'))
    return meta
  }

  async list (): Promise<AgentMeta[]> {
    let names: string[]
    try {
      names = await readdir(join(this.dir, 'agents'))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw err
    }
    const out: AgentMeta[] = []
    for (const name of names.sort()) {
      if (!SUBMITTER.test(name)) continue
      try {
        out.push(JSON.parse(await readFile(join(this.agentDir(name), 'meta.json'), 'utf8')) as AgentMeta)
      } catch {
        // a half-written submission: skipped until it is submitted again
      }
    }
    return out
  }

  async get (submitter: string): Promise<StoredAgent> {
    checkSubmitter(submitter)
    try {
      const meta = JSON.parse(await readFile(join(this.agentDir(submitter), 'meta.json'), 'utf8')) as AgentMeta
      const source = await readFile(join(this.agentDir(submitter), 'agent.py'), 'utf8')
      return { meta, source }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new AgentNotFoundError(submitter)
      throw err
    }
  }

  async saveRankings (rankings: unknown): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    await atomicWrite(join(this.dir, 'rankings.json'), Buffer.from(JSON.stringify(rankings, null, 2) + '\n'))
  }

  async loadRankings<T> (): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir, 'rankings.json'), 'utf8')) as T
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }
}

async function atomicWrite (path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`
  await writeFile(tmp, bytes, { mode: 0o600 })
  await rename(tmp, path)
}
