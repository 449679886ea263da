"""Fine-tune a causal LM on step-structured MATH with Dualformer step dropout (paper Table 5.6).

    python -m harness.train task=math model=causal_lm                                  # Mistral-7B, GPU
    python -m harness.train task=math model=causal_lm model.pretrained=meta-llama/Meta-Llama-3-8B
    python -m harness.train task=math model=causal_lm model.lora.r=16                  # LoRA (peft)
    python -m harness.train task=math model=causal_lm model.generate.backend=vllm \
        model.checkpoint_dir=runs/math_ckpt                                            # vLLM evaluation
    python -m harness.train task=math_mini model=causal_lm_tiny \
        task.train.source=../shared/data/math task.test_data.source=../shared/data/math/math500  # CPU

`pretrained` is a hub id or a local model folder, or `tiny`: a small Llama initialised at random
from `seed`, with a byte-level BPE tokenizer trained (with `tokenizers`) on the task's own training
text, so tests and smoke runs fetch nothing. Each epoch asks the task for fresh training pairs
(`MathTask.training_pairs`, dropout drawn per example per epoch) and trains on the response tokens
only (prompt tokens are masked out of the loss; token-weighted mean). AdamW, linear warm-up then
cosine decay, gradient clipping; bf16 on a GPU (LoRA: bf16 weights; full fine-tuning: fp32 weights
under bf16 autocast); fp32 on CPU. Evaluation is in `dualformer.lm_eval` (batched `generate`, or
vLLM). The paper's fine-tuning hyperparameters are not known (specs/dualformer.md section 6):
configs/model/causal_lm.yaml holds a common supervised fine-tuning recipe, marked provisional.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.api import ConfigError
from tasks.dualformer_paper.math import Attempt, MathQuery, StepDropout, TrainingPair

log = logging.getLogger(__name__)
IGNORE = -100  # the label id that cross-entropy skips (prompt and padding positions)


@dataclass(frozen=True)
class TinyModel:
    """The offline test model: a small Llama and a BPE vocabulary learned from the training text."""

    hidden_size: int = 64
    layers: int = 2
    heads: int = 4
    intermediate_size: int = 128
    vocab_size: int = 512
    max_positions: int = 2048


@dataclass(frozen=True)
class LoraSpec:
    """LoRA adapters through `peft`; r = 0 fine-tunes every weight instead."""

    r: int = 0
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_modules", tuple(self.target_modules))


@dataclass(frozen=True)
class TrainSpec:
    epochs: int = 3
    lr: float = 1e-5
    batch_size: int = 4          # sequences per forward pass
    grad_accum: int = 16         # forward passes per optimizer step
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_length: int = 2048       # longer examples are skipped (truncating would cut the answer)
    grad_clip: float = 1.0
    log_every: int = 10          # optimizer steps between curve points
    max_steps: int = 0           # > 0: stop after this many optimizer steps
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.grad_accum < 1 or not self.lr > 0:
            raise ConfigError(f"model.train: epochs, batch_size, grad_accum must be >= 1 and lr > 0, "
                              f"got {self.epochs}, {self.batch_size}, {self.grad_accum}, {self.lr}")


@dataclass(frozen=True)
class GenerateSpec:
    backend: str = "hf"          # "hf" (transformers.generate) or "vllm"
    max_new_tokens: int = 1024
    batch_size: int = 8          # prompts per generate call (each with all its samples)
    gpu_memory_utilization: float = 0.85  # vLLM only

    def __post_init__(self) -> None:
        if self.backend not in ("hf", "vllm"):
            raise ConfigError(f"model.generate.backend must be hf or vllm, got {self.backend!r}")


@dataclass
class CausalLMSolver:
    """`harness.api.Model` for MATH: `fit(task, logger)` fine-tunes, `solve(MathQuery)` answers."""

    pretrained: str = "tiny"
    dropout: StepDropout = field(default_factory=StepDropout)
    train: TrainSpec = field(default_factory=TrainSpec)
    generate: GenerateSpec = field(default_factory=GenerateSpec)
    lora: LoraSpec = field(default_factory=LoraSpec)
    tiny: TinyModel = field(default_factory=TinyModel)
    seed: int = 0
    bf16: bool = True
    device: str = "auto"
    checkpoint_dir: str | None = None
    model: Any = field(default=None, init=False, repr=False)
    tokenizer: Any = field(default=None, init=False, repr=False)
    _generator: Any = field(default=None, init=False, repr=False)
    _torch_device: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.generate.backend == "vllm" and not self.checkpoint_dir:
            raise ConfigError("model.generate.backend=vllm reads the fine-tuned model from disk: "
                              "set model.checkpoint_dir")

    # ------------------------------------------------------------------ training

    def fit(self, task: Any, logger: Any) -> None:
        import torch

        self._torch_device = resolve_device(self.device)
        self.tokenizer, self.model = self._load(task)
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.train.lr, weight_decay=self.train.weight_decay)
        pairs = task.training_pairs(self.dropout, seed=epoch_seed(self.seed, 0))  # epoch 0's draw
        encoded = encode_pairs(self.tokenizer, pairs, self.train.max_length)
        per_epoch = math.ceil(len(encoded[0]) / (self.train.batch_size * self.train.grad_accum))
        total = self.train.max_steps or per_epoch * self.train.epochs
        from transformers import get_cosine_schedule_with_warmup

        schedule = get_cosine_schedule_with_warmup(optimizer, int(self.train.warmup_ratio * total), total)
        step = 0
        for epoch in range(self.train.epochs):
            if epoch:
                pairs = task.training_pairs(self.dropout, seed=epoch_seed(self.seed, epoch))
                encoded = encode_pairs(self.tokenizer, pairs, self.train.max_length)
            step = self._epoch(pairs, encoded, epoch, step, total, optimizer, schedule, logger)
            if step >= total:
                break
        self.model.eval()
        if self.checkpoint_dir:  # LoRA is merged in on the way: inference runs on the plain model
            self.model = save_checkpoint(self.model, self.tokenizer, Path(self.checkpoint_dir))

    def _epoch(self, pairs: Sequence[TrainingPair], encoded: tuple[list[Encoded], int], epoch: int,
               step: int, total: int, optimizer: Any, schedule: Any, logger: Any) -> int:
        """One pass over this epoch's pairs; returns the optimizer step count after it."""
        import torch

        examples, skipped = encoded
        order = np.random.default_rng(epoch_seed(self.seed, epoch)).permutation(len(examples))
        size, accum = self.train.batch_size, self.train.grad_accum
        batches = [[examples[i] for i in order[k:k + size]] for k in range(0, len(order), size)]
        self.model.train()
        losses: list[float] = []
        for b, batch in enumerate(batches):
            ids, mask, labels = collate(batch, self.tokenizer.pad_token_id, self._torch_device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self._autocast()):
                loss = self.model(input_ids=ids, attention_mask=mask, labels=labels).loss
            (loss / accum).backward()
            losses.append(float(loss.detach()))
            if (b + 1) % accum and b + 1 < len(batches):
                continue
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.train.grad_clip)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            last = b + 1 == len(batches) or step >= total
            if step % self.train.log_every == 0 or last:
                point = {"train/loss": float(np.mean(losses)), "train/lr": schedule.get_last_lr()[0],
                         "train/epoch": epoch + (b + 1) / len(batches)}
                logger.log({**point, **(dropout_stats(pairs, skipped) if last else {})}, step=step)
                losses = []
            if step >= total:
                break
        log.info("epoch %d: optimizer step %d of %d, %d examples (%d over max_length left out)",
                 epoch + 1, step, total, len(examples), skipped)
        return step

    def _autocast(self) -> bool:
        return self.bf16 and self._torch_device.type == "cuda" and not self.lora.r

    def _load(self, task: Any) -> tuple[Any, Any]:
        import torch

        if self.pretrained == "tiny":
            corpus = [p.prompt + p.target for p in task.training_pairs(StepDropout.none(), seed=0)]
            tokenizer = build_tiny_tokenizer(corpus, self.tiny.vocab_size)
            model = build_tiny_model(tokenizer, self.tiny, self.seed)
        else:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(self.pretrained)
            on_gpu = self.bf16 and resolve_device(self.device).type == "cuda"
            dtype = torch.bfloat16 if on_gpu and self.lora.r else torch.float32
            model = AutoModelForCausalLM.from_pretrained(self.pretrained, dtype=dtype)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token  # padding is masked out, so any id will do
        if self.train.gradient_checkpointing:  # non-reentrant: gradients reach LoRA adapters too
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        if self.lora.r:
            model = add_lora(model, self.lora)
        return tokenizer, model.to(self._torch_device)

    # ------------------------------------------------------------------ inference

    def solve(self, query: MathQuery) -> list[Attempt]:
        """One greedy and `query.n_samples` sampled responses per prompt (see MathQuery)."""
        if self.model is None and self._generator is None:
            raise ConfigError("solve() before fit(): the model has not been trained")
        if self._generator is None:
            from dualformer import lm_eval

            if self.generate.backend == "vllm":
                self.model = None  # the GPU memory goes to vLLM, which reads the checkpoint
                self._generator = lm_eval.VllmGenerator(self.checkpoint_dir, self.tokenizer,
                                                        self.generate, self.seed)
            else:
                self._generator = lm_eval.HfGenerator(self.model, self.tokenizer, self.generate, self.seed)
        return self._generator(query)


def resolve_device(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def epoch_seed(seed: int, epoch: int) -> int:
    """A seed per (run seed, epoch): dropout and order change every epoch, reproducibly."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def build_tiny_tokenizer(texts: Sequence[str], vocab_size: int) -> Any:
    """A byte-level BPE learned from `texts`: any text encodes (bytes), nothing is downloaded."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(texts, trainer)
    core.post_processor = processors.TemplateProcessing(single="<s> $A",
                                                        special_tokens=[("<s>", core.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")


def build_tiny_model(tokenizer: Any, spec: TinyModel, seed: int) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=spec.hidden_size,
                         intermediate_size=spec.intermediate_size, num_hidden_layers=spec.layers,
                         num_attention_heads=spec.heads, num_key_value_heads=spec.heads,
                         max_position_embeddings=spec.max_positions, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):  # seeded weights, and the caller's RNG state untouched
        torch.manual_seed(seed)
        return LlamaForCausalLM(config)


def add_lora(model: Any, spec: LoraSpec) -> Any:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ConfigError("model.lora.r > 0 needs `peft` (pip install peft)") from None
    config = LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                        target_modules=list(spec.target_modules), task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def save_checkpoint(model: Any, tokenizer: Any, directory: Path) -> Any:
    """A standalone model folder (LoRA merged in) that from_pretrained and vLLM can read; returns
    the merged model (LoRA's merge changes the model it is given)."""
    directory.mkdir(parents=True, exist_ok=True)
    plain = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
    plain.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return plain


@dataclass(frozen=True)
class Encoded:
    ids: tuple[int, ...]
    n_prompt: int  # the first n_prompt ids are the prompt: no loss there


def encode_pairs(tokenizer: Any, pairs: Sequence[TrainingPair], max_length: int) -> tuple[list[Encoded], int]:
    """Prompt and target encoded apart (so the control prefix tokenizes as at inference), eos
    appended; examples over `max_length` are left out and counted."""
    prompts = tokenizer([p.prompt for p in pairs]).input_ids
    targets = tokenizer([p.target for p in pairs], add_special_tokens=False).input_ids
    out = [Encoded(tuple(a + b + [tokenizer.eos_token_id]), len(a)) for a, b in zip(prompts, targets)]
    kept = [e for e in out if len(e.ids) <= max_length]
    return kept, len(out) - len(kept)


def collate(batch: Sequence[Encoded], pad_id: int, device: Any) -> tuple[Any, Any, Any]:
    """Right-padded ids, attention mask and labels (IGNORE on prompt and padding)."""
    import torch

    width = max(len(e.ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, e in enumerate(batch):
        ids[row, :len(e.ids)] = torch.tensor(e.ids)
        labels[row, e.n_prompt:len(e.ids)] = torch.tensor(e.ids[e.n_prompt:])
        mask[row, :len(e.ids)] = 1
    return ids.to(device), mask.to(device), labels.to(device)


def dropout_stats(pairs: Sequence[TrainingPair], skipped: int) -> dict[str, float]:
    """What this epoch's dropout drew: the share of each case and of the steps kept."""
    n = max(len(pairs), 1)
    stats = {f"train/{kind}": sum(p.kind == kind for p in pairs) / n for kind in ("full", "partial", "fast")}
    stats["train/steps_kept"] = sum(p.kept for p in pairs) / max(sum(p.steps for p in pairs), 1)
    stats["train/skipped_long"] = float(skipped)
    return stats
