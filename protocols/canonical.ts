/**
 * Canonical JSON: object keys sorted, no whitespace, only JSON-safe values. Used wherever bytes
 * must be identical on every machine (hashes, signatures, content ids).
 */
export function canonicalJson (value: unknown): string {
  return serialize(value)
}

function serialize (value: unknown): string {
  if (value === null) return 'null'
  switch (typeof value) {
    case 'string': return JSON.stringify(value)
    case 'boolean': return value ? 'true' : 'false'
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonical JSON cannot encode a non-finite number')
      return JSON.stringify(value)
    case 'bigint': return JSON.stringify(value.toString())
    case 'object': {
      if (Array.isArray(value)) return `[${value.map(serialize).join(',')}]`
      if (value instanceof Uint8Array) throw new TypeError('canonical JSON cannot encode bytes; encode them as a string first')
      const keys = Object.keys(value as Record<string, unknown>)
        .filter(k => (value as Record<string, unknown>)[k] !== undefined)
        .sort()
      return `{${keys.map(k => `${JSON.stringify(k)}:${serialize((value as Record<string, unknown>)[k])}`).join(',')}}`
    }
    default:
      throw new TypeError(`canonical JSON cannot encode a ${typeof value}`)
  }
}

export function canonicalBytes (value: unknown): Uint8Array {
  return new TextEncoder().encode(canonicalJson(value))
}
