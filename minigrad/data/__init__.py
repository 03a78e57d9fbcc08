"""Data: the WordPiece tokenizer, datasets and batching."""
