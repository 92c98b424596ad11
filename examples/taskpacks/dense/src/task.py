"""One dense layer in float32: y = activation(x @ W + b).

Inputs (as the runner stages them): `weights`, a safetensors file with W [d_in, d_out] and
b [d_out]; and exactly one other input, the layer input x [n, d_in], under whatever name the job
gives it (a model names it after its tensor: x, h1, ...). A file holding a single tensor is read
whatever that tensor is called. The output is written as <params.output>.safetensors holding one
tensor of that name, so the same pack serves every layer of a model.

Everything is float32 and nothing is random, so a rerun on any node gives the same result up to the
summation order of the matrix product.
"""

import re

import numpy as np

from bitflow_sdk import BitflowTask

WEIGHTS = 'weights'
NAME = re.compile(r'^[a-z][a-z0-9_]{0,63}$')


def relu(z):
    return np.maximum(z, np.float32(0))


def softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


ACTIVATIONS = {
    'none': lambda z: z,
    'relu': relu,
    'softmax': softmax,
}


def sole_tensor(tensors, what):
    if len(tensors) != 1:
        raise ValueError('%s must hold exactly one tensor, it holds %d (%s)' % (what, len(tensors), ', '.join(sorted(tensors)) or 'none'))
    return next(iter(tensors.values()))


class DenseTask(BitflowTask):
    def data_input(self, input_paths):
        others = sorted(n for n in input_paths if n != WEIGHTS)
        if len(others) != 1:
            raise ValueError("expected the input 'weights' and exactly one layer input, got %s" % (', '.join(sorted(input_paths)) or 'none'))
        return others[0]

    def validate_inputs(self, input_paths):
        if WEIGHTS not in input_paths:
            raise ValueError("input 'weights' (W and b) is missing")
        if not NAME.match(self.config['output']):
            raise ValueError('params.output %r must be lower-case letters, digits and _, starting with a letter' % self.config['output'])
        name = self.data_input(input_paths)
        x = sole_tensor(self.load_tensors(input_paths[name]), 'input %s' % name)
        wts = self.load_tensors(input_paths[WEIGHTS])
        missing = [k for k in ('W', 'b') if k not in wts]
        if missing:
            raise ValueError('weights lack %s (they hold %s)' % (', '.join(missing), ', '.join(sorted(wts)) or 'nothing'))
        w, b = wts['W'], wts['b']
        for label, arr in (('input %s' % name, x), ('W', w), ('b', b)):
            if arr.dtype != np.float32:
                raise ValueError('%s is %s; this layer computes in float32' % (label, arr.dtype))
        if x.ndim != 2 or w.ndim != 2 or b.ndim != 1:
            raise ValueError('shapes must be x [n, d_in], W [d_in, d_out], b [d_out]; got %s, %s, %s' % (list(x.shape), list(w.shape), list(b.shape)))
        if x.shape[1] != w.shape[0] or w.shape[1] != b.shape[0]:
            raise ValueError('shapes do not chain: x %s, W %s, b %s' % (list(x.shape), list(w.shape), list(b.shape)))
        return True

    def preprocess(self, input_paths):
        name = self.data_input(input_paths)
        wts = self.load_tensors(input_paths[WEIGHTS])
        return {
            'x': sole_tensor(self.load_tensors(input_paths[name]), name),
            'W': wts['W'],
            'b': wts['b'],
            'input': name,
        }

    def execute(self, data):
        z = data['x'] @ data['W'] + data['b']
        y = ACTIVATIONS[self.config['activation']](z).astype(np.float32, copy=False)
        if not np.isfinite(y).all():
            raise ValueError('the layer produced NaN or infinity')
        return {
            'y': y,
            'metrics': {
                'input': data['input'],
                'rows': int(y.shape[0]),
                'in_features': int(data['W'].shape[0]),
                'out_features': int(data['W'].shape[1]),
                'activation': self.config['activation'],
            },
        }

    def postprocess(self, results):
        name = self.config['output']
        return {name: self.save_tensors(name, {name: results['y']})}
