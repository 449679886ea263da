"""The tasks of the Trace paper (arXiv 2406.16218), one module per experiment family:

    numeric (+ numeric_sampler)            Fig. 5a, numerical graphs vs Adam
    traffic                                Fig. 5b, UXsim signal timing vs SCATS / GP / PSO
    bbh (loaders) + bbh_agent              Table 1, Big-Bench Hard vs DSPy COPRO
    textgrad_tasks                         Table 2, the TextGrad comparison
    metaworld/                             Fig. 6, Meta-World with language feedback
"""
