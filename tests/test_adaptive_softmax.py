"""The adaptive softmax (rnnkit.models.adaptive_softmax) against torch.nn.AdaptiveLogSoftmaxWithLoss as its oracle,
its gradient, the language model's fast training path against its full distribution, the saved configuration,
`rnnkit train lm --adaptive-softmax` end to end (explain and diagnose included), the exported graphs, and bad
cutoffs as one line."""

import json

import pytest
import torch

import rnnkit
from rnnkit.errors import InputError
from rnnkit.models import LanguageModel, LanguageModelConfig
from rnnkit.models.adaptive_softmax import AdaptiveSoftmax
from cli_helpers import assert_one_line_error, run_cli

CUTOFFS = [(10,), (10, 40), (5, 20, 70)]


def oracle_pair(cutoffs, hidden=64, vocab=100):
    torch.manual_seed(0)
    ours = AdaptiveSoftmax(hidden, vocab, cutoffs).double()
    oracle = torch.nn.AdaptiveLogSoftmaxWithLoss(hidden, vocab, list(cutoffs), div_value=4.0, head_bias=True).double()
    oracle.load_state_dict(ours.state_dict())  # the same layout of weights: a fresh oracle, ours copied in
    return ours, oracle


@pytest.mark.parametrize("cutoffs", CUTOFFS)
def test_the_distribution_is_torchs_adaptive_log_softmax(cutoffs):
    ours, oracle = oracle_pair(cutoffs)
    hidden = torch.randn(6, 7, 64, dtype=torch.double)  # (N, L, H)
    targets = torch.randint(100, (6, 7))
    log_p = ours(hidden)  # (N, L, V)
    torch.testing.assert_close(log_p.reshape(-1, 100), oracle.log_prob(hidden.reshape(-1, 64)), rtol=0, atol=1e-12)
    torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(6, 7, dtype=torch.double))  # exact, not sampled
    nll = ours.nll(hidden, targets)  # (N, L)
    torch.testing.assert_close(nll.reshape(-1), -oracle(hidden.reshape(-1, 64), targets.reshape(-1)).output)
    torch.testing.assert_close(nll, -log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1))


def test_every_cluster_is_reached_and_an_empty_one_is_skipped():
    ours, _ = oracle_pair((10, 40))
    hidden = torch.randn(3, 64, dtype=torch.double)
    head_only = torch.tensor([0, 3, 9])  # no target in a tail cluster: nothing to score there
    torch.testing.assert_close(ours.nll(hidden, head_only), -ours(hidden).gather(1, head_only[:, None]).squeeze(1))
    edges = torch.tensor([9, 10, 39])  # the last of the head, the first and last of cluster 1
    torch.testing.assert_close(ours.nll(hidden, edges), -ours(hidden).gather(1, edges[:, None]).squeeze(1))


def test_gradients_of_the_fast_path_pass_gradcheck():
    torch.manual_seed(0)
    ours = AdaptiveSoftmax(8, 20, (4, 12)).double()
    hidden = torch.randn(5, 8, dtype=torch.double, requires_grad=True)
    targets = torch.tensor([0, 5, 13, 19, 3])
    assert torch.autograd.gradcheck(lambda h: ours.nll(h, targets), (hidden,))


@pytest.mark.parametrize("adaptive", [None, [10, 40]])
def test_the_language_models_summed_loss_is_the_cross_entropy_of_its_scores(adaptive):
    torch.manual_seed(1)
    model = LanguageModel(vocab_size=100, hidden_size=16, num_layers=2, embedding_dim=8, adaptive_softmax=adaptive)
    tokens, targets = torch.randint(100, (3, 9)), torch.randint(100, (3, 9))
    loss, state = model(tokens, targets=targets)
    scores, _ = model(tokens)  # (N, L, V): logits, or the adaptive softmax's log-probabilities
    expected = torch.nn.functional.cross_entropy(scores.reshape(-1, 100), targets.reshape(-1), reduction="sum")
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_the_adaptive_softmax_has_fewer_output_weights_and_its_config_round_trips():
    full = LanguageModel(vocab_size=10_000, hidden_size=200, num_layers=1, embedding_dim=200)
    adaptive = LanguageModel(vocab_size=10_000, hidden_size=200, num_layers=1, embedding_dim=200,
                             adaptive_softmax=[2000, 6000])
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    assert count(adaptive.decoder) < 0.35 * count(full.decoder)  # 662,802 against 2,010,000
    saved = json.loads(json.dumps(adaptive.config.to_dict()))
    assert saved["adaptive_softmax"] == [2000, 6000]
    rebuilt = LanguageModel.from_config(saved)
    assert rebuilt.config == adaptive.config and isinstance(rebuilt.decoder, AdaptiveSoftmax)
    old = {k: v for k, v in full.config.to_dict().items() if k != "adaptive_softmax"}  # a run saved before it
    assert LanguageModelConfig.from_dict(old).adaptive_softmax is None


@pytest.mark.parametrize("cutoffs, words", [
    ([40, 10], "increasing"), ([10, 10], "increasing"), ([0, 10], "between 1"), ([10, 100], "99"), ([], "increasing"),
    ([10.5], "increasing"), (2000, "a list of cutoffs"),
])
def test_bad_cutoffs_are_one_line(cutoffs, words):
    with pytest.raises(InputError, match=words):
        LanguageModel(vocab_size=100, hidden_size=16, embedding_dim=8, adaptive_softmax=cutoffs)


def test_tied_weights_and_an_adaptive_softmax_are_refused():
    with pytest.raises(InputError, match="drop one of them"):
        LanguageModel(vocab_size=100, hidden_size=16, embedding_dim=16, tie_weights=True, adaptive_softmax=[10])


# ------------------------------------------------------------------------------------------------ the command

WORDS = " ".join(f"w{i % 7} w{i % 11} w{i % 3} the a of" for i in range(120)) + "\n"  # 27 words, Zipf-ish


@pytest.fixture
def word_corpus(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text(WORDS * 3)
    return path


def test_train_evaluate_generate_with_an_adaptive_softmax(capsys, word_corpus, tmp_path):
    out = tmp_path / "run"
    code, stdout, stderr = run_cli(capsys, "train", "lm", "--data", word_corpus, "--level", "word", "--layers", "1",
                                   "--hidden", "16", "--seq-len", "8", "--batch-size", "4", "--max-steps", "6",
                                   "--adaptive-softmax", "4,12", "--out", out, "--quiet", "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["valid_loss"] > 0
    code, stdout, stderr = run_cli(capsys, "evaluate", out, "--data", word_corpus, "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["loss"] > 0
    code, stdout, stderr = run_cli(capsys, "generate", out, "--length", "5", "--seed", "0", "--json")
    assert code == 0, stderr
    assert len(json.loads(stdout)["text"].replace("\n", " <eos> ").split()) == 5  # five words sampled, <eos> is one
    model = rnnkit.load(out).model
    assert model.config.adaptive_softmax == (4, 12) and isinstance(model.decoder, AdaptiveSoftmax)
    # explain colours the text and writes the static page (the page's in-browser model has no adaptive softmax)
    code, _, stderr = run_cli(capsys, "explain", out, "--text", word_corpus, "--out", tmp_path / "page")
    assert code == 0 and "its output is an adaptive softmax" in stderr, stderr
    code, _, stderr = run_cli(capsys, "diagnose", "gradients", out, "--text", word_corpus, "--out", tmp_path / "flow")
    assert code == 0, stderr


@pytest.mark.parametrize("value, words", [("12,4", ["--adaptive-softmax", "rise strictly"]),
                                          ("4,x", ["--adaptive-softmax", "'x' is not a positive integer"]),
                                          ("4,500", ["cutoffs", "vocabulary"])])
def test_bad_adaptive_softmax_flags_are_one_line(capsys, word_corpus, tmp_path, value, words):
    code, _, stderr = run_cli(capsys, "train", "lm", "--data", word_corpus, "--level", "word", "--layers", "1",
                              "--hidden", "16", "--max-steps", "1", "--adaptive-softmax", value,
                              "--out", tmp_path / "run", "--quiet")
    assert_one_line_error(code, stderr, *words)
    assert not (tmp_path / "run").exists()


def test_the_exported_graphs_compute_the_same_distribution(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="the export check runs the graphs with onnxruntime (export extra)")
    from rnnkit.export import to_onnx
    from rnnkit.export.graphs import language_model_graphs

    torch.manual_seed(0)
    model = LanguageModel(vocab_size=60, hidden_size=16, num_layers=1, embedding_dim=8,
                          adaptive_softmax=[8, 24]).eval()
    for graph in language_model_graphs(model):
        path = tmp_path / f"{graph.role}.onnx"
        to_onnx(graph.module, path, graph.example_inputs, input_names=graph.input_names,
                output_names=graph.output_names, dynamic_axes=graph.dynamic_axes)
        feed = {name: t.numpy() for name, t in zip(graph.input_names, graph.example_inputs)}
        got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)[0]
        with torch.no_grad():
            expected = graph.module(*graph.example_inputs)[0]
        torch.testing.assert_close(torch.from_numpy(got), expected, rtol=1e-4, atol=1e-5)
