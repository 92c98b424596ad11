import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdirSync, writeFileSync, readFileSync, symlinkSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { multiaddr } from '@multiformats/multiaddr'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { importer } from 'ipfs-unixfs-importer'
import { CID } from 'multiformats/cid'
import type { Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { BitflowClient } from '../../../daemon/rpc/client.js'
import { tempDir, spawnDaemon, cleanup, eventually, rpcFailure, runCli, type SpawnedDaemon } from '../../helpers/daemon.js'
import { scaffoldTaskpack } from '../../../daemon/commands/taskpack.js'
import { FILE_IMPORT_OPTIONS } from '../../../daemon/content/store.js'
import { createTensor, encodeSafetensors, decodeSafetensors } from '../../../protocols/tensor/safetensors.js'
import { FrameDecoder, decodeRequest, encodeBlock, encodeFrame, blockLinks, FRAME_DONE } from '../../../protocols/content/blocks.js'
import { blocksProtocol } from '../../../protocols/names.js'
import type { PublishTaskpackResult, ResolveTaskpackResult, PutTensorResult, GetTensorResult, FetchContentResult, ContentStat, GcResult, DatasetRecordResult, RegisterModelResult, GetModelResult } from '../../../daemon/content/types.js'

const dir = tempDir('content')
const genesisFile = join(dir, 'genesis.json')
let a: SpawnedDaemon
let b: SpawnedDaemon
let c: SpawnedDaemon
const liars: Libp2p[] = []

const daemonArgs = (extra: string[] = []): string[] => ['--genesis-file', genesisFile, '--listen', '/ip4/127.0.0.1/tcp/0', '--log-level', 'warn', '--no-metrics', ...extra]

function tensorFile (seed: number, n: number): Uint8Array {
  const values = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.001 + seed))
  return encodeSafetensors({ x: createTensor('float32', [n], values) }, { seed: String(seed) })
}

async function taskpack (name: string, version: string, readme: string): Promise<string> {
  const path = join(dir, `${name}-${version}-${Math.random().toString(36).slice(2, 8)}`)
  await scaffoldTaskpack(path, { type: 'analysis', name })
  const manifest = readFileSync(join(path, 'manifest.yaml'), 'utf8').replace(/^(\s*version:).*$/m, `$1 ${version}`)
  writeFileSync(join(path, 'manifest.yaml'), manifest)
  writeFileSync(join(path, 'README.md'), readme)
  return path
}

beforeAll(async () => {
  writeFileSync(genesisFile, JSON.stringify({ network: 'local', createdAt: '2026-01-01T00:00:00Z', committee: [], admittedNodes: [] }))
  // a serves most fetches: its metrics show how it buffered them
  a = await spawnDaemon(join(dir, 'a'), daemonArgs().filter(x => x !== '--no-metrics').concat('--metrics-port', '0'))
  b = await spawnDaemon(join(dir, 'b'), daemonArgs(['--bootstrap', a.runtime.multiaddrs[0]!]))
  // c trusts b as a taskpack publisher
  const config = join(dir, 'c.yaml')
  writeFileSync(config, `publishers:\n  allow:\n    - ${b.runtime.peerId}\n`)
  c = await spawnDaemon(join(dir, 'c'), daemonArgs(['--config', config, '--bootstrap', a.runtime.multiaddrs[0]!, '--bootstrap', b.runtime.multiaddrs[0]!]))
  await eventually('c to connect to a and b', async () => (await c.client.peers()).length >= 2 ? true : undefined, 30_000)
}, 120_000)

afterAll(async () => {
  for (const l of liars) await Promise.resolve(l.stop()).catch(() => {})
  for (const d of [a, b, c]) await d?.stop().catch(() => {})
  cleanup([a, b, c].filter(d => d !== undefined).map(d => d.pid), [dir])
})

describe('taskpack registry across daemons', () => {
  let published: PublishTaskpackResult
  let path: string

  it('publishes on one daemon and resolves + fetches (verified, pinned) on another', async () => {
    path = await taskpack('shared-stats', '1.0.0', '# from a\n')
    published = await a.client.call<PublishTaskpackResult>('bitflow_publishTaskpack', [path])
    expect(published.record.publisher).toBe(a.runtime.peerId)
    expect(published.record.cid).toMatch(/^bafy/)
    expect(published.key).toBe(`/bitflow-registry/${a.runtime.peerId}/shared-stats/1.0.0`)
    const res = await eventually('c to resolve shared-stats@1.0.0', async () => {
      const r = await c.client.call<ResolveTaskpackResult>('bitflow_resolveTaskpack', ['shared-stats@1.0.0', { fetch: true }])
      return r.chosen !== null ? r : undefined
    })
    expect(res.chosen?.cid).toBe(published.record.cid)
    expect(res.chosen?.sha256).toBe(published.record.sha256)
    expect(res.fetched?.source).toBe('blocks')
    const stat = await c.client.call<ContentStat>('bitflow_statContent', [published.record.cid])
    expect(stat).toMatchObject({ local: true, complete: true, pinned: true })
    const list = await c.client.call<Array<{ name: string, publisher: string }>>('bitflow_listTaskpacks')
    expect(list.map(e => `${e.name}:${e.publisher}`)).toContain(`shared-stats:${a.runtime.peerId}`)
  })

  it('refuses to republish a version with other content, and republishing the same content changes nothing', async () => {
    const again = await a.client.call<PublishTaskpackResult>('bitflow_publishTaskpack', [path])
    expect(again.existing).toBe(true)
    expect(again.record.cid).toBe(published.record.cid)
    writeFileSync(join(path, 'README.md'), '# changed\n')
    const err = await rpcFailure(a.client.call('bitflow_publishTaskpack', [path]))
    expect((err.data as { code: string }).code).toBe('ERR_VERSION_EXISTS')
    expect(err.message).toMatch(/shared-stats@1\.0\.0 is already published .*versions are immutable/)
    // the CLI says the same
    const cli = await runCli(['taskpack', 'publish', path, '--data-dir', a.dataDir])
    expect(cli.code).toBe(1)
    expect(cli.stderr).toMatch(/ERR_VERSION_EXISTS/)
  })

  it('when two publishers use a name, resolve reports both and prefers the allow-listed one', async () => {
    const other = await taskpack('shared-stats', '1.0.0', '# from b\n')
    const pb = await b.client.call<PublishTaskpackResult>('bitflow_publishTaskpack', [other])
    expect(pb.record.cid).not.toBe(published.record.cid)
    const res = await eventually('c to see both publishers', async () => {
      const r = await c.client.call<ResolveTaskpackResult>('bitflow_resolveTaskpack', ['shared-stats@1.0.0'])
      return r.publishers.length === 2 ? r : undefined
    })
    expect(res.ambiguous).toBe(true)
    expect(res.chosen?.publisher).toBe(b.runtime.peerId)
    expect(res.chosen?.allowListed).toBe(true)
    expect(res.note).toMatch(/2 publishers use shared-stats@1\.0\.0/)
    // a, which trusts only itself, prefers its own
    const fromA = await eventually('a to see both publishers', async () => {
      const r = await a.client.call<ResolveTaskpackResult>('bitflow_resolveTaskpack', ['shared-stats@1.0.0'])
      return r.publishers.length === 2 ? r : undefined
    })
    expect(fromA.chosen?.publisher).toBe(a.runtime.peerId)
    // the CLI prints the chosen CID and names every publisher
    const cli = await runCli(['taskpack', 'resolve', 'shared-stats@1.0.0', '--data-dir', c.dataDir])
    expect(cli.code).toBe(0)
    expect(cli.stdout.trim()).toBe(pb.record.cid)
    expect(cli.stderr).toContain(a.runtime.peerId)
  })

  it('refuses a taskpack directory with a link that escapes it', async () => {
    const bad = await taskpack('escaping', '1.0.0', '# x\n')
    writeFileSync(join(dir, 'secret.txt'), 'secret')
    symlinkSync(join(dir, 'secret.txt'), join(bad, 'src', 'leak.txt'))
    const err = await rpcFailure(a.client.call('bitflow_publishTaskpack', [bad]))
    expect((err.data as { code: string }).code).toBe('ERR_PACK_LINK')
    expect(err.message).toMatch(/outside the taskpack/)
  })

  it('taskpack commands say clearly when no daemon runs', async () => {
    const cli = await runCli(['taskpack', 'list', '--data-dir', join(dir, 'nobody')])
    expect(cli.code).toBe(1)
    expect(cli.stderr).toMatch(/ERR_NO_DAEMON.*no bitflowd is running/)
  })
})

describe('models', () => {
  it('rejects a model whose taskpack CID nobody has, naming the task', async () => {
    const unknown = 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'
    const model = {
      format: 'bitflow-model/1', name: 'm', description: '', creator: 'test',
      inputs: [{ name: 'x', dimensions: ['n'], dtype: 'float32' }],
      outputs: [{ name: 'y', dimensions: ['n'], dtype: 'float32' }],
      tasks: [{ id: 1, description: 't', taskpack: unknown, computeUnits: 1, vramRequirement: 0, inputs: [{ name: 'x', dimensions: ['n'], dtype: 'float32' }], outputs: [{ name: 'y', dimensions: ['n'], dtype: 'float32' }] }],
      connections: [
        { sourceTaskId: 0, destinationTaskId: 1, sourceOutputIndex: 0, destInputIndex: 0, tensorSpec: { name: 'x', dimensions: ['n'], dtype: 'float32' } },
        { sourceTaskId: 1, destinationTaskId: 0, sourceOutputIndex: 0, destInputIndex: 0, tensorSpec: { name: 'y', dimensions: ['n'], dtype: 'float32' } }
      ]
    }
    const err = await rpcFailure(b.client.call('bitflow_registerModel', [model]))
    expect((err.data as { code: string }).code).toBe('ERR_MODEL_INVALID')
    expect(err.message).toMatch(new RegExp(`task 1: taskpack ${unknown} cannot be resolved`))

    // with a published taskpack it registers; another daemon reads it back by id
    const tp = await a.client.call<ResolveTaskpackResult>('bitflow_resolveTaskpack', ['shared-stats@1.0.0'])
    model.tasks[0]!.taskpack = tp.chosen!.cid
    const reg = await b.client.call<RegisterModelResult>('bitflow_registerModel', [model])
    expect(reg.modelId).toMatch(/^bafkrei/)
    expect(reg.pinned).toContain(tp.chosen!.cid)
    const got = await c.client.call<GetModelResult>('bitflow_getModel', [reg.modelId])
    expect(got.model).toEqual(model)
    // offline validation gives the same id
    const file = join(dir, 'model.json')
    writeFileSync(file, JSON.stringify(model))
    const cli = await runCli(['model', 'validate', file])
    expect(cli.code).toBe(0)
    expect(cli.stdout.trim()).toBe(reg.modelId)
  })
})

describe('tensors, pins and gc', () => {
  it('round-trips a tensor across daemons (RPC and the CLI)', async () => {
    const bytes = tensorFile(1, 600_000) // 2.4 MB: three 1 MiB leaves
    const file = join(dir, 't1.safetensors')
    writeFileSync(file, bytes)
    const put = await a.client.call<PutTensorResult>('bitflow_putTensor', [{ path: file }])
    expect(put.uri).toBe(`ipfs://${put.cid}`)
    expect(put.tensors).toEqual([{ name: 'x', dtype: 'float32', shape: [600_000] }])
    const out = join(dir, 't1-out.safetensors')
    const cli = await runCli(['tensor', 'get', put.uri, out, '--data-dir', b.dataDir, '--no-progress'])
    expect(cli.code, cli.stderr).toBe(0)
    expect(Buffer.compare(readFileSync(out), Buffer.from(bytes))).toBe(0)
    expect(cli.stderr).toMatch(/from blocks/)
    // small tensors come back inline
    const small = tensorFile(2, 100)
    const p2 = await b.client.call<PutTensorResult>('bitflow_putTensor', [{ safetensorsBase64: Buffer.from(small).toString('base64') }])
    const g2 = await a.client.call<GetTensorResult>('bitflow_getTensor', [p2.uri])
    expect(decodeSafetensors(new Uint8Array(Buffer.from(g2.safetensorsBase64!, 'base64'))).metadata).toEqual({ seed: '2' })
    // malformed safetensors are refused
    const err = await rpcFailure(a.client.call('bitflow_putTensor', [{ safetensorsBase64: Buffer.from('not a tensor file').toString('base64') }]))
    expect(err.message).toMatch(/header length/)
  })

  it('moves a tensor of many leaves intact (the provider reuses its read buffers)', async () => {
    const bytes = tensorFile(11, 6_000_000) // 24 MB: 23 distinct 1 MiB leaves
    const file = join(dir, 't11.safetensors')
    writeFileSync(file, bytes)
    const put = await a.client.call<PutTensorResult>('bitflow_putTensor', [{ path: file }])
    const sendBuffers = async (): Promise<{ reused: number, new: number }> => {
      const text = await (await fetch(a.runtime.metricsUrl!)).text()
      const count = (kind: string): number => Number(new RegExp(`^bitflow_content_send_buffers_total\\{kind="${kind}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)
      return { reused: count('reused'), new: count('new') }
    }
    const before = await sendBuffers()
    const out = join(dir, 't11-out.safetensors')
    const got = await c.client.call<GetTensorResult>('bitflow_getTensor', [put.uri, { providers: [a.runtime.peerId], out }])
    expect(got.source).toBe('blocks')
    expect(Buffer.compare(readFileSync(out), Buffer.from(bytes))).toBe(0)
    // every leaf was read into a pool buffer, some into one an earlier leaf had used, which the
    // encrypter had finished reading (or the bytes above would differ); how many depends on how
    // much the connection had in flight (10 of 23 when measured)
    const after = await sendBuffers()
    expect(after.reused - before.reused + after.new - before.new).toBe(23)
    expect(after.reused - before.reused).toBeGreaterThan(0)
  })

  it('fetches content over bitswap again after gc deleted it (patches/@helia+bitswap+4.0.19.patch)', async () => {
    const file = join(dir, 't12.safetensors')
    writeFileSync(file, tensorFile(12, 700_000)) // 2.8 MB: 3 leaves and a root
    const put = await a.client.call<PutTensorResult>('bitflow_putTensor', [{ path: file }])
    const fetch = async (): Promise<FetchContentResult> => await b.client.call<FetchContentResult>('bitflow_fetchContent', [put.cid, { providers: [a.runtime.peerId], bitswapOnly: true }])
    const first = await fetch()
    expect(first).toMatchObject({ source: 'bitswap', blocks: 4 })
    await b.client.call<GcResult>('bitflow_gc')
    expect(await b.client.call<ContentStat>('bitflow_statContent', [put.cid])).toMatchObject({ local: false })
    // a's bitswap ledger still lists these blocks as sent to b: unpatched, it dropped b's new
    // wants for them and this fetch failed after its 30 s timeout
    const again = await fetch()
    expect(again).toMatchObject({ source: 'bitswap', blocks: 4 })
    expect(await b.client.call<ContentStat>('bitflow_statContent', [put.cid])).toMatchObject({ local: true, complete: true })
  }, 60_000)

  it('keeps pinned content through gc and removes unpinned content', async () => {
    const put = await a.client.call<PutTensorResult>('bitflow_putTensor', [{ safetensorsBase64: Buffer.from(tensorFile(3, 50_000)).toString('base64') }])
    const fetched = await c.client.call<FetchContentResult>('bitflow_fetchContent', [put.cid])
    expect(fetched.source).toBe('blocks')
    expect((await c.client.call<ContentStat>('bitflow_statContent', [put.cid])).pinned).toBe(false)
    expect(await c.client.call('bitflow_pin', [put.cid])).toBe(true)
    await c.client.call<GcResult>('bitflow_gc')
    expect(await c.client.call<ContentStat>('bitflow_statContent', [put.cid])).toMatchObject({ local: true, complete: true, pinned: true })
    expect(await c.client.call('bitflow_unpin', [put.cid])).toBe(true)
    const gc = await c.client.call<GcResult>('bitflow_gc')
    expect(gc.removed).toBeGreaterThan(0)
    expect(await c.client.call<ContentStat>('bitflow_statContent', [put.cid])).toMatchObject({ local: false, pinned: false })
    // pin and gc need the token
    const anonymous = new BitflowClient(c.runtime.rpcUrl)
    expect((await rpcFailure(anonymous.call('bitflow_gc'))).code).toBe(-32001)
    // pinning something absent is refused
    expect((await rpcFailure(c.client.call('bitflow_pin', [put.cid]))).code).toBe(-32004)
  })
})

describe('a provider that lies', () => {
  /** An in-process libp2p peer that speaks the block protocol and corrupts the `corruptIndex`-th block it sends. */
  async function liar (blocks: Map<string, Uint8Array>, corruptIndex: number): Promise<Libp2p> {
    const node = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()], services: { identify: identify() } })
    liars.push(node)
    await node.handle(blocksProtocol('local'), (stream: Stream) => {
      void (async () => {
        const decoder = new FrameDecoder()
        let roots: CID[] = []
        for await (const chunk of stream) {
          decoder.push(chunk.subarray())
          const f = decoder.next()
          if (f !== undefined) { roots = decodeRequest(f.payload); break }
        }
        let i = 0
        const order = [...roots]
        while (order.length > 0) {
          const cid = order.shift()!
          let bytes = blocks.get(cid.toString())!
          order.unshift(...blockLinks(cid, bytes))
          if (i++ === corruptIndex) { bytes = new Uint8Array(bytes); bytes[100] = bytes[100]! ^ 0xff }
          for (const p of encodeBlock(cid, bytes)) if (!stream.send(p)) await stream.onDrain()
        }
        for (const p of encodeFrame(FRAME_DONE)) stream.send(p)
        await stream.close().catch(() => {})
      })().catch(() => {})
    })
    return node
  }

  async function blocksOf (bytes: Uint8Array): Promise<{ root: CID, blocks: Map<string, Uint8Array> }> {
    const store = new MemoryBlockstore()
    let root: CID | undefined
    for await (const e of importer([{ content: bytes }], store, FILE_IMPORT_OPTIONS)) root = e.cid
    const blocks = new Map<string, Uint8Array>()
    const walk = async (cid: CID): Promise<void> => {
      const parts: Uint8Array[] = []
      for await (const p of store.get(cid)) parts.push(p)
      const block = new Uint8Array(Buffer.concat(parts))
      blocks.set(cid.toString(), block)
      for (const l of blockLinks(cid, block)) await walk(l)
    }
    await walk(root!)
    return { root: root!, blocks }
  }

  it('is dropped, nothing it sent is kept, and the fetch falls back to an honest provider', async () => {
    const bytes = tensorFile(7, 800_000) // 3.2 MB: root + 4 leaves
    const { root, blocks } = await blocksOf(bytes)
    const file = join(dir, 't7.safetensors')
    writeFileSync(file, bytes)
    const put = await a.client.call<PutTensorResult>('bitflow_putTensor', [{ path: file }])
    expect(put.cid).toBe(root.toString())

    // a liar that alone holds some content: root and first leaf are genuine, the second leaf is corrupt
    const only = await blocksOf(tensorFile(8, 800_000))
    const liar1 = await liar(only.blocks, 2)
    await liar1.dial(multiaddr(c.runtime.multiaddrs[0]!))
    const err = await rpcFailure(c.client.call('bitflow_fetchContent', [only.root.toString(), { providers: [liar1.peerId.toString()], noBitswap: true }]))
    expect(err.message).toMatch(/lied: sent block .* whose bytes do not match its CID/)
    // the genuine blocks it sent were deleted too, and the liar was disconnected
    expect(await c.client.call<ContentStat>('bitflow_statContent', [only.root.toString()])).toMatchObject({ local: false, complete: false })
    const [genuineLeaf] = blockLinks(only.root, only.blocks.get(only.root.toString())!)
    expect((await c.client.call<ContentStat>('bitflow_statContent', [genuineLeaf!.toString()])).local).toBe(false)
    await eventually('c to drop the liar', async () => liar1.getConnections(peerIdFromString(c.runtime.peerId)).length === 0 && !(await c.client.peers()).some(p => p.peerId === liar1.peerId.toString()) ? true : undefined)

    // a liar first, then an honest provider
    const liar2 = await liar(blocks, 1)
    await liar2.dial(multiaddr(c.runtime.multiaddrs[0]!))
    const out = join(dir, 'after-liar.safetensors')
    const got = await c.client.call<GetTensorResult>('bitflow_getTensor', [put.uri, { providers: [liar2.peerId.toString(), a.runtime.peerId], out }])
    expect(got.source).toBe('blocks')
    expect(Buffer.compare(readFileSync(out), Buffer.from(bytes))).toBe(0)
    await eventually('c to drop the second liar', async () => liar2.getConnections(peerIdFromString(c.runtime.peerId)).length === 0 ? true : undefined)
    const fetchedAgain = await c.client.call<FetchContentResult>('bitflow_fetchContent', [put.cid])
    expect(fetchedAgain.source).toBe('local')
  })
})

describe('node-local datasets', () => {
  it('are registered by content id and advertised, but never served', async () => {
    const data = join(dir, 'private-data')
    mkdirSync(join(data, 'part'), { recursive: true })
    const secret = tensorFile(9, 1000)
    writeFileSync(join(data, 'part', 'rows.safetensors'), secret)
    writeFileSync(join(data, 'labels.csv'), 'a,b\n1,2\n')
    const cli = await runCli(['dataset', 'add', 'patients', data, '--data-dir', b.dataDir, '--json'])
    expect(cli.code, cli.stderr).toBe(0)
    const { record } = JSON.parse(cli.stdout) as { record: DatasetRecordResult }
    expect(record.uri).toMatch(/^dataset:\/\/[0-9a-f]{64}$/)
    expect(record.files).toBe(2)
    // the same files give the same id
    const again = await b.client.call<{ record: DatasetRecordResult, existing: boolean }>('bitflow_addDataset', ['patients-again', data])
    expect(again.record.id).toBe(record.id)
    expect((await b.client.call<DatasetRecordResult[]>('bitflow_listDatasets')).map(d => d.id)).toContain(record.id)
    // others find who holds it
    const holders = await eventually('c to find the dataset holder', async () => {
      const h = await c.client.call<string[]>('bitflow_findDataset', [record.uri])
      return h.includes(b.runtime.peerId) ? h : undefined
    })
    expect(holders).toContain(b.runtime.peerId)
    // ... but nobody can fetch it: not by its dataset URI, not by the CID its files would have
    const err = await rpcFailure(c.client.call('bitflow_getTensor', [record.uri]))
    expect((err.data as { code: string }).code).toBe('ERR_DATASET_NOT_SERVED')
    let fileCid: CID | undefined
    for await (const e of importer([{ content: secret }], new MemoryBlockstore(), FILE_IMPORT_OPTIONS)) fileCid = e.cid
    expect((await b.client.call<ContentStat>('bitflow_statContent', [fileCid!.toString()])).local).toBe(false)
    const miss = await rpcFailure(c.client.call('bitflow_fetchContent', [fileCid!.toString(), { providers: [b.runtime.peerId], noBitswap: true }]))
    expect(miss.code).toBe(-32004)
    expect(existsSync(join(b.dataDir, 'datasets', `${record.id}.json`))).toBe(true)
  })
})
