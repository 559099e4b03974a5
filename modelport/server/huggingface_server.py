"""``python -m modelport.server.huggingface_server --model_name NAME --model_dir DIR
[--task T] [--max_model_len N] [--dtype D] [--backend B]``: the huggingface runtime with
KServe's flags, as KServe's ``python -m huggingfaceserver`` (its ServingRuntime's command).
``modelport serve DIR --format huggingface`` serves the same model with the task inferred
from the model's config."""

from __future__ import annotations

from modelport.model import Model
from modelport.runtimes.huggingface import huggingface_model
from modelport.server.kserve_flags import huggingface_command_line
from modelport.server.model_server import ModelServer


def model_from_flags() -> Model:
    """The model the command line describes (not loaded)."""
    args = huggingface_command_line()
    return huggingface_model(
        args.model_name,
        args.model_dir,
        model_id=args.model_id,
        model_revision=args.model_revision,
        tokenizer_revision=args.tokenizer_revision,
        task=args.task,
        max_model_len=args.max_model_len,
        dtype=args.dtype,
        backend=args.backend,
        trust_remote_code=args.trust_remote_code,
        return_probabilities=args.return_probabilities,
    )


def main() -> None:
    ModelServer().start([model_from_flags])


if __name__ == "__main__":
    main()
