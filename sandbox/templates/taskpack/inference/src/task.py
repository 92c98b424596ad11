"""y = activation(x @ w + b), evaluated in fixed-size batches."""

import numpy as np

from bitflow_sdk import BitflowTask

ACTIVATIONS = {
    'none': lambda z: z,
    'relu': lambda z: np.maximum(z, 0.0),
    'sigmoid': lambda z: 1.0 / (1.0 + np.exp(-z)),
}


class InferenceTask(BitflowTask):
    def validate_inputs(self, input_paths):
        if 'features' not in input_paths or 'weights' not in input_paths:
            return False
        x = self.load_tensors(input_paths['features']).get('x')
        wts = self.load_tensors(input_paths['weights'])
        w, b = wts.get('w'), wts.get('b')
        return x is not None and w is not None and b is not None and x.ndim == 2 and w.shape == (x.shape[1],) and b.shape == (1,)

    def preprocess(self, input_paths):
        wts = self.load_tensors(input_paths['weights'])
        return {
            'x': self.load_tensors(input_paths['features'])['x'].astype(np.float64),
            'w': wts['w'].astype(np.float64),
            'b': float(wts['b'][0]),
        }

    def execute(self, data):
        x, w, b = data['x'], data['w'], data['b']
        act = ACTIVATIONS[self.config['activation']]
        size = int(self.config['batch_size'])
        parts = [act(x[i:i + size] @ w + b) for i in range(0, x.shape[0], size)]
        y = np.concatenate(parts) if parts else np.zeros((0,))
        return {'y': y.astype(np.float32), 'metrics': {'rows': int(x.shape[0]), 'batches': len(parts)}}

    def postprocess(self, results):
        return {'predictions': self.save_tensors('predictions', {'y': results['y']})}
