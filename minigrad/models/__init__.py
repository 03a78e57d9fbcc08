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
    cls_pooling,
    embed,
    from_pretrained,
    l2_normalize,
    load_tokenizer,
    max_pooling,
    mean_pooling,
    minilm,
    minilm_path,
    read_pooling,
)

__all__ = [
    "NAMED_CONFIGS", "BertConfig", "BertForMaskedLM", "BertForSequenceClassification",
    "BertForTokenClassification", "BertModel", "BertModelOutput", "MaskedLMOutput",
    "SequenceClassifierOutput", "TokenClassifierOutput",
    "cls_pooling", "embed", "from_pretrained", "l2_normalize", "load_tokenizer", "max_pooling",
    "mean_pooling", "minilm", "minilm_path", "read_pooling",
]
