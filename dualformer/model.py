"""The Searchformer / Dualformer encoder-decoder transformer, in one file.

    from dualformer.model import Transformer, preset
    model = Transformer(preset("s", vocab_size=120))
    logits = model(prompt_ids, prompt_mask, decoder_ids)         # (batch, length, vocab)
    loss = model.loss(prompt_ids, prompt_mask, decoder_ids, decoder_mask)

The encoder reads the prompt (bidirectional self-attention); the decoder writes trace and plan
(causal self-attention, then cross-attention to the encoder, then the feed-forward block). Blocks
are pre-norm RMSNorm, bias-free, SwiGLU; RoPE (base 10,000) rotates queries and keys in both
self-attentions and never in cross-attention. The encoder ends in RMSNorm and a projection to the
decoder width; the decoder in RMSNorm and an untied output layer. There is no context window:
rotary tables grow on demand. Decoding keeps a per-layer key/value cache (`KVCache`).
Facts: specs/dualformer.md §2.1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    layers: int = 6
    d_model: int = 192
    heads: int = 3
    ffn_hidden: int | None = None  # default: 8 d / 3 rounded up to a multiple of 256
    rope_base: float = 10_000.0
    paper_rope_positions: int = 65_536  # the upstream tables' size, for the paper-style count
    norm_eps: float = 1e-5
    init: str = "fan_in"  # ours (see Transformer._init); "upstream": PyTorch's defaults, as upstream
    mask_encoder_padding: bool = True  # False: the encoder attends to padding, as upstream (its checkpoints)

    def __post_init__(self) -> None:
        if self.init not in ("fan_in", "upstream"):
            raise ValueError(f"model init must be fan_in or upstream, got {self.init!r}")

    @property
    def hidden(self) -> int:
        return self.ffn_hidden or 256 * math.ceil(8 * self.d_model / 3 / 256)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.heads


# Per side (encoder and decoder alike): layers, width, heads, FFN hidden (specs §2.1).
PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(layers=2, d_model=64, heads=2, ffn_hidden=128),  # tests and smoke runs
    "mini": dict(layers=3, d_model=128, heads=4, ffn_hidden=256),  # 2-core CPU reproductions
    "s": dict(layers=6, d_model=192, heads=3, ffn_hidden=512),
    "m-s": dict(layers=8, d_model=384, heads=4, ffn_hidden=1024),
    "l": dict(layers=9, d_model=768, heads=4, ffn_hidden=2048),
    "xl-2": dict(layers=16, d_model=1152, heads=12, ffn_hidden=3072),
}


def preset(name: str, vocab_size: int, **options: object) -> ModelConfig:
    """A named size; `options` are other ModelConfig fields (init, mask_encoder_padding)."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}")
    return ModelConfig(vocab_size=vocab_size, **PRESETS[name], **options)


class Rotary(nn.Module):
    """Rotary position embedding; cos/sin tables are buffers (not saved), grown when needed."""

    def __init__(self, head_dim: int, base: float) -> None:
        super().__init__()
        self.register_buffer("inv_freq", base ** (-torch.arange(0, head_dim, 2).float() / head_dim),
                             persistent=False)
        self.register_buffer("cos", torch.empty(0), persistent=False)
        self.register_buffer("sin", torch.empty(0), persistent=False)

    def _grow(self, length: int) -> None:
        size = max(length, 2 * self.cos.shape[0], 256)
        angles = torch.outer(torch.arange(size, device=self.inv_freq.device).float(), self.inv_freq)
        self.cos, self.sin = angles.cos(), angles.sin()

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """x: (batch, heads, length, head_dim); positions offset..offset+length-1."""
        length = x.shape[-2]
        if offset + length > self.cos.shape[0]:
            self._grow(offset + length)
        cos = self.cos[offset:offset + length].to(x.dtype)
        sin = self.sin[offset:offset + length].to(x.dtype)
        even, odd = x[..., 0::2], x[..., 1::2]
        return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)


@dataclass
class KVCache:
    """Per decoder layer: self-attention keys/values so far, and the (fixed) cross-attention ones.

    in_place: keys and values go into a buffer of spare capacity, doubled when full, so a decoded
    token writes one position instead of copying the whole cache (False: a new concatenated
    tensor per token, as before; scripts/bench.py's reference)."""

    self_kv: list[tuple[torch.Tensor, torch.Tensor] | None] = field(default_factory=list)
    cross_kv: list[tuple[torch.Tensor, torch.Tensor] | None] = field(default_factory=list)
    length: int = 0  # decoder positions already cached
    in_place: bool = True

    def append(self, index: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer `index`'s keys and values for positions 0..length + new - 1, these new ones added."""
        start, end, held = self.length, self.length + k.shape[2], self.self_kv[index]
        if not self.in_place:
            if held is not None:
                k, v = torch.cat([held[0], k], dim=2), torch.cat([held[1], v], dim=2)
            self.self_kv[index] = (k, v)
            return k, v
        if held is None or held[0].shape[2] < end:
            capacity = max(end, 2 * (held[0].shape[2] if held is not None else 0), 64)
            grown = tuple(t.new_empty(t.shape[0], t.shape[1], capacity, t.shape[3]) for t in (k, v))
            if held is not None:
                for new, old in zip(grown, held):
                    new[:, :, :start] = old[:, :, :start]
            self.self_kv[index] = held = grown
        held[0][:, :, start:end], held[1][:, :, start:end] = k, v
        return held[0][:, :, :end], held[1][:, :, :end]

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only these batch rows (a boolean mask or indices): finished samples leave."""
        self.self_kv = [None if kv is None else (kv[0][rows], kv[1][rows]) for kv in self.self_kv]
        self.cross_kv = [None if kv is None else (kv[0][rows], kv[1][rows]) for kv in self.cross_kv]


class Attention(nn.Module):
    def __init__(self, config: ModelConfig, rotary: Rotary | None) -> None:
        super().__init__()
        self.heads, self.head_dim = config.heads, config.head_dim
        self.q = nn.Linear(config.d_model, config.d_model, bias=False)
        self.kv = nn.Linear(config.d_model, 2 * config.d_model, bias=False)
        self.out = nn.Linear(config.d_model, config.d_model, bias=False)
        self.rotary = rotary

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.heads, self.head_dim).transpose(1, 2)

    def project_kv(self, source: torch.Tensor, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = (self._split(t) for t in self.kv(source).chunk(2, dim=-1))
        return (self.rotary(k, offset) if self.rotary else k), v

    def forward(self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor], offset: int = 0,
                mask: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
        q = self._split(self.q(x))
        if self.rotary:
            q = self.rotary(q, offset)
        y = F.scaled_dot_product_attention(q, kv[0], kv[1], attn_mask=mask, is_causal=causal)
        return self.out(y.transpose(1, 2).flatten(2))


class SwiGLU(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.gate_up = nn.Linear(config.d_model, 2 * config.hidden, bias=False)
        self.down = nn.Linear(config.hidden, config.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class EncoderBlock(nn.Module):
    def __init__(self, config: ModelConfig, rotary: Rotary) -> None:
        super().__init__()
        self.norm1 = nn.RMSNorm(config.d_model, eps=config.norm_eps)
        self.attn = Attention(config, rotary)
        self.norm2 = nn.RMSNorm(config.d_model, eps=config.norm_eps)
        self.ffn = SwiGLU(config)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, self.attn.project_kv(h), mask=mask)
        return x + self.ffn(self.norm2(x))


class DecoderBlock(nn.Module):
    def __init__(self, config: ModelConfig, rotary: Rotary) -> None:
        super().__init__()
        self.norm1 = nn.RMSNorm(config.d_model, eps=config.norm_eps)
        self.self_attn = Attention(config, rotary)
        self.norm2 = nn.RMSNorm(config.d_model, eps=config.norm_eps)
        self.cross_attn = Attention(config, rotary=None)  # no positions across the two sequences
        self.norm3 = nn.RMSNorm(config.d_model, eps=config.norm_eps)
        self.ffn = SwiGLU(config)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor,
                cache: KVCache | None = None, index: int = 0) -> torch.Tensor:
        offset = cache.length if cache else 0
        h = self.norm1(x)
        k, v = self.self_attn.project_kv(h, offset)
        if cache is not None:
            k, v = cache.append(index, k, v)
        # With a cache, the new positions see every cached one; several new positions at once
        # (a forced prefix) still need the causal mask among themselves.
        causal = x.shape[1] > 1
        mask = None
        if causal and offset:
            mask = torch.ones(x.shape[1], k.shape[2], dtype=torch.bool, device=x.device).tril(offset)
            causal = False
        x = x + self.self_attn(h, (k, v), offset=offset, mask=mask, causal=causal)
        if cache is not None and cache.cross_kv[index] is not None:
            cross = cache.cross_kv[index]
        else:
            cross = self.cross_attn.project_kv(memory)
            if cache is not None:
                cache.cross_kv[index] = cross
        x = x + self.cross_attn(self.norm2(x), cross, mask=memory_mask)
        return x + self.ffn(self.norm3(x))


class Transformer(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.enc_embed = nn.Embedding(config.vocab_size, config.d_model)
        self.dec_embed = nn.Embedding(config.vocab_size, config.d_model)
        self.enc_rotary, self.dec_rotary = (Rotary(config.head_dim, config.rope_base) for _ in range(2))
        self.encoder = nn.ModuleList(EncoderBlock(config, self.enc_rotary) for _ in range(config.layers))
        self.decoder = nn.ModuleList(DecoderBlock(config, self.dec_rotary) for _ in range(config.layers))
        self.enc_norm = nn.RMSNorm(config.d_model, eps=config.norm_eps)
        self.enc_out = nn.Linear(config.d_model, config.d_model, bias=False)
        self.dec_norm = nn.RMSNorm(config.d_model, eps=config.norm_eps)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.init == "fan_in":  # "upstream" keeps PyTorch's defaults, which upstream never changes:
            self.apply(self._init)    # Linear U(+-1/sqrt(fan_in)), Embedding N(0, 1)

    @staticmethod
    def _init(module: nn.Module) -> None:
        # Fan-in scaling (std = 1/sqrt(input width)), not GPT-2's fixed 0.02: at the small widths
        # used on CPU (64-192) 0.02 leaves attention logits near zero, so cross-attention stays
        # uniform for hundreds of steps and the decoder cannot copy the start cell from the prompt
        # (tests/dualformer/test_learning.py). Embeddings get 1/sqrt(d_model) the same way.
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=module.weight.shape[-1] ** -0.5)

    def encode(self, prompt: torch.Tensor, prompt_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """prompt: (batch, length) ids; prompt_mask: True on real tokens. Returns the memory and
        the attention mask (batch, 1, 1, length) the decoder's cross-attention uses."""
        mask = prompt_mask[:, None, None, :]
        x = self.enc_embed(prompt)
        # upstream's encoder runs without a mask (padding attended); its cross-attention masks it
        self_mask = mask if self.config.mask_encoder_padding else None
        for block in self.encoder:
            x = block(x, self_mask)
        return self.enc_out(self.enc_norm(x)), mask

    def decode(self, tokens: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor,
               cache: KVCache | None = None) -> torch.Tensor:
        if cache is not None and not cache.self_kv:
            cache.self_kv = [None] * len(self.decoder)
            cache.cross_kv = [None] * len(self.decoder)
        x = self.dec_embed(tokens)
        for i, block in enumerate(self.decoder):
            x = block(x, memory, memory_mask, cache, i)
        if cache is not None:
            cache.length += tokens.shape[1]
        return self.head(self.dec_norm(x))

    def forward(self, prompt: torch.Tensor, prompt_mask: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        memory, mask = self.encode(prompt, prompt_mask)
        return self.decode(tokens, memory, mask)

    def loss(self, prompt: torch.Tensor, prompt_mask: torch.Tensor, tokens: torch.Tensor,
             token_mask: torch.Tensor) -> torch.Tensor:
        """Next-token cross-entropy over the decoder sequence, averaged per sequence and then over
        the batch (as upstream: not a token-weighted mean)."""
        logits = self(prompt, prompt_mask, tokens[:, :-1]).float()
        targets, valid = tokens[:, 1:], token_mask[:, 1:].float()
        per_token = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        per_sequence = (per_token * valid).sum(1) / valid.sum(1).clamp(min=1)
        return per_sequence.mean()

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters, and the paper-style total that also counts upstream's two stored
        rotary tables of 65,536 positions (which is how "15M" / "46M" / "175M" were counted)."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        # Each table: positions x head_dim/2 x (cos, sin); one in the encoder, one in the decoder.
        tables = 2 * self.config.paper_rope_positions * self.config.head_dim
        return {"trainable": trainable, "paper": trainable + tables}
