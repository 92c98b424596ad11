"""Runs the task on the sample inputs with the BitFlow runner, twice, and checks the outputs.

Needs the BitFlow SDK on the path: PYTHONPATH=<bitflow>/sandbox/python.
"""

import json
import os
import shutil
import tempfile
import unittest

from bitflow_sdk import read_safetensors
from bitflow_sdk import run as runner

PACK = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(PACK, 'tests', 'samples')


class TaskTest(unittest.TestCase):
    def run_once(self, params=None):
        work = tempfile.mkdtemp(prefix='bitflow-task-test-')
        self.addCleanup(shutil.rmtree, work)
        task_dir, out_dir = os.path.join(work, 'task'), os.path.join(work, 'out')
        os.makedirs(os.path.join(task_dir, 'inputs'))
        with open(os.path.join(SAMPLES, 'job.json')) as f:
            job = json.load(f)
        for rel in job['inputs'].values():
            shutil.copyfile(os.path.join(SAMPLES, rel), os.path.join(task_dir, 'inputs', rel))
        if params is not None:
            job['params'] = params
        with open(os.path.join(task_dir, 'job.json'), 'w') as f:
            json.dump(job, f)
        env = {'BITFLOW_TASK_DIR': task_dir, 'BITFLOW_OUT_DIR': out_dir, 'BITFLOW_PACK_DIR': PACK}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            status = runner.main([])
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return status, out_dir

    def test_runs_on_samples(self):
        status, out = self.run_once()
        self.assertEqual(status, 0, open(os.path.join(out, 'error.json')).read() if os.path.exists(os.path.join(out, 'error.json')) else '')
        with open(os.path.join(out, 'result.json')) as f:
            result = json.load(f)
        self.assertEqual(result['status'], 'success')
        self.assertTrue(result['outputs'])
        for name, info in result['outputs'].items():
            tensors = read_safetensors(os.path.join(out, info['file']))
            self.assertTrue(tensors, name)
            for key, arr in tensors.items():
                if arr.dtype.kind == 'f':
                    self.assertTrue(bool((arr == arr).all()), '%s.%s has NaN' % (name, key))
        with open(os.path.join(out, 'metrics.json')) as f:
            self.assertIsInstance(json.load(f), dict)

    def test_deterministic(self):
        _, a = self.run_once()
        _, b = self.run_once()
        for name in ('result.json', 'metrics.json'):
            with open(os.path.join(a, name), 'rb') as fa, open(os.path.join(b, name), 'rb') as fb:
                self.assertEqual(fa.read(), fb.read(), name)

    def test_rejects_bad_parameters(self):
        status, out = self.run_once(params={'no_such_parameter': 1})
        self.assertEqual(status, 2)
        with open(os.path.join(out, 'error.json')) as f:
            self.assertIn('no_such_parameter', json.load(f)['message'])


if __name__ == '__main__':
    unittest.main()
