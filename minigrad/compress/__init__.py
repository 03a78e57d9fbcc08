"""Making a trained model smaller and cheaper to run: pruning (:mod:`~minigrad.compress.prune`)."""
