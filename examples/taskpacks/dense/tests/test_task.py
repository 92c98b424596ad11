"""Runs the dense layer through the BitFlow runner on the samples and checks what it computes.

  PYTHONPATH=<bitflow>/sandbox/python python3 -m unittest discover -s tests -v
"""

import json
import os
import shutil
import tempfile
import unittest

import numpy as np

from bitflow_sdk import read_safetensors, write_safetensors
from bitflow_sdk import run as runner

PACK = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(PACK, 'tests', 'samples')


def sample_arrays():
    x = read_safetensors(os.path.join(SAMPLES, 'x.safetensors'))['x']
    wts = read_safetensors(os.path.join(SAMPLES, 'weights.safetensors'))
    return x, wts['W'], wts['b']


class DenseTest(unittest.TestCase):
    def run_job(self, params=None, inputs=None):
        """inputs: job input name -> file under tests/samples (default: the sample job's)."""
        work = tempfile.mkdtemp(prefix='bitflow-dense-test-')
        self.addCleanup(shutil.rmtree, work)
        task_dir, out_dir = os.path.join(work, 'task'), os.path.join(work, 'out')
        os.makedirs(os.path.join(task_dir, 'inputs'))
        with open(os.path.join(SAMPLES, 'job.json')) as f:
            job = json.load(f)
        if inputs is not None:
            job['inputs'] = inputs
        staged = {}
        for name, src in job['inputs'].items():
            os.makedirs(os.path.join(task_dir, 'inputs', name))
            shutil.copyfile(src if os.path.isabs(src) else os.path.join(SAMPLES, src), os.path.join(task_dir, 'inputs', name, name + '.safetensors'))
            staged[name] = '%s/%s.safetensors' % (name, name)
        job['inputs'] = staged
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

    def error_of(self, out):
        path = os.path.join(out, 'error.json')
        if not os.path.exists(path):
            return ''
        with open(path) as f:
            return f.read()

    def test_linear_on_samples(self):
        status, out = self.run_job()
        self.assertEqual(status, 0, self.error_of(out))
        y = read_safetensors(os.path.join(out, 'y.safetensors'))
        self.assertEqual(list(y), ['y'])
        x, w, b = sample_arrays()
        want = x.astype(np.float64) @ w.astype(np.float64) + b
        self.assertEqual(y['y'].dtype, np.float32)
        np.testing.assert_array_equal(y['y'], want.astype(np.float32))  # exact: the samples are multiples of 1/8

    def test_relu_and_output_name(self):
        status, out = self.run_job(params={'activation': 'relu', 'output': 'h1'})
        self.assertEqual(status, 0, self.error_of(out))
        h1 = read_safetensors(os.path.join(out, 'h1.safetensors'))
        self.assertEqual(list(h1), ['h1'])
        x, w, b = sample_arrays()
        np.testing.assert_array_equal(h1['h1'], np.maximum(x.astype(np.float64) @ w + b, 0).astype(np.float32))
        with open(os.path.join(out, 'result.json')) as f:
            self.assertEqual(list(json.load(f)['outputs']), ['h1'])

    def test_softmax_rows_sum_to_one(self):
        status, out = self.run_job(params={'activation': 'softmax', 'output': 'y'})
        self.assertEqual(status, 0, self.error_of(out))
        y = read_safetensors(os.path.join(out, 'y.safetensors'))['y']
        x, w, b = sample_arrays()
        z = x.astype(np.float64) @ w + b
        e = np.exp(z - z.max(axis=1, keepdims=True))
        np.testing.assert_allclose(y, e / e.sum(axis=1, keepdims=True), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)

    def test_input_under_another_name(self):
        # a model stages the layer input under its tensor name (h1, h2, ...), not the manifest's x
        status, out = self.run_job(inputs={'h1': 'x.safetensors', 'weights': 'weights.safetensors'})
        self.assertEqual(status, 0, self.error_of(out))
        with open(os.path.join(out, 'metrics.json')) as f:
            self.assertEqual(json.load(f)['input'], 'h1')

    def test_deterministic(self):
        _, a = self.run_job(params={'activation': 'softmax', 'output': 'y'})
        _, b = self.run_job(params={'activation': 'softmax', 'output': 'y'})
        for name in ('y.safetensors', 'result.json', 'metrics.json'):
            with open(os.path.join(a, name), 'rb') as fa, open(os.path.join(b, name), 'rb') as fb:
                self.assertEqual(fa.read(), fb.read(), name)

    def test_refuses_mismatched_weights(self):
        work = tempfile.mkdtemp(prefix='bitflow-dense-w-')
        self.addCleanup(shutil.rmtree, work)
        bad = os.path.join(work, 'weights.safetensors')
        write_safetensors(bad, {'W': np.zeros((5, 2), np.float32), 'b': np.zeros((2,), np.float32)})
        status, out = self.run_job(inputs={'x': 'x.safetensors', 'weights': bad})
        self.assertEqual(status, 1)
        self.assertIn('do not chain', self.error_of(out))

    def test_refuses_two_layer_inputs(self):
        status, out = self.run_job(inputs={'x': 'x.safetensors', 'h1': 'x.safetensors', 'weights': 'weights.safetensors'})
        self.assertEqual(status, 1)
        self.assertIn('exactly one layer input', self.error_of(out))

    def test_rejects_bad_parameters(self):
        status, out = self.run_job(params={'activation': 'tanh', 'output': 'y'})
        self.assertEqual(status, 2)
        self.assertIn('activation', self.error_of(out))
        status, out = self.run_job(params={'activation': 'relu', 'output': '../y'})
        self.assertEqual(status, 1)
        self.assertIn('params.output', self.error_of(out))


if __name__ == '__main__':
    unittest.main()
