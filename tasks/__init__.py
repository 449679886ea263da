"""Task families, one subpackage per paper: each module turns one paper benchmark into the harness
Task contract.

    tasks/trace_paper/       Trace (arXiv 2406.16218): numeric graphs, traffic, BBH, TextGrad, Meta-World
    tasks/dualformer_paper/  Dualformer (arXiv 2410.09918) over Searchformer (arXiv 2402.14083): A*,
                             mazes, Sokoban, and the MATH fine-tuning task
"""
