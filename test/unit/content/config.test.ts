import { describe, it, expect } from 'vitest'
import { parseConfigSchema, parseConfigDefaults, resolveParams } from '../../../protocols/taskpack/config.js'
import { TaskpackConfigError } from '../../../protocols/taskpack/errors.js'

const SCHEMA = JSON.stringify({
  type: 'object',
  properties: {
    learning_rate: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
    epochs: { type: 'integer', minimum: 1 },
    optimizer: {
      type: 'object',
      properties: { kind: { type: 'string', enum: ['sgd', 'adam'] }, betas: { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2 } },
      required: ['kind'],
      additionalProperties: false
    }
  },
  required: ['learning_rate', 'epochs'],
  additionalProperties: false
})

const DEFAULTS = `learning_rate: 0.1
epochs: 10
optimizer:
  kind: adam
  betas: [0.9, 0.999]
`

function configError (fn: () => unknown): TaskpackConfigError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(TaskpackConfigError)
    return err as TaskpackConfigError
  }
  throw new Error('accepted')
}

describe('taskpack config', () => {
  const schema = parseConfigSchema(SCHEMA)

  it('validates configs/default.yaml against configs/schema.json', () => {
    expect(parseConfigDefaults(DEFAULTS, schema)).toEqual({ learning_rate: 0.1, epochs: 10, optimizer: { kind: 'adam', betas: [0.9, 0.999] } })
  })

  it('names the wrong default and its line', () => {
    const e = configError(() => parseConfigDefaults(DEFAULTS.replace('kind: adam', 'kind: rmsprop'), schema))
    expect(e.code).toBe('ERR_TASKPACK_CONFIG')
    expect(e.message).toBe("configs/default.yaml line 4: optimizer.kind must be one of sgd, adam (got 'rmsprop')")
    expect(configError(() => parseConfigDefaults(DEFAULTS.replace('epochs: 10', 'epochs: 2.5'), schema)).message).toBe('configs/default.yaml line 2: epochs must be an integer (got number 2.5)')
    expect(configError(() => parseConfigDefaults(DEFAULTS.replace('epochs: 10\n', ''), schema)).message).toBe('configs/default.yaml line 1: epochs is required')
    expect(configError(() => parseConfigDefaults(DEFAULTS + 'momentum: 0.9\n', schema)).message).toMatch(/line 6: unknown field 'momentum'/)
  })

  it('layers user parameters over the defaults and names each bad one', () => {
    const defaults = parseConfigDefaults(DEFAULTS, schema)
    expect(resolveParams(schema, defaults, { epochs: 3, optimizer: { kind: 'sgd' } })).toEqual({ learning_rate: 0.1, epochs: 3, optimizer: { kind: 'sgd', betas: [0.9, 0.999] } })
    expect(configError(() => resolveParams(schema, defaults, { learning_rate: 5 })).message).toBe('parameters: learning_rate must be <= 1 (got number 5)')
    expect(configError(() => resolveParams(schema, defaults, { optimizer: { betas: [1] } })).message).toBe('parameters: optimizer.betas must NOT have fewer than 2 items')
    expect(configError(() => resolveParams(schema, defaults, { lr: 0.5 })).message).toBe("parameters: unknown field 'lr' (known: learning_rate, epochs, optimizer)")
    expect(configError(() => resolveParams(schema, defaults, [1])).message).toMatch(/must be an object/)
    expect(configError(() => resolveParams(schema, defaults, { epochs: Number.NaN })).message).toMatch(/epochs must be a finite number/)
  })

  it('refuses schemas outside the supported subset', () => {
    const e = configError(() => parseConfigSchema(JSON.stringify({ type: 'object', properties: { name: { type: 'string', pattern: '^(a+)+$' } } })))
    expect(e.message).toMatch(/configs\/schema\.json: properties\.name uses 'pattern', which configs\/schema\.json does not support/)
    expect(configError(() => parseConfigSchema(JSON.stringify({ type: 'object', properties: { a: { $ref: '#' } } }))).message).toMatch(/'\$ref'/)
    expect(configError(() => parseConfigSchema('{"type": "array"}')).message).toMatch(/top-level schema must have type 'object'/)
    expect(configError(() => parseConfigSchema('{nope')).message).toMatch(/not valid JSON/)
    expect(configError(() => parseConfigSchema(JSON.stringify({ type: 'object', properties: { a: { type: 'strin' } } }))).message).toMatch(/properties\.a\.type must be one of/)
    let deep: Record<string, unknown> = { type: 'number' }
    for (let i = 0; i < 20; i++) deep = { type: 'object', properties: { x: deep } }
    expect(configError(() => parseConfigSchema(JSON.stringify(deep))).message).toMatch(/nests deeper than 16/)
  })

  it('reports YAML errors in defaults with the line', () => {
    expect(configError(() => parseConfigDefaults('a: 1\nb: [1,\n', schema)).message).toMatch(/^configs\/default\.yaml line \d: not valid YAML/)
  })
})
