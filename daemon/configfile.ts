import { DaemonOptionsSchema, type DaemonOptions } from './options.js'
import type { TSchema } from '@sinclair/typebox'

/**
 * The commented config file that `bitflowd init` writes: every option, its description, and its
 * default, commented out so that the network preset and defaults stay in force until edited.
 */
export function commentedConfig (effective: DaemonOptions): string {
  const defaults = effective as unknown as Record<string, unknown>
  const lines = [
    '# bitflowd configuration (YAML).',
    '# Layering, lowest to highest: built-in defaults <- network preset (bootstrap/<network>.yaml)',
    '#   <- this file (--config or BITFLOW_CONFIG) <- environment (BITFLOW_*) <- command-line flags.',
    '# Uncomment a line to override the layers below it. Relative paths are relative to this file.',
    ''
  ]
  const props = (DaemonOptionsSchema as TSchema & { properties: Record<string, TSchema> }).properties
  for (const [key, schema] of Object.entries(props)) {
    emit(lines, key, schema, defaults[key], '')
  }
  return lines.join('\n') + '\n'
}

function emit (lines: string[], key: string, schema: TSchema, value: unknown, indent: string): void {
  const description = schema.description as string | undefined
  const nested = (schema as { properties?: Record<string, TSchema> }).properties
  if (nested !== undefined && schema.type === 'object') {
    lines.push(`${indent}# ${key}:`)
    for (const [k, s] of Object.entries(nested)) emit(lines, k, s, (value as Record<string, unknown> | undefined)?.[k], indent + '  ')
    return
  }
  if (description !== undefined) lines.push(`${indent}# ${description}`)
  lines.push(`${indent}# ${key}: ${value === undefined ? '' : JSON.stringify(value)}`)
}
