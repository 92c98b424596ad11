import { createHash } from 'node:crypto'

/**
 * Node-local datasets: private data never leaves its node. A dataset is named by a content-derived
 * id — the sha256 of a canonical listing of its files (path, size, sha256 of the content) — so the
 * same files give the same id on every node, and a task input `dataset://<id>` can only run where
 * those exact files are.
 */

export const DATASET_URI_PREFIX = 'dataset://'
export const DATASET_ID_PATTERN = /^[0-9a-f]{64}$/
export const DATASET_NAME_PATTERN = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$/

export interface DatasetFile {
  /** POSIX path relative to the dataset root ('' segments and '..' never appear) */
  path: string
  size: number
  /** hex sha256 of the content */
  sha256: string
}

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))

export function datasetListing (files: readonly DatasetFile[]): string {
  const lines = [...files].sort((a, b) => byBytes(a.path, b.path)).map(f => `f ${f.path} ${f.size} ${f.sha256}`)
  return `bitflow-dataset-listing/1\n${lines.join('\n')}\n`
}

/** The dataset id: hex sha256 of the canonical listing. */
export function datasetId (files: readonly DatasetFile[]): string {
  return createHash('sha256').update(datasetListing(files), 'utf8').digest('hex')
}

export function datasetUri (id: string): string {
  return `${DATASET_URI_PREFIX}${id}`
}

/** Parses `dataset://<id>` (or a bare id). */
export function parseDatasetUri (uri: string): string {
  const id = uri.startsWith(DATASET_URI_PREFIX) ? uri.slice(DATASET_URI_PREFIX.length) : uri
  if (!DATASET_ID_PATTERN.test(id)) throw new Error(`'${uri.slice(0, 100)}' is not a dataset id (dataset://<64 hex>)`)
  return id
}
