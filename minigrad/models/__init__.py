"""Models built from minigrad.nn: a BERT-style encoder and its task heads."""
