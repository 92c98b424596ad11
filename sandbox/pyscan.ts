/**
 * Static analysis of untrusted Python source on its syntax tree. A small checker script runs under
 * the host's python3 in isolated mode (`-I -S -B`: no environment, no site, no bytecode) and only
 * parses: `ast.parse` never executes the code it reads. Source goes in on stdin and a JSON report
 * comes out, both size-capped and time-bounded.
 */
import { spawn } from 'node:child_process'
import { SandboxError } from './errors.js'

/** The interpreter that parses untrusted source (the host's Debian python3, same version as the image). */
export const HOST_PYTHON = '/usr/bin/python3'

const SCRIPT = String.raw`
import ast, json, sys

def dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return '.'.join(reversed(parts))
    return None

DYNAMIC = {'__import__': 'import', 'importlib.import_module': 'import', 'importlib.__import__': 'import',
           'exec': 'exec', 'eval': 'eval', 'compile': 'compile'}

def scan(source):
    tree = ast.parse(source, mode='exec')
    imports, dynamic = [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                imports.append({'module': a.name, 'line': node.lineno, 'level': 0})
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            imports.append({'module': base, 'line': node.lineno, 'level': node.level})
            for a in node.names:
                if a.name != '*':
                    imports.append({'module': (base + '.' if base else '') + a.name, 'line': node.lineno, 'level': node.level, 'from': True})
        elif isinstance(node, ast.Call):
            name = dotted(node.func)
            if name in DYNAMIC:
                arg = node.args[0] if node.args else None
                literal = arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None
                dynamic.append({'call': name, 'kind': DYNAMIC[name], 'line': node.lineno, 'literal': literal})
    return {'imports': imports, 'dynamic': dynamic}

def main():
    request = json.loads(sys.stdin.read())
    out = []
    for f in request['files']:
        r = {'path': f['path']}
        try:
            r.update(scan(f['source']))
        except SyntaxError as e:
            r['error'] = {'line': e.lineno or 0, 'message': e.msg or 'invalid syntax'}
        except (RecursionError, MemoryError):
            r['error'] = {'line': 0, 'message': 'the code is nested too deeply to parse'}
        except ValueError as e:
            r['error'] = {'line': 0, 'message': str(e)}
        out.append(r)
    names = sorted(getattr(sys, 'stdlib_module_names', ()))
    sys.stdout.write(json.dumps({'python': '%d.%d.%d' % sys.version_info[:3], 'stdlib': names, 'files': out}))

main()
`

export interface PyImport {
  /** dotted module name; for `from a import b` both `a` and `a.b` are listed (b may be a name, not a module) */
  module: string
  line: number
  /** relative import level (0: absolute) */
  level: number
  /** the entry names something imported with `from ... import` */
  from?: boolean
}

export interface PyDynamic {
  /** `__import__`, `importlib.import_module`, `exec`, `eval`, `compile` */
  call: string
  kind: 'import' | 'exec' | 'eval' | 'compile'
  line: number
  /** the first argument when it is a string literal */
  literal: string | null
}

export interface PyFileScan {
  path: string
  imports?: PyImport[]
  dynamic?: PyDynamic[]
  /** the file does not parse */
  error?: { line: number, message: string }
}

export interface PyScan {
  python: string
  /** top-level names of the standard library (sys.stdlib_module_names) */
  stdlib: Set<string>
  files: PyFileScan[]
}

/** The Python checker could not run (no python3, timeout, garbled report). */
export class PyScanError extends SandboxError {
  constructor (message: string, cause?: unknown) { super('ERR_PYSCAN', message, { cause }) }
}

export interface PyScanOptions {
  python?: string
  timeoutMs?: number
  signal?: AbortSignal
}

/** Most source one scan accepts (the whole request, JSON-encoded). */
export const MAX_SCAN_BYTES = 32 * 1024 * 1024

/** Parses each file's source with python3's `ast` and lists its imports and dynamic-code calls. */
export async function scanPython (files: Array<{ path: string, source: string }>, options: PyScanOptions = {}): Promise<PyScan> {
  const python = options.python ?? HOST_PYTHON
  const input = JSON.stringify({ files })
  if (Buffer.byteLength(input) > MAX_SCAN_BYTES) throw new PyScanError(`the Python sources to check are over ${MAX_SCAN_BYTES} bytes`)
  const timeoutMs = options.timeoutMs ?? 30_000
  const { code, stdout, stderr } = await new Promise<{ code: number | null, stdout: string, stderr: string }>((resolve, reject) => {
    const child = spawn(python, ['-I', '-S', '-B', '-c', SCRIPT], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', PYTHONHASHSEED: '0' },
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      ...(options.signal !== undefined ? { signal: options.signal } : {})
    })
    let out = ''
    let err = ''
    let outBytes = 0
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      outBytes += d.length
      if (outBytes > 64 * 1024 * 1024) { child.kill('SIGKILL'); return }
      out += d
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { if (err.length < 64 * 1024) err += d })
    child.once('error', (e: NodeJS.ErrnoException) => {
      if (options.signal?.aborted === true) { reject(options.signal.reason); return }
      reject(new PyScanError(e.code === 'ENOENT' ? `${python} is not installed; the static checks need python3 (apt-get install python3)` : `cannot run ${python}: ${e.message}`, e))
    })
    child.once('close', (c, sig) => { resolve({ code: sig !== null ? null : c, stdout: out, stderr: err }) })
    child.stdin.on('error', () => { /* the child died early; reported by close */ })
    child.stdin.end(input)
  })
  options.signal?.throwIfAborted()
  if (code !== 0) throw new PyScanError(code === null ? `the Python checker did not finish within ${timeoutMs} ms` : `the Python checker failed (exit ${code}): ${stderr.trim().split('\n').slice(-1)[0] ?? ''}`)
  let report: { python: string, stdlib: string[], files: PyFileScan[] }
  try {
    report = JSON.parse(stdout) as typeof report
  } catch (err) {
    throw new PyScanError('the Python checker printed no valid report', err)
  }
  if (!Array.isArray(report.files) || report.files.length !== files.length) throw new PyScanError('the Python checker reported on the wrong number of files')
  return { python: report.python, stdlib: new Set(report.stdlib), files: report.files }
}

/** Top-level package of a dotted module name. */
export function topLevel (module: string): string {
  return module.split('.')[0] ?? module
}

/** `module` is `prefix` or inside it (`os.path` is inside `os`). */
export function moduleWithin (module: string, prefix: string): boolean {
  return module === prefix || module.startsWith(`${prefix}.`)
}
