import { parseDocument, isMap, isSeq, isScalar, LineCounter, type Document } from 'yaml'
import type { ErrorObject } from 'ajv'
import type { Issue } from './errors.js'

/** A parsed YAML document that can answer "which line is this field on". */
export interface LocatedYaml {
  value: unknown
  lineOf: (path: ReadonlyArray<string | number>) => number | undefined
}

export type YamlResult = { ok: true, doc: LocatedYaml } | { ok: false, issues: Issue[] }

/**
 * Parses YAML 1.2 (core schema: no timestamps, no `yes`/`no` booleans), rejecting duplicate keys and
 * alias bombs, and keeps line positions for error messages.
 */
export function parseYamlLocated (text: string): YamlResult {
  const lc = new LineCounter()
  const doc: Document = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, version: '1.2' })
  if (doc.errors.length > 0) {
    return {
      ok: false,
      issues: doc.errors.map(e => {
        const line = e.linePos?.[0]?.line ?? lc.linePos(e.pos[0]).line
        return { path: '', line, message: `not valid YAML: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}` }
      })
    }
  }
  let value: unknown
  try {
    value = doc.toJS({ maxAliasCount: 64 })
  } catch (err) {
    return { ok: false, issues: [{ path: '', line: 1, message: `not valid YAML: ${(err as Error).message}` }] }
  }
  const lineOf = (path: ReadonlyArray<string | number>): number | undefined => {
    let node: unknown = doc.contents
    let line: number | undefined
    const start = (n: unknown): number | undefined => {
      const range = (n as { range?: [number, number, number] } | null)?.range
      return range !== undefined ? lc.linePos(range[0]).line : undefined
    }
    line = start(node)
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find(p => isScalar(p.key) ? String(p.key.value) === String(seg) : false)
        if (pair === undefined) break
        line = start(pair.key) ?? line
        node = pair.value
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg]
        if (item === undefined) break
        line = start(item) ?? line
        node = item
      } else {
        break
      }
    }
    return line
  }
  return { ok: true, doc: { value, lineOf } }
}

/** `['spec', 'inputs', 1, 'name']` -> `spec.inputs[1].name` */
export function displayPath (segments: ReadonlyArray<string | number>): string {
  let out = ''
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`
    else out += out === '' ? s : `.${s}`
  }
  return out
}

export function pointerSegments (instancePath: string, data?: unknown): Array<string | number> {
  if (instancePath === '') return []
  const raw = instancePath.slice(1).split('/').map(s => s.replaceAll('~1', '/').replaceAll('~0', '~'))
  // a segment is an array index only where the data at that point is an array
  const out: Array<string | number> = []
  let cursor: unknown = data
  for (const s of raw) {
    if (Array.isArray(cursor) && /^\d+$/.test(s)) {
      out.push(Number(s))
      cursor = cursor[Number(s)]
    } else {
      out.push(s)
      cursor = cursor !== null && typeof cursor === 'object' ? (cursor as Record<string, unknown>)[s] : undefined
    }
  }
  return out
}

export function describeValue (v: unknown): string {
  if (v === null || v === undefined) return 'nothing'
  if (typeof v === 'string') return `'${v.length > 60 ? v.slice(0, 57) + '...' : v}'`
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`
  if (Array.isArray(v)) return 'a list'
  return 'a mapping'
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string', number: 'a number', integer: 'an integer', boolean: 'true or false',
  object: 'a mapping', array: 'a list', null: 'null'
}

/** Closest candidate by edit distance, for "did you mean" hints on unknown keys. */
export function closest (word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestD = Infinity
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase())
    if (d < bestD) { bestD = d; best = c }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined
}

function editDistance (a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!
    prev[0] = i
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1))
      diag = tmp
    }
  }
  return prev[b.length]!
}

/**
 * Turns ajv errors (compiled with `allErrors` and `verbose`) into one readable issue per problem.
 * Schemas may carry a `hint` keyword ("a semantic version like 1.0.0") used in place of the raw
 * pattern or anyOf wording.
 */
export function ajvIssues (errors: ErrorObject[], data: unknown, lineOf?: (path: ReadonlyArray<string | number>) => number | undefined): Issue[] {
  // errors from the branches of a failed anyOf are noise once the anyOf itself is reported
  // unless the value took the shape of one branch (a list, say) and failed deeper inside it: then
  // the deeper errors say more than the anyOf does
  const anyOfPaths = errors.filter(e => e.keyword === 'anyOf').map(e => e.instancePath)
  const deeper = (p: string): boolean => errors.some(e => e.instancePath.startsWith(p + '/'))
  const issues: Issue[] = []
  const seen = new Set<string>()
  for (const e of errors) {
    if (e.keyword === 'anyOf' && deeper(e.instancePath)) continue
    if (e.keyword !== 'anyOf' && anyOfPaths.some(p => (e.instancePath === p && !deeper(p)) || (e.instancePath === p && e.keyword === 'type'))) continue
    if (e.keyword === 'if') continue
    const segs = pointerSegments(e.instancePath, data)
    const path = displayPath(segs)
    const here = path === '' ? 'the document' : path
    const hint = (e.parentSchema as { hint?: string } | undefined)?.hint
    let message: string
    let at = segs
    switch (e.keyword) {
      case 'required': {
        const missing = (e.params as { missingProperty: string }).missingProperty
        message = `${displayPath([...segs, missing])} is required`
        // located at the parent (the field itself has no line), named by the missing field
        const line = lineOf?.(segs)
        if (!seen.has(message)) {
          seen.add(message)
          issues.push(line !== undefined ? { path: displayPath([...segs, missing]), line, message } : { path: displayPath([...segs, missing]), message })
        }
        continue
      }
      case 'additionalProperties': {
        const extra = (e.params as { additionalProperty: string }).additionalProperty
        const known = Object.keys((e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {})
        const guess = closest(extra, known)
        at = [...segs, extra]
        message = `unknown field '${displayPath(at)}'` + (guess !== undefined ? ` (did you mean '${guess}'?)` : known.length > 0 ? ` (known: ${known.join(', ')})` : '')
        break
      }
      case 'enum': {
        const allowed = (e.params as { allowedValues: unknown[] }).allowedValues
        message = `${here} must be one of ${allowed.map(String).join(', ')} (got ${describeValue(e.data)})`
        break
      }
      case 'const':
        message = `${here} must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)} (got ${describeValue(e.data)})`
        break
      case 'type': {
        const want = String((e.params as { type: string }).type).split(',').map(t => TYPE_WORDS[t] ?? t).join(' or ')
        const quote = (typeof e.data === 'number' || typeof e.data === 'boolean') && want.includes('a string') ? '; quote it to make it a string' : ''
        message = `${here} must be ${hint ?? want} (got ${describeValue(e.data)}${quote})`
        break
      }
      case 'pattern':
      case 'format':
        message = `${here} must be ${hint ?? `a string matching ${(e.params as { pattern?: string }).pattern ?? 'the expected format'}`} (got ${describeValue(e.data)})`
        break
      case 'anyOf':
      case 'oneOf':
        message = `${here} must be ${hint ?? 'one of the allowed forms'} (got ${describeValue(e.data)})`
        break
      case 'minimum': case 'maximum': case 'exclusiveMinimum': case 'exclusiveMaximum': {
        const p = e.params as { comparison: string, limit: number }
        message = `${here} must be ${p.comparison} ${p.limit} (got ${describeValue(e.data)})`
        break
      }
      default:
        message = `${here} ${e.message ?? 'is invalid'}`
    }
    if (seen.has(message)) continue
    seen.add(message)
    const line = lineOf?.(at)
    issues.push(line !== undefined ? { path: displayPath(at), line, message } : { path: displayPath(at), message })
  }
  return sortIssues(issues)
}

export function sortIssues (issues: Issue[]): Issue[] {
  return issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || a.path.localeCompare(b.path))
}
