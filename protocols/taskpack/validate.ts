import { parseManifest, MANIFEST_FILE, MAX_MANIFEST_BYTES, type ParsedManifest } from './manifest.js'
import { parseConfigSchema, parseConfigDefaults, CONFIG_SCHEMA_FILE, CONFIG_DEFAULTS_FILE, type ConfigSchema, type JsonValue } from './config.js'
import { collectTaskpack, packCollected, checkRelativePath, type CollectedTaskpack, type PackEntry, type PackLimits, type PackOptions, type PackResult } from './pack.js'
import { TaskpackLayoutError, TaskpackError } from './errors.js'

export const REQUIREMENTS_FILE = 'requirements.txt'

export interface TaskpackCheck {
  parsed: ParsedManifest
  config: ConfigSchema
  defaults: Record<string, JsonValue>
  entries: PackEntry[]
  totalBytes: number
  /** things worth fixing that do not make the taskpack unusable */
  warnings: string[]
}

const REQ_LINE = /^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,\s-]*\])?\s*((==|>=|<=|~=|!=|>|<)\s*[A-Za-z0-9.*+!_-]+\s*(,\s*(==|>=|<=|~=|!=|>|<)\s*[A-Za-z0-9.*+!_-]+\s*)*)?(;[^#]*)?$/

/**
 * requirements.txt lines must be plain requirement specifiers. Options (`-e`, `--index-url`, `-r`),
 * URLs and local paths are refused: a node never fetches code a taskpack names at run time.
 */
export function requirementsProblems (text: string): string[] {
  const problems: string[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/(^|\s)#.*$/, '').trim()
    if (line === '') return
    const where = `${REQUIREMENTS_FILE} line ${i + 1}`
    if (line.startsWith('-')) problems.push(`${where}: pip options such as '${line.split(/\s/)[0]!}' are not allowed`)
    else if (line.includes('://') || line.includes('@') || line.startsWith('.') || line.startsWith('/') || line.startsWith('file:')) problems.push(`${where}: URLs and local paths are not allowed ('${line}'); name a package, optionally with a version`)
    else if (!REQ_LINE.test(line)) problems.push(`${where}: '${line}' is not a requirement such as 'numpy>=1.24'`)
  })
  return problems
}

/**
 * Checks a taskpack directory the way a node will: the manifest, the config schema and defaults, the
 * files the layout requires, sample inputs, requirements.txt, and that the directory can be packed
 * safely. Throws the first kind of error found (ManifestError, TaskpackConfigError, PackError,
 * TaskpackLayoutError), each listing all its problems.
 */
export async function validateTaskpackDir (dir: string, options: { limits?: Partial<PackLimits> } = {}): Promise<TaskpackCheck> {
  return checkCollected(await collectTaskpack(dir, options))
}

/**
 * Validates and packs one snapshot of the directory, so what was checked is exactly what was packed.
 * Pass Helia's blockstore to store the blocks.
 */
export async function packTaskpack (dir: string, options: PackOptions = {}): Promise<{ check: TaskpackCheck, packed: PackResult }> {
  const collected = await collectTaskpack(dir, options)
  const check = checkCollected(collected)
  const packed = await packCollected(collected, options)
  return { check, packed }
}

function checkCollected (collected: CollectedTaskpack): TaskpackCheck {
  const root = collected.root
  const files = new Set(collected.entries.filter(e => e.kind === 'file').map(e => e.path))
  // everything is read from the one snapshot `collectTaskpack` took, which is what a pack would hold
  const text = (rel: string): string => Buffer.from(collected.contents.get(rel)!).toString('utf8')
  if (!files.has(MANIFEST_FILE)) throw new TaskpackLayoutError([`${MANIFEST_FILE} is missing in ${root}; run 'bitflowd taskpack init' to create a taskpack`])
  if (collected.contents.get(MANIFEST_FILE)!.length > MAX_MANIFEST_BYTES) throw new TaskpackLayoutError([`${MANIFEST_FILE} is larger than ${MAX_MANIFEST_BYTES} bytes`])
  const parsed = parseManifest(text(MANIFEST_FILE))
  const problems: string[] = []
  const warnings: string[] = []
  for (const rel of [parsed.entrypoint.file, REQUIREMENTS_FILE, CONFIG_SCHEMA_FILE, CONFIG_DEFAULTS_FILE]) {
    if (!files.has(rel)) problems.push(`${rel} is missing`)
  }
  for (const [name, rel] of Object.entries(parsed.manifest.spec.sample_inputs ?? {})) {
    try {
      checkRelativePath(rel)
      if (!files.has(rel)) problems.push(`spec.sample_inputs.${name}: ${rel} is not a file in the taskpack`)
    } catch (err) {
      problems.push(`spec.sample_inputs.${name}: ${(err as Error).message}`)
    }
  }
  if (!files.has('README.md')) warnings.push('README.md is missing')
  if (![...files].some(f => f.startsWith('tests/'))) warnings.push('tests/ is empty: nodes dry-run a taskpack on its sample inputs, and users trust tested packs')
  if (parsed.manifest.spec.inputs.length > 0 && parsed.manifest.spec.sample_inputs === undefined) warnings.push('spec.sample_inputs is not set: nodes cannot dry-run this taskpack before accepting it')
  if (files.has(REQUIREMENTS_FILE)) problems.push(...requirementsProblems(text(REQUIREMENTS_FILE)))
  if (problems.length > 0) throw new TaskpackLayoutError(problems)

  const config = parseConfigSchema(text(CONFIG_SCHEMA_FILE))
  const defaults = parseConfigDefaults(text(CONFIG_DEFAULTS_FILE), config)
  return { parsed, config, defaults, entries: collected.entries, totalBytes: collected.totalBytes, warnings }
}

export { TaskpackError }
