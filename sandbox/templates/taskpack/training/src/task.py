"""Trains y ~ x @ w + b by full-batch gradient descent with L2 regularisation."""

import numpy as np

from bitflow_sdk import BitflowTask


class TrainingTask(BitflowTask):
    def validate_inputs(self, input_paths):
        if 'dataset' not in input_paths:
            return False
        data = self.load_tensors(input_paths['dataset'])
        x, y = data.get('x'), data.get('y')
        return x is not None and y is not None and x.ndim == 2 and y.shape == (x.shape[0],) and x.shape[0] > 0

    def preprocess(self, input_paths):
        data = self.load_tensors(input_paths['dataset'])
        return {'x': data['x'].astype(np.float64), 'y': data['y'].astype(np.float64)}

    def execute(self, data):
        x, y = data['x'], data['y']
        n, d = x.shape
        lr = float(self.config['learning_rate'])
        l2 = float(self.config['l2'])
        w = self.rng.normal(0.0, float(self.config['init_scale']), size=d)
        b = 0.0

        def loss(w, b):
            r = x @ w + b - y
            return float(np.mean(r * r) + l2 * np.dot(w, w))

        initial = loss(w, b)
        for _ in range(int(self.config['epochs'])):
            r = x @ w + b - y
            w = w - lr * (2.0 / n * (x.T @ r) + 2.0 * l2 * w)
            b = b - lr * (2.0 / n * float(np.sum(r)))
        return {
            'w': w.astype(np.float32),
            'b': np.array([b], dtype=np.float32),
            'metrics': {'loss_initial': round(initial, 6), 'loss_final': round(loss(w, b), 6), 'samples': n, 'epochs': int(self.config['epochs'])},
        }

    def postprocess(self, results):
        return {'model_weights': self.save_tensors('model_weights', {'w': results['w'], 'b': results['b']})}
