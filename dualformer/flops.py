"""FLOP counts of the encoder-decoder, per sequence, for GPU budgets (scripts/budget.py) and MFU.

    from dualformer.flops import train_flops, decode_flops
    train_flops(config, prompt=900, target=3000).total    # one training sequence, forward + backward
    decode_flops(config, prompt=900, response=3000)        # one sampled response, KV-cached

Two FLOPs per multiply-add. Weight matmuls: every linear layer over the tokens it sees (the
decoder's cross-attention keys and values are projected from the prompt's tokens, not the
decoder's). Attention: QK^T and AV over full score matrices, 4 x L_query x L_key x d per layer,
no saving counted for the causal mask (what torch's own FlopCounterMode counts for the GPU
kernels). Backward is twice forward. Norms, softmax, rotary and the loss are left out (a few
percent at these widths). tests/dualformer/test_flops.py checks the weight part against torch's
FlopCounterMode on the real model and the attention part by hand.
"""
from __future__ import annotations

from dataclasses import dataclass

from dualformer.model import ModelConfig


@dataclass(frozen=True)
class Flops:
    matmul: int      # weight matmuls
    attention: int   # score and value products

    @property
    def total(self) -> int:
        return self.matmul + self.attention


def _per_token(config: ModelConfig) -> tuple[int, int, int]:
    """Multiply-adds per token: an encoder token, a decoder token, and a prompt token's
    cross-attention keys and values (all decoder layers)."""
    d, hidden, layers = config.d_model, config.hidden, config.layers
    ffn = 3 * d * hidden  # SwiGLU: gate and up (2 d h), down (h d)
    encoder = layers * (4 * d * d + ffn) + d * d  # q, k, v, out; the projection to the decoder width
    decoder = layers * (6 * d * d + ffn) + d * config.vocab_size  # self q,k,v,out; cross q,out; head
    return encoder, decoder, layers * 2 * d * d


def train_flops(config: ModelConfig, prompt: int, target: int) -> Flops:
    """Forward and backward of one sequence: `prompt` encoder tokens, `target` decoder inputs
    (the decoder sequence less one: the loss predicts each next token)."""
    encoder, decoder, cross_kv = _per_token(config)
    matmul = 2 * (prompt * (encoder + cross_kv) + target * decoder)
    attention = config.layers * 4 * config.d_model * (prompt * prompt + target * target + target * prompt)
    return Flops(3 * matmul, 3 * attention)


def decode_flops(config: ModelConfig, prompt: int, response: int) -> int:
    """One sampled row of `response` tokens with the KV cache: each token passes the decoder once
    and attends to the positions so far and to the prompt. The prompt's cross keys and values are
    projected once per row (its encoding, shared by a prompt's samples, is left out)."""
    _, decoder, cross_kv = _per_token(config)
    positions = response * (response + 1) // 2  # the t-th token attends to t positions
    attention = config.layers * 4 * config.d_model * (positions + response * prompt)
    return 2 * (response * decoder + prompt * cross_kv) + attention
