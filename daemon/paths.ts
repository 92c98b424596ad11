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

/**
 * Node flags a daemon process runs with; the launcher (bin/bitflowd) and everything that spawns
 * daemons put them before the script, because V8 takes them only at start-up (not from
 * NODE_OPTIONS, and setting them at run time crashes the GC).
 *
 * `--single-threaded-gc`: a daemon allocates buffers at hundreds of MB/s during bulk transfers,
 * and every 64 MB of them triggers a full collection; by default V8 runs each one's marking on up
 * to four extra threads. On a small machine running several daemons and sandboxes those threads
 * fight everything else for the cores: in the transfer benchmark on 2 cores the receiving daemon
 * used ~1.8 CPU-s per 256 MiB with them and ~1.4 without.
 *
 * `--initial-old-space-size=256`: V8 sizes a ~50 MB old generation's limit at ~1.4× its size and
 * counts buffers still held since the last full collection against it, so a bulk transfer
 * started a full mark-compact every ~200 ms (its trace: "Start (task)"). The old generation
 * still grows past 256 MB when it has to; until then it is collected less eagerly.
 *
 * `--expose-gc`: bulk transfers ask for a young-generation collection every 32 MiB
 * (`YoungGarbagePacer` in daemon/gc.ts) so that the buffers node:crypto and sockets hand out
 * are freed before they count toward V8's 64 MB external-memory trigger for a full collection.
 *
 * Together the last two took the sending daemon from ~0.8 to ~0.5 CPU-s per 256 MiB transfer and
 * its full collections from ~7 to ~3 (the receiver's from ~5 to ~2).
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--single-threaded-gc', '--initial-old-space-size=256', '--expose-gc']
