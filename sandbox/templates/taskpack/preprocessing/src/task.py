"""z-score standardisation per column, clipped to +/- clip standard deviations."""

import numpy as np

from bitflow_sdk import BitflowTask


class PreprocessingTask(BitflowTask):
    def validate_inputs(self, input_paths):
        if 'data' not in input_paths:
            return False
        x = self.load_tensors(input_paths['data']).get('data')
        return x is not None and x.ndim == 2 and x.shape[0] > 1

    def preprocess(self, input_paths):
        return {'x': self.load_tensors(input_paths['data'])['data'].astype(np.float64)}

    def execute(self, data):
        x = data['x']
        mean = x.mean(axis=0)
        scale = np.maximum(x.std(axis=0), float(self.config['epsilon']))
        z = (x - mean) / scale
        clip = self.config['clip']
        clipped = 0
        if clip is not None:
            clipped = int(np.count_nonzero(np.abs(z) > clip))
            z = np.clip(z, -clip, clip)
        return {
            'data': z.astype(np.float32),
            'mean': mean.astype(np.float32),
            'scale': scale.astype(np.float32),
            'metrics': {'rows': int(x.shape[0]), 'columns': int(x.shape[1]), 'clipped_values': clipped},
        }

    def postprocess(self, results):
        return {'normalized': self.save_tensors('normalized', {k: results[k] for k in ('data', 'mean', 'scale')})}
