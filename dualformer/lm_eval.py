"""Answer a MathQuery with a causal LM: one greedy and n sampled responses per prompt, batched.

    from dualformer.lm_eval import HfGenerator
    attempts = HfGenerator(model, tokenizer, GenerateSpec(batch_size=8), seed=0)(query)
    attempts[0].greedy.text, [s.text for s in attempts[0].samples]

Used by `CausalLMSolver.solve` (dualformer/lm_finetune.py); the task scores the responses
(Greedy@1, Pass@k, mean length: tasks/dualformer_paper/math.py). Every response starts with the query's forced
prefix (the slow/fast control), encoded apart from the prompt as in training. Two backends:
`transformers.generate` (left-padded batches, the whole sampling group of a prompt in one call;
seeded without touching the caller's RNG state), and vLLM (imported only when chosen; it reads
the fine-tuned checkpoint folder; this path is not exercised by the tests, which have no GPU).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from harness.api import ConfigError
from tasks.dualformer_paper.math import Attempt, Generated, MathQuery


def encode_prompt(tokenizer: Any, prompt: str, prefix: str = "") -> list[int]:
    """Prompt ids, then the forced response start: encoded apart, as lm_finetune.encode_pairs does in training."""
    ids = tokenizer(prompt).input_ids
    return ids + (tokenizer(prefix, add_special_tokens=False).input_ids if prefix else [])


@dataclass
class HfGenerator:
    model: Any
    tokenizer: Any
    spec: Any  # dualformer.lm_finetune.GenerateSpec
    seed: int = 0

    def __call__(self, query: MathQuery) -> list[Attempt]:
        prompts = [encode_prompt(self.tokenizer, p, query.prefix) for p in query.prompts]
        prefix = self.tokenizer(query.prefix, add_special_tokens=False).input_ids if query.prefix else []
        n_prefix = len(prefix)
        limit = query.max_new_tokens or self.spec.max_new_tokens
        greedy = self._run(prompts, n_prefix, limit, n=1, sample=False)
        if query.n_samples:
            samples = self._run(prompts, n_prefix, limit, n=query.n_samples, sample=True,
                                temperature=query.temperature, top_p=query.top_p)
        else:
            samples = [[] for _ in prompts]
        return [Attempt(g[0], tuple(s)) for g, s in zip(greedy, samples)]

    def _run(self, prompts: Sequence[list[int]], n_prefix: int, limit: int, n: int, sample: bool,
             temperature: float = 1.0, top_p: float = 1.0) -> list[list[Generated]]:
        import torch
        from transformers import GenerationConfig

        tok = self.tokenizer
        # top_k=0: no top-k cut (transformers' default is 50), only the protocol's temperature and top-p
        sampling = {"temperature": temperature, "top_p": top_p, "top_k": 0} if sample else {}
        config = GenerationConfig(max_new_tokens=limit, do_sample=sample, num_return_sequences=n,
                                  pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                                  bos_token_id=tok.bos_token_id, **sampling)
        device = next(self.model.parameters()).device
        out: list[list[Generated]] = []
        self.model.eval()
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
            torch.manual_seed(self.seed)  # the same draws whatever ran before
            for start in range(0, len(prompts), self.spec.batch_size):
                chunk = prompts[start:start + self.spec.batch_size]
                ids, mask = left_pad(chunk, tok.pad_token_id, device)
                rows = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
                for i, prompt in enumerate(chunk):
                    group = rows[i * n:(i + 1) * n, ids.shape[1]:].tolist()
                    out.append([self._response(prompt, n_prefix, r) for r in group])
        return out

    def _response(self, prompt: list[int], n_prefix: int, new: list[int]) -> Generated:
        tokens = until_eos(new, self.tokenizer.eos_token_id, self.tokenizer.pad_token_id)
        ids = prompt[len(prompt) - n_prefix:] + tokens if n_prefix else tokens
        return Generated(self.tokenizer.decode(ids, skip_special_tokens=True), len(ids))


def left_pad(rows: Sequence[list[int]], pad_id: int, device: Any) -> tuple[Any, Any]:
    """Left padding: every prompt ends at the same column, where generation starts."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r)
        mask[i, width - len(r):] = 1
    return ids.to(device), mask.to(device)


def until_eos(tokens: Sequence[int], eos_id: int, pad_id: int | None) -> list[int]:
    """The generated tokens before the first end-of-sequence (generate pads finished rows)."""
    out = []
    for t in tokens:
        if t == eos_id:
            break
        out.append(t)
    while out and pad_id is not None and pad_id != eos_id and out[-1] == pad_id:
        out.pop()
    return out


class VllmGenerator:
    """The same contract on vLLM: one LLM over the saved checkpoint, prompts given as token ids."""

    def __init__(self, model_dir: str, tokenizer: Any, spec: Any, seed: int = 0) -> None:
        try:
            from vllm import LLM
        except ImportError:
            raise ConfigError("model.generate.backend=vllm needs vLLM (pip install vllm, GPU only)") from None
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # the training copy is gone: give its memory to vLLM
        self.tokenizer, self.spec, self.seed = tokenizer, spec, seed
        self.llm = LLM(model=model_dir, tokenizer=model_dir, seed=seed, dtype="bfloat16",
                       gpu_memory_utilization=spec.gpu_memory_utilization)

    def __call__(self, query: MathQuery) -> list[Attempt]:
        from vllm import SamplingParams

        tok = self.tokenizer
        prefix = tok(query.prefix, add_special_tokens=False).input_ids if query.prefix else []
        prompts = [{"prompt_token_ids": encode_prompt(tok, p, query.prefix)} for p in query.prompts]
        limit = query.max_new_tokens or self.spec.max_new_tokens
        greedy = self.llm.generate(prompts, SamplingParams(n=1, temperature=0.0, max_tokens=limit))
        sampling = SamplingParams(n=max(query.n_samples, 1), temperature=query.temperature, top_p=query.top_p,
                                  max_tokens=limit, seed=self.seed)
        sampled = self.llm.generate(prompts, sampling) if query.n_samples else [None] * len(prompts)

        def as_generated(completion: Any) -> Generated:
            ids = prefix + until_eos(list(completion.token_ids), tok.eos_token_id, tok.pad_token_id)
            return Generated(tok.decode(ids, skip_special_tokens=True), len(ids))

        return [Attempt(as_generated(g.outputs[0]),
                        tuple(as_generated(c) for c in s.outputs) if s is not None else ())
                for g, s in zip(greedy, sampled)]
