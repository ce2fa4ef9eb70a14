"""`rnnkit train tag` / `evaluate` / `predict` end to end on tiny CoNLL-U and CoNLL-2003 files, the batches
(masking, bucketing, word dropout, determinism), and every bad input giving one line on stderr, exit status 2
and nothing written."""

import json
import random

import pytest
import torch
from torch import nn

from rnnkit.errors import InputError
from rnnkit.tasks.tag import TagDataConfig, TaggingTask, build_model
from rnnkit.tasks.tag import from_run as load_trained
from rnnkit.tasks.tag import load_data as load_tag_data
from rnnkit.tasks.tag_encoding import make_batch
from rnnkit.train import RunDirectory
from cli_helpers import assert_one_line_error, assert_resumed_exactly, run_cli, snapshot

# Each word has one tag whatever its neighbours: a tagger learns it exactly in a few epochs.
LEXICON = {"the": ("DET", "DT"), "a": ("DET", "DT"), "cat": ("NOUN", "NN"), "dog": ("NOUN", "NN"),
           "Anna": ("PROPN", "NNP"), "sees": ("VERB", "VBZ"), "likes": ("VERB", "VBZ"), ".": ("PUNCT", ".")}
ENTITY_SENTENCES = [
    [("Anna", "B-PER"), ("Smith", "I-PER"), ("visits", "O"), ("Paris", "B-LOC"), (".", "O")],
    [("Bob", "B-PER"), ("likes", "O"), ("Acme", "B-ORG"), ("Corp", "I-ORG"), (".", "O")],
    [("Paris", "B-LOC"), ("likes", "O"), ("Bob", "B-PER"), (".", "O")],
    [("Acme", "B-ORG"), ("Corp", "I-ORG"), ("visits", "O"), ("Anna", "B-PER"), ("Smith", "I-PER")],
]
TINY = ["--hidden", "16", "--embedding", "16", "--char-embedding", "8", "--char-hidden", "8", "--dropout", "0",
        "--word-dropout", "0", "--lr", "0.02", "--batch-size", "4", "--seed", "0", "--quiet", "--json"]


def conllu_text(n_sentences: int = 24, seed: int = 0) -> str:
    rng = random.Random(seed)
    blocks = []
    for number in range(n_sentences):
        words = [rng.choice(["the", "a"]), rng.choice(["cat", "dog"]), rng.choice(["sees", "likes"]),
                 rng.choice(["Anna", "the"]), "."][: rng.randint(3, 5)]
        lines = [f"# sent_id = {number}"]
        if number == 0:
            lines.append("1-2\tthe cat\t_\t_\t_\t_\t_\t_\t_\t_")  # a multiword token line, skipped
        lines += [f"{i}\t{w}\t{w}\t{LEXICON[w][0]}\t{LEXICON[w][1]}\t_\t0\t_\t_\t_" for i, w in enumerate(words, 1)]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def conll_text(repeats: int = 5) -> str:
    lines = []
    for _ in range(repeats):
        lines.append("-DOCSTART- -X- -X- O\n")
        for sentence in ENTITY_SENTENCES:
            lines += [f"{token} NNP B-NP {tag}" for token, tag in sentence] + [""]
    return "\n".join(lines)


@pytest.fixture
def files(tmp_path):
    paths = {"conllu": tmp_path / "tiny.conllu", "conll": tmp_path / "tiny.txt"}
    paths["conllu"].write_text(conllu_text())
    paths["conll"].write_text(conll_text())
    return paths


def train(capsys, data, out, *extra) -> dict:
    code, stdout, stderr = run_cli(capsys, "train", "tag", "--data", data, "--valid", data, *TINY, "--out", out, *extra)
    assert code == 0, stderr
    return json.loads(stdout)


def fails(capsys, *args, match: str, **stdin) -> str:
    code, stdout, stderr = run_cli(capsys, *args, **stdin)
    assert code == 2, (stdout, stderr)
    assert stderr.startswith("error: ") and stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert match in stderr, stderr
    return stderr


# ------------------------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("crf", ["--no-crf", "--crf"])
def test_pos_tagging_learns_a_trivial_tagging(capsys, monkeypatch, files, tmp_path, crf):
    run = tmp_path / "run"
    report = train(capsys, files["conllu"], run, "--epochs", "8", crf)
    assert report["valid_accuracy"] == 1.0 and "valid_f1" not in report
    assert report["best_valid_accuracy"] == 1.0

    code, stdout, _ = run_cli(capsys, "evaluate", run, "--data", files["conllu"], "--checkpoint", "best", "--json")
    scores = json.loads(stdout)
    assert code == 0 and scores["accuracy"] == 1.0 and scores["tokens"] > 72 and scores["sentences"] == 24
    assert "f1" not in scores and scores["unseen_tags"] == []

    code, stdout, _ = run_cli(capsys, "evaluate", run, "--data", files["conllu"])
    assert code == 0 and stdout.startswith("accuracy 1.0000  (")

    sentences = tmp_path / "sentences.txt"
    sentences.write_text("the dog sees Anna .\n\na cat likes the dog\n")
    code, stdout, _ = run_cli(capsys, "predict", run, "--input", sentences)
    assert code == 0
    assert stdout.split("\n") == ["the/DET dog/NOUN sees/VERB Anna/PROPN ./PUNCT", "",
                                  "a/DET cat/NOUN likes/VERB the/DET dog/NOUN", ""]
    code, stdout, _ = run_cli(capsys, "predict", run, "--json", stdin="Anna likes the cat\n", monkeypatch=monkeypatch)
    assert code == 0
    assert json.loads(stdout) == {"tokens": ["Anna", "likes", "the", "cat"], "tags": ["PROPN", "VERB", "DET", "NOUN"]}


def test_xpos_column_and_the_model_of_the_run(capsys, files, tmp_path):
    report = train(capsys, files["conllu"], tmp_path / "run", "--epochs", "8", "--column", "xpos",
                   "--no-char-features", "--lowercase-words")
    assert report["valid_accuracy"] == 1.0
    tagger = load_trained(tmp_path / "run")
    assert tagger.vocabs.tags == [".", "DT", "NN", "NNP", "VBZ"]
    assert tagger.vocabs.chars is None and tagger.model.characters is None
    assert tagger.config.format == "conllu" and tagger.config.column == "xpos"  # filled in when training
    assert "anna" in tagger.vocabs.words.symbols and "Anna" not in tagger.vocabs.words.symbols
    assert tagger.tag([["ANNA", "Sees", "THE", "DOG"], []]) == [["NNP", "VBZ", "DT", "NN"], []]


@pytest.mark.parametrize("crf", ["--no-crf", "--crf"])
def test_ner_learns_entities_and_scores_spans(capsys, files, tmp_path, crf):
    run = tmp_path / "run"
    report = train(capsys, files["conll"], run, "--epochs", "10", crf)
    assert report["valid_f1"] == 1.0 and report["valid_accuracy"] == 1.0 and report["best_valid_f1"] == 1.0
    code, stdout, _ = run_cli(capsys, "evaluate", run, "--data", files["conll"], "--checkpoint", "best", "--json")
    scores = json.loads(stdout)
    assert code == 0 and scores["f1"] == 1.0 and scores["gold_spans"] == 5 * 8
    assert set(scores["per_type"]) == {"PER", "LOC", "ORG"} and scores["per_type"]["PER"]["support"] == 5 * 4
    code, stdout, _ = run_cli(capsys, "evaluate", run, "--data", files["conll"])
    lines = stdout.split("\n")
    assert lines[1].startswith("spans: precision 1.0000  recall 1.0000  F1 1.0000  (40 gold")
    assert lines[3].split() == ["type", "precision", "recall", "f1", "support"] and lines[4].split()[0] == "LOC"


def test_evaluate_counts_unseen_tags_as_errors(capsys, files, tmp_path):
    train(capsys, files["conll"], tmp_path / "run", "--epochs", "10")
    other = tmp_path / "other.txt"
    other.write_text("Anna NNP B-NP B-PER\nSmith NNP I-NP I-PER\nsings VBZ B-VP B-ACT\n")
    code, stdout, stderr = run_cli(capsys, "evaluate", tmp_path / "run", "--data", other, "--json")
    scores = json.loads(stdout)
    assert code == 0 and scores["unseen_tags"] == ["B-ACT"] and scores["accuracy"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(1 / 2) and "never occur in the training data (B-ACT)" in stderr


# ------------------------------------------------------------------------------------------- batches


def test_a_padded_batch_gives_each_sentence_what_it_gives_alone(files):
    data = load_tag_data(TagDataConfig(data=str(files["conll"])))
    torch.manual_seed(0)
    model = build_model(data.vocabs, {"hidden_size": 8, "embedding_dim": 8, "char_embedding_dim": 4,
                                      "char_hidden_size": 4, "crf": True}).eval()
    with torch.no_grad():
        nn.init.normal_(model.crf.transitions)  # so that Viterbi differs from a per-step argmax
    indices = [0, 2, 3]  # lengths 5, 4, 5: one row is padded, and its characters too
    batch = make_batch(data.train, indices)
    assert batch["lengths"].tolist() == [5, 4, 5] and batch["words"][1, 4] == 0
    emissions = model(batch["words"], batch["lengths"], batch["chars"])  # (3, 5, C)
    decoded = model.decode(emissions, batch["lengths"])
    for row, index in enumerate(indices):
        alone = make_batch(data.train, [index])
        single = model(alone["words"], alone["lengths"], alone["chars"])  # (1, T, C)
        T = single.size(1)
        torch.testing.assert_close(emissions[row, :T], single[0], atol=1e-6, rtol=1e-6)
        assert decoded[row, :T].tolist() == model.decode(single, alone["lengths"])[0].tolist()
        assert (decoded[row, T:] == -1).all()
    loss_sum, tokens = model.loss(emissions, batch["tags"], batch["lengths"])
    alone_sums = [model.loss(model(b["words"], b["lengths"], b["chars"]), b["tags"], b["lengths"])[0]
                  for b in (make_batch(data.train, [i]) for i in indices)]
    assert tokens == 14
    torch.testing.assert_close(loss_sum, sum(alone_sums), atol=1e-5, rtol=1e-5)


def test_resume_continues_exactly(capsys, files, tmp_path):
    settings = ["--dropout", "0.3", "--word-dropout", "0.2"]  # the restored RNG states must matter
    train(capsys, files["conll"], tmp_path / "straight", "--epochs", "2", "--crf", *settings)
    train(capsys, files["conll"], tmp_path / "stopped", "--epochs", "1", "--crf", *settings)
    code, stdout, stderr = run_cli(capsys, "train", "tag", "--resume", tmp_path / "stopped", "--epochs", "2",
                                   "--quiet", "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["epoch"] == 2
    assert_resumed_exactly(tmp_path / "straight", tmp_path / "stopped", epochs=2)

    before = snapshot(tmp_path / "stopped")
    code, _, stderr = run_cli(capsys, "train", "tag", "--resume", tmp_path / "stopped", "--hidden", "20")
    assert_one_line_error(code, stderr, "--hidden 20 differs from the run's 16")
    other = tmp_path / "other.txt"
    other.write_text(conll_text().replace("Paris", "Rome"))
    code, _, stderr = run_cli(capsys, "train", "tag", "--resume", tmp_path / "stopped", "--data", other, "--epochs", "3",
                              "--quiet")  # without it, a line first names the recorded --valid file it reads
    assert_one_line_error(code, stderr, "other words, characters or tags than the checkpoint's")
    assert snapshot(tmp_path / "stopped") == before


def test_epochs_are_deterministic_and_resume_at_any_batch(tmp_path):
    path = tmp_path / "s.conllu"
    path.write_text(conllu_text(n_sentences=10) + "\n" + singleton_text(14))
    data = load_tag_data(TagDataConfig(data=str(path), batch_size=4, word_dropout=0.5))
    task = TaggingTask(data, seed=3)
    epoch = list(task.train_batches(1, 0))
    assert len(epoch) == task.num_train_batches() == 6
    again = list(task.train_batches(1, 2))  # resumed at batch 2: the same batches, the same dropped words
    assert len(again) == 4
    for first, second in zip(epoch[2:], again):
        assert first.keys() == second.keys() and all(torch.equal(first[key], second[key]) for key in first)
    other = list(task.train_batches(2, 0))
    assert any(a["words"].shape != b["words"].shape or not torch.equal(a["words"], b["words"])
               for a, b in zip(epoch, other))  # another order in another epoch
    # Bucketing: sentences of one batch have similar lengths (the singleton sentences have 2 tokens).
    assert all(int(b["lengths"].max() - b["lengths"].min()) <= 3 for b in epoch)


def singleton_text(n: int) -> str:
    """``n`` sentences "onceI the": each onceI occurs once (a singleton), "the" n times."""
    return "\n".join(f"1\tonce{i}\t_\tNOUN\t_\t_\t0\t_\t_\t_\n2\tthe\t_\tDET\t_\t_\t0\t_\t_\t_\n" for i in range(n))


def test_word_dropout_replaces_singletons_only(tmp_path):
    path = tmp_path / "s.conllu"
    path.write_text(singleton_text(40))
    data = load_tag_data(TagDataConfig(data=str(path), batch_size=40, word_dropout=0.5))
    batch = next(TaggingTask(data, seed=0).train_batches(0, 0))
    unk = data.vocabs.words.encode(["<unk>"])[0]
    dropped = batch["words"] == unk  # (40, 2)
    assert not dropped[:, 1].any()  # "the" occurs 40 times: never dropped
    assert 8 <= int(dropped[:, 0].sum()) <= 32  # about half of the 40 singletons


# ------------------------------------------------------------------------------------------- bad input


def test_missing_and_empty_files(capsys, tmp_path):
    out = tmp_path / "run"
    fails(capsys, "train", "tag", "--data", tmp_path / "none.conllu", "--out", out, match="none.conllu: no such file")
    empty = tmp_path / "empty.conllu"
    empty.write_text("")
    fails(capsys, "train", "tag", "--data", empty, "--out", out, match="empty.conllu is empty")
    fails(capsys, "train", "tag", "--out", out, match="give the tagged sentences to learn from with --data FILE")
    assert not out.exists()  # the data is checked before the run directory is made


def test_malformed_lines_are_named_by_file_and_line(capsys, files, tmp_path):
    bad = tmp_path / "bad.conllu"
    bad.write_text(conllu_text().replace("3\tsees\tsees", "x\tsees\tsees", 1))
    line = next(n for n, text in enumerate(conllu_text().split("\n"), 1) if text.startswith("3\tsees"))
    fails(capsys, "train", "tag", "--data", bad, "--out", tmp_path / "run", match=f"bad.conllu:{line}: ID 'x'")
    short = tmp_path / "short.txt"
    short.write_text(conll_text().replace("Bob NNP B-NP B-PER", "Bob B-PER", 1))
    line = conll_text().split("\n").index("Bob NNP B-NP B-PER") + 1
    fails(capsys, "train", "tag", "--data", short, "--out", tmp_path / "run",
          match=f"short.txt:{line}: 2 columns where the file's lines have 4")
    assert not (tmp_path / "run").exists()


def test_a_missing_column_and_a_wrong_format(capsys, files, tmp_path):
    two = tmp_path / "two.txt"
    two.write_text("Anna B-PER\nsings O\n")
    fails(capsys, "train", "tag", "--data", two, "--column", "ner", "--out", tmp_path / "run",
          match="two.txt:1: the file has 2 columns per line, but --column ner is column 4")
    fails(capsys, "train", "tag", "--data", files["conllu"], "--column", "ner", "--out", tmp_path / "run",
          match="--column ner (a CoNLL-2003 column) is not a column of CoNLL-U file")
    fails(capsys, "train", "tag", "--data", files["conll"], "--format", "conllu", "--out", tmp_path / "run",
          match="tiny.txt is not CoNLL-U but looks like CoNLL-2003")
    fails(capsys, "train", "tag", "--data", files["conllu"], "--valid", files["conll"], "--out", tmp_path / "run",
          match="tiny.txt is not CoNLL-U but looks like CoNLL-2003 (line 1 is not 10 tab-separated fields "
                f"starting with a word ID); give a CoNLL-U file like --data {files['conllu']}")


def test_an_empty_tag_column(capsys, tmp_path):
    path = tmp_path / "no_xpos.conllu"
    path.write_text("1\tHello\thello\tINTJ\t_\t_\t0\troot\t_\t_\n")
    fails(capsys, "train", "tag", "--data", path, "--column", "xpos", "--out", tmp_path / "run",
          match="no_xpos.conllu: every xpos tag is '_' (the column is empty); choose another --column (upos)")


def test_a_validation_tag_unseen_in_training(capsys, files, tmp_path):
    valid = tmp_path / "valid.txt"
    valid.write_text("Anna NNP B-NP B-PER\nsings VBZ B-VP B-ACT\n")
    fails(capsys, "train", "tag", "--data", files["conll"], "--valid", valid, "--out", tmp_path / "run",
          match="valid.txt:2: tag 'B-ACT' never occurs in the training data")
    assert not (tmp_path / "run").exists()


def test_the_tagger_of_another_tasks_run_is_refused(capsys, files, tmp_path):
    other = RunDirectory.create(tmp_path / "other")
    other.save(nn.Linear(2, 2), {}, {"task": "classify", "configs": {}})
    with pytest.raises(InputError, match="holds a 'classify' run, not a 'tag' one; .*`rnnkit train tag`"):
        load_trained(other.path)


def test_evaluate_and_predict_need_their_inputs(capsys, monkeypatch, files, tmp_path):
    run = tmp_path / "run"
    train(capsys, files["conll"], run, "--max-steps", "1")
    fails(capsys, "evaluate", run, match="holds a tagger: give the tagged file to score with --data FILE")
    fails(capsys, "evaluate", run, "--data", files["conllu"],
          match="tiny.conllu is not CoNLL-2003 but looks like CoNLL-U")
    fails(capsys, "predict", run, "--input", tmp_path / "none.txt", match="none.txt: no such file")
    fails(capsys, "predict", run, stdin="", monkeypatch=monkeypatch, match="no sentences on stdin")
