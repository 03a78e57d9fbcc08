"""Models built from minigrad.nn: a BERT-style encoder and its task heads."""

from minigrad.models.bert import (
    NAMED_CONFIGS,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    BertModelOutput,
    MaskedLMOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from minigrad.models.pretrained import (
    embed,
    from_pretrained,
    l2_normalize,
    load_tokenizer,
    mean_pooling,
    minilm,
    minilm_path,
)

__all__ = [
    "NAMED_CONFIGS", "BertConfig", "BertForMaskedLM", "BertForSequenceClassification",
    "BertForTokenClassification", "BertModel", "BertModelOutput", "MaskedLMOutput",
    "SequenceClassifierOutput", "TokenClassifierOutput",
    "embed", "from_pretrained", "l2_normalize", "load_tokenizer", "mean_pooling", "minilm",
    "minilm_path",
]
