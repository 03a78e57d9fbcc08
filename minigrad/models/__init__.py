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

__all__ = [
    "NAMED_CONFIGS", "BertConfig", "BertForMaskedLM", "BertForSequenceClassification",
    "BertForTokenClassification", "BertModel", "BertModelOutput", "MaskedLMOutput",
    "SequenceClassifierOutput", "TokenClassifierOutput",
]
