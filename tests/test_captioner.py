"""The Captioner and its data: shapes and conditions, the fast and the step-by-step decoder agreeing, the digit
compositions (disjoint source digits), caption scores, and image files of the wrong size or mode."""

import doctest

import numpy as np
import pytest
import torch
from PIL import Image

import rnnkit.models.captioner as captioner_module
from rnnkit.data.digits import DIGIT_SIZE, WORDS, compose, digit_compositions, digit_splits
from rnnkit.errors import InputError
from rnnkit.models import Captioner
from rnnkit.models.decoding import best_writable
from rnnkit.tasks.caption import caption_scores, read_image, read_npz, write_png



def small_captioner(**options):
    return Captioner(12, 8, 24, channels=(4, 8), feature_size=16, embedding_dim=8, hidden_size=12, **options)


def test_docstring_examples():
    result = doctest.testmod(captioner_module)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("condition", ["init", "input", "both"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_teacher_forced_logits_equal_the_step_by_step_decoder(condition, cell):
    torch.manual_seed(0)
    model = small_captioner(condition=condition, cell=cell, num_layers=2).eval()
    images, targets = torch.rand(3, 8, 24), torch.randint(4, 12, (3, 5))
    targets[:, 0] = 2
    with torch.no_grad():
        all_at_once = model(images, targets)  # (N, T, V)
        state, memory = model.start(images)
        steps = []
        for i in range(targets.size(1)):
            logits, state, weights = model.step(targets[:, i], state, memory)
            steps.append(logits)
            assert weights is None
    assert all_at_once.shape == (3, 5, 12)
    torch.testing.assert_close(all_at_once, torch.stack(steps, dim=1))


def test_the_image_reaches_the_decoder_as_its_condition_says():
    torch.manual_seed(1)
    images = torch.rand(2, 8, 24)
    init_only = small_captioner(condition="init").eval()
    state, _ = init_only.start(images)
    assert state.abs().sum() > 0  # s_0 = tanh(W f)
    input_only = small_captioner(condition="input").eval()
    state, _ = input_only.start(images)
    assert torch.equal(state, torch.zeros_like(state))  # the image enters only through each step's input
    assert input_only.decoder.input_size == 8 + 16 and init_only.decoder.input_size == 8


def test_teacher_forcing_zero_feeds_the_models_own_words():
    torch.manual_seed(2)
    model = small_captioner().eval()
    images, targets = torch.rand(3, 8, 24), torch.randint(4, 12, (3, 6))
    targets[:, 0] = 2
    with torch.no_grad():
        free = model(images, targets, teacher_forcing=0.0)
        greedy = model.generate(images, max_length=6)
    for n, tokens in enumerate(greedy.tokens):
        assert best_writable(free[n], model).tolist()[: len(tokens)] == tokens


def test_images_of_another_size_are_refused():
    with pytest.raises(InputError, match=r"\(N, 8, 24\)"):
        small_captioner()(torch.rand(2, 8, 20), torch.zeros(2, 3, dtype=torch.long))


# ------------------------------------------------------------------------------------------- digits


def test_compositions_show_their_caption_digits_side_by_side():
    splits = digit_splits()
    images, captions = compose(splits["train"], 20, max_digits=4, seed=3)
    assert images.shape == (20, 8, 32) and images.dtype == np.float32
    assert 0 <= images.min() and images.max() <= 1
    for image, caption in zip(images, captions):
        words = caption.split()
        assert 1 <= len(words) <= 4 and set(words) <= set(WORDS)
        for slot in range(4):
            block = image[:, slot * DIGIT_SIZE : (slot + 1) * DIGIT_SIZE]
            if slot >= len(words):
                assert not block.any()  # blank to the right of the last digit
            else:  # the block is one of the source digits with the caption's label
                label = WORDS.index(words[slot])
                candidates = splits["train"].images[splits["train"].labels == label]
                assert any(np.array_equal(block, c) for c in candidates)


def test_train_and_test_compositions_use_disjoint_source_digits():
    splits = digit_splits()
    assert sum(len(s) for s in splits.values()) == 1797

    def keys(images):
        return {image.tobytes() for image in images}

    train, valid, test = (keys(splits[name].images) for name in ("train", "valid", "test"))
    # a few of scikit-learn's digit images are exact duplicates of each other; the split itself is of images
    assert len(train & test) <= 2 and len(valid & test) <= 2
    images, captions = digit_compositions("test", 5, seed=1)
    again, same = digit_compositions("test", 5, seed=1)
    assert np.array_equal(images, again) and captions == same
    assert digit_compositions("test", 5, seed=2)[1] != captions


def test_caption_scores():
    scores = caption_scores([["one", "two"], ["three"], ["four", "five", "six"]],
                            [["one", "two"], ["three", "nine"], ["four", "seven"]])
    assert scores["exact_match"] == pytest.approx(1 / 3)
    # right tokens 2 + 1 + 1 over positions max(2,2) + max(1,2) + max(3,2) = 7
    assert scores["token_accuracy"] == pytest.approx(4 / 7)


# ------------------------------------------------------------------------------------------- image files


def test_png_and_npy_images_round_trip(tmp_path):
    image = np.random.default_rng(0).random((8, 24)).astype(np.float32)
    write_png(image, tmp_path / "x.png")
    np.save(tmp_path / "x.npy", image)
    np.testing.assert_allclose(read_image(str(tmp_path / "x.png"), 8, 24), image, atol=1 / 255)
    np.testing.assert_array_equal(read_image(str(tmp_path / "x.npy"), 8, 24), image)


def test_images_of_another_size_or_mode_are_converted_and_what_was_done_is_said(tmp_path):
    """Issue 26: any picture is captioned; the conversions are named (the unreadable ones stay one line)."""
    Image.new("RGB", (24, 8), (255, 0, 0)).save(tmp_path / "rgb.png")
    Image.new("L", (32, 32), 200).save(tmp_path / "big.png")
    np.save(tmp_path / "cube.npy", np.zeros((3, 8, 24)))
    np.save(tmp_path / "bright.npy", np.full((8, 24), 7.0))
    (tmp_path / "text.png").write_text("not an image")
    notes = []
    np.testing.assert_allclose(read_image(str(tmp_path / "rgb.png"), 8, 24, notes), 76 / 255, atol=1 / 255)
    assert notes == ["converted mode RGB to grayscale"]
    notes = []
    big = read_image(str(tmp_path / "big.png"), 8, 24, notes)  # 32×32 -> 8×8 at the left, background around
    np.testing.assert_allclose(big, 200 / 255, atol=1 / 255)
    assert notes[0] == "scaled it from 32×32 to 8×8 pixels (width×height)" and "padded it to 24×8" in notes[1]
    notes = []
    np.testing.assert_allclose(read_image(str(tmp_path / "bright.npy"), 8, 24, notes), 7 / 255, atol=1e-6)
    assert notes == ["scaled its float64 values (0-255) to [0, 1]"]
    with pytest.raises(InputError, match=r"shape \(3, 8, 24\); give an image"):
        read_image(str(tmp_path / "cube.npy"), 8, 24)
    with pytest.raises(InputError, match="not an image"):
        read_image(str(tmp_path / "text.png"), 8, 24)
    with pytest.raises(InputError, match="no such file"):
        read_image(str(tmp_path / "missing.png"), 8, 24)


def test_npz_data_files(tmp_path):
    images = np.zeros((3, 4, 6), dtype=np.uint8)
    images[0] = 255
    np.savez(tmp_path / "ok.npz", images=images, captions=np.array(["a b", "", "c"]))
    data = read_npz(str(tmp_path / "ok.npz"))
    assert data.captions == ["a b", "c"] and data.images.shape == (2, 4, 6) and data.images.max() == 1.0
    assert "1 images with an empty caption skipped" in data.description
    np.savez(tmp_path / "no_captions.npz", images=images)
    with pytest.raises(InputError, match="no captions array"):
        read_npz(str(tmp_path / "no_captions.npz"))
    np.savez(tmp_path / "flat.npz", images=np.zeros((3, 24)), captions=np.array(["a", "b", "c"]))
    with pytest.raises(InputError, match=r"\(N, height, width\)"):
        read_npz(str(tmp_path / "flat.npz"))
