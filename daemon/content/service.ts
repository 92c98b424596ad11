import { open as openFile, rename, stat, unlink } from 'node:fs/promises'
import { constants as fsc } from 'node:fs'
import { dirname, isAbsolute } from 'node:path'
import { Type, type TSchema } from '@sinclair/typebox'
import { CID } from 'multiformats/cid'
import type { ServiceContext, DaemonService } from '../services/service.js'
import { param, type RpcRegistry } from '../rpc/registry.js'
import type { SubscriptionHub } from '../rpc/subscriptions.js'
import { RpcError, RpcErrorCode, invalidParams } from '../rpc/errors.js'
import type { Logger } from '../logger.js'
import { BitflowError } from '../errors.js'
import { blocksProtocol } from '../../protocols/names.js'
import { decodeSafetensors, SafetensorsError } from '../../protocols/tensor/safetensors.js'
import { prepareModel, decodeModel, ModelError, type ContentRef } from '../../protocols/model.js'
import { parseNameVersion, RegistryRecordError, datasetProviderCid } from '../../protocols/content/registry.js'
import { datasetId, parseDatasetUri, DATASET_URI_PREFIX } from '../../protocols/content/dataset.js'
import { CODEC_RAW, verifyBlock } from '../../protocols/content/blocks.js'
import { ContentStore } from './store.js'
import { BlockTransfer, TransferError, type TransferEvent } from './transfer.js'
import { TaskpackRegistry, RegistryRecords, RegistryError } from './registry.js'
import { DatasetIndex, addDataset, scanDataset, type DatasetRecord } from './datasets.js'
import {
  PublishTaskpackResult, ResolveTaskpackResult, RegistryEntrySchema, PutTensorResult, GetTensorResult, FetchResultSchema, ContentStat,
  PinEntry, GcResult, DatasetRecordSchema, RegisterModelResult, GetModelResult, TransferEventSchema,
  type GetTensorResult as GetTensorResultT, type PutTensorResult as PutTensorResultT, type ContentStat as ContentStatT
} from './types.js'

export const MAX_TENSOR_BYTES = 4 * 1024 * 1024 * 1024
/** getTensor returns the file inline up to this size (base64 in the JSON-RPC answer) */
export const MAX_INLINE_TENSOR_BYTES = 768 * 1024
const MODEL_REF_TIMEOUT_MS = 20_000
const REPUBLISH_MS = 60 * 60_000
const DATASET_ADVERTISE_MS = 30_000

/** Maps content-layer failures to JSON-RPC errors with a stable `data.code`. */
export function toRpcError (err: unknown): unknown {
  if (err instanceof RpcError) return err
  const e = err as { code?: unknown, message?: string, issues?: unknown }
  const code = typeof e?.code === 'string' ? e.code : undefined
  if (err instanceof ModelError) return new RpcError(RpcErrorCode.InvalidParams, `invalid model: ${err.message}`, { code: err.code, issues: err.issues })
  if (err instanceof TransferError) return new RpcError(err.code === 'ERR_CONTENT_UNAVAILABLE' ? RpcErrorCode.NotFound : RpcErrorCode.NetworkError, err.message, { code: err.code })
  if (err instanceof RegistryError || err instanceof RegistryRecordError || err instanceof SafetensorsError) return new RpcError(RpcErrorCode.InvalidParams, err.message, { code })
  if (code !== undefined && code.startsWith('ERR_')) return new RpcError(RpcErrorCode.InvalidParams, (err as Error).message, { code })
  return err
}

async function guard<T> (fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw toRpcError(err)
  }
}

function parseCid (s: string, what = 'cid'): CID {
  const text = s.startsWith('ipfs://') ? s.slice('ipfs://'.length) : s
  try {
    return CID.parse(text)
  } catch {
    throw invalidParams(`${what} '${s.slice(0, 100)}' is not a CID (or ipfs://<cid>)`)
  }
}

function tensorSummary (bytes: Uint8Array): Array<{ name: string, dtype: string, shape: number[] }> {
  const decoded = decodeSafetensors(bytes)
  return [...decoded.tensors.entries()].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape }))
}

/**
 * The content layer of a daemon: the Helia store, the block protocol, the taskpack registry,
 * models, tensors and node-local datasets, with their JSON-RPC methods and the `transfers`
 * subscription topic.
 */
export class ContentService implements DaemonService {
  readonly name = 'content'
  readonly store: ContentStore
  readonly transfer: BlockTransfer
  readonly registry: TaskpackRegistry
  readonly records: RegistryRecords
  readonly #ctx: ServiceContext
  readonly #log: Logger
  readonly #datasets: DatasetIndex
  readonly #listeners = new Set<(e: TransferEvent) => void>()
  #timers: NodeJS.Timeout[] = []
  readonly #advertised = new Set<string>()

  constructor (ctx: ServiceContext) {
    this.#ctx = ctx
    this.#log = ctx.log
    this.store = new ContentStore({ libp2p: ctx.libp2p, datastore: ctx.datastore, blocksDir: ctx.dataDir.sub('blocks'), log: ctx.log })
    this.transfer = new BlockTransfer({ libp2p: ctx.libp2p, plaintextLeases: ctx.plaintextLeases, store: this.store, protocol: blocksProtocol(ctx.options.network), metrics: ctx.metrics, log: ctx.log })
    this.records = installRegistryRecords(ctx)
    this.registry = new TaskpackRegistry({
      libp2p: ctx.libp2p,
      store: this.store,
      transfer: this.transfer,
      datastore: ctx.datastore,
      records: this.records,
      identity: ctx.identity,
      genesisHash: ctx.genesisHash,
      allow: ctx.options.publishers?.allow ?? [],
      metrics: ctx.metrics,
      log: ctx.log
    })
    this.#datasets = new DatasetIndex(ctx.dataDir.path)
  }

  /** Dataset ids this node holds (for heartbeats); never the data. */
  datasets (): string[] {
    return this.#datasets.records.map(r => r.id)
  }

  /**
   * A dataset this node holds, for a task that reads it in this node's sandbox: its root and files,
   * re-hashed now so a dataset changed on disk since it was registered is refused (its id would name
   * other data).
   */
  async localDataset (uri: string, signal?: AbortSignal): Promise<{ root: string, isFile: boolean, files: string[] }> {
    const id = parseDatasetUri(uri)
    const record = (await this.#datasets.refresh()).find(r => r.id === id)
    if (record === undefined) throw new BitflowError('ERR_DATASET_NOT_HELD', `this node does not hold ${uri}; a dataset:// task runs only on a node that registered it (bitflowd dataset add)`)
    const scanned = await scanDataset(record.path, signal !== undefined ? { signal } : {})
    if (datasetId(scanned.files) !== id) throw new BitflowError('ERR_DATASET_CHANGED', `dataset '${record.name}' at ${record.path} changed since it was registered as ${uri}; register it again (its id changes with its content)`)
    const isFile = (await stat(scanned.root)).isFile()
    return { root: isFile ? dirname(scanned.root) : scanned.root, isFile, files: scanned.files.map(f => f.path) }
  }

  async start (): Promise<void> {
    await this.store.start()
    await this.transfer.start()
    await this.#datasets.refresh()
    // announcements need peers: run them in the background, repeatedly
    const later = (fn: () => Promise<unknown>, ms: number, first: number): void => {
      const run = (): void => { fn().catch(err => this.#log.debug({ err }, 'background announce failed')) }
      this.#timers.push(setTimeout(run, first), setInterval(run, ms))
    }
    later(async () => await this.registry.republish(this.#ctx.signal), REPUBLISH_MS, 5000)
    later(async () => await this.#advertiseDatasets(), DATASET_ADVERTISE_MS, 3000)
  }

  async stop (): Promise<void> {
    for (const t of this.#timers) clearTimeout(t)
    this.#timers = []
    this.#listeners.clear()
    await this.transfer.stop().catch(() => {})
    await this.store.stop()
  }

  async #advertiseDatasets (force = false): Promise<void> {
    for (const r of await this.#datasets.refresh()) {
      if (!force && this.#advertised.has(r.id)) continue
      this.#advertised.add(r.id)
      await this.store.provide(datasetProviderCid(this.#ctx.genesisHash, r.id), this.#ctx.signal)
    }
  }

  #emit (e: TransferEvent): void {
    for (const l of this.#listeners) l(e)
  }

  onTransfer (listener: (e: TransferEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  // ---- tensors ----

  async putTensor (input: { safetensorsBase64?: string, path?: string }, signal?: AbortSignal): Promise<PutTensorResultT> {
    let bytes: Uint8Array
    if (input.safetensorsBase64 !== undefined && input.path === undefined) {
      bytes = new Uint8Array(Buffer.from(input.safetensorsBase64, 'base64'))
    } else if (input.path !== undefined && input.safetensorsBase64 === undefined) {
      if (!isAbsolute(input.path)) throw invalidParams('path must be absolute (the daemon reads it)')
      const fh = await openFile(input.path, fsc.O_RDONLY | fsc.O_NOFOLLOW).catch((err: NodeJS.ErrnoException) => { throw invalidParams(`cannot open ${input.path!}: ${err.code ?? err.message}`) })
      try {
        const st = await fh.stat()
        if (!st.isFile()) throw invalidParams(`${input.path} is not a regular file`)
        if (st.size > MAX_TENSOR_BYTES) throw invalidParams(`${input.path} is ${st.size} bytes; the limit is ${MAX_TENSOR_BYTES}`)
        bytes = new Uint8Array(await fh.readFile())
      } finally {
        await fh.close()
      }
    } else {
      throw invalidParams('give exactly one of safetensorsBase64 or path')
    }
    const tensors = tensorSummary(bytes)
    const { cid } = await this.store.addFile(bytes, { pin: { type: 'tensor' }, ...(signal !== undefined ? { signal } : {}) })
    void this.store.provide(cid, this.#ctx.signal)
    return { uri: `ipfs://${cid.toString()}`, cid: cid.toString(), bytes: bytes.length, tensors }
  }

  async getTensor (uri: string, options: { out?: string, transferId?: string, providers?: string[], pin?: boolean, inline?: boolean, signal?: AbortSignal }): Promise<GetTensorResultT> {
    if (uri.startsWith(DATASET_URI_PREFIX)) throw new RpcError(RpcErrorCode.InvalidParams, `${uri} is a node-local dataset: datasets are never served or fetched; run the task on a node that holds it`, { code: 'ERR_DATASET_NOT_SERVED' })
    if (!uri.startsWith('ipfs://')) throw invalidParams(`tensor URI must be ipfs://<cid>, not '${uri.slice(0, 100)}'`)
    const cid = parseCid(uri, 'uri')
    const fetched = await this.transfer.fetch(cid, {
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
      ...(options.transferId !== undefined ? { id: options.transferId } : {}),
      ...(options.providers !== undefined ? { providers: options.providers } : {}),
      onProgress: e => { this.#emit(e) }
    })
    if (options.pin === true) await this.store.gate.shared(async () => await this.store.pin(cid, { type: 'tensor' }))
    // the header names the tensors; reading it needs at most the first blocks
    const head = await this.#readRange(cid, 0, 8)
    const headerLen = Number(new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true))
    if (headerLen > 16 * 1024 * 1024) throw new RpcError(RpcErrorCode.InvalidParams, `${uri} is not a safetensors file: header length ${headerLen}`, { code: 'ERR_SAFETENSORS' })
    const total = await this.#fileSize(cid)
    const result: GetTensorResultT = { uri, cid: cid.toString(), bytes: total, source: fetched.source, tensors: [] }
    if (options.out !== undefined) {
      result.tensors = headerTensors(await this.#readRange(cid, 0, 8 + headerLen))
      await this.#writeOut(cid, options.out)
      result.out = options.out
    } else {
      if (total > MAX_INLINE_TENSOR_BYTES || options.inline === false) {
        result.tensors = headerTensors(await this.#readRange(cid, 0, 8 + headerLen))
      } else {
        const bytes = await this.#readRange(cid, 0, total)
        result.tensors = tensorSummary(bytes)
        result.safetensorsBase64 = Buffer.from(bytes).toString('base64')
      }
    }
    return result
  }

  async #fileSize (cid: CID): Promise<number> {
    const stat = await this.store.unixfs.stat(cid, { offline: true })
    return Number(stat.size)
  }

  async #readRange (cid: CID, offset: number, length: number): Promise<Uint8Array> {
    const chunks: Uint8Array[] = []
    let n = 0
    for await (const c of this.store.unixfs.cat(cid, { offline: true, offset, length })) { chunks.push(c); n += c.length }
    return new Uint8Array(Buffer.concat(chunks, n))
  }

  async #writeOut (cid: CID, out: string): Promise<void> {
    if (!isAbsolute(out)) throw invalidParams('out must be an absolute path')
    const tmp = `${out}.bitflow-tmp-${process.pid}-${Date.now()}`
    // 'wx': never follow or overwrite something already there
    const fh = await openFile(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o644).catch((err: NodeJS.ErrnoException) => { throw invalidParams(`cannot create ${out}: ${err.code ?? err.message}`) })
    try {
      for await (const chunk of this.store.cat(cid)) await fh.write(chunk)
      await fh.close()
      try {
        await openFile(out, fsc.O_RDONLY).then(async f => { await f.close(); throw invalidParams(`${out} exists; refusing to overwrite it`) }, () => {})
      } catch (err) { await unlink(tmp).catch(() => {}); throw err }
      await rename(tmp, out)
    } catch (err) {
      await fh.close().catch(() => {})
      await unlink(tmp).catch(() => {})
      throw err
    }
  }

  // ---- models ----

  /** Resolver for model references: the content must be fetchable (and is fetched into the store). */
  #resolver = async (ref: ContentRef, options: { signal?: AbortSignal }): Promise<boolean> => {
    const signal = AbortSignal.any([AbortSignal.timeout(MODEL_REF_TIMEOUT_MS), ...(options.signal !== undefined ? [options.signal] : [])])
    await this.transfer.fetch(ref.cid, { signal, bitswapTimeoutMs: 5000, onProgress: e => { this.#emit(e) } })
    if (ref.kind === 'taskpack') await this.registry.taskpackChecksum(ref.cid)
    return true
  }

  async registerModel (definition: unknown, signal?: AbortSignal): Promise<{ modelId: string, name: string, tasks: number, pinned: string[] }> {
    const { model, modelId, bytes } = await prepareModel(definition, this.#resolver, signal !== undefined ? { signal } : {})
    const pinned: string[] = []
    await this.store.gate.shared(async () => {
      await this.store.putVerified(modelId, bytes)
      await this.store.pin(modelId, { type: 'model', name: model.name })
      pinned.push(modelId.toString())
      for (const t of model.tasks) {
        for (const [kind, s] of [['taskpack', t.taskpack], ['weights', t.weightUri?.slice('ipfs://'.length)]] as const) {
          if (s === undefined) continue
          const cid = CID.parse(s)
          await this.store.pin(cid, { type: kind, model: modelId.toString() })
          if (!pinned.includes(s)) pinned.push(s)
        }
      }
    })
    void this.store.provide(modelId, this.#ctx.signal)
    this.#log.info({ modelId: modelId.toString(), name: model.name }, 'model registered')
    return { modelId: modelId.toString(), name: model.name, tasks: model.tasks.length, pinned }
  }

  async getModel (modelId: string, signal?: AbortSignal): Promise<{ modelId: string, model: unknown, source: string }> {
    const cid = parseCid(modelId, 'modelId')
    if (cid.code !== CODEC_RAW) throw invalidParams(`${modelId} is not a model id (a raw-codec CID of the canonical definition)`)
    const fetched = await this.transfer.fetch(cid, { ...(signal !== undefined ? { signal } : {}), bitswapTimeoutMs: 10_000 })
    const bytes = await this.store.getLocal(cid)
    if (!verifyBlock(cid, bytes)) throw new RpcError(RpcErrorCode.InternalError, `stored model ${modelId} does not match its id`)
    const { model } = decodeModel(bytes, cid)
    return { modelId: cid.toString(), model, source: fetched.source }
  }

  // ---- status ----

  async statContent (cid: CID): Promise<ContentStatT> {
    const local = await this.store.has(cid)
    let complete = false
    let blocks = 0
    let bytes = 0
    if (local) {
      const missing = await this.store.missing(cid)
      complete = missing.length === 0
      if (complete) {
        const all = await this.store.dagBlocks(cid)
        blocks = all.length
        for (const b of all) bytes += (await this.store.getLocal(b)).length
      } else {
        blocks = 1
      }
    }
    return { cid: cid.toString(), local, complete, pinned: await this.store.isPinned(cid), blocks, bytes }
  }

  registerRpc (registry: RpcRegistry, hub: SubscriptionHub): void {
    const cidParam = param('cid', Type.String({ minLength: 1, maxLength: 256 }), { description: 'CID (or ipfs://<cid>)' })
    registry.add({
      name: 'bitflow_publishTaskpack',
      summary: 'Validate and pack a taskpack directory into the store, pin it, and publish a signed registry record name@version -> CID',
      params: [param('path', Type.String({ minLength: 1, maxLength: 4096 }), { description: 'absolute path of the taskpack directory (read by the daemon)' })],
      result: { name: 'published', schema: PublishTaskpackResult },
      mutating: true,
      handler: async (p, ctx) => await guard(async () => {
        if (!isAbsolute(p.path as string)) throw invalidParams('path must be absolute (the daemon reads it)')
        return await this.registry.publish(p.path as string, ctx.signal)
      })
    })
    registry.add({
      name: 'bitflow_resolveTaskpack',
      summary: 'Find every publisher of name@version in the swarm; the allow-listed one is preferred. With fetch, download, verify and pin the chosen taskpack',
      params: [
        param('ref', Type.String({ minLength: 3, maxLength: 200 }), { description: 'name@version' }),
        param('options', Type.Object({ fetch: Type.Optional(Type.Boolean()), publisher: Type.Optional(Type.String()) }, { additionalProperties: false }) as TSchema, { required: false, description: 'fetch: also fetch the chosen taskpack; publisher: choose this publisher' })
      ],
      result: { name: 'resolution', schema: ResolveTaskpackResult },
      mutating: false,
      handler: async (p, ctx) => await guard(async () => {
        const { name, version } = parseNameVersion(p.ref as string)
        const opts = (p.options ?? {}) as { fetch?: boolean, publisher?: string }
        const res = await this.registry.resolve(name, version, ctx.signal)
        if (opts.publisher !== undefined) {
          const pick = res.publishers.find(e => e.publisher === opts.publisher)
          if (pick === undefined) throw new RpcError(RpcErrorCode.NotFound, `${opts.publisher} does not publish ${name}@${version}`)
          res.chosen = pick
        }
        if (opts.fetch === true) {
          if (!ctx.authorized) throw new RpcError(RpcErrorCode.Unauthorized, 'fetching into the store needs the RPC token')
          if (res.chosen === null) throw new RpcError(RpcErrorCode.NotFound, res.note)
          return { ...res, fetched: await this.registry.fetch(res.chosen, { signal: ctx.signal, onProgress: e => { this.#emit(e) } }) }
        }
        return res
      })
    })
    registry.add({
      name: 'bitflow_listTaskpacks',
      summary: 'Taskpack registry records this node knows: its own and those it resolved',
      params: [param('filter', Type.Object({ publisher: Type.Optional(Type.String()), name: Type.Optional(Type.String()) }, { additionalProperties: false }), { required: false })],
      result: { name: 'taskpacks', schema: Type.Array(RegistryEntrySchema) },
      mutating: false,
      handler: async p => await guard(async () => await this.registry.list((p.filter ?? {}) as { publisher?: string, name?: string }))
    })
    registry.add({
      name: 'bitflow_registerModel',
      summary: 'Validate a model DAG (acyclic, connected, tensor specs compatible, every taskpack and weights CID fetchable), store and pin it; modelId = CID',
      params: [param('definition', Type.Object({}, { additionalProperties: true }), { description: 'model definition (format bitflow-model/1)' })],
      result: { name: 'model', schema: RegisterModelResult },
      mutating: true,
      handler: async (p, ctx) => await guard(async () => await this.registerModel(p.definition, ctx.signal))
    })
    registry.add({
      name: 'bitflow_getModel',
      summary: 'A model definition by modelId, from the store or the network (verified against its id)',
      params: [param('modelId', Type.String({ minLength: 1, maxLength: 256 }))],
      result: { name: 'model', schema: GetModelResult },
      mutating: false,
      handler: async (p, ctx) => await guard(async () => await this.getModel(p.modelId as string, ctx.signal))
    })
    registry.add({
      name: 'bitflow_putTensor',
      summary: 'Store a safetensors file (inline base64 or a local path the daemon reads) and pin it; returns ipfs://<cid>',
      params: [param('tensor', Type.Object({ safetensorsBase64: Type.Optional(Type.String()), path: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })) }, { additionalProperties: false }), { description: '{safetensorsBase64} or {path}' })],
      result: { name: 'tensor', schema: PutTensorResult },
      mutating: true,
      handler: async (p, ctx) => await guard(async () => await this.putTensor(p.tensor as { safetensorsBase64?: string, path?: string }, ctx.signal))
    })
    registry.add({
      name: 'bitflow_getTensor',
      summary: 'Fetch a tensor by ipfs://<cid> (local store, then the block protocol from providers, then bitswap); small files come back inline, or are written to out',
      description: 'Progress is published on the `transfers` subscription topic under options.transferId. Writing to out needs the RPC token.',
      params: [
        param('uri', Type.String({ minLength: 1, maxLength: 256 }), { description: 'ipfs://<cid>' }),
        param('options', Type.Object({
          out: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'absolute path to write the file to (must not exist)' })),
          transferId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
          providers: Type.Optional(Type.Array(Type.String({ maxLength: 128 }), { maxItems: 16, description: 'peer ids to ask first' })),
          pin: Type.Optional(Type.Boolean()),
          inline: Type.Optional(Type.Boolean())
        }, { additionalProperties: false }) as TSchema, { required: false })
      ],
      result: { name: 'tensor', schema: GetTensorResult },
      mutating: false,
      handler: async (p, ctx) => await guard(async () => {
        const o = (p.options ?? {}) as { out?: string, transferId?: string, providers?: string[], pin?: boolean, inline?: boolean }
        if ((o.out !== undefined || o.pin === true) && !ctx.authorized) throw new RpcError(RpcErrorCode.Unauthorized, 'writing a file or pinning needs the RPC token')
        return await this.getTensor(p.uri as string, { ...o, signal: ctx.signal })
      })
    })
    registry.add({
      name: 'bitflow_fetchContent',
      summary: 'Fetch a DAG into the local store (local, block protocol, bitswap) without pinning it',
      params: [cidParam, param('options', Type.Object({ providers: Type.Optional(Type.Array(Type.String({ maxLength: 128 }), { maxItems: 16 })), transferId: Type.Optional(Type.String({ maxLength: 64 })), noBitswap: Type.Optional(Type.Boolean()), bitswapOnly: Type.Optional(Type.Boolean()) }, { additionalProperties: false }) as TSchema, { required: false })],
      result: { name: 'fetched', schema: FetchResultSchema },
      mutating: true,
      handler: async (p, ctx) => await guard(async () => {
        const o = (p.options ?? {}) as { providers?: string[], transferId?: string, noBitswap?: boolean, bitswapOnly?: boolean }
        return await this.transfer.fetch(parseCid(p.cid as string), { ...o, ...(o.transferId !== undefined ? { id: o.transferId } : {}), signal: ctx.signal, onProgress: e => { this.#emit(e) } })
      })
    })
    registry.add({
      name: 'bitflow_statContent',
      summary: 'Whether a DAG is in the local store, complete, pinned, and its size',
      params: [cidParam],
      result: { name: 'stat', schema: ContentStat },
      mutating: false,
      handler: async p => await guard(async () => await this.statContent(parseCid(p.cid as string)))
    })
    registry.add({
      name: 'bitflow_pin',
      summary: 'Pin a DAG that is complete in the local store so garbage collection keeps it',
      params: [cidParam],
      result: { name: 'pinned', schema: Type.Boolean({ description: 'false when it was already pinned' }) },
      mutating: true,
      handler: async p => await guard(async () => {
        const cid = parseCid(p.cid as string)
        if (!(await this.store.hasDag(cid))) throw new RpcError(RpcErrorCode.NotFound, `${cid.toString()} is not complete in the local store; fetch it first (bitflow_fetchContent)`)
        return await this.store.gate.shared(async () => await this.store.pin(cid, { type: 'user' }))
      })
    })
    registry.add({
      name: 'bitflow_unpin',
      summary: 'Remove a pin; the blocks go at the next garbage collection unless another pin reaches them',
      params: [cidParam],
      result: { name: 'unpinned', schema: Type.Boolean({ description: 'false when it was not pinned' }) },
      mutating: true,
      handler: async p => await guard(async () => await this.store.unpin(parseCid(p.cid as string)))
    })
    registry.add({
      name: 'bitflow_listPins',
      summary: 'Pinned DAGs with their metadata',
      params: [],
      result: { name: 'pins', schema: Type.Array(PinEntry) },
      mutating: false,
      handler: async () => await guard(async () => await this.store.pins())
    })
    registry.add({
      name: 'bitflow_gc',
      summary: 'Garbage-collect: delete every block that no pin reaches',
      params: [],
      result: { name: 'gc', schema: GcResult },
      mutating: true,
      handler: async (_p, ctx) => await guard(async () => {
        const before = await this.store.stats()
        const { removed } = await this.store.gc({ signal: ctx.signal })
        const after = await this.store.stats()
        return { removed, blocksBefore: before.blocks, blocksAfter: after.blocks, bytesBefore: before.bytes, bytesAfter: after.bytes }
      })
    })
    registry.add({
      name: 'bitflow_addDataset',
      summary: 'Register a node-local dataset (a directory or file the daemon reads) under its content-derived id; the data is never served',
      params: [param('name', Type.String({ minLength: 1, maxLength: 128 })), param('path', Type.String({ minLength: 1, maxLength: 4096 }), { description: 'absolute path' })],
      result: { name: 'dataset', schema: Type.Object({ record: DatasetRecordSchema, existing: Type.Boolean() }) },
      mutating: true,
      handler: async (p, ctx) => await guard(async () => {
        if (!isAbsolute(p.path as string)) throw invalidParams('path must be absolute (the daemon reads it)')
        const res = await addDataset(this.#ctx.dataDir.path, p.name as string, p.path as string, { signal: ctx.signal })
        void this.#advertiseDatasets().catch(() => {})
        return res
      })
    })
    registry.add({
      name: 'bitflow_listDatasets',
      summary: 'Node-local datasets this daemon holds and advertises (ids only ever leave the node)',
      params: [],
      result: { name: 'datasets', schema: Type.Array(DatasetRecordSchema) },
      mutating: false,
      handler: async () => await guard(async (): Promise<DatasetRecord[]> => await this.#datasets.refresh())
    })
    registry.add({
      name: 'bitflow_findDataset',
      summary: 'Peers that advertise a dataset id in the DHT (they hold it; nobody serves it)',
      params: [param('uri', Type.String({ minLength: 1, maxLength: 100 }), { description: 'dataset://<id>' })],
      result: { name: 'holders', schema: Type.Array(Type.String()) },
      mutating: false,
      handler: async (p, ctx) => await guard(async () => {
        let id: string
        try { id = parseDatasetUri(p.uri as string) } catch (err) { throw invalidParams((err as Error).message) }
        const out = new Set<string>()
        if (this.datasets().includes(id)) out.add(this.#ctx.identity.peerId.toString())
        try {
          for await (const prov of this.#ctx.libp2p.contentRouting.findProviders(datasetProviderCid(this.#ctx.genesisHash, id), { signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(5000)]) })) out.add(prov.id.toString())
        } catch { /* lookup ended */ }
        return [...out].sort()
      })
    })
    hub.addTopic({
      name: 'transfers',
      description: 'content transfer progress (fetches of tensors, taskpacks, models)',
      params: Type.Object({ id: Type.Optional(Type.String()) }, { additionalProperties: false }),
      event: TransferEventSchema,
      attach: (params, emit) => this.onTransfer(e => { if (params.id === undefined || params.id === e.id) emit(e) })
    })
  }
}

/** Safetensors header → tensor names, dtypes, shapes (the data need not be present). */
function headerTensors (head: Uint8Array): Array<{ name: string, dtype: string, shape: number[] }> {
  const n = Number(new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true))
  const header = JSON.parse(new TextDecoder().decode(head.subarray(8, 8 + n))) as Record<string, { dtype?: string, shape?: number[] }>
  const wire: Record<string, string> = { F16: 'float16', BF16: 'bfloat16', F32: 'float32', F64: 'float64', I8: 'int8', U8: 'uint8', I16: 'int16', I32: 'int32', I64: 'int64', BOOL: 'bool' }
  return Object.entries(header).filter(([k]) => k !== '__metadata__').map(([name, t]) => ({ name, dtype: wire[t.dtype ?? ''] ?? String(t.dtype), shape: t.shape ?? [] }))
}

/**
 * The registry's DHT validator and selector: from node.ts through Libp2pConfig.dhtValidators when
 * it passes them, else installed into the DHT's maps here (before libp2p starts).
 */
function installRegistryRecords (ctx: ServiceContext): RegistryRecords {
  const records = new RegistryRecords(ctx.genesisHash, ctx.datastore, ctx.metrics)
  const dht = ctx.libp2p.services.dht as unknown as { validators: Record<string, unknown>, selectors: Record<string, unknown> }
  const { validators, selectors } = records.dhtOptions()
  for (const [k, v] of Object.entries(validators)) dht.validators[k] ??= v
  for (const [k, v] of Object.entries(selectors)) dht.selectors[k] ??= v
  return records
}

