/** Connecting to bitflow's Docker engine and finding the runtime image. */
import { readFile, stat } from 'node:fs/promises'
import type Docker from 'dockerode'
import { EngineUnavailableError, ImageUnavailableError } from './errors.js'

export interface EngineInfo { version: string, apiVersion: string, cgroupVersion?: string }

/** A dockerode client on the socket, checked with a ping (bounded, abortable). */
export async function connectEngine (socketPath: string, options: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<{ docker: Docker, info: EngineInfo }> {
  try {
    const st = await stat(socketPath)
    if (!st.isSocket()) throw new Error('not a socket')
  } catch (err) {
    throw new EngineUnavailableError(socketPath, err)
  }
  // loaded on first use: dockerode (and its gRPC stack) costs every bitflowd start otherwise
  const { default: DockerClient } = await import('dockerode')
  const docker = new DockerClient({ socketPath, timeout: options.timeoutMs ?? 10_000 })
  const signal = anySignal(options.signal, AbortSignal.timeout(options.timeoutMs ?? 10_000))
  try {
    const v = await withSignal(docker.version(), signal)
    return { docker, info: { version: v.Version, apiVersion: v.ApiVersion } }
  } catch (err) {
    options.signal?.throwIfAborted()
    throw new EngineUnavailableError(socketPath, err)
  }
}

export interface ImageRecord { image: string, id: string, inputsHash?: string, sdkHash?: string, builtAt?: string }

/** Reads the record written by scripts/build-image.sh. */
export async function readImageRecord (path: string): Promise<ImageRecord> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new ImageUnavailableError(`the runtime image is not built (no image record at ${path})`, err)
  }
  let rec: unknown
  try { rec = JSON.parse(text) } catch (err) { throw new ImageUnavailableError(`the image record ${path} is not valid JSON`, err) }
  const r = rec as Partial<ImageRecord>
  if (typeof r.id !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(r.id) || typeof r.image !== 'string') {
    throw new ImageUnavailableError(`the image record ${path} has no valid image id`)
  }
  return r as ImageRecord
}

/** The image id, checked to exist in the engine. */
export async function resolveImage (docker: Docker, source: { image?: string, imageRecord: string }, signal?: AbortSignal): Promise<{ id: string, tag?: string }> {
  const rec = source.image === undefined ? await readImageRecord(source.imageRecord) : undefined
  const id = source.image ?? rec!.id
  try {
    const info = await withSignal(docker.getImage(id).inspect(), signal)
    if (info.Id !== id) throw new Error(`engine reports ${info.Id}`)
  } catch (err) {
    signal?.throwIfAborted()
    throw new ImageUnavailableError(`the runtime image ${id}${rec !== undefined ? ` (${rec.image}, from ${source.imageRecord})` : ''} is not in the engine`, err)
  }
  return { id, ...(rec !== undefined ? { tag: rec.image } : {}) }
}

/** `promise`, or the signal's reason if it aborts first (the request itself is left to finish). */
export async function withSignal<T> (promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal === undefined) return await promise
  signal.throwIfAborted()
  let onAbort: (() => void) | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => {
      onAbort = () => { reject(signal.reason) }
      signal.addEventListener('abort', onAbort, { once: true })
    })])
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
}

/** AbortSignal.any that tolerates a missing signal. */
export function anySignal (...signals: Array<AbortSignal | undefined>): AbortSignal {
  return AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined))
}

/** HTTP status of a dockerode error, if any. */
export function statusOf (err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown } | null)?.statusCode
  return typeof s === 'number' ? s : undefined
}
