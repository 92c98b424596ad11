import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Command } from 'commander'
import cliProgress from 'cli-progress'
import { BitflowError } from '../errors.js'
import { addDaemonOptions, daemonCall, daemonClient, type DaemonFlags } from './daemon-client.js'
import type { GetTensorResult, PutTensorResult } from '../content/types.js'
import type { TransferEvent } from '../content/transfer.js'

/** `bitflowd tensor put|get`: safetensors files in and out of the running daemon's store. */
export function registerTensorCommands (program: Command): Command {
  const tensor = program.command('tensor').description('store and fetch safetensors tensors (ipfs://<cid>) through the running daemon')

  addDaemonOptions(tensor.command('put')
    .description('store a safetensors file in the daemon\'s store (pinned); prints its ipfs:// URI')
    .argument('<file>', 'safetensors file'))
    .option('--json', 'print the result as JSON')
    .action(async (file: string, flags: DaemonFlags) => {
      const res = await daemonCall(async () => await daemonClient(flags).call<PutTensorResult>('bitflow_putTensor', [{ path: resolve(file) }]))
      if (flags.json === true) { console.log(JSON.stringify(res, null, 2)); return }
      console.log(res.uri)
      for (const t of res.tensors) process.stderr.write(`  ${t.name}: ${t.dtype} [${t.shape.join(', ')}]\n`)
    })

  addDaemonOptions(tensor.command('get')
    .description('fetch ipfs://<cid> (local store, then the block protocol, then bitswap) and write it to <out>')
    .argument('<uri>', 'ipfs://<cid>')
    .argument('<out>', 'file to write (must not exist)'))
    .option('--provider <peerId>', 'ask this peer first (repeatable)', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--pin', 'pin the tensor in the daemon\'s store')
    .option('--no-progress', 'no progress bar')
    .option('--json', 'print the result as JSON')
    .action(async (uri: string, out: string, flags: DaemonFlags & { provider?: string[], pin?: boolean, progress?: boolean }) => {
      const target = resolve(out)
      if (existsSync(target)) throw new BitflowError('ERR_OUT_EXISTS', `${target} exists; refusing to overwrite it`)
      const client = daemonClient(flags)
      const transferId = randomBytes(8).toString('hex')
      const showBar = flags.progress !== false && flags.json !== true
      const bar = new cliProgress.SingleBar({
        format: 'fetch [{bar}] {percentage}% | {done}/{size} MiB | {speed} MB/s | {source}',
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: false
      }, cliProgress.Presets.shades_classic)
      let barStarted = false
      const started = performance.now()
      const sub = showBar
        ? await daemonCall(async () => await client.subscribe<TransferEvent>('transfers', { id: transferId }, e => {
          const size = e.totalBytes ?? Math.max(e.bytes, 1)
          const payload = { done: (e.bytes / 2 ** 20).toFixed(1), size: (size / 2 ** 20).toFixed(1), speed: (e.bytes / 1e6 / Math.max(0.001, (performance.now() - started) / 1000)).toFixed(1), source: e.peer !== undefined ? `${e.source} from ${e.peer.slice(-8)}` : e.source }
          if (!barStarted) { bar.start(size, 0, payload); barStarted = true }
          bar.setTotal(size)
          bar.update(Math.min(e.bytes, size), payload)
          if (e.phase === 'provider-lied' || e.phase === 'provider-failed' || e.phase === 'fallback') process.stderr.write(`\n${e.phase}: ${e.message ?? ''}\n`)
        })).catch(() => undefined)
        : undefined
      try {
        const res = await daemonCall(async () => await client.call<GetTensorResult>('bitflow_getTensor', [uri, { out: target, transferId, ...(flags.provider !== undefined ? { providers: flags.provider } : {}), ...(flags.pin === true ? { pin: true } : {}) }]))
        if (barStarted) { bar.update(res.bytes, { done: (res.bytes / 2 ** 20).toFixed(1), size: (res.bytes / 2 ** 20).toFixed(1) }); bar.stop() }
        if (flags.json === true) { console.log(JSON.stringify(res, null, 2)); return }
        const secs = (performance.now() - started) / 1000
        console.log(target)
        process.stderr.write(`${res.bytes} bytes from ${res.source} in ${secs.toFixed(2)} s${res.source !== 'local' ? ` (${(res.bytes / 1e6 / secs).toFixed(1)} MB/s)` : ''}\n`)
        for (const t of res.tensors) process.stderr.write(`  ${t.name}: ${t.dtype} [${t.shape.join(', ')}]\n`)
      } finally {
        if (barStarted) bar.stop()
        await sub?.close()
      }
    })
  return tensor
}
