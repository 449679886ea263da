"""Benchmarks, as ratios against references measured in the same run.

    python scripts/bench.py trace                      # trace_core vs trace-opt, in one process
    python scripts/bench.py trace --n 10000 --repeats 3 --json bench.json
    python scripts/bench.py model [--preset s] [--tokens 1000]   # decoding with / without KV cache
    python scripts/bench.py data [--n-tasks 300]                 # maze / Sokoban generation vs a reference
    python scripts/bench.py metaworld [--steps 200]              # wrapper overhead on top of MuJoCo
    python scripts/bench.py sandbox [--n 2000]                   # trainable code in a worker vs in-process

`model`: decoder tokens/s sampling `--tokens` tokens with and without the KV cache (target: at
least 5x at 1,000 tokens) and with the cache written in place vs copied per token (kv_in_place_speedup), under bf16
autocast vs fp32 (decode_bf16_speedup: below 1 on CPU, where bf16 is emulated), and training tokens/s (on a GPU:
bf16, and MFU: dualformer.flops' count per step against the peak bf16 throughput given by --peak-tflops). Then on real mazes (`--maze-size`, the `tiny`
preset, Dualformer dropout): the real-token fraction of training batches and real tokens/s,
random vs length-bucketed batches, and responses/s of the 64-sample evaluation before (one prompt
per call, every row to the end, max_len 1000) vs after (several prompts per call, finished rows
dropped, max_len 1.5x the longest training response), after `--warm-steps` of training; and the
milliseconds one batch takes to build, with training steps/s with the next batch built in a
thread while the step runs (prefetch) against built in line (train_prefetch_speedup).

`data`: time to generate one 30x30 maze task and one solvable Sokoban level (A* with its trace),
against a straightforward reference implementation in the same run (scripts/bench_data.py).
Targets: at most 5 ms per maze task and 0.1 s per Sokoban level.

`metaworld`: time per wrapper action against replaying the same inner MuJoCo steps raw
(scripts/bench_metaworld.py); target: a few milliseconds of overhead at most.

`trace`: trace_core and Microsoft's Trace (`trace-opt`, import `opto`, the `reference` extra)
timed interleaved in a random order in this one process, each library's graph freed before the
next workload is timed (scripts/bench_trace.py): per traced operation, backward over a
10,000-node chain and a 1,000-node one (how each grows), backward with our report building (like
for like with trace-opt's full feedback propagation), one call of a trainable bundled function
(ours in-process and sandboxed, against trace-opt's in-process), and one full OptoPrime step on a
50-node graph, as speedups (theirs / ours: below 1 where ours is slower).
Targets: at most 5 µs per traced operation and under 0.1 s for backward on 10,000 nodes.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def bench_model(preset_name: str, tokens: int, batch: int, peak_tflops: float | None) -> dict[str, float]:
    import torch

    from dualformer.flops import train_flops
    from dualformer.model import Transformer, preset
    from dualformer.sample import sample
    from dualformer.train import Batch, TrainConfig, Trainer

    torch.manual_seed(0)
    vocab = 1000
    model = Transformer(preset(preset_name, vocab))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    prompt = torch.randint(3, vocab, (1, 200), device=device)
    mask = torch.ones_like(prompt, dtype=torch.bool)
    result: dict[str, float] = {"preset": preset_name, "device": device, "decode_tokens": tokens}
    for cached in (True, False):
        start = time.perf_counter()
        # eos = -1 never appears: every sequence runs to the length guard
        sample(model, prompt, mask, bos=1, eos=-1, n=1, max_len=tokens, use_cache=cached)
        result[f"decode_tokens_per_s_{'cached' if cached else 'uncached'}"] = tokens / (time.perf_counter() - start)
    result["kv_cache_speedup"] = result["decode_tokens_per_s_cached"] / result["decode_tokens_per_s_uncached"]
    start = time.perf_counter()  # the cache as before issue 26: every token concatenated into a new tensor
    sample(model, prompt, mask, bos=1, eos=-1, n=1, max_len=tokens, kv_in_place=False)
    result["decode_tokens_per_s_cache_copied"] = tokens / (time.perf_counter() - start)
    result["kv_in_place_speedup"] = result["decode_tokens_per_s_cached"] / result["decode_tokens_per_s_cache_copied"]
    start = time.perf_counter()  # half-precision decoding (model.decode_precision): on CPU emulated, slower
    sample(model, prompt, mask, bos=1, eos=-1, n=1, max_len=tokens, bf16=True)
    result["decode_tokens_per_s_cached_bf16"] = tokens / (time.perf_counter() - start)
    result["decode_bf16_speedup"] = result["decode_tokens_per_s_cached_bf16"] / result["decode_tokens_per_s_cached"]

    length = 400
    def make_batch(indices: list[int], epoch: int) -> Batch:
        g = torch.Generator().manual_seed(len(indices) + epoch)
        p = torch.randint(3, vocab, (len(indices), 200), generator=g)
        t = torch.randint(3, vocab, (len(indices), length), generator=g)
        return Batch(p, torch.ones_like(p, dtype=torch.bool), t, torch.ones_like(t, dtype=torch.bool))
    trainer = Trainer(model, TrainConfig(steps=10**9, batch_size=batch, warmup=1), make_batch, 10**6)
    trainer.train_step()  # warm-up (and compilation on a GPU)
    steps, start = 5, time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    result["train_tokens_per_s"] = batch * (length + 200) / seconds
    result["train_steps_per_s"] = 1 / seconds
    # weights and attention (dualformer.flops); the loss feeds the decoder all but the last token
    result["train_flops_per_step"] = batch * train_flops(model.config, 200, length - 1).total
    if peak_tflops:
        result["train_mfu"] = result["train_flops_per_step"] * result["train_steps_per_s"] / (peak_tflops * 1e12)
    result["meets_kv_cache_target_5x"] = result["kv_cache_speedup"] >= 5
    return result


def bench_planning(size: int, batch: int, steps: int, warm_steps: int, prompts: int) -> dict[str, float]:
    """Training batches random vs length-bucketed, and the 64-sample evaluation before vs after
    (one prompt per call, every row to the end, max_len 1000 / several prompts per call, finished
    rows dropped, max_len from the training set), on one maze set in one run."""
    import torch

    from dualformer.batching import BucketedOrder
    from dualformer.data import TraceDropout
    from dualformer.planning import PlanningModel, PlanningTask

    task = PlanningTask(seed=0, size=size, n_train=max(20 * batch, 500), n_test=prompts)
    dropout = TraceDropout(p=(0.5, 0.125, 0.125, 0.125, 0.125))
    result: dict[str, float] = {"planning_maze_size": size, "planning_batch": batch}
    torch.manual_seed(0)
    model = PlanningModel(dropout=dropout, preset="tiny", prompt_batch=prompts,
                          train=dict(steps=warm_steps, batch_size=batch, lr=3e-3, warmup=10))
    model.fit(task, None)  # a model that writes eos, for the sampling figures below
    trainer, seen = model.trainer, []
    def recording(indices: list[int], epoch: int):
        built = model._batch(indices, epoch)
        seen.append((int(built.token_mask.sum()), built.tokens.numel()))
        return built
    trainer.make_batch = recording
    for batching in ("random", "bucketed"):
        model.batching, seen[:] = batching, []
        trainer.order = BucketedOrder(model._epoch_lengths, batch, seed=0) if batching == "bucketed" else None
        trainer.config.steps += steps
        started = time.perf_counter()
        for _ in range(steps):
            trainer.train_step()
        seconds = time.perf_counter() - started
        result[f"train_real_token_fraction_{batching}"] = sum(r for r, _ in seen) / sum(t for _, t in seen)
        result[f"train_real_tokens_per_s_{batching}"] = sum(r for r, _ in seen) / seconds
    result["train_real_throughput_ratio"] = (result["train_real_tokens_per_s_bucketed"]
                                             / result["train_real_tokens_per_s_random"])
    trainer.make_batch, trainer.order, model.batching = model._batch, None, "random"
    started = time.perf_counter()
    for i in range(steps):  # what building a batch costs alone, in line
        model._batch(list(range(i * batch, (i + 1) * batch)), 0)
    result["train_batch_build_ms"] = 1000 * (time.perf_counter() - started) / steps
    for prefetch in (False, True):  # the next batch built in a thread while the step runs (issue 26)
        trainer.prefetch, trainer.config.steps = prefetch, trainer.config.steps + steps
        started = time.perf_counter()
        trainer.run()
        result[f"train_steps_per_s_prefetch_{'on' if prefetch else 'off'}"] = steps / (time.perf_counter() - started)
    result["train_prefetch_speedup"] = (result["train_steps_per_s_prefetch_on"]
                                        / result["train_steps_per_s_prefetch_off"])
    result.update(_sampling_before_after(model, task))
    return result


def _sampling_before_after(model, task) -> dict[str, float]:
    from dualformer import sample as sampling

    real_sample, out = sampling.sample, {}
    model.modes = ["auto"]
    settings = (("before", 1, False, 1000), ("after", model.prompt_batch, True, None))
    for name, prompt_batch, drop, max_len in settings:
        model.prompt_batch, model.max_len = prompt_batch, max_len
        sampling.sample = lambda *a, **k: real_sample(*a, **{**k, "drop_finished": drop})
        try:
            started = time.perf_counter()
            task.test(model.solve)
            seconds = time.perf_counter() - started
            out[f"eval_responses_per_s_{name}"] = len(task.test_set) * model.samples / seconds
        finally:
            sampling.sample = real_sample
    out["eval_speedup"] = out["eval_responses_per_s_after"] / out["eval_responses_per_s_before"]
    out["eval_max_len_after"] = model.response_limit()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", choices=["trace", "model", "data", "metaworld", "sandbox"])
    parser.add_argument("--steps", type=int, default=200, help="actions per pass (metaworld suite)")
    parser.add_argument("--n-tasks", type=int, default=300, help="tasks per generator (data suite)")
    parser.add_argument("--seed", type=int, default=0, help="data suite seed")
    parser.add_argument("--preset", default="s", help="model preset (model suite)")
    parser.add_argument("--tokens", type=int, default=1000, help="tokens to decode (model suite)")
    parser.add_argument("--batch", type=int, default=4, help="training batch (model suite)")
    parser.add_argument("--maze-size", type=int, default=7, help="planning part: maze size (model suite)")
    parser.add_argument("--planning-batch", type=int, default=64, help="planning part: training batch")
    parser.add_argument("--planning-steps", type=int, default=5, help="planning part: timed training steps")
    parser.add_argument("--warm-steps", type=int, default=300,
                        help="planning part: training steps before timing (the sampler needs a model that stops)")
    parser.add_argument("--eval-prompts", type=int, default=8, help="planning part: test prompts x 64 samples")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="device peak bf16 TFLOP/s for MFU (e.g. 989 for an H100 SXM)")
    parser.add_argument("--n", type=int, default=10_000, help="chain length")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs (trace suite)")
    parser.add_argument("--calls", type=int, default=1000, help="bundled calls timed per repeat (trace suite)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.suite == "sandbox":  # scripts/bench_sandbox.py: per-call cost of the sandbox
        from scripts.bench_sandbox import bench_sandbox

        result = bench_sandbox(calls=args.n if args.n != 10_000 else 2000)
    elif args.suite == "metaworld":
        from scripts.bench_metaworld import bench_metaworld

        result = bench_metaworld(steps=args.steps)
    elif args.suite == "data":
        from scripts.bench_data import bench_data

        result = bench_data(n_tasks=args.n_tasks, seed=args.seed)
    elif args.suite == "model":
        result = bench_model(args.preset, args.tokens, args.batch, args.peak_tflops)
        result.update(bench_planning(args.maze_size, args.planning_batch, args.planning_steps,
                                     args.warm_steps, args.eval_prompts))
    else:
        from scripts.bench_trace import bench_trace

        result = bench_trace(args.n, args.repeats, args.calls)
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value:.4g}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    if args.suite == "trace" and "speedup_op" not in result:
        print("(trace-opt is not importable here: install the `reference` extra to compare against it)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
