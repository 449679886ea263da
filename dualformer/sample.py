"""Batched, KV-cached sampling with Dualformer's mode control.

    from dualformer.sample import sample
    out = sample(model, prompt_ids, prompt_mask, bos=1, eos=2, prefix=[plan_id], n=64)

The first decoder tokens after `bos` choose the mode: forcing `plan` asks for the plan only
(fast), forcing `create` asks for a search trace first (slow), forcing nothing lets the model
choose (auto). Each prompt is encoded once and its memory shared by its `n` samples; every step
feeds one token per sequence through the per-layer cache. Temperature 1 with no top-k / top-p is
the papers' sampler; temperature 0 is greedy.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from dualformer.model import KVCache, Transformer


@dataclass
class Samples:
    tokens: list[list[list[int]]]  # [prompt][sample] -> decoder tokens after bos (prefix included)
    finished: list[list[bool]]     # reached eos before the length guard


@torch.no_grad()
def sample(model: Transformer, prompt: torch.Tensor, prompt_mask: torch.Tensor, bos: int, eos: int,
           prefix: list[int] = (), n: int = 64, temperature: float = 1.0, max_len: int = 10_000,
           generator: torch.Generator | None = None, use_cache: bool = True) -> Samples:
    """Draw `n` continuations per prompt; stops at `eos` or after `max_len` decoder tokens."""
    model.eval()
    batch = prompt.shape[0]
    memory, memory_mask = model.encode(prompt, prompt_mask)
    memory = memory.repeat_interleave(n, dim=0)
    memory_mask = memory_mask.repeat_interleave(n, dim=0)
    start = torch.tensor([bos, *prefix], device=prompt.device).expand(batch * n, -1)
    cache = KVCache() if use_cache else None
    sequences, step_input = start, start
    done = torch.zeros(batch * n, dtype=torch.bool, device=prompt.device)
    while sequences.shape[1] - 1 < max_len and not bool(done.all()):
        logits = model.decode(step_input if use_cache else sequences, memory, memory_mask, cache)[:, -1]
        if temperature == 0:
            token = logits.argmax(-1)
        else:
            probs = torch.softmax(logits.float() / temperature, dim=-1)
            token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        token = torch.where(done, torch.full_like(token, eos), token)
        done |= token == eos
        sequences = torch.cat([sequences, token[:, None]], dim=1)
        step_input = token[:, None]
    rows = sequences[:, 1:].tolist()
    tokens, finished = [], []
    for i in range(batch):
        mine = rows[i * n:(i + 1) * n]
        cut = [r[:r.index(eos)] if eos in r else r for r in mine]
        tokens.append(cut)
        finished.append([eos in r for r in mine])
    return Samples(tokens, finished)
