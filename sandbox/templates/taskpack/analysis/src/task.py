"""Descriptive statistics of each column: only aggregates leave the node, never rows."""

import numpy as np

from bitflow_sdk import BitflowTask


class AnalysisTask(BitflowTask):
    def validate_inputs(self, input_paths):
        if 'data' not in input_paths:
            return False
        x = self.load_tensors(input_paths['data']).get('data')
        return x is not None and x.ndim == 2 and x.shape[0] >= int(self.config['min_rows'])

    def preprocess(self, input_paths):
        return {'x': self.load_tensors(input_paths['data'])['data'].astype(np.float64)}

    def execute(self, data):
        x = data['x']
        ddof = int(self.config['ddof'])
        std = x.std(axis=0, ddof=ddof)
        centered = x - x.mean(axis=0)
        denom = np.where(std > 0, std, 1.0)
        corr = (centered.T @ centered) / (x.shape[0] - ddof) / np.outer(denom, denom)
        pct = np.asarray(self.config['percentiles'], dtype=np.float64)
        return {
            'mean': x.mean(axis=0).astype(np.float32),
            'std': std.astype(np.float32),
            'percentiles': np.percentile(x, pct, axis=0).astype(np.float32),
            'correlation': np.clip(corr, -1.0, 1.0).astype(np.float32),
            'metrics': {'rows': int(x.shape[0]), 'columns': int(x.shape[1])},
        }

    def postprocess(self, results):
        keys = ('mean', 'std', 'percentiles', 'correlation')
        return {'statistics': self.save_tensors('statistics', {k: results[k] for k in keys})}
