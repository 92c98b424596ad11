"""Task runner: `python3 -m bitflow_sdk.run`.

Reads the job from $BITFLOW_TASK_DIR/job.json (default /task/job.json):
  {"inputs": {"<input name>": "<file under inputs/>"}, "params": {...}, "seed": <0..2^32-1>,
   "task_id": "...", "round": 0, "entrypoint": "src/task.py[:ClassName]"}
Inputs are files under $BITFLOW_TASK_DIR/inputs (a node-local dataset: a directory), the taskpack is at $BITFLOW_PACK_DIR (default
$BITFLOW_TASK_DIR/pack), outputs go to $BITFLOW_OUT_DIR (default /out): the task's output files,
metrics.json and result.json, or error.json when the run fails. Exit status: 0 success, 1 the task
failed, 2 the job or the taskpack is malformed.
"""

import hashlib
import importlib.util
import inspect
import json
import os
import random
import sys
import traceback

import numpy as np

from .config import load_config
from .errors import BitflowSdkError, JobError
from .task import BitflowTask, jsonable

RESERVED = ('node_id', 'task_id', 'round', 'seed')


def paths():
    task_dir = os.environ.get('BITFLOW_TASK_DIR', '/task')
    return {
        'task': task_dir,
        'inputs': os.path.join(task_dir, 'inputs'),
        'pack': os.environ.get('BITFLOW_PACK_DIR', os.path.join(task_dir, 'pack')),
        'out': os.environ.get('BITFLOW_OUT_DIR', '/out'),
    }


def read_job(task_dir):
    path = os.path.join(task_dir, 'job.json')
    try:
        with open(path, 'r', encoding='utf-8') as f:
            job = json.load(f)
    except FileNotFoundError:
        raise JobError('%s is missing' % path) from None
    except ValueError as e:
        raise JobError('%s is not valid JSON: %s' % (path, e)) from None
    if not isinstance(job, dict):
        raise JobError('job.json must be an object')
    unknown = set(job) - {'inputs', 'params', 'seed', 'task_id', 'round', 'entrypoint'}
    if unknown:
        raise JobError('job.json has unknown fields: %s' % ', '.join(sorted(unknown)))
    seed = job.get('seed')
    if type(seed) is not int or not 0 <= seed < 2 ** 32:
        raise JobError('job.json seed must be an integer from 0 to 2^32-1 (got %r)' % (seed,))
    inputs = job.get('inputs', {})
    if not isinstance(inputs, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in inputs.items()):
        raise JobError('job.json inputs must map input names to file names')
    params = job.get('params', {})
    if not isinstance(params, dict):
        raise JobError('job.json params must be an object')
    for k in RESERVED:
        if k in params:
            raise JobError("job.json params cannot set '%s'; it comes from the job" % k)
    rnd = job.get('round', 0)
    if type(rnd) is not int or rnd < 0:
        raise JobError('job.json round must be a non-negative integer')
    return job


def resolve_inputs(inputs_dir, inputs):
    real_dir = os.path.realpath(inputs_dir)
    out = {}
    for name, rel in sorted(inputs.items()):
        if os.path.isabs(rel) or '..' in rel.split('/'):
            raise JobError('input %s: %r must be a path inside the inputs directory' % (name, rel))
        real = os.path.realpath(os.path.join(real_dir, rel))
        if os.path.commonpath([real, real_dir]) != real_dir:
            raise JobError('input %s: %r leads outside the inputs directory' % (name, rel))
        # a node-local dataset arrives as a directory tree, every other input as one file
        if not (os.path.isfile(real) or os.path.isdir(real)):
            raise JobError('input %s: %s is neither a file nor a directory' % (name, rel))
        out[name] = real
    return out


def load_task_class(pack_dir, entrypoint):
    file, _, class_name = (entrypoint or 'src/task.py').partition(':')
    path = os.path.realpath(os.path.join(pack_dir, file))
    if os.path.commonpath([path, os.path.realpath(pack_dir)]) != os.path.realpath(pack_dir) or not os.path.isfile(path):
        raise JobError('entry point %s not found in the taskpack' % file)
    sys.dont_write_bytecode = True  # the taskpack is mounted read-only, and caches would change its CID
    for p in (os.path.join(pack_dir, 'src'), pack_dir):
        if p not in sys.path:
            sys.path.insert(0, p)
    spec = importlib.util.spec_from_file_location('bitflow_taskpack_entry', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    if class_name:
        cls = getattr(module, class_name, None)
        if not (inspect.isclass(cls) and issubclass(cls, BitflowTask)):
            raise JobError('%s has no BitflowTask subclass named %s' % (file, class_name))
        return cls
    found = [c for _, c in inspect.getmembers(module, inspect.isclass)
             if issubclass(c, BitflowTask) and c is not BitflowTask and c.__module__ == module.__name__ and not inspect.isabstract(c)]
    if len(found) != 1:
        raise JobError('%s must define exactly one BitflowTask subclass (found %s); or name one in the entry point as %s:ClassName'
                       % (file, ', '.join(c.__name__ for c in found) or 'none', file))
    return found[0]


def _sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path, value):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(value, f, sort_keys=True, indent=2, allow_nan=False)
        f.write('\n')


def execute(p):
    job = read_job(p['task'])
    seed = job['seed']
    random.seed(seed)
    np.random.seed(seed)
    params = load_config(p['pack'], job.get('params', {}))
    config = dict(params)
    config.update({'node_id': None, 'task_id': job.get('task_id'), 'round': job.get('round', 0), 'seed': seed})
    cls = load_task_class(p['pack'], job.get('entrypoint'))
    input_paths = resolve_inputs(p['inputs'], job.get('inputs', {}))
    os.makedirs(p['out'], exist_ok=True)
    task = cls(config)
    result = task.run(input_paths, p['out'])
    real_out = os.path.realpath(p['out'])
    outputs = {}
    for name, path in sorted(result['outputs'].items()):
        rel = os.path.relpath(os.path.realpath(path), real_out)
        outputs[name] = {'file': rel, 'bytes': os.path.getsize(path), 'sha256': _sha256(path)}
    _write_json(os.path.join(p['out'], 'metrics.json'), jsonable(result.get('metrics', {})))
    _write_json(os.path.join(p['out'], 'result.json'), {'status': 'success', 'outputs': outputs})
    return outputs


def main(argv=None):
    p = paths()
    try:
        execute(p)
        return 0
    except BitflowSdkError as e:
        status, code, message = (2 if isinstance(e, JobError) or e.code == 'ERR_TASKPACK_CONFIG' else 1), e.code, e.message
    except Exception as e:  # the task's own failure: report it, do not crash without a record
        status, code, message = 1, 'ERR_TASK_FAILED', '%s: %s' % (type(e).__name__, e)
        traceback.print_exc()
    sys.stderr.write('bitflow task error [%s]: %s\n' % (code, message))
    try:
        os.makedirs(p['out'], exist_ok=True)
        _write_json(os.path.join(p['out'], 'error.json'), {'status': 'error', 'code': code, 'message': message})
    except OSError:
        pass
    return status


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
