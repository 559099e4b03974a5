"""Tiny Hugging Face models built on the spot: a byte-level BPE tokenizer trained with the
`tokenizers` library on a few sentences, and transformers configs saved with random weights.
Nothing is downloaded (HF_HUB_OFFLINE=1 is set for the whole test process)."""

from __future__ import annotations

import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a model server answers requests over http",
    "hello world, streaming tokens one at a time",
    "user: assistant: system: 0123456789",
]
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def tokenizer(*, eos: bool, mask: bool = False) -> object:
    """A fast tokenizer with ~300 byte-level tokens; ``eos`` adds an end-of-text token."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    special = ["<pad>", "<unk>", *(["</s>"] if eos else []), *(["<mask>"] if mask else [])]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=300, min_frequency=1, special_tokens=special)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        pad_token="<pad>",
        unk_token="<unk>",
        eos_token="</s>" if eos else None,
        mask_token="<mask>" if mask else None,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def causal_lm(path: Path, *, positions: int = 64, eos: bool = False) -> Path:
    """A 2-layer GPT-2 (text_generation). Without ``eos`` it never stops early, so the
    number of generated tokens is exactly what was asked."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = tokenizer(eos=eos)
    eos_id = tok.eos_token_id if eos else None  # type: ignore[attr-defined]
    config = GPT2Config(
        vocab_size=len(tok),  # type: ignore[arg-type]
        n_positions=positions,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=tok.pad_token_id,  # type: ignore[attr-defined]
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    model.generation_config.eos_token_id = eos_id
    model.generation_config.bos_token_id = eos_id
    model.save_pretrained(path)
    tok.save_pretrained(path)  # type: ignore[attr-defined]
    return path


def seq2seq_lm(path: Path) -> Path:
    """A 2-layer T5 (text2text_generation)."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tok = tokenizer(eos=True)
    config = T5Config(
        vocab_size=len(tok),  # type: ignore[arg-type]
        d_model=32,
        d_ff=64,
        d_kv=16,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        pad_token_id=tok.pad_token_id,  # type: ignore[attr-defined]
        eos_token_id=tok.eos_token_id,  # type: ignore[attr-defined]
        decoder_start_token_id=tok.pad_token_id,  # type: ignore[attr-defined]
    )
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(path)
    tok.save_pretrained(path)  # type: ignore[attr-defined]
    return path


def bert(path: Path, architecture: str, *, positions: int = 64, labels: int = 3) -> Path:
    """A 2-layer BERT with the given head: BertModel (text_embedding), BertForMaskedLM,
    BertForSequenceClassification or BertForTokenClassification."""
    import torch
    import transformers

    tok = tokenizer(eos=False, mask=True)
    config = transformers.BertConfig(
        vocab_size=len(tok),  # type: ignore[arg-type]
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=positions,
        num_labels=labels,
        pad_token_id=tok.pad_token_id,  # type: ignore[attr-defined]
    )
    torch.manual_seed(0)
    getattr(transformers, architecture)(config).save_pretrained(path)
    tok.save_pretrained(path)  # type: ignore[attr-defined]
    return path
