"""Keras layers mirroring GR's modeling.py, named after GR's variable scopes."""

from official_bert.layers.activations import gelu, gelu_exact, get_activation
from official_bert.layers.common import Dropout, gather_indexes
from official_bert.layers.attention import (AttentionBlock, DenseResidualNorm, SelfAttention,
                                            attention_mask_from_input_mask)
from official_bert.layers.embeddings import BertEmbeddings
from official_bert.layers.heads import (MaskedLMHead, MaskedLMTransform, OutputProjection,
                                        PretrainingHeads, SpanHead, add_output_projection,
                                        project)
from official_bert.layers.transformer import (Intermediate, Pooler, TransformerEncoder,
                                              TransformerLayer)
