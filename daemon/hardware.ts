import { execFile } from 'node:child_process'
import { cpus, totalmem } from 'node:os'
import type { Gpu, Hardware } from '../protocols/liveness/heartbeat.js'
import { OptionError } from './errors.js'

const UNITS: Record<string, number> = { '': 2 ** 20, B: 1, K: 1e3, KB: 1e3, KI: 2 ** 10, KIB: 2 ** 10, M: 1e6, MB: 1e6, MI: 2 ** 20, MIB: 2 ** 20, G: 1e9, GB: 1e9, GI: 2 ** 30, GIB: 2 ** 30, T: 1e12, TB: 1e12, TI: 2 ** 40, TIB: 2 ** 40 }

/** Parses `--simulate-gpu MODEL:VRAM` (VRAM like 80GiB, 24GB, or a bare number of MiB). */
export function parseSimulatedGpu (spec: string): Gpu {
  const i = spec.lastIndexOf(':')
  const model = spec.slice(0, i).trim()
  const m = /^([0-9]+(?:\.[0-9]+)?)([A-Za-z]*)$/.exec(spec.slice(i + 1).trim())
  const unit = UNITS[(m?.[2] ?? '').toUpperCase()]
  if (i <= 0 || model === '' || m === null || unit === undefined) {
    throw new OptionError(`invalid --simulate-gpu '${spec}': expected MODEL:VRAM, e.g. A100:80GiB`)
  }
  return { model, vramBytes: Math.round(Number(m[1]) * unit), simulated: true }
}

/** GPUs reported by nvidia-smi, or none when it is absent or fails. */
export async function detectNvidiaGpus (signal?: AbortSignal): Promise<Gpu[]> {
  return await new Promise(resolve => {
    execFile('nvidia-smi', ['--query-gpu=name,memory.total', '--format=csv,noheader,nounits'], { timeout: 5000, ...(signal !== undefined ? { signal } : {}) }, (err, stdout) => {
      if (err !== null) { resolve([]); return }
      resolve(parseNvidiaSmi(stdout))
    })
  })
}

/** `name, memory.total (MiB)` lines from nvidia-smi's CSV output. */
export function parseNvidiaSmi (csv: string): Gpu[] {
  const gpus: Gpu[] = []
  for (const line of csv.split('\n')) {
    const [name, mib] = line.split(',').map(s => s.trim())
    if (name === undefined || name === '' || mib === undefined || !/^\d+$/.test(mib)) continue
    gpus.push({ model: name, vramBytes: Number(mib) * 2 ** 20 })
  }
  return gpus
}

export async function detectHardware (simulateGpu: string | undefined, signal?: AbortSignal): Promise<Hardware> {
  const cpuList = cpus()
  const gpus = await detectNvidiaGpus(signal)
  if (simulateGpu !== undefined) gpus.push(parseSimulatedGpu(simulateGpu))
  return {
    cpuModel: (cpuList[0]?.model ?? 'unknown').slice(0, 256),
    cpuCores: Math.max(1, cpuList.length),
    ramBytes: totalmem(),
    gpus
  }
}
