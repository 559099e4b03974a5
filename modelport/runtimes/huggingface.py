"""The ``huggingface`` runtime: KServe's huggingfaceserver names and arguments
(python/huggingfaceserver/huggingfaceserver/__main__.py and task.py) on transformers, CPU by
default.

``--task`` is one of text_generation, text2text_generation (answered on the OpenAI routes:
completions and chat), text_embedding (embeddings and rerank), fill_mask,
token_classification and sequence_classification (V1/V2 predict). Without it the task is
inferred from the config's first architecture as KServe's ``infer_task_from_model_architecture``
does (``...ForCausalLM`` → text_generation and so on).

``--backend auto|huggingface|vllm``: vLLM is KServe's choice when it is installed and a GPU is
present; modelport has no vLLM engine, so ``auto`` runs transformers and ``vllm`` is refused
with a clear message.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.errors import ModelLoadError
from modelport.model import Model

# KServe's task.py ARCHITECTURES_2_TASK, in its order (suffix of the architecture name).
ARCHITECTURE_TASKS = (
    ("ForTokenClassification", "token_classification"),
    ("ForSequenceClassification", "sequence_classification"),
    ("ForMaskedLM", "fill_mask"),
    ("ForCausalLM", "text_generation"),
    ("ForConditionalGeneration", "text2text_generation"),
    ("MTModel", "text2text_generation"),
    ("EncoderDecoderModel", "text2text_generation"),
    # Not in KServe's table (it needs --task for GPT-2 style "...LMHeadModel"s): added here
    # because `modelport serve DIR --format huggingface` has no --task to pass.
    ("LMHeadModel", "text_generation"),
)
GENERATIVE_TASKS = ("text_generation", "text2text_generation")
PREDICTIVE_TASKS = ("fill_mask", "token_classification", "sequence_classification")
TASKS = (*GENERATIVE_TASKS, "text_embedding", *PREDICTIVE_TASKS)
BACKENDS = ("auto", "huggingface", "vllm")
# KServe's dtype_choices; "auto" is float32 on CPU (KServe: float16 on GPU, float32 on CPU).
DTYPES = ("auto", "float16", "float32", "bfloat16", "float", "half")
# Text longer than this many characters per token of context cannot fit whatever the
# tokenizer: refused before tokenizing, so a huge prompt does not hold the event loop.
CHARS_PER_TOKEN = 64


@dataclass(frozen=True)
class HFOptions:
    """The runtime's arguments (KServe's flag names)."""

    model_dir: str | None = None
    model_id: str | None = None
    model_revision: str | None = None
    tokenizer_revision: str | None = None
    task: str | None = None
    max_model_len: int | None = None
    dtype: str = "auto"
    backend: str = "auto"
    trust_remote_code: bool = False
    return_probabilities: bool = False
    #: requests merged into one forward pass / generate call at most
    max_batch_size: int = 8
    nthread: int = 1

    @property
    def source(self) -> str:
        """What from_pretrained reads: the hub id if given, else the local directory."""
        if self.model_id:
            return self.model_id
        if self.model_dir:
            return self.model_dir
        raise ModelLoadError("You must provide a model_id or model_dir")  # KServe's message


def huggingface_model(name: str, path: str | Path | None = None, **options: Any) -> Model:
    """Make the model for the task (not loaded): what ``--format huggingface`` calls."""
    opts = read_options(path, options)
    if opts.backend not in BACKENDS:
        raise ModelLoadError(
            f"--backend must be one of {', '.join(BACKENDS)}, not {opts.backend!r}."
        )
    if opts.backend == "vllm":
        state = "not installed" if importlib.util.find_spec("vllm") is None else "installed"
        raise ModelLoadError(
            f"Backend is set to 'vllm' but modelport has no vLLM engine (vLLM is {state}); "
            "use --backend huggingface or auto."
        )
    if opts.dtype not in DTYPES:
        raise ModelLoadError(f"--dtype must be one of {', '.join(DTYPES)}, not {opts.dtype!r}.")
    task = opts.task or infer_task(opts)
    if task not in TASKS:
        raise ModelLoadError(f"Task {task!r} is not supported; choose one of {', '.join(TASKS)}.")
    if task in GENERATIVE_TASKS:
        from modelport.runtimes.huggingface_generate import HFGenerativeModel

        return HFGenerativeModel(name, opts, task)
    if task == "text_embedding":
        from modelport.runtimes.huggingface_encoder import HFEmbeddingModel

        return HFEmbeddingModel(name, opts)
    from modelport.runtimes.huggingface_encoder import HFPredictiveModel

    return HFPredictiveModel(name, opts, task)


def read_options(path: str | Path | None, options: dict[str, Any]) -> HFOptions:
    """HFOptions from keyword options (flags, or the runtime table's defaults)."""
    known = set(HFOptions.__dataclass_fields__)
    given = {k: v for k, v in options.items() if k in known and v is not None}
    if path is not None and "model_dir" not in given:
        given["model_dir"] = str(path)
    if given.get("max_model_len") is not None and int(given["max_model_len"]) < 1:
        raise ModelLoadError("--max_model_len must be a positive number of tokens.")
    return HFOptions(**given)


def infer_task(opts: HFOptions) -> str:
    """KServe's infer_task_from_model_architecture on the model's config."""
    config = load_config(opts)
    architectures = getattr(config, "architectures", None) or []
    if not architectures:
        raise ModelLoadError("The model config names no architecture; pass --task.")
    for suffix, task in ARCHITECTURE_TASKS:
        if architectures[0].endswith(suffix):
            return task
    raise ModelLoadError(
        f"Task couldn't be inferred from {architectures[0]}. Please manually set `task` option."
    )


def load_config(opts: HFOptions) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(
            opts.source, revision=opts.model_revision, trust_remote_code=opts.trust_remote_code
        )
    except Exception as exc:
        raise ModelLoadError(f"Cannot read the model config of {opts.source}: {exc}") from exc


def load_tokenizer(opts: HFOptions, padding_side: str = "right") -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            opts.source,
            revision=opts.tokenizer_revision,
            trust_remote_code=opts.trust_remote_code,
            padding_side=padding_side,
        )
    except Exception as exc:
        raise ModelLoadError(f"Cannot load the tokenizer of {opts.source}: {exc}") from exc
    if tokenizer.pad_token is None:
        # Batches are padded; decoder-only models often have no pad token (KServe does the same).
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def load_weights(opts: HFOptions, auto_class: Any) -> Any:
    """The model in eval mode on the CPU, in the asked dtype."""
    import torch

    dtypes = {
        "auto": torch.float32,
        "float32": torch.float32,
        "float": torch.float32,
        "float16": torch.float16,
        "half": torch.float16,
        "bfloat16": torch.bfloat16,
    }
    torch.set_num_threads(max(1, opts.nthread))
    try:
        model = auto_class.from_pretrained(
            opts.source,
            revision=opts.model_revision,
            trust_remote_code=opts.trust_remote_code,
            dtype=dtypes[opts.dtype],
        )
    except Exception as exc:
        raise ModelLoadError(f"Cannot load {opts.source}: {type(exc).__name__}: {exc}") from exc
    model.eval()
    return model


def context_length(opts: HFOptions, config: Any, tokenizer: Any) -> int:
    """--max_model_len, else the model's position limit (KServe: max position encodings)."""
    positions = None
    for attr in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            positions = value
            break
    if opts.max_model_len:
        # Past the model's position table a forward pass fails: never promise more.
        return min(opts.max_model_len, positions) if positions else opts.max_model_len
    if positions:
        return positions
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        return limit
    return 2048
