import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { cpus, totalmem } from 'node:os'

export interface Figure {
  name: string
  value: number
  unit: string
  /** a baseline measured in the same run, and the ratio value/baseline */
  baseline?: { name: string, value: number, unit: string }
  /** a goal, for the reader (not asserted) */
  goal?: string
}

export interface BenchResult {
  bench: string
  figures: Figure[]
  notes: string[]
}

export function percentile (values: number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]!
}

export const round = (v: number, digits = 2): number => Number.isFinite(v) ? Number(v.toFixed(digits)) : v

function ratio (f: Figure): string {
  if (f.baseline === undefined || f.baseline.value === 0) return ''
  return `${round(f.value / f.baseline.value, 2)}×`
}

export function toMarkdown (results: BenchResult[]): string {
  const lines = [
    '# BitFlow benchmark report',
    '',
    `Machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB; Node ${process.version}; ${new Date().toISOString()}`,
    ''
  ]
  for (const r of results) {
    lines.push(`## ${r.bench}`, '', '| figure | value | baseline (same run) | ratio | goal |', '|---|---|---|---|---|')
    for (const f of r.figures) {
      lines.push(`| ${f.name} | ${round(f.value)} ${f.unit} | ${f.baseline !== undefined ? `${f.baseline.name}: ${round(f.baseline.value)} ${f.baseline.unit}` : ''} | ${ratio(f)} | ${f.goal ?? ''} |`)
    }
    if (r.notes.length > 0) lines.push('', ...r.notes.map(n => `- ${n}`))
    lines.push('')
  }
  return lines.join('\n')
}

export function writeReport (dir: string, results: BenchResult[]): { markdown: string, json: string } {
  mkdirSync(dir, { recursive: true })
  const markdown = join(dir, 'report.md')
  const json = join(dir, 'report.json')
  writeFileSync(markdown, toMarkdown(results))
  writeFileSync(json, JSON.stringify({ generatedAt: new Date().toISOString(), node: process.version, results }, null, 2) + '\n')
  return { markdown, json }
}
