"""StreamBatcher: stream layout, shifted targets, sharding, resume, too-short corpora."""

import json

import pytest
import torch

from rnnkit.data.streams import StreamBatcher
from rnnkit.errors import InputError

N, L = 4, 5


def corpus(T=107):
    return torch.arange(T)  # token t has id t, so positions are easy to read


def test_layout_matches_the_documented_example():
    batcher = StreamBatcher(torch.arange(14), batch_size=2, seq_len=3)
    windows = list(batcher)
    assert len(batcher) == len(windows) == 2
    assert windows[0][0].tolist() == [[0, 1, 2], [6, 7, 8]]
    assert windows[1][0].tolist() == [[3, 4, 5], [9, 10, 11]]
    assert windows[1][1].tolist() == [[4, 5, 6], [10, 11, 12]]


def test_windows_of_a_stream_concatenate_to_a_contiguous_slice_of_the_corpus():
    ids = corpus()
    batcher = StreamBatcher(ids, N, L)
    assert len(batcher) == (len(ids) - 1) // (N * L)  # 5 windows; 6 tokens trimmed
    windows = list(batcher)
    S = len(batcher) * L
    for n in range(N):
        stream = torch.cat([inputs[n] for inputs, _ in windows])  # (S,)
        assert torch.equal(stream, ids[n * S : (n + 1) * S])
        shifted = torch.cat([targets[n] for _, targets in windows])  # (S,)
        assert torch.equal(shifted, ids[n * S + 1 : (n + 1) * S + 1])  # targets: the next token
    for inputs, targets in windows:
        assert inputs.shape == targets.shape == (N, L)
        assert inputs.dtype == torch.long
        assert torch.equal(targets[:, :-1], inputs[:, 1:])


def test_epochs_repeat_the_same_windows():
    batcher = StreamBatcher(corpus(), N, L)
    first = [w[0] for w in batcher]
    second = [w[0] for w in batcher]
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


@pytest.mark.parametrize("world_size", [1, 2, 4])
def test_shards_concatenated_along_the_batch_equal_the_whole_batch(world_size):
    batcher = StreamBatcher(corpus(), N, L)
    shards = [batcher.shard(rank, world_size) for rank in range(world_size)]
    assert all(len(s) == len(batcher) and s.batch_size == N // world_size for s in shards)
    for whole, *parts in zip(batcher, *shards, strict=True):
        assert torch.equal(whole[0], torch.cat([p[0] for p in parts]))
        assert torch.equal(whole[1], torch.cat([p[1] for p in parts]))


def test_shard_needs_a_batch_size_divisible_by_the_world_size():
    with pytest.raises(InputError, match="divisible by 3"):
        StreamBatcher(corpus(), N, L).shard(0, 3)


def test_resume_from_state_dict_gives_the_remaining_windows():
    whole = list(StreamBatcher(corpus(), N, L))
    interrupted = StreamBatcher(corpus(), N, L)
    seen = []
    for window in interrupted:
        seen.append(window)
        if len(seen) == 2:
            break
    saved = json.loads(json.dumps(interrupted.state_dict()))
    assert saved["window"] == 2

    resumed = StreamBatcher(corpus(), N, L)
    resumed.load_state_dict(saved)
    rest = list(resumed)
    assert len(seen) + len(rest) == len(whole)
    for a, b in zip(seen + rest, whole, strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert resumed.position == 0  # the epoch was read to its end: the next one starts over


def test_iterate_from_a_start_window():
    batcher = StreamBatcher(corpus(), N, L)
    whole = list(batcher)
    tail = list(batcher.iterate(start=3))
    assert len(tail) == len(whole) - 3
    assert all(torch.equal(a[0], b[0]) for a, b in zip(tail, whole[3:]))
    assert list(batcher.iterate(start=len(batcher))) == []


def test_load_state_dict_rejects_another_layout_or_a_bad_position():
    batcher = StreamBatcher(corpus(), N, L)
    other = StreamBatcher(corpus(), N, L + 1).state_dict()
    with pytest.raises(InputError, match="same data, batch size and sequence length"):
        batcher.load_state_dict(other)
    with pytest.raises(InputError, match="corrupt"):
        batcher.load_state_dict({**batcher.state_dict(), "window": len(batcher) + 1})


def test_corpus_shorter_than_one_batch_says_how_many_tokens_are_needed():
    StreamBatcher(torch.arange(N * L + 1), N, L)  # exactly one batch fits
    with pytest.raises(InputError) as excinfo:
        StreamBatcher(torch.arange(N * L), N, L)
    message = str(excinfo.value)
    assert f"has {N * L} tokens" in message and f"= {N * L + 1}" in message and "\n" not in message


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"seq_len": -1}, {"batch_size": 2.5}])
def test_sizes_must_be_positive_integers(bad):
    with pytest.raises(InputError):
        StreamBatcher(corpus(), **{"batch_size": N, "seq_len": L, **bad})
