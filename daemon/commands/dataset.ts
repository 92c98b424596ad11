import { resolve } from 'node:path'
import type { Command } from 'commander'
import { addDaemonOptions, daemonCall, daemonClient, daemonRunning, dataDirOf, type DaemonFlags } from './daemon-client.js'
import { addDataset, listDatasets, type DatasetRecord } from '../content/datasets.js'
import { DataDir } from '../datadir.js'

/**
 * `bitflowd dataset add|list`: node-local datasets. With a daemon running the daemon registers
 * (and advertises) the dataset; without one the record is written to the data dir and advertised
 * at the next start. The data itself never leaves the node.
 */
export function registerDatasetCommands (program: Command): Command {
  const dataset = program.command('dataset').description('register node-local datasets (advertised by id, never served)')

  addDaemonOptions(dataset.command('add')
    .description('register the dataset at <path> (a directory or file) under a content-derived id')
    .argument('<name>', 'a label for the dataset')
    .argument('<path>', 'directory or file'))
    .option('--json', 'print the record as JSON')
    .action(async (name: string, path: string, flags: DaemonFlags) => {
      const abs = resolve(path)
      let res: { record: DatasetRecord, existing: boolean }
      if (flags.rpcUrl !== undefined || daemonRunning(dataDirOf(flags))) {
        res = await daemonCall(async () => await daemonClient(flags).call<{ record: DatasetRecord, existing: boolean }>('bitflow_addDataset', [name, abs]))
      } else {
        const dir = DataDir.open(dataDirOf(flags))
        res = await addDataset(dir.path, name, abs)
      }
      if (flags.json === true) { console.log(JSON.stringify(res, null, 2)); return }
      console.log(res.record.uri)
      process.stderr.write(`${res.existing ? 'already registered' : 'registered'} '${res.record.name}': ${res.record.files} file(s), ${res.record.bytes} bytes at ${res.record.path}\n`)
    })

  addDaemonOptions(dataset.command('list')
    .description('datasets registered in the data dir'))
    .option('--json', 'print as JSON')
    .action(async (flags: DaemonFlags) => {
      const dir = dataDirOf(flags)
      const list = flags.rpcUrl !== undefined || daemonRunning(dir)
        ? await daemonCall(async () => await daemonClient(flags).call<DatasetRecord[]>('bitflow_listDatasets'))
        : await listDatasets(DataDir.open(dir).path)
      if (flags.json === true) { console.log(JSON.stringify(list, null, 2)); return }
      if (list.length === 0) { console.log('no datasets'); return }
      for (const r of list) console.log(`${r.uri}\t${r.name}\t${r.files} file(s)\t${r.bytes} bytes\t${r.path}`)
    })
  return dataset
}
