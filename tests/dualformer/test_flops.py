"""FLOP counts of the encoder-decoder (dualformer.flops), the base of the README's GPU budget:
the weight matmuls against torch's own FlopCounterMode on the real model (forward and backward),
the attention terms against a count by hand for the tiny preset."""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from dualformer.flops import decode_flops, train_flops
from dualformer.model import Transformer, preset

TINY = preset("tiny", vocab_size=20)  # 2 layers, d 64, FFN hidden 128


def test_tiny_training_flops_by_hand():
    d, h, layers, vocab, prompt, target = 64, 128, 2, 20, 7, 11
    # per layer, weights: encoder q,k,v,out 4d^2 + SwiGLU 3dh; decoder also cross q,out 2d^2 (per
    # decoder token) and cross k,v 2d^2 (per prompt token); encoder output projection d^2; head d x vocab
    encoder = 2 * prompt * (layers * (4 * d * d + 3 * d * h) + d * d)
    decoder = 2 * target * (layers * (6 * d * d + 3 * d * h) + d * vocab) + 2 * prompt * layers * 2 * d * d
    # attention (full score matrices, QK^T and AV, 2 FLOPs per multiply-add): 4 L_q L_k d per layer
    attention = layers * 4 * d * (prompt * prompt + target * target + target * prompt)
    assert encoder + decoder == 3_624_448 and attention == 126_464  # the sums, written out once
    flops = train_flops(TINY, prompt, target)
    assert flops.matmul == 3 * (encoder + decoder) and flops.attention == 3 * attention  # backward: 2x forward
    assert flops.total == flops.matmul + flops.attention


def test_the_weight_matmuls_are_what_torch_counts_on_the_real_model():
    torch.manual_seed(0)
    model = Transformer(TINY)
    prompt, tokens = torch.randint(3, 20, (2, 7)), torch.randint(3, 20, (2, 12))  # 11 decoder inputs
    with FlopCounterMode(display=False) as counter:
        model.loss(prompt, prompt > 0, tokens, tokens > 0).backward()
    # torch does not count CPU attention kernels: what it counts is the weight matmuls, exactly
    assert counter.get_total_flops() == 2 * train_flops(TINY, 7, 11).matmul


def test_decoding_with_the_cache_costs_one_token_at_a_time():
    d, layers, prompt = 64, 2, 7
    one = decode_flops(TINY, prompt, 1)
    two = decode_flops(TINY, prompt, 2)
    per_token_weights = 2 * (layers * (6 * d * d + 3 * d * 128) + d * 20)
    # the second token attends to 2 cached positions (self) and the prompt (cross)
    assert two - one == per_token_weights + layers * 4 * d * (2 + prompt)
    # the cross-attention keys and values of the prompt, projected once per row
    assert one == per_token_weights + layers * 4 * d * (1 + prompt) + 2 * prompt * layers * 2 * d * d
