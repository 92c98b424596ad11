import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

let cachedRoot: string | undefined

/** The project root (where package.json and bootstrap/ live), from source or from dist/. */
export function projectRoot (): string {
  if (cachedRoot !== undefined) return cachedRoot
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const pkg = join(dir, 'package.json')
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'bitflow') {
          cachedRoot = dir
          return dir
        }
      } catch { /* keep walking */ }
    }
    const parent = dirname(dir)
    if (parent === dir) throw new Error('cannot find the BitFlow project root above ' + fileURLToPath(import.meta.url))
    dir = parent
  }
}

export function softwareVersion (): string {
  return (JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string }).version
}
