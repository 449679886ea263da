"""scripts/bench.py model's decoding and training figures at a tiny size: half-precision decoding
is reported against fp32 in the same run (on CPU it is emulated: the ratio is below 1 there, the
figure that matters is a GPU's), and MFU counts the model's FLOPs per step (dualformer.flops:
weights and attention), not 6 x parameters per token."""
from __future__ import annotations

from dualformer.flops import train_flops
from dualformer.model import preset
from scripts.bench import bench_model


def test_bench_model_reports_bf16_decoding_and_mfu_from_flop_counts():
    result = bench_model("tiny", tokens=16, batch=2, peak_tflops=100.0)
    assert result["decode_tokens_per_s_cached_bf16"] > 0
    assert result["decode_bf16_speedup"] == result["decode_tokens_per_s_cached_bf16"] / result["decode_tokens_per_s_cached"]
    per_step = 2 * train_flops(preset("tiny", 1000), 200, 399).total
    assert result["train_flops_per_step"] == per_step
    assert abs(result["train_mfu"] - per_step * result["train_steps_per_s"] / 100e12) < 1e-12
