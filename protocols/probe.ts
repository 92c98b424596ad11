import { accept, reject, ignore, type Verdict } from './validation.js'

/**
 * A swarm probe: a tiny gossip message that any operator can publish to check that gossip
 * reaches every daemon, and to measure its latency. Carried on `/bitflow/<network>/probe/1` and
 * signed by gossipsub's StrictSign with the sender's key.
 */
export interface ProbeMessage {
  v: 1
  id: string
  origin: string
  sentAtMs: number
  payload?: string
}

export const PROBE_MAX_BYTES = 2048
/** How far a probe's clock may be from ours before it is ignored as stale or from the future. */
export const PROBE_CLOCK_WINDOW_MS = 60_000

export function encodeProbe (message: ProbeMessage): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(message))
}

/**
 * Validates a probe received from gossip. `from` is the peer id gossipsub authenticated as the
 * publisher; the probe must name the same origin.
 */
export function validateProbe (data: Uint8Array, from: string, nowMs: number): Verdict<ProbeMessage> {
  if (data.length > PROBE_MAX_BYTES) return reject(`probe of ${data.length} bytes exceeds ${PROBE_MAX_BYTES}`)
  let parsed: unknown
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data))
  } catch {
    return reject('probe is not UTF-8 JSON')
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return reject('probe is not an object')
  const m = parsed as Record<string, unknown>
  const allowed = new Set(['v', 'id', 'origin', 'sentAtMs', 'payload'])
  for (const key of Object.keys(m)) if (!allowed.has(key)) return reject(`probe has unknown field ${key}`)
  if (m.v !== 1) return reject('probe version is not 1')
  if (typeof m.id !== 'string' || !/^[0-9a-f]{8,64}$/.test(m.id)) return reject('probe id must be 8-64 hex characters')
  if (typeof m.origin !== 'string' || m.origin !== from) return reject('probe origin does not match its signer')
  if (typeof m.sentAtMs !== 'number' || !Number.isSafeInteger(m.sentAtMs)) return reject('probe sentAtMs is not an integer')
  if (m.payload !== undefined && typeof m.payload !== 'string') return reject('probe payload is not a string')
  if (Math.abs(nowMs - m.sentAtMs) > PROBE_CLOCK_WINDOW_MS) return ignore('probe is outside the clock window')
  return accept({ v: 1, id: m.id, origin: m.origin, sentAtMs: m.sentAtMs, ...(m.payload !== undefined ? { payload: m.payload as string } : {}) })
}
