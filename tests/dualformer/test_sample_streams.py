"""Per-prompt random streams (issue 26): a prompt's samples do not depend on its batch or on how
many DDP processes split the prompts, and the draw is the categorical one multinomial makes."""
from __future__ import annotations

import torch

from dualformer.model import Transformer, preset
from dualformer.sample import inverse_cdf, prompt_seed, sample

BOS, CREATE = 1, 3


def test_a_prompts_samples_are_the_same_alone_together_and_in_another_order():
    torch.manual_seed(0)
    model = Transformer(preset("tiny", vocab_size=15)).eval()
    prompts = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 0], [12, 5, 0, 0]])
    mask = prompts != 0
    seeds = [prompt_seed(42, f"task{i}", "auto") for i in range(3)]
    # eos = 2: rows stop at different steps (some leave the batch early), max_len above one block
    together = sample(model, prompts, mask, BOS, 2, prefix=[CREATE], n=5, max_len=200, seeds=seeds)
    reverse = sample(model, prompts.flip(0), mask.flip(0), BOS, 2, prefix=[CREATE], n=5, max_len=200,
                     seeds=seeds[::-1])
    for i in range(3):
        width = int(mask[i].sum())
        alone = sample(model, prompts[i:i + 1, :width], mask[i:i + 1, :width], BOS, 2, prefix=[CREATE],
                       n=5, max_len=200, seeds=[seeds[i]])
        assert together.tokens[i] == alone.tokens[0] == reverse.tokens[2 - i]
    assert len({len(t) for p in together.tokens for t in p}) > 1, "rows finished at different steps"
    assert together.tokens[0] != together.tokens[1]


def test_seeded_sampling_leaves_the_global_random_state_alone():
    torch.manual_seed(0)
    model = Transformer(preset("tiny", vocab_size=15)).eval()
    state = torch.get_rng_state()
    sample(model, torch.tensor([[5, 6]]), torch.tensor([[True, True]]), BOS, 2, n=3, max_len=20, seeds=[7])
    assert torch.equal(torch.get_rng_state(), state)


def test_inverse_cdf_draws_each_token_with_its_probability():
    probs = torch.tensor([[0.5, 0.0, 0.3, 0.2]]).expand(200_000, -1)
    uniforms = torch.rand(200_000, generator=torch.Generator().manual_seed(1))
    counts = torch.bincount(inverse_cdf(probs, uniforms), minlength=4).float() / 200_000
    assert counts[1] == 0, "a token of probability 0 is never drawn"
    assert torch.allclose(counts, probs[0], atol=0.005)
    assert inverse_cdf(torch.tensor([[0.0, 1.0]]), torch.tensor([0.0])).item() == 1


def test_prompt_seeds_differ_per_key_and_fit_a_generator():
    seeds = {prompt_seed(42, "abc", mode) for mode in ("fast", "slow", "auto")}
    assert len(seeds) == 3 and all(0 <= s < 2**63 for s in seeds)
    assert prompt_seed(42, "abc", "fast") == prompt_seed(42, "abc", "fast")


def test_the_in_place_cache_decodes_what_the_copying_one_does_without_copying_each_step():
    """Issue 26, defect 6: keys and values are written into a buffer that grows by doubling,
    not concatenated into a new tensor at every decoded token."""
    from dualformer.model import KVCache

    torch.manual_seed(0)
    model = Transformer(preset("tiny", vocab_size=15)).eval()
    prompts = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 0]])
    mask = prompts != 0
    seeds = [prompt_seed(1, i) for i in range(2)]
    copying = sample(model, prompts, mask, BOS, 2, prefix=[CREATE], n=3, max_len=150, seeds=seeds, kv_in_place=False)
    in_place = sample(model, prompts, mask, BOS, 2, prefix=[CREATE], n=3, max_len=150, seeds=seeds)
    assert in_place.tokens == copying.tokens and in_place.finished == copying.finished
    cache = KVCache()
    memory, memory_mask = model.encode(prompts, mask)
    model.decode(torch.tensor([[BOS], [BOS]]), memory, memory_mask, cache)
    storage = cache.self_kv[0][0].untyped_storage().data_ptr()
    for _ in range(20):  # within the buffer's first capacity: the same storage, written in place
        model.decode(torch.tensor([[5], [6]]), memory, memory_mask, cache)
    assert cache.self_kv[0][0].untyped_storage().data_ptr() == storage and cache.length == 21
    with torch.no_grad():
        full = model.decode(torch.tensor([[BOS] + [5] * 20 + [7], [BOS] + [6] * 20 + [7]]), memory, memory_mask)
        step = model.decode(torch.tensor([[7], [7]]), memory, memory_mask, cache)
    assert torch.allclose(full[:, -1], step[:, -1], atol=1e-5)
