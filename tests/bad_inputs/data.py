"""Tiny, valid inputs of every task: the good files that the bad-input cases start from (and damage).

Each writer takes a path, writes a file small enough to train on in a second or two, and returns the path.
The texts follow the existing end-to-end tests (tests/test_cli_*.py) so that the same settings train.
"""

import json
import random
from pathlib import Path

import numpy as np

LM_TEXT = "".join(f"def f{i}(x):\n    return x * {i % 7} + {i % 3}\n\n" for i in range(60))  # ~1,900 chars

GOOD, BAD = ["great", "superb", "lovely"], ["awful", "boring", "dreadful"]
FILLER = ["the", "film", "was", "a", "story", "plot", "really", "quite", "acting", "and", "music", "cast"]

LEXICON = {"the": ("DET", "DT"), "a": ("DET", "DT"), "cat": ("NOUN", "NN"), "dog": ("NOUN", "NN"),
           "Anna": ("PROPN", "NNP"), "sees": ("VERB", "VBZ"), "likes": ("VERB", "VBZ"), ".": ("PUNCT", ".")}
ENTITY_SENTENCES = [
    [("Anna", "B-PER"), ("Smith", "I-PER"), ("visits", "O"), ("Paris", "B-LOC"), (".", "O")],
    [("Bob", "B-PER"), ("likes", "O"), ("Acme", "B-ORG"), ("Corp", "I-ORG"), (".", "O")],
]

SUBJECTS = {"ein Hund": "A dog", "eine Frau": "A woman", "ein Mann": "A man", "eine Katze": "A cat"}
VERBS = {"läuft": "runs", "schläft": "sleeps", "spielt": "plays", "singt": "sings"}
PLACES = {"": "", " im Park": " in the park", " am Strand": " on the beach"}

SERIES_STEPS = 120  # ten years of months


def lm_text(path: Path) -> Path:
    path.write_text(LM_TEXT, encoding="utf-8")
    return path


def classify_csv(path: Path, n: int = 40) -> Path:
    """text,label rows: filler words and one word that decides the class (pos or neg in turn)."""
    rng = random.Random(0)
    rows = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        words = rng.sample(FILLER, 4) + [rng.choice(GOOD if label == "pos" else BAD)]
        rng.shuffle(words)
        rows.append(f'"{" ".join(words)}",{label}\n')
    path.write_text("text,label\n" + "".join(rows), encoding="utf-8")
    return path


def conllu(path: Path, n_sentences: int = 24) -> Path:
    rng = random.Random(0)
    blocks = []
    for number in range(n_sentences):
        words = [rng.choice(["the", "a"]), rng.choice(["cat", "dog"]), rng.choice(["sees", "likes"]),
                 rng.choice(["Anna", "the"]), "."][: rng.randint(3, 5)]
        lines = [f"# sent_id = {number}"]
        lines += [f"{i}\t{w}\t{w}\t{LEXICON[w][0]}\t{LEXICON[w][1]}\t_\t0\t_\t_\t_" for i, w in enumerate(words, 1)]
        blocks.append("\n".join(lines) + "\n")
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


def conll2003(path: Path, repeats: int = 4) -> Path:
    lines = []
    for _ in range(repeats):
        lines.append("-DOCSTART- -X- -X- O\n")
        for sentence in ENTITY_SENTENCES:
            lines += [f"{token} NNP B-NP {tag}" for token, tag in sentence] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def series_csv(path: Path, steps: int = SERIES_STEPS) -> Path:
    """month,value,x: y = 10 + 0.1 t + 3 sin(2πt/12) + noise, monthly from 2000-01."""
    t = np.arange(steps)
    y = 10 + 0.1 * t + 3 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 0.2, steps)
    rows = [f"{2000 + i // 12}-{i % 12 + 1:02d},{v:.4f},{np.cos(i):.3f}" for i, v in enumerate(y)]
    path.write_text("\n".join(["month,value,x", *rows]) + "\n", encoding="utf-8")
    return path


def sentence_pairs() -> list[tuple[str, str]]:
    return [(f"{s} {v}{p}.", f"{S} {V}{P}.") for s, S in SUBJECTS.items() for v, V in VERBS.items()
            for p, P in PLACES.items()]  # 48 pairs


def parallel(source: Path, target: Path) -> tuple[Path, Path]:
    pairs = sentence_pairs()
    source.write_text("".join(s + "\n" for s, _ in pairs), encoding="utf-8")
    target.write_text("".join(t + "\n" for _, t in pairs), encoding="utf-8")
    return source, target


def music_pieces(count: int, seed: int) -> list:
    """Pieces of rising triads over pitches 60..72."""
    rng = np.random.default_rng(seed)
    pieces = []
    for _ in range(count):
        roots = rng.integers(60, 66, size=rng.integers(4, 9))
        pieces.append([[int(r), int(r) + 4, int(r) + 7] if r % 2 else [int(r)] for r in roots])
    return pieces


def music_json(path: Path) -> Path:
    path.write_text(json.dumps({"train": music_pieces(12, 0), "valid": music_pieces(4, 1), "test": music_pieces(5, 2)}))
    return path


def caption_npz(path: Path, n: int = 24) -> Path:
    """Random 8x24 grayscale images with captions of digit words (the format of `train caption --data`)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 8, 24), dtype=np.uint8)
    words = ["zero", "one", "two", "three"]
    captions = np.array([" ".join(rng.choice(words, size=2)) for _ in range(n)])
    with path.open("wb") as file:
        np.savez(file, images=images, captions=captions)
    return path


def caption_png(path: Path) -> Path:
    """One held-out digit composition as a PNG, the input of `predict` on a caption run."""
    from rnnkit.data.digits import digit_compositions
    from rnnkit.tasks.caption import write_png

    composed, _ = digit_compositions("test", 1, max_digits=3, seed=4)  # (1, 8, 24)
    write_png(composed[0], path)
    return path
