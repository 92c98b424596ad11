/**
 * Authentication of a taskpack before a node runs it (the seed's "mission authentication"):
 *
 *   manifest      the package is a valid taskpack (manifest, configs, layout)
 *   publisher     its CID is signed by a publisher on the node's allow-list (verifier injected)
 *   capabilities  the node meets the manifest's requirements
 *   static        package checks: file count and size, no setuid bits or native binaries, a
 *                 Dockerfile refused or ignored, Python source parsed with `ast` for forbidden imports
 *   dry-run       the task runs in the sandbox on its own sample inputs and succeeds
 *   cleanup       every working directory is overwritten and removed afterwards
 *
 * In `enforce` mode (network execution) the first failed check refuses the taskpack and later checks
 * are skipped; in `warn` mode (an author's local run) failures become warnings and every check runs.
 * Every finding carries a stable code; a refusal (TaskpackAuthError) names the check that failed.
 */
import { lstat } from 'node:fs/promises'
import { join } from 'node:path'
import { capabilityShortfalls, type NodeCapabilities } from '../protocols/taskpack/manifest.js'
import { collectTaskpack, listingChecksum, packCollected, type CollectedTaskpack, type PackLimits } from '../protocols/taskpack/pack.js'
import { validateTaskpackDir, type TaskpackCheck } from '../protocols/taskpack/validate.js'
import type { SandboxConfig } from './config.js'
import { SandboxError } from './errors.js'
import { moduleWithin, scanPython, type PyScanOptions } from './pyscan.js'
import type { SandboxResult, SandboxRunner } from './runner.js'
import { stageRun } from './stage.js'
import type { WipeResult } from './wipe.js'

export const AUTH_CHECKS = ['manifest', 'publisher', 'capabilities', 'static', 'dry-run', 'cleanup'] as const
export type AuthCheck = typeof AUTH_CHECKS[number]

/** Stable finding codes, by check. */
export const AUTH_CODES = {
  manifest: ['AUTH_MANIFEST_INVALID', 'AUTH_PACKAGE_UNREADABLE'],
  publisher: ['AUTH_PUBLISHER_NO_VERIFIER', 'AUTH_PUBLISHER_UNSIGNED', 'AUTH_PUBLISHER_BAD_SIGNATURE', 'AUTH_PUBLISHER_NOT_ALLOWED', 'AUTH_PUBLISHER_VERIFIER_FAILED'],
  capabilities: ['AUTH_CAPABILITY_SHORTFALL'],
  static: ['AUTH_STATIC_TOO_MANY_FILES', 'AUTH_STATIC_TOO_LARGE', 'AUTH_STATIC_LINK', 'AUTH_STATIC_SPECIAL_FILE', 'AUTH_STATIC_SETUID', 'AUTH_STATIC_NATIVE_BINARY', 'AUTH_STATIC_EXECUTABLE', 'AUTH_STATIC_DOCKERFILE', 'AUTH_STATIC_SYNTAX', 'AUTH_STATIC_FORBIDDEN_IMPORT', 'AUTH_STATIC_DYNAMIC_CODE', 'AUTH_STATIC_CHECKER_FAILED'],
  'dry-run': ['AUTH_DRY_RUN_NO_SAMPLES', 'AUTH_DRY_RUN_SKIPPED', 'AUTH_DRY_RUN_FAILED', 'AUTH_DRY_RUN_TIMEOUT', 'AUTH_DRY_RUN_OOM', 'AUTH_DRY_RUN_ERROR'],
  cleanup: ['AUTH_CLEANUP_FAILED']
} as const satisfies Record<AuthCheck, readonly string[]>

export interface Finding {
  check: AuthCheck
  code: string
  /** refuse: the check fails (a warning in warn mode); warn: reported, never refuses */
  severity: 'refuse' | 'warn'
  message: string
  file?: string
  line?: number
}

export type CheckStatus = 'passed' | 'failed' | 'warned' | 'skipped'

/** Who signed a taskpack's CID, as the registry record says. */
export interface PublisherRecord {
  /** publisher id (its public key / peer id, as the registry names it) */
  publisher: string
  /** the record's signature over the CID verifies with the publisher's key */
  verified: boolean
}

/**
 * Looks up the signed registry record for a pack CID (daemon/content/registry.ts provides one);
 * undefined when nothing signed this CID.
 */
export type PublisherVerifier = (packCid: string, signal?: AbortSignal) => Promise<PublisherRecord | undefined>

/** Python modules a taskpack's code must not import: network, native code and process escape hatches. */
export const DEFAULT_FORBIDDEN_MODULES: readonly string[] = [
  'socket', '_socket', 'ssl', '_ssl', 'socketserver', 'asyncio.streams',
  'ctypes', '_ctypes', 'cffi',
  'subprocess', '_posixsubprocess', 'pty', 'os.system', 'os.popen', 'os.exec', 'os.fork', 'os.spawn',
  'http.client', 'http.server', 'urllib.request', 'ftplib', 'smtplib', 'poplib', 'imaplib', 'telnetlib', 'xmlrpc',
  'requests', 'urllib3', 'httpx', 'aiohttp', 'paramiko', 'websocket', 'websockets'
]

/** Extensions of native code (Python extension modules, shared libraries, executables). */
const NATIVE_EXTENSIONS = ['.so', '.pyd', '.dylib', '.dll', '.exe', '.dSYM']

export interface StaticLimits {
  /** files and directories */
  maxEntries: number
  maxTotalBytes: number
  maxFileBytes: number
}

export const DEFAULT_STATIC_LIMITS: StaticLimits = { maxEntries: 2000, maxTotalBytes: 128 * 1024 * 1024, maxFileBytes: 64 * 1024 * 1024 }

export interface AuthPolicy {
  /** enforce: refuse on the first failed check; warn: report failures as warnings, run every check */
  mode: 'enforce' | 'warn'
  /** publisher ids this node runs taskpacks from */
  allowList: readonly string[]
  verifyPublisher?: PublisherVerifier
  /** what this node offers; see sandboxCapabilities() */
  capabilities: NodeCapabilities
  forbiddenModules: readonly string[]
  /** forbidden imports refuse the taskpack (default) or only warn */
  forbiddenImports: 'refuse' | 'warn'
  /** __import__/importlib/exec/eval/compile: warn (default) or refuse */
  dynamicCode: 'refuse' | 'warn'
  /** taskpacks run in bitflow's runtime image: a Dockerfile is ignored with a warning, or refused */
  dockerfile: 'ignore' | 'refuse'
  limits: StaticLimits
  /** the dry run needs a started runner; without one it is skipped (a refusal in enforce mode when `dryRunRequired`) */
  runner?: SandboxRunner
  dryRunTimeoutMs: number
  dryRunRequired: boolean
  /** skip the dry run and say why (an author's local run is itself a run on the sample inputs) */
  skipDryRun?: string
  /** where working directories are staged (default os.tmpdir()) */
  workDir?: string
  python?: PyScanOptions['python']
}

export function defaultAuthPolicy (overrides: Partial<AuthPolicy> & Pick<AuthPolicy, 'capabilities'>): AuthPolicy {
  return {
    mode: 'enforce',
    allowList: [],
    forbiddenModules: DEFAULT_FORBIDDEN_MODULES,
    forbiddenImports: 'refuse',
    dynamicCode: 'warn',
    dockerfile: 'ignore',
    limits: DEFAULT_STATIC_LIMITS,
    dryRunTimeoutMs: 60_000,
    dryRunRequired: false,
    ...overrides
  }
}

/** What a node's sandbox can give one task, as NodeCapabilities for the manifest check. */
export function sandboxCapabilities (config: SandboxConfig, gpuMemoryBytes = 0): NodeCapabilities {
  return {
    memoryBytes: config.memory.maxBytes,
    hasGpu: config.gpus.count > 0 || (config.gpus.deviceIds?.length ?? 0) > 0,
    gpuMemoryBytes,
    storageBytes: config.outputBytes + config.tmpBytes
  }
}

export interface CheckReport { status: CheckStatus, findings: Finding[], /** why a check was skipped */ note?: string }

export interface AuthReport {
  /** the taskpack may run (always true in warn mode unless it could not be read at all) */
  ok: boolean
  mode: AuthPolicy['mode']
  /** CIDv1 of the package as checked */
  cid?: string
  publisher?: PublisherRecord
  checks: Record<AuthCheck, CheckReport>
  /** every finding, in check order */
  findings: Finding[]
  /** the check that refused the taskpack (enforce mode) */
  refusedBy?: AuthCheck
  dryRun?: Pick<SandboxResult, 'status' | 'exitCode' | 'durationMs' | 'events' | 'outputs'> & { stderrTail: string }
  cleanup?: WipeResult
  /** the validated taskpack (manifest, configs), when it parsed */
  taskpack?: TaskpackCheck
}

/** A taskpack failed authentication: `check` names the check, `findings` say why. */
export class TaskpackAuthError extends SandboxError {
  readonly check: AuthCheck
  readonly findings: Finding[]
  readonly report: AuthReport
  constructor (report: AuthReport) {
    const check = report.refusedBy ?? 'manifest'
    const findings = report.checks[check].findings.filter(f => f.severity === 'refuse')
    super(`ERR_AUTH_${check.toUpperCase().replace('-', '_')}`, `taskpack refused: the ${check} check failed: ${findings.map(formatFinding).join('; ')}`)
    this.check = check
    this.findings = findings
    this.report = report
  }
}

export function formatFinding (f: Finding): string {
  const where = f.file !== undefined ? `${f.file}${f.line !== undefined ? ` line ${f.line}` : ''}: ` : ''
  return `[${f.code}] ${where}${f.message}`
}

/** Throws TaskpackAuthError when the report refuses the taskpack. */
export function requireAuthenticated (report: AuthReport): AuthReport {
  if (!report.ok) throw new TaskpackAuthError(report)
  return report
}

/** The pure part of the static check: listing, modes and contents (no Python). */
export function packageFindings (
  collected: Pick<CollectedTaskpack, 'entries' | 'contents' | 'totalBytes'>,
  modes: ReadonlyMap<string, number>,
  policy: Pick<AuthPolicy, 'limits' | 'dockerfile'>
): Finding[] {
  const out: Finding[] = []
  const add = (code: string, severity: Finding['severity'], message: string, file?: string): void => {
    out.push({ check: 'static', code, severity, message, ...(file !== undefined ? { file } : {}) })
  }
  if (collected.entries.length > policy.limits.maxEntries) add('AUTH_STATIC_TOO_MANY_FILES', 'refuse', `the package has ${collected.entries.length} files and directories; this node accepts at most ${policy.limits.maxEntries}`)
  if (collected.totalBytes > policy.limits.maxTotalBytes) add('AUTH_STATIC_TOO_LARGE', 'refuse', `the package holds ${collected.totalBytes} bytes; this node accepts at most ${policy.limits.maxTotalBytes}`)
  for (const e of collected.entries) {
    const mode = modes.get(e.path) ?? 0
    if ((mode & 0o6000) !== 0) add('AUTH_STATIC_SETUID', 'refuse', `has the ${(mode & 0o4000) !== 0 ? 'setuid' : 'setgid'} bit (mode ${(mode & 0o7777).toString(8)}); a taskpack never needs privileges`, e.path)
    if (e.kind !== 'file') continue
    if (e.size > policy.limits.maxFileBytes) add('AUTH_STATIC_TOO_LARGE', 'refuse', `is ${e.size} bytes; this node accepts files of at most ${policy.limits.maxFileBytes}`, e.path)
    const bytes = collected.contents.get(e.path) ?? new Uint8Array()
    const native = nativeKind(e.path, bytes)
    if (native !== undefined) add('AUTH_STATIC_NATIVE_BINARY', 'refuse', `is ${native}; taskpacks ship Python source only (native code is not reviewable and bypasses the import checks)`, e.path)
    else if ((mode & 0o111) !== 0) add('AUTH_STATIC_EXECUTABLE', 'warn', `is executable (mode ${(mode & 0o777).toString(8)}); it is staged without exec bits and only Python runs it`, e.path)
    const base = e.path.split('/').pop() ?? e.path
    if (base === 'Dockerfile' || base === 'Containerfile' || base.endsWith('.dockerfile')) {
      add('AUTH_STATIC_DOCKERFILE', policy.dockerfile === 'refuse' ? 'refuse' : 'warn', policy.dockerfile === 'refuse'
        ? 'is a container definition, which this node refuses: taskpacks run in bitflow/taskpack-python; remove it and list Python dependencies in requirements.txt'
        : 'is ignored: taskpacks run in bitflow/taskpack-python (python3 with numpy, scipy, pandas, h5py); list Python dependencies in requirements.txt', e.path)
    }
  }
  return out
}

function nativeKind (path: string, b: Uint8Array): string | undefined {
  if (b.length >= 4 && b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46) return 'an ELF binary'
  if (b.length >= 4) {
    const magic = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0
    if ([0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe].includes(magic)) return 'a Mach-O binary'
  }
  if (b.length >= 2 && b[0] === 0x4d && b[1] === 0x5a && /\.(exe|dll|pyd|sys)$/i.test(path)) return 'a Windows (PE) binary'
  const ext = NATIVE_EXTENSIONS.find(x => path.toLowerCase().endsWith(x) || path.toLowerCase().includes(`${x}.`))
  if (ext !== undefined) return `native code (${ext})`
  return undefined
}

/** The Python part of the static check: parse every .py file and look at its imports. */
export async function pythonFindings (
  collected: Pick<CollectedTaskpack, 'entries' | 'contents'>,
  policy: Pick<AuthPolicy, 'forbiddenModules' | 'forbiddenImports' | 'dynamicCode' | 'python'>,
  signal?: AbortSignal
): Promise<Finding[]> {
  const files = collected.entries.filter(e => e.kind === 'file' && e.path.endsWith('.py')).map(e => ({
    path: e.path,
    source: Buffer.from(collected.contents.get(e.path) ?? new Uint8Array()).toString('utf8')
  }))
  if (files.length === 0) return []
  const out: Finding[] = []
  let scan
  try {
    scan = await scanPython(files, { ...(policy.python !== undefined ? { python: policy.python } : {}), ...(signal !== undefined ? { signal } : {}) })
  } catch (err) {
    signal?.throwIfAborted()
    return [{ check: 'static', code: 'AUTH_STATIC_CHECKER_FAILED', severity: 'refuse', message: `the Python source could not be checked: ${(err as Error).message}` }]
  }
  for (const f of scan.files) {
    if (f.error !== undefined) {
      out.push({ check: 'static', code: 'AUTH_STATIC_SYNTAX', severity: 'refuse', message: `does not parse as Python ${scan.python}: ${f.error.message}`, file: f.path, ...(f.error.line > 0 ? { line: f.error.line } : {}) })
      continue
    }
    const seen = new Set<string>()
    for (const imp of f.imports ?? []) {
      if (imp.level > 0) continue // inside the taskpack
      const hit = policy.forbiddenModules.find(m => moduleWithin(imp.module, m))
      if (hit === undefined || seen.has(hit)) continue
      seen.add(hit)
      out.push({ check: 'static', code: 'AUTH_STATIC_FORBIDDEN_IMPORT', severity: policy.forbiddenImports, message: `imports ${imp.module}, which taskpacks may not use (network, native code or subprocesses; the sandbox blocks them anyway)`, file: f.path, line: imp.line })
    }
    for (const d of f.dynamic ?? []) {
      const literalHit = d.kind === 'import' && d.literal !== null ? policy.forbiddenModules.find(m => moduleWithin(d.literal!, m)) : undefined
      if (literalHit !== undefined) {
        out.push({ check: 'static', code: 'AUTH_STATIC_FORBIDDEN_IMPORT', severity: policy.forbiddenImports, message: `imports ${d.literal ?? ''} through ${d.call}(), which taskpacks may not use`, file: f.path, line: d.line })
      } else {
        out.push({ check: 'static', code: 'AUTH_STATIC_DYNAMIC_CODE', severity: policy.dynamicCode, message: `calls ${d.call}()${d.literal !== null ? ` on '${d.literal.slice(0, 60)}'` : ' on a computed value'}: code built at run time escapes these static checks`, file: f.path, line: d.line })
      }
    }
  }
  return out
}

function emptyChecks (): Record<AuthCheck, CheckReport> {
  return Object.fromEntries(AUTH_CHECKS.map(c => [c, { status: 'skipped', findings: [] }])) as unknown as Record<AuthCheck, CheckReport>
}

/**
 * Authenticates the taskpack in `dir` under `policy`. Never throws for a refusal (see
 * requireAuthenticated); throws only on abort. Working directories are wiped before it returns.
 */
export async function authenticateTaskpack (dir: string, policy: AuthPolicy, options: { signal?: AbortSignal } = {}): Promise<AuthReport> {
  const { signal } = options
  const report: AuthReport = { ok: true, mode: policy.mode, checks: emptyChecks(), findings: [] }
  const record = (check: AuthCheck, findings: Finding[]): boolean => {
    const refusing = findings.filter(f => f.severity === 'refuse')
    const stored = policy.mode === 'warn' ? findings.map(f => ({ ...f, severity: 'warn' as const })) : findings
    report.checks[check] = { status: refusing.length > 0 ? (policy.mode === 'warn' ? 'warned' : 'failed') : findings.length > 0 ? 'warned' : 'passed', findings: stored }
    report.findings.push(...stored)
    if (refusing.length > 0 && policy.mode === 'enforce') {
      report.ok = false
      report.refusedBy = check
      return false
    }
    return true
  }

  // manifest: the package is a taskpack, read as one snapshot
  let collected: CollectedTaskpack
  try {
    const limits: Partial<PackLimits> = { maxEntries: Math.max(policy.limits.maxEntries, 1) * 4, maxTotalBytes: policy.limits.maxTotalBytes * 4, maxFileBytes: policy.limits.maxFileBytes * 4 }
    report.taskpack = await validateTaskpackDir(dir, { limits })
    collected = await collectTaskpack(dir, { limits, ...(signal !== undefined ? { signal } : {}) })
    if (listingChecksum(collected.entries) !== listingChecksum(report.taskpack.entries)) throw Object.assign(new Error(`${dir} changed while it was being checked`), { code: 'ERR_PACK_CHANGED' })
  } catch (err) {
    signal?.throwIfAborted()
    const code = (err as { code?: string }).code ?? ''
    const finding: Finding = code === 'ERR_PACK_LINK'
      ? { check: 'static', code: 'AUTH_STATIC_LINK', severity: 'refuse', message: (err as Error).message }
      : code === 'ERR_PACK_SPECIAL_FILE'
        ? { check: 'static', code: 'AUTH_STATIC_SPECIAL_FILE', severity: 'refuse', message: (err as Error).message }
        : code === 'ERR_PACK_TOO_LARGE'
          ? { check: 'static', code: 'AUTH_STATIC_TOO_LARGE', severity: 'refuse', message: (err as Error).message }
          : { check: 'manifest', code: code.startsWith('ERR_PACK') ? 'AUTH_PACKAGE_UNREADABLE' : 'AUTH_MANIFEST_INVALID', severity: 'refuse', message: (err as Error).message }
    // a package that cannot be read cannot run, whatever the mode
    report.checks[finding.check] = { status: 'failed', findings: [finding] }
    report.findings.push(finding)
    report.ok = false
    report.refusedBy = finding.check
    return report
  }
  const taskpack = report.taskpack
  const manifestWarnings: Finding[] = taskpack.warnings.map(w => ({ check: 'manifest', code: 'AUTH_MANIFEST_WARNING', severity: 'warn', message: w }))
  record('manifest', manifestWarnings)

  // publisher
  const packed = await packCollected(collected, signal !== undefined ? { signal } : {})
  report.cid = packed.cidString
  if (!record('publisher', await publisherFindings(packed.cidString, policy, report, signal))) return report

  // capabilities
  const shortfalls = capabilityShortfalls(taskpack.parsed.resources, policy.capabilities)
  if (!record('capabilities', shortfalls.map(s => ({ check: 'capabilities', code: 'AUTH_CAPABILITY_SHORTFALL', severity: 'refuse', message: `this node cannot run it: ${s}` })))) return report

  // static
  const modes = new Map<string, number>()
  for (const e of collected.entries) {
    const st = await lstat(join(collected.root, ...e.path.split('/'))).catch(() => undefined)
    if (st !== undefined) modes.set(e.path, st.mode)
  }
  const staticFindings = [...packageFindings(collected, modes, policy), ...await pythonFindings(collected, policy, signal)]
  if (!record('static', staticFindings)) return report

  // dry run
  if (policy.skipDryRun !== undefined) {
    report.checks['dry-run'] = { status: 'skipped', findings: [], note: policy.skipDryRun }
    return report
  }
  record('dry-run', await dryRun(collected, taskpack, policy, report, signal))
  return report
}

async function publisherFindings (cid: string, policy: AuthPolicy, report: AuthReport, signal?: AbortSignal): Promise<Finding[]> {
  const f = (code: string, message: string): Finding[] => [{ check: 'publisher', code, severity: 'refuse', message }]
  if (policy.verifyPublisher === undefined) return f('AUTH_PUBLISHER_NO_VERIFIER', `no registry record can be checked for ${cid}: this node has no publisher verifier (a local directory is unsigned until it is published)`)
  let rec: PublisherRecord | undefined
  try {
    rec = await policy.verifyPublisher(cid, signal)
  } catch (err) {
    signal?.throwIfAborted()
    return f('AUTH_PUBLISHER_VERIFIER_FAILED', `the registry record of ${cid} could not be checked: ${(err as Error).message}`)
  }
  if (rec === undefined) return f('AUTH_PUBLISHER_UNSIGNED', `no publisher signed ${cid} in the registry`)
  report.publisher = rec
  if (!rec.verified) return f('AUTH_PUBLISHER_BAD_SIGNATURE', `the registry record of ${cid} claims publisher ${rec.publisher}, but its signature does not verify`)
  if (!policy.allowList.includes(rec.publisher)) {
    return f('AUTH_PUBLISHER_NOT_ALLOWED', `publisher ${rec.publisher} is not on this node's allow-list${policy.allowList.length === 0 ? ' (the list is empty)' : ''}`)
  }
  return []
}

async function dryRun (collected: CollectedTaskpack, taskpack: TaskpackCheck, policy: AuthPolicy, report: AuthReport, signal?: AbortSignal): Promise<Finding[]> {
  const warn = (code: string, message: string): Finding[] => [{ check: 'dry-run', code, severity: policy.dryRunRequired ? 'refuse' : 'warn', message }]
  const refuse = (code: string, message: string): Finding[] => [{ check: 'dry-run', code, severity: 'refuse', message }]
  const spec = taskpack.parsed.manifest.spec
  const samples = spec.sample_inputs ?? {}
  const missing = spec.inputs.filter(i => i.optional !== true && samples[i.name] === undefined).map(i => i.name)
  if (missing.length > 0) return warn('AUTH_DRY_RUN_NO_SAMPLES', `not dry-run: no sample input for ${missing.join(', ')} (set spec.sample_inputs)`)
  if (policy.runner === undefined) return warn('AUTH_DRY_RUN_SKIPPED', 'not dry-run: no sandbox runner is available')
  const inputs: Record<string, { file: string, bytes: Uint8Array }> = {}
  for (const [name, rel] of Object.entries(samples)) inputs[name] = { file: rel, bytes: collected.contents.get(rel) ?? new Uint8Array() }
  const stageOpts = policy.workDir !== undefined ? { parent: policy.workDir } : {}
  const staged = await stageRun(collected, { inputs, seed: 0, taskId: 'dry-run', ...(spec.entrypoint !== undefined ? { entrypoint: spec.entrypoint } : {}) }, stageOpts)
  try {
    const result = await policy.runner.run(staged.sandboxJob(`dry-run-${(report.cid ?? 'pack').slice(-16)}`, {
      memoryBytes: taskpack.parsed.resources.memoryBytes,
      gpu: taskpack.parsed.resources.gpu,
      timeoutMs: policy.dryRunTimeoutMs
    }), signal !== undefined ? { signal } : {})
    report.dryRun = { status: result.status, exitCode: result.exitCode, durationMs: result.durationMs, events: result.events, outputs: result.outputs, stderrTail: tail(result.stderr) }
    if (result.status === 'timeout') return refuse('AUTH_DRY_RUN_TIMEOUT', `the dry run on the sample inputs did not finish within ${result.resources.timeoutMs} ms and was killed`)
    if (result.status === 'oom') return refuse('AUTH_DRY_RUN_OOM', `the dry run on the sample inputs ran out of its ${result.resources.memoryBytes} bytes of memory`)
    if (result.status !== 'succeeded') return refuse('AUTH_DRY_RUN_FAILED', `the dry run on the sample inputs exited with ${result.exitCode}${report.dryRun.stderrTail !== '' ? `: ${report.dryRun.stderrTail}` : ''}`)
    if (!result.outputs.some(o => o.path === 'result.json')) return refuse('AUTH_DRY_RUN_FAILED', 'the dry run exited 0 but wrote no result.json')
    return []
  } catch (err) {
    signal?.throwIfAborted()
    return refuse('AUTH_DRY_RUN_ERROR', `the dry run could not run: ${(err as Error).message}`)
  } finally {
    try {
      report.cleanup = await staged.wipe()
      report.checks.cleanup = { status: 'passed', findings: [] }
    } catch (err) {
      const finding: Finding = { check: 'cleanup', code: 'AUTH_CLEANUP_FAILED', severity: 'warn', message: (err as Error).message }
      report.checks.cleanup = { status: 'warned', findings: [finding] }
      report.findings.push(finding)
    }
  }
}

/** The last line of a task's stderr (its error message), bounded. */
function tail (buf: Buffer): string {
  const lines = buf.toString('utf8').trim().split('\n')
  return (lines[lines.length - 1] ?? '').slice(0, 500)
}
