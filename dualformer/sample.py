"""Batched, KV-cached sampling with Dualformer's mode control.

    from dualformer.sample import sample
    out = sample(model, prompt_ids, prompt_mask, bos=1, eos=2, prefix=[plan_id], n=64)

The first decoder tokens after `bos` choose the mode: forcing `plan` asks for the plan only
(fast), forcing `create` asks for a search trace first (slow), forcing nothing lets the model
choose (auto). Each prompt is encoded once and its memory shared by its `n` samples; every step
feeds one token per sequence through the per-layer cache. Temperature 1 with no top-k / top-p is
the papers' sampler; temperature 0 is greedy.

`seeds` (one per prompt) gives every prompt its own random stream: a prompt's samples are then the
same whichever prompts share its batch and however many DDP processes split the set (issue 26),
and drawing them consumes nothing of the process's global random state.
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
           generator: torch.Generator | None = None, use_cache: bool = True,
           drop_finished: bool = True, seeds: list[int] | None = None, kv_in_place: bool = True,
           bf16: bool = False) -> Samples:
    """Draw `n` continuations per prompt; stops at `eos` or after `max_len` decoder tokens.

    drop_finished: a row that wrote `eos` leaves the batch (and the cache), so the remaining steps
    cost what the unfinished rows need; False keeps every row to the end (the former behaviour,
    kept for scripts/bench.py's before/after).
    seeds: one per prompt, its own random stream (`generator` is then unused).
    kv_in_place: the cache writes each token into spare capacity (False: concatenates, a full copy
    per token; scripts/bench.py's before/after).
    bf16: encode and decode under bf16 autocast (the cache then holds bf16 keys and values: half
    the memory traffic per token); the draw itself is made from fp32 probabilities.
    """
    with torch.autocast(prompt.device.type, dtype=torch.bfloat16, enabled=bf16):
        return _sample(model, prompt, prompt_mask, bos, eos, list(prefix), n, temperature, max_len,
                       generator, use_cache, drop_finished, seeds, kv_in_place)


def _sample(model: Transformer, prompt: torch.Tensor, prompt_mask: torch.Tensor, bos: int, eos: int,
            prefix: list[int], n: int, temperature: float, max_len: int, generator: torch.Generator | None,
            use_cache: bool, drop_finished: bool, seeds: list[int] | None, kv_in_place: bool) -> Samples:
    model.eval()
    rows = prompt.shape[0] * n
    memory, memory_mask = model.encode(prompt, prompt_mask)
    memory = memory.repeat_interleave(n, dim=0)
    memory_mask = memory_mask.repeat_interleave(n, dim=0)
    start = torch.tensor([bos, *prefix], device=prompt.device).expand(rows, -1)
    cache = KVCache(in_place=kv_in_place) if use_cache else None
    out = torch.full((rows, max_len + 1), eos, dtype=torch.long, device=prompt.device)
    out[:, :start.shape[1]] = start
    active = torch.arange(rows, device=prompt.device)  # which rows the batch still holds
    done = torch.zeros(rows, dtype=torch.bool, device=prompt.device)
    streams = PromptStreams(seeds, n, prompt.device) if seeds is not None else None
    position, step_input = start.shape[1], start
    while position <= max_len and active.numel():
        context = step_input if use_cache else out[active, :position]
        logits = model.decode(context, memory, memory_mask, cache)[:, -1]
        if temperature == 0:
            token = logits.float().argmax(-1)
        else:
            probs = torch.softmax(logits.float() / temperature, dim=-1)
            if streams is None:
                token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            else:
                token = inverse_cdf(probs, streams.next()[active])
        token = torch.where(done[active], torch.full_like(token, eos), token)
        out[active, position] = token
        done[active] |= token == eos
        position += 1
        keep = ~done[active]
        if drop_finished and not bool(keep.all()):
            active, token = active[keep], token[keep]
            memory, memory_mask = memory[keep], memory_mask[keep]
            if cache is not None:
                cache.keep(keep)
        elif not drop_finished and bool(done.all()):
            break
        step_input = token[:, None]
    return _split(out[:, 1:position].tolist(), done.tolist(), prompt.shape[0], n, eos)


class PromptStreams:
    """Per prompt a generator of uniforms: each position draws `n` for every prompt (its finished
    rows included), so what a prompt gets never depends on the other prompts of the batch."""

    BLOCK = 128  # positions drawn at once: one small call per prompt every BLOCK steps

    def __init__(self, seeds: list[int], n: int, device: torch.device) -> None:
        self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
        self.n, self.device, self.block, self.at = n, device, None, 0

    def next(self) -> torch.Tensor:
        """(prompts x n,) uniforms in [0, 1) for the next position, rows in prompt order."""
        if self.block is None or self.at == self.BLOCK:
            self.block = torch.cat([torch.rand(self.BLOCK, self.n, generator=g, device=self.device)
                                    for g in self.generators], dim=1)
            self.at = 0
        self.at += 1
        return self.block[self.at - 1]


def inverse_cdf(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """One token per row drawn from `probs` (rows x vocab) by inverting its cumulative sum at
    `uniforms` (rows,): the categorical draw torch.multinomial makes, with the noise given."""
    cdf = probs.cumsum(-1)
    target = (uniforms * cdf[:, -1]).unsqueeze(1)
    # right=True: a token of probability 0 (cdf equal to its predecessor's) is never chosen
    return torch.searchsorted(cdf, target, right=True).squeeze(1).clamp(max=probs.shape[-1] - 1)


def prompt_seed(*key: int | str) -> int:
    """A 63-bit seed from a key (run seed, example id, mode, ...): one prompt's random stream."""
    import hashlib

    digest = hashlib.sha256("/".join(map(str, key)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _split(rows: list[list[int]], done: list[bool], prompts: int, n: int, eos: int) -> Samples:
    tokens, finished = [], []
    for i in range(prompts):
        mine = rows[i * n:(i + 1) * n]
        tokens.append([r[:r.index(eos)] if eos in r else r for r in mine])
        finished.append(done[i * n:(i + 1) * n])
    return Samples(tokens, finished)
