"""The tasks of the Dualformer paper (arXiv 2410.09918), whose planning benchmarks are
Searchformer's (arXiv 2402.14083); the models that learn them live in the top-level `dualformer`:

    astar, planning                        A* with its search trace; examples, content ids, splits
    maze, sokoban                          Tables 5.1-5.4: the two planning domains
    math (+ math_data, math_answers,       Table 5.6: MATH as step-structured solutions, its data,
      math_sympy, math_grader, latex)      answer equivalence and grading
"""
