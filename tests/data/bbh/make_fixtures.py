"""Writes the invented fixtures in this folder (run from the repository root):

    python tests/data/bbh/make_fixtures.py

Nothing here is benchmark data: the questions are generated (BBH-shaped files for object counting,
word sorting, date understanding and navigate) or written by hand (mmlu/, gpqa/, gsm8k/), in the
file formats the loaders of tasks/trace_paper/bbh.py read. Tests and smoke runs use them; the real data stays
in ../shared/data/bbh and on the hub.
"""
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
rng = random.Random(7)
ITEMS = {"fruits": ["apple", "banana", "plum", "peach", "grape", "orange"],
         "vegetables": ["carrot", "onion", "potato", "cabbage", "yam"],
         "musical instruments": ["drum", "flute", "violin", "piano", "trumpet"]}
NUMBERS = ["one", "two", "three", "four", "five"]
VOCAB = "amber birch cedar delta ember fjord glade harbor iris jasper kelp lotus maple nectar onyx".split()
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def counting():
    kind = rng.choice(list(ITEMS))
    other = rng.choice([k for k in ITEMS if k != kind])
    parts, total = [], 0
    for name in rng.sample(ITEMS[kind], 3):
        n = rng.randint(1, 3)
        total += n
        parts.append(f"{NUMBERS[n - 1] if n > 1 else 'a'} {name}{'s' if n > 1 else ''}")
    parts.append(f"a {rng.choice(ITEMS[other])}")
    rng.shuffle(parts)
    return {"input": f"I have {', '.join(parts[:-1])}, and {parts[-1]}. How many {kind} do I have?",
            "target": str(total)}


def sorting():
    words = rng.sample(VOCAB, rng.randint(3, 6))
    return {"input": "Sort the following words alphabetically: List: " + " ".join(words),
            "target": " ".join(sorted(words))}


def weekday():
    d, k = rng.randrange(7), rng.randint(1, 5)
    right = (d + k) % 7
    options = rng.sample([x for x in range(7) if x != right], 3) + [right]
    rng.shuffle(options)
    lines = "\n".join(f"({'ABCD'[i]}) {DAYS[o]}" for i, o in enumerate(options))
    return {"input": f"Today is {DAYS[d]}. What day is it {k} days from now?\nOptions:\n{lines}",
            "target": f"({'ABCD'[options.index(right)]})"}


def navigate():
    first, second = rng.randint(1, 4), rng.randint(1, 4)
    back = rng.random() < 0.5
    return {"input": "If you follow these instructions, do you return to the starting point? "
                     f"Take {first} steps forward. Take {first if back else first + second} steps backward."
                     "\nOptions:\n- Yes\n- No",
            "target": "Yes" if back else "No"}


def jsonl(path, rows):
    path.parent.mkdir(exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def main():
    for name, make, n in [("object_counting", counting, 160), ("word_sorting", sorting, 160),
                          ("date_understanding", weekday, 26), ("navigate", navigate, 24)]:
        data = {"note": "Invented test fixture in the shape of a BBH file; not benchmark data.",
                "examples": [make() for _ in range(n)]}
        (HERE / f"{name}.json").write_text(json.dumps(data, indent=0) + "\n")
    jsonl(HERE / "mmlu" / "machine_learning.jsonl", [
        {"question": "Which of these is a supervised learning task?",
         "choices": ["Clustering", "Classification", "Dimensionality reduction", "Density estimation"], "answer": 1},
        {"question": "Increasing the regularization strength usually does what to the variance of a model?",
         "choices": ["Increases it", "Leaves it unchanged", "Decreases it", "Makes it undefined"], "answer": 2},
        {"question": "What does the learning rate control in gradient descent?",
         "choices": ["The step size", "The batch size", "The number of layers", "The loss function"], "answer": 0},
        {"question": "A model that does well on training data but badly on new data is said to be...",
         "choices": ["underfitting", "calibrated", "regularized", "overfitting"], "answer": 3}])
    jsonl(HERE / "mmlu" / "college_physics.jsonl", [
        {"question": "What is the SI unit of force?", "choices": ["Joule", "Newton", "Watt", "Pascal"], "answer": 1},
        {"question": "An object in free fall near the Earth's surface accelerates at about...",
         "choices": ["1 m/s^2", "3.7 m/s^2", "9.8 m/s^2", "98 m/s^2"], "answer": 2},
        {"question": "Which quantity is conserved in an elastic collision but not in an inelastic one?",
         "choices": ["Kinetic energy", "Momentum", "Mass", "Charge"], "answer": 0}])
    jsonl(HERE / "gpqa" / "gpqa_diamond.jsonl", [
        {"Question": "Which particle carries the electromagnetic force?", "Correct Answer": "Photon",
         "Incorrect Answer 1": "Gluon", "Incorrect Answer 2": "W boson", "Incorrect Answer 3": "Graviton"},
        {"Question": "Which element has atomic number 6?", "Correct Answer": "Carbon",
         "Incorrect Answer 1": "Nitrogen", "Incorrect Answer 2": "Oxygen", "Incorrect Answer 3": "Boron"},
        {"Question": "What is the main product of photosynthesis besides oxygen?", "Correct Answer": "Glucose",
         "Incorrect Answer 1": "Methane", "Incorrect Answer 2": "Ammonia", "Incorrect Answer 3": "Ethanol"}])
    jsonl(HERE / "gsm8k" / "train.jsonl", [
        {"question": f"Sam has {a} marbles and buys {b} more. How many marbles does Sam have now?",
         "answer": f"{a} + {b} = {a + b}\n#### {a + b}"}
        for a, b in [(3, 4), (10, 5), (7, 8), (12, 9), (2, 2), (6, 11), (1, 20), (15, 15)]])
    jsonl(HERE / "gsm8k" / "test.jsonl", [
        {"question": f"A box holds {a} pens. How many pens are in {b} boxes?",
         "answer": f"{a} * {b} = {a * b}\n#### {a * b}"}
        for a, b in [(4, 3), (6, 5), (12, 10), (7, 7), (9, 2)]])


if __name__ == "__main__":
    main()
