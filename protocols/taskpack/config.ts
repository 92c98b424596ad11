import { Ajv, type ValidateFunction } from 'ajv'
import { TaskpackConfigError, type Issue } from './errors.js'
import { parseYamlLocated, ajvIssues } from './yaml.js'

export const CONFIG_SCHEMA_FILE = 'configs/schema.json'
export const CONFIG_DEFAULTS_FILE = 'configs/default.yaml'
const MAX_SCHEMA_BYTES = 256 * 1024
const MAX_DEFAULTS_BYTES = 256 * 1024
const MAX_SCHEMA_DEPTH = 16
const MAX_SCHEMA_NODES = 2000

/**
 * configs/schema.json may use only this subset of JSON Schema. The subset is what the Python SDK
 * validates inside the sandbox too, so both sides agree; it also keeps untrusted schemas away from
 * the parts of ajv that generate heavy code or run regular expressions (no `pattern`, no `$ref`).
 */
export const CONFIG_SCHEMA_KEYWORDS = [
  'type', 'properties', 'required', 'enum', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum',
  'minLength', 'maxLength', 'minItems', 'maxItems', 'items', 'additionalProperties',
  'title', 'description', 'default', 'examples', '$schema', '$comment'
] as const
const KEYWORDS = new Set<string>(CONFIG_SCHEMA_KEYWORDS)
const TYPES = new Set(['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'])

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue }

export interface ConfigSchema {
  /** the schema as parsed */
  schema: Record<string, unknown>
  validate: ValidateFunction
}

/** Parses configs/schema.json, checks it stays within the supported subset, and compiles it. */
export function parseConfigSchema (text: string, file = CONFIG_SCHEMA_FILE): ConfigSchema {
  if (Buffer.byteLength(text, 'utf8') > MAX_SCHEMA_BYTES) throw new TaskpackConfigError(file, [{ path: '', message: `is larger than ${MAX_SCHEMA_BYTES} bytes` }])
  let schema: unknown
  try {
    schema = JSON.parse(text)
  } catch (err) {
    throw new TaskpackConfigError(file, [{ path: '', message: `is not valid JSON: ${(err as Error).message}` }])
  }
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) throw new TaskpackConfigError(file, [{ path: '', message: 'must be a JSON object (a JSON Schema)' }])
  const issues: Issue[] = []
  const root = schema as Record<string, unknown>
  if (root.type !== 'object') issues.push({ path: 'type', message: "the top-level schema must have type 'object' (parameters are a mapping)" })
  const counter = { nodes: 0 }
  checkSubset(root, '', 0, issues, counter)
  if (issues.length > 0) throw new TaskpackConfigError(file, issues)
  // one compiler per schema: ajv caches compiled schemas, and these come from untrusted packs
  const ajv = new Ajv({ allErrors: true, strict: false, verbose: true, validateSchema: true })
  let validate: ValidateFunction
  try {
    validate = ajv.compile(root)
  } catch (err) {
    throw new TaskpackConfigError(file, [{ path: '', message: `is not a valid JSON Schema: ${(err as Error).message}` }])
  }
  return { schema: root, validate }
}

function checkSubset (s: unknown, path: string, depth: number, issues: Issue[], counter: { nodes: number }): void {
  const where = path === '' ? 'the top-level schema' : path
  if (++counter.nodes > MAX_SCHEMA_NODES) {
    if (counter.nodes === MAX_SCHEMA_NODES + 1) issues.push({ path, message: `has more than ${MAX_SCHEMA_NODES} schema nodes` })
    return
  }
  if (depth > MAX_SCHEMA_DEPTH) { issues.push({ path, message: `${where} nests deeper than ${MAX_SCHEMA_DEPTH} levels` }); return }
  if (typeof s === 'boolean') return
  if (s === null || typeof s !== 'object' || Array.isArray(s)) { issues.push({ path, message: `${where} must be a schema object` }); return }
  const o = s as Record<string, unknown>
  const sub = (k: string): string => path === '' ? k : `${path}.${k}`
  for (const k of Object.keys(o)) {
    if (!KEYWORDS.has(k)) issues.push({ path: sub(k), message: `${where} uses '${k}', which configs/schema.json does not support (supported: ${CONFIG_SCHEMA_KEYWORDS.join(', ')})` })
  }
  if (o.type !== undefined) {
    const types = Array.isArray(o.type) ? o.type : [o.type]
    if (types.length === 0 || !types.every(t => typeof t === 'string' && TYPES.has(t))) issues.push({ path: sub('type'), message: `${sub('type')} must be one of ${[...TYPES].join(', ')} or a list of them` })
  }
  for (const k of ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'] as const) {
    if (o[k] !== undefined && (typeof o[k] !== 'number' || !Number.isFinite(o[k]))) issues.push({ path: sub(k), message: `${sub(k)} must be a number` })
  }
  for (const k of ['minLength', 'maxLength', 'minItems', 'maxItems'] as const) {
    if (o[k] !== undefined && !(Number.isSafeInteger(o[k]) && (o[k] as number) >= 0)) issues.push({ path: sub(k), message: `${sub(k)} must be a non-negative integer` })
  }
  if (o.required !== undefined && !(Array.isArray(o.required) && o.required.every(r => typeof r === 'string'))) issues.push({ path: sub('required'), message: `${sub('required')} must be a list of property names` })
  if (o.enum !== undefined) {
    if (!Array.isArray(o.enum) || o.enum.length === 0 || !o.enum.every(v => v === null || ['string', 'number', 'boolean'].includes(typeof v))) {
      issues.push({ path: sub('enum'), message: `${sub('enum')} must be a non-empty list of strings, numbers, booleans or null` })
    }
  }
  if (o.properties !== undefined) {
    if (o.properties === null || typeof o.properties !== 'object' || Array.isArray(o.properties)) issues.push({ path: sub('properties'), message: `${sub('properties')} must be an object of schemas` })
    else for (const [name, p] of Object.entries(o.properties)) checkSubset(p, `${sub('properties')}.${name}`, depth + 1, issues, counter)
  }
  if (o.items !== undefined) {
    if (Array.isArray(o.items)) issues.push({ path: sub('items'), message: `${sub('items')} must be one schema (tuple forms are not supported)` })
    else checkSubset(o.items, sub('items'), depth + 1, issues, counter)
  }
  if (o.additionalProperties !== undefined && typeof o.additionalProperties !== 'boolean') checkSubset(o.additionalProperties, sub('additionalProperties'), depth + 1, issues, counter)
}

/** Parses configs/default.yaml and validates it against the schema; issues carry field and line. */
export function parseConfigDefaults (text: string, schema: ConfigSchema, file = CONFIG_DEFAULTS_FILE): Record<string, JsonValue> {
  if (Buffer.byteLength(text, 'utf8') > MAX_DEFAULTS_BYTES) throw new TaskpackConfigError(file, [{ path: '', message: `is larger than ${MAX_DEFAULTS_BYTES} bytes` }])
  const parsed = parseYamlLocated(text)
  if (!parsed.ok) throw new TaskpackConfigError(file, parsed.issues)
  const value = parsed.doc.value ?? {}
  if (typeof value !== 'object' || Array.isArray(value)) throw new TaskpackConfigError(file, [{ path: '', line: 1, message: 'must be a YAML mapping of parameter names to values' }])
  if (!schema.validate(value)) throw new TaskpackConfigError(file, ajvIssues(schema.validate.errors ?? [], value, p => parsed.doc.lineOf(p) ?? 1))
  return value as Record<string, JsonValue>
}

/**
 * The parameters a task runs with: the user's parameters layered over the defaults (mappings merge,
 * everything else replaces), validated against the schema. Throws naming each wrong parameter.
 */
export function resolveParams (schema: ConfigSchema, defaults: Record<string, JsonValue>, params: unknown, where = 'parameters'): Record<string, JsonValue> {
  if (params === undefined || params === null) params = {}
  if (typeof params !== 'object' || Array.isArray(params)) throw new TaskpackConfigError(where, [{ path: '', message: 'must be an object of parameter names to values' }])
  const problems: Issue[] = []
  checkJson(params, '', problems)
  if (problems.length > 0) throw new TaskpackConfigError(where, problems)
  const merged = merge(defaults, params as Record<string, JsonValue>)
  if (!schema.validate(merged)) throw new TaskpackConfigError(where, ajvIssues(schema.validate.errors ?? [], merged))
  return merged
}

function checkJson (v: unknown, path: string, issues: Issue[]): void {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) issues.push({ path, message: `${path} must be a finite number` })
    return
  }
  if (Array.isArray(v)) { v.forEach((x, i) => { checkJson(x, `${path}[${i}]`, issues) }); return }
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    for (const [k, x] of Object.entries(v)) checkJson(x, path === '' ? k : `${path}.${k}`, issues)
    return
  }
  issues.push({ path, message: `${path === '' ? 'the parameters' : path} must be JSON data (got ${typeof v})` })
}

function merge (base: Record<string, JsonValue>, over: Record<string, JsonValue>): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = Object.create(null) as Record<string, JsonValue>
  for (const [k, v] of Object.entries(base)) out[k] = v
  for (const [k, v] of Object.entries(over)) {
    const cur = out[k]
    const isMap = (x: JsonValue | undefined): x is Record<string, JsonValue> => x !== null && typeof x === 'object' && !Array.isArray(x)
    out[k] = isMap(cur) && isMap(v) ? merge(cur, v) : v
  }
  // back to a plain object so callers can JSON.stringify and compare it normally
  return { ...out }
}
