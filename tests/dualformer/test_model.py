"""The transformer: cached decoding, rotary offsets, sizes, training steps, exact resume, modes."""
from __future__ import annotations

import torch

from dualformer.model import KVCache, Rotary, Transformer, preset
from dualformer.sample import sample
from dualformer.train import Batch, TrainConfig, Trainer

PAD, BOS, EOS, CREATE, PLAN = 0, 1, 2, 3, 4
DIGITS = list(range(5, 15))


def toy_batch(indices: list[int], epoch: int) -> Batch:
    """Prompt: three digits. Even examples: trace (create + digits) then plan; odd: plan only."""
    prompts, targets = [], []
    for i in indices:
        g = torch.Generator().manual_seed(i)
        digits = [DIGITS[j] for j in torch.randint(0, 10, (3,), generator=g).tolist()]
        prompts.append(digits)
        trace = [CREATE, *digits] if i % 2 == 0 else []
        targets.append([BOS, *trace, PLAN, *reversed(digits), EOS])
    width = max(map(len, targets))
    tokens = torch.tensor([t + [PAD] * (width - len(t)) for t in targets])
    return Batch(torch.tensor(prompts), torch.ones(len(prompts), 3, dtype=torch.bool), tokens, tokens != PAD)


def tiny(seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(preset("tiny", vocab_size=15))


def test_cached_decoding_equals_the_full_forward_pass():
    model = tiny().eval()
    batch = toy_batch([0, 1, 2], 0)
    batch.prompt_mask[1, 2] = False  # a padded prompt too
    full = model(batch.prompt, batch.prompt_mask, batch.tokens)
    memory, mask = model.encode(batch.prompt, batch.prompt_mask)
    cache = KVCache()
    parts = [model.decode(batch.tokens[:, :2], memory, mask, cache)]  # a forced prefix, then one by one
    parts += [model.decode(batch.tokens[:, i:i + 1], memory, mask, cache) for i in range(2, batch.tokens.shape[1])]
    assert torch.allclose(full, torch.cat(parts, dim=1), atol=1e-5)


def test_rotary_offset_equals_slicing_a_longer_sequence():
    rotary = Rotary(head_dim=8, base=10_000.0)
    x = torch.randn(2, 3, 10, 8)
    whole = rotary(x)
    assert torch.allclose(rotary(x[:, :, 4:], offset=4), whole[:, :, 4:], atol=1e-6)
    # relative: scores depend only on the distance between positions
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    s1 = (rotary(q, 3) * rotary(k, 1)).sum()
    s2 = (rotary(q, 103) * rotary(k, 101)).sum()
    assert torch.allclose(s1, s2, atol=1e-4)


def test_parameter_counts_match_the_papers_sizes():
    counts = Transformer(preset("s", vocab_size=1000)).parameter_counts()
    assert round(counts["trainable"] / 1e6, 1) == 6.8 and round(counts["paper"] / 1e6, 1) == 15.2
    assert round(Transformer(preset("m-s", vocab_size=1000)).parameter_counts()["paper"] / 1e6, 1) == 46.9


def test_one_step_lowers_the_loss_on_a_fixed_batch():
    model = tiny()
    batch = toy_batch(list(range(8)), 0)
    before = model.loss(batch.prompt, batch.prompt_mask, batch.tokens, batch.token_mask).item()
    trainer = Trainer(model, TrainConfig(steps=1, batch_size=8, lr=1e-2, warmup=1), lambda i, e: batch, 8)
    trainer.train_step()
    after = model.loss(batch.prompt, batch.prompt_mask, batch.tokens, batch.token_mask).item()
    assert after < before


def test_resume_gives_bit_identical_next_losses(tmp_path):
    config = dict(steps=8, batch_size=4, lr=3e-3, warmup=2, checkpoint_every=4)
    straight = Trainer(tiny(), TrainConfig(**config, checkpoint_dir=str(tmp_path / "a")), toy_batch, 10).run()
    class Killed(Exception):
        pass

    def die_at_step_4(step, loss):
        if step == 4:
            raise Killed  # the run dies right after its step-4 checkpoint

    first = Trainer(tiny(), TrainConfig(**config, checkpoint_dir=str(tmp_path / "b")), toy_batch, 10)
    try:
        first.run(on_step=die_at_step_4)
    except Killed:
        pass
    resumed = Trainer(tiny(seed=123), TrainConfig(**config, checkpoint_dir=str(tmp_path / "b")), toy_batch, 10)
    tail = resumed.run()
    assert resumed.step == 8 and tail == straight[4:], "same model, optimizer, data position and RNG"


def test_the_first_token_switches_between_trace_and_plan():
    model = tiny()
    Trainer(model, TrainConfig(steps=250, batch_size=32, lr=3e-3, warmup=20), toy_batch, 512).run()
    prompt = toy_batch([1001, 1003], 0)
    fast = sample(model, prompt.prompt, prompt.prompt_mask, BOS, EOS, prefix=[PLAN], n=4, temperature=0, max_len=12)
    slow = sample(model, prompt.prompt, prompt.prompt_mask, BOS, EOS, prefix=[CREATE], n=4, temperature=0, max_len=12)
    for out in (o for per_prompt in fast.tokens for o in per_prompt):
        assert out[0] == PLAN and CREATE not in out and len(out) == 4
    for out in (o for per_prompt in slow.tokens for o in per_prompt):
        assert out[0] == CREATE and PLAN in out[1:] and len(out) == 8
    cached = sample(model, prompt.prompt, prompt.prompt_mask, BOS, EOS, n=2, temperature=0, max_len=12)
    uncached = sample(model, prompt.prompt, prompt.prompt_mask, BOS, EOS, n=2, temperature=0, max_len=12, use_cache=False)
    assert cached.tokens == uncached.tokens and all(all(f) for f in cached.finished)


def test_upstream_initialisation_is_pytorchs_default_ours_is_fan_in():
    """Upstream calls no init of its own: Linear U(+-1/sqrt(fan_in)) (std 1/sqrt(3 fan_in)), Embedding N(0, 1)."""
    torch.manual_seed(0)
    upstream = Transformer(preset("tiny", vocab_size=15, init="upstream"))
    ours = tiny()
    fan_in = 64  # tiny: d_model 64
    w = upstream.decoder[0].self_attn.q.weight.detach()
    assert float(w.abs().max()) <= fan_in ** -0.5 and abs(float(w.std()) - (3 * fan_in) ** -0.5) < 0.005
    assert abs(float(upstream.enc_embed.weight.detach().std()) - 1.0) < 0.1
    assert abs(float(ours.enc_embed.weight.detach().std()) - fan_in ** -0.5) < 0.02
    assert abs(float(ours.decoder[0].self_attn.q.weight.detach().std()) - fan_in ** -0.5) < 0.005
    assert float(ours.decoder[0].self_attn.q.weight.detach().abs().max()) > fan_in ** -0.5  # normal, not uniform


def test_encoder_padding_masked_by_default_attended_as_upstream_when_asked():
    prompt, short = torch.tensor([[5, 6, 7, 0]]), torch.tensor([[5, 6, 7]])
    mask = torch.tensor([[True, True, True, False]])
    ones = torch.ones_like(prompt, dtype=torch.bool)
    for unmasked in (False, True):
        torch.manual_seed(0)
        model = Transformer(preset("tiny", vocab_size=15, mask_encoder_padding=not unmasked)).eval()
        with torch.no_grad():
            padded, cross_mask = model.encode(prompt, mask)
            alone, _ = model.encode(short, torch.ones_like(short, dtype=torch.bool))
            everything, _ = model.encode(prompt, ones)
        assert cross_mask[0, 0, 0].tolist() == mask[0].tolist(), "cross-attention masks padding in both"
        if unmasked:  # upstream: the encoder's self-attention sees the pad token like any other
            assert torch.allclose(padded, everything) and not torch.allclose(padded[:, :3], alone, atol=1e-4)
        else:
            assert torch.allclose(padded[:, :3], alone, atol=1e-5)


def test_dropping_finished_rows_gives_each_prompt_what_it_gets_alone():
    """Greedy decoding of 4 padded prompts at once, finished rows dropped from the batch and the
    cache, equals decoding each prompt alone; `eos` is a token some rows emit early."""
    model = tiny(3).eval()
    prompts = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 0], [12, 5, 0, 0], [6, 6, 6, 6]])
    mask = prompts != 0
    probe = sample(model, prompts, mask, BOS, eos=-1, n=1, temperature=0, max_len=10)
    eos = probe.tokens[0][0][3]  # row 0 stops after 3 tokens; the others wherever they emit it
    together = sample(model, prompts, mask, BOS, eos, prefix=[CREATE], n=2, temperature=0, max_len=10)
    lengths = set()
    for i in range(4):
        alone = sample(model, prompts[i:i + 1, :int(mask[i].sum())], mask[i:i + 1, :int(mask[i].sum())], BOS, eos,
                       prefix=[CREATE], n=2, temperature=0, max_len=10, drop_finished=False)
        assert together.tokens[i] == alone.tokens[0] and together.finished[i] == alone.finished[0]
        lengths.add(len(alone.tokens[0][0]))
    assert len(lengths) > 1, "rows finished at different steps, so some were dropped mid-way"


def test_fused_adamw_trains_as_the_loop_one():
    """Issue 26, defect 6: the fused AdamW (the default on a GPU) takes the same steps; checked on
    the CPU, where torch has it too."""
    config = TrainConfig(steps=4, batch_size=4, lr=3e-3, warmup=2, checkpoint_every=100)
    loop = Trainer(tiny(), config, toy_batch, 10, fused_adamw=False).run()
    fused = Trainer(tiny(), config, toy_batch, 10, fused_adamw=True)
    assert fused.optimizer.defaults["fused"] and torch.allclose(torch.tensor(fused.run()), torch.tensor(loop), atol=1e-5)
