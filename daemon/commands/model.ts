import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { parse as parseYaml } from 'yaml'
import { BitflowError } from '../errors.js'
import { validateModel, modelCid, ModelError } from '../../protocols/model.js'
import { addDaemonOptions, daemonCall, daemonClient, type DaemonFlags } from './daemon-client.js'
import type { RegisterModelResult } from '../content/types.js'

async function readDefinition (file: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new BitflowError('ERR_MODEL_FILE', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  try {
    return /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text)
  } catch (err) {
    throw new BitflowError('ERR_MODEL_FILE', `${file} is not valid ${/\.ya?ml$/i.test(file) ? 'YAML' : 'JSON'}: ${(err as Error).message}`)
  }
}

/** `bitflowd model validate|register <file>`. */
export function registerModelCommands (program: Command): Command {
  const model = program.command('model').description('check model definitions (offline) and register them with the running daemon')

  model.command('validate')
    .description('check a model definition (JSON or YAML) offline: schema, DAG, tensor specs; print its model id')
    .argument('<file>', 'model definition')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, flags: { json?: boolean }) => {
      const value = await readDefinition(file)
      let m
      try {
        m = validateModel(value)
      } catch (err) {
        if (err instanceof ModelError) throw new BitflowError(err.code, err.message)
        throw err
      }
      const modelId = modelCid(m).toString()
      if (flags.json === true) { console.log(JSON.stringify({ valid: true, modelId, name: m.name, tasks: m.tasks.length, connections: m.connections.length }, null, 2)); return }
      console.log(modelId)
      process.stderr.write(`ok: model '${m.name}', ${m.tasks.length} task(s), ${m.connections.length} connection(s); references are checked at registration\n`)
    })

  addDaemonOptions(model.command('register')
    .description('register a model with the running daemon: validated, every taskpack and weights CID fetched, stored and pinned')
    .argument('<file>', 'model definition (JSON or YAML)'))
    .option('--json', 'print the result as JSON')
    .action(async (file: string, flags: DaemonFlags) => {
      const value = await readDefinition(file)
      const res = await daemonCall(async () => await daemonClient(flags).call<RegisterModelResult>('bitflow_registerModel', [value]))
      if (flags.json === true) { console.log(JSON.stringify(res, null, 2)); return }
      console.log(res.modelId)
      process.stderr.write(`registered model '${res.name}' (${res.tasks} task(s)); pinned ${res.pinned.length} object(s)\n`)
    })
  return model
}
