import { Ajv, type ValidateFunction, type ErrorObject } from 'ajv'
import type { TSchema, Static } from '@sinclair/typebox'
import { RpcError, RpcErrorCode, invalidParams, APPLICATION_ERRORS } from './errors.js'

export interface ParamSpec {
  name: string
  schema: TSchema
  required: boolean
  description?: string
}

export interface CallContext {
  /** the caller presented the RPC token */
  authorized: boolean
  /** set on WebSocket connections: where subscriptions deliver notifications */
  session?: RpcSession
  signal: AbortSignal
}

export interface RpcSession {
  readonly id: string
  notify: (method: string, params: unknown) => void
  onClose: (fn: () => void) => void
}

export interface MethodSpec {
  name: string
  summary: string
  description?: string
  params: ParamSpec[]
  result: { name: string, schema: TSchema, description?: string }
  /** state-changing methods require the token */
  mutating: boolean
  /** only over WebSocket (subscriptions) */
  websocketOnly?: boolean
  handler: (params: Record<string, unknown>, ctx: CallContext) => unknown
}

/** Helper that keeps a handler's params typed from its schemas. */
export function param<S extends TSchema> (name: string, schema: S, opts: { required?: boolean, description?: string } = {}): ParamSpec & { schema: S } {
  return { name, schema, required: opts.required ?? true, ...(opts.description !== undefined ? { description: opts.description } : {}) }
}

export type ParamsOf<P extends readonly ParamSpec[]> = { [K in P[number] as K['name']]: Static<K['schema']> }

interface Registered { spec: MethodSpec, validators: Map<string, ValidateFunction> }

/**
 * The JSON-RPC method table: specs with JSON Schemas for params and results, param checking, and
 * the OpenRPC document generated from the same table that serves the calls.
 */
export class RpcRegistry {
  readonly #methods = new Map<string, Registered>()
  readonly #ajv = new Ajv({ allErrors: false, strict: false, coerceTypes: false })
  readonly #info: { title: string, version: string, description: string }

  constructor (info: { title: string, version: string, description: string }) {
    this.#info = info
  }

  add (spec: MethodSpec): void {
    if (this.#methods.has(spec.name)) throw new Error(`RPC method ${spec.name} registered twice`)
    const validators = new Map<string, ValidateFunction>()
    for (const p of spec.params) validators.set(p.name, this.#ajv.compile(p.schema))
    this.#methods.set(spec.name, { spec, validators })
  }

  has (name: string): boolean { return this.#methods.has(name) }
  get (name: string): MethodSpec | undefined { return this.#methods.get(name)?.spec }
  names (): string[] { return [...this.#methods.keys()].sort() }

  /** Accepts params by position (array) or by name (object); returns them by name, validated. */
  normalizeParams (name: string, raw: unknown): Record<string, unknown> {
    const entry = this.#methods.get(name)
    if (entry === undefined) throw new RpcError(RpcErrorCode.MethodNotFound, `method '${name}' not found; rpc.discover lists every method`)
    const { spec, validators } = entry
    const byName: Record<string, unknown> = {}
    if (raw === undefined || raw === null) {
      // no params at all
    } else if (Array.isArray(raw)) {
      if (raw.length > spec.params.length) throw invalidParams(`${name} takes at most ${spec.params.length} params, got ${raw.length}`)
      raw.forEach((v, i) => { byName[spec.params[i]!.name] = v })
    } else if (typeof raw === 'object') {
      const known = new Set(spec.params.map(p => p.name))
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (!known.has(k)) throw invalidParams(`${name} has no param '${k}'${known.size > 0 ? `; its params are ${[...known].join(', ')}` : ''}`)
        byName[k] = v
      }
    } else {
      throw invalidParams('params must be an array or an object')
    }
    for (const p of spec.params) {
      const value = byName[p.name]
      if (value === undefined || value === null) {
        if (p.required) throw invalidParams(`missing required param '${p.name}' of ${name}`)
        delete byName[p.name]
        continue
      }
      const validate = validators.get(p.name)!
      if (!validate(value)) throw invalidParams(`param '${p.name}' of ${name} ${describe(validate.errors?.[0])}`)
    }
    return byName
  }

  openrpc (): unknown {
    return {
      openrpc: '1.3.2',
      info: this.#info,
      methods: this.names().map(n => {
        const spec = this.#methods.get(n)!.spec
        return {
          name: spec.name,
          summary: spec.summary,
          ...(spec.description !== undefined ? { description: spec.description } : {}),
          paramStructure: 'either',
          params: spec.params.map(p => ({ name: p.name, required: p.required, schema: p.schema, ...(p.description !== undefined ? { description: p.description } : {}) })),
          result: { name: spec.result.name, schema: spec.result.schema, ...(spec.result.description !== undefined ? { description: spec.result.description } : {}) },
          ...(spec.mutating ? { 'x-requires-token': true } : {}),
          ...(spec.websocketOnly === true ? { 'x-websocket-only': true } : {})
        }
      }),
      components: {
        errors: Object.fromEntries(APPLICATION_ERRORS.map(e => [e.message.replaceAll(' ', ''), { code: e.code, message: e.message, data: e.description }]))
      }
    }
  }
}

function describe (e: ErrorObject | undefined): string {
  if (e === undefined) return 'is invalid'
  const where = e.instancePath === '' ? '' : ` at ${e.instancePath}`
  return `${e.message ?? 'is invalid'}${where}`
}
