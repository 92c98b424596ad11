import { execFileSync } from 'node:child_process'
import { join } from 'node:path'

/**
 * The Python the content tests use: Debian's /usr/bin/python3 with python3-numpy (the machine's
 * default `python3` may be a pyenv build without numpy). Override with BITFLOW_TEST_PYTHON.
 */
export const PYTHON = process.env.BITFLOW_TEST_PYTHON ?? '/usr/bin/python3'
export const SDK_PATH = join(import.meta.dirname, '..', '..', '..', 'sandbox', 'python')

export function checkNumpy (): void {
  try {
    execFileSync(PYTHON, ['-c', 'import numpy'], { stdio: 'pipe' })
  } catch {
    throw new Error(`${PYTHON} cannot import numpy: install it with apt-get install -y python3-numpy (or set BITFLOW_TEST_PYTHON)`)
  }
}

export function python (script: string, args: string[] = [], env: Record<string, string> = {}): string {
  return execFileSync(PYTHON, ['-c', script, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PYTHONPATH: SDK_PATH, PYTHONDONTWRITEBYTECODE: '1', PYTHONHASHSEED: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
}
