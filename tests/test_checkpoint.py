"""Run directories and checkpoints: round trip, pointers, crash safety, and damaged or foreign files."""

import json

import pytest
import torch
from conftest import ToyLanguageModel

from rnnkit.errors import InputError
from rnnkit.train import RunDirectory
from rnnkit.train import checkpoint as checkpoint_module
from rnnkit.train.tensor_state import join_tensors, split_tensors


class TiedModel(torch.nn.Module):
    """Two names for one weight, as a language model with tied embedding and decoder."""

    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(5, 3)
        self.decoder = torch.nn.Linear(3, 5)
        self.decoder.weight = self.embedding.weight


def save_one(run, value: float, best=False):
    model = TiedModel()
    with torch.no_grad():
        model.embedding.weight.fill_(value)
    return run.save(model, {"extra": torch.full((2,), value)}, {"value": value}, best=best)


def test_round_trip_keeps_weights_tensors_and_meta(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    save_one(run, 1.5)
    checkpoint = RunDirectory.open(run.path).load()
    model = TiedModel()
    checkpoint.load_weights(model)
    assert torch.equal(model.embedding.weight, torch.full((5, 3), 1.5))
    assert model.decoder.weight is model.embedding.weight
    assert torch.equal(checkpoint.tensors["extra"], torch.full((2,), 1.5))
    assert checkpoint.meta["value"] == 1.5


def test_latest_and_best_pointers_and_pruning(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    save_one(run, 1.0, best=True)
    save_one(run, 2.0)
    save_one(run, 3.0)
    assert run.load("latest").meta["value"] == 3.0
    assert run.load("best").meta["value"] == 1.0
    kept = sorted(p.name for p in (run.path / "checkpoints").iterdir())
    assert kept == ["ckpt-000001", "ckpt-000003"]


def test_auto_is_the_best_checkpoint_when_there_is_one_else_the_latest(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    save_one(run, 1.0)
    assert run.load("auto").meta["value"] == 1.0  # no best yet (no epoch validated): the latest
    save_one(run, 2.0, best=True)
    save_one(run, 3.0)
    assert run.load("auto").meta["value"] == 2.0


def test_a_crash_while_writing_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    run = RunDirectory.create(tmp_path / "run")
    save_one(run, 1.0)
    real_write = checkpoint_module._write_synced

    def write_half_then_die(path, data):
        if path.name == checkpoint_module.STATE_FILE:
            real_write(path, data[: len(data) // 2])
            raise KeyboardInterrupt("killed mid-write")
        real_write(path, data)

    monkeypatch.setattr(checkpoint_module, "_write_synced", write_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        save_one(run, 2.0)
    assert RunDirectory.open(run.path).load().meta["value"] == 1.0

    monkeypatch.setattr(checkpoint_module, "_write_synced", real_write)
    save_one(run, 3.0)
    assert run.load().meta["value"] == 3.0
    assert not [p for p in (run.path / "checkpoints").iterdir() if p.name.startswith(".tmp")]


def test_a_crash_before_the_pointer_switch_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    run = RunDirectory.create(tmp_path / "run")
    save_one(run, 1.0)

    def die(path, data):
        raise KeyboardInterrupt("killed before the switch")

    monkeypatch.setattr(checkpoint_module, "write_atomic", die)
    with pytest.raises(KeyboardInterrupt):
        save_one(run, 2.0)
    assert RunDirectory.open(run.path).load().meta["value"] == 1.0


def damage_weights(checkpoint_dir):
    path = checkpoint_dir / "weights.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate_state(checkpoint_dir):
    path = checkpoint_dir / "state.safetensors"
    path.write_bytes(path.read_bytes()[:10])


def foreign_meta(checkpoint_dir):
    (checkpoint_dir / "checkpoint.json").write_text(json.dumps({"format": "something-else"}))


def broken_meta(checkpoint_dir):
    (checkpoint_dir / "checkpoint.json").write_text('{"format": "rnnkit-checkpoint", "ver')


def missing_file(checkpoint_dir):
    (checkpoint_dir / "weights.safetensors").unlink()


def broken_pointer(checkpoint_dir):
    (checkpoint_dir.parent.parent / "latest.json").write_text("not json")


@pytest.mark.parametrize("damage, words", [
    (damage_weights, "corrupt or truncated"),
    (truncate_state, "corrupt or truncated"),
    (foreign_meta, "not an rnnkit checkpoint"),
    (broken_meta, "not valid JSON"),
    (missing_file, "missing"),
    (broken_pointer, "not valid JSON"),
])
def test_damaged_or_foreign_checkpoints_give_one_line(tmp_path, damage, words):
    run = RunDirectory.create(tmp_path / "run")
    damage(save_one(run, 1.0))
    with pytest.raises(InputError, match=words) as caught:
        RunDirectory.open(run.path).load()
    assert "\n" not in str(caught.value)


def test_weights_of_another_shape_are_refused(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    run.save(ToyLanguageModel(hidden_size=8), {}, {})
    with pytest.raises(InputError, match="does not fit this model"):
        run.load().load_weights(ToyLanguageModel(hidden_size=16))


def test_directories_that_hold_no_run_are_refused(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        RunDirectory.open(tmp_path / "nowhere")
    with pytest.raises(InputError, match="not an rnnkit run directory"):
        RunDirectory.open(tmp_path)


def test_an_existing_run_is_not_overwritten_by_accident(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    save_one(run, 1.0)
    with pytest.raises(InputError, match="--resume"):
        RunDirectory.create(run.path)
    assert run.load().meta["value"] == 1.0
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(InputError, match="non-empty"):
        RunDirectory.create(tmp_path / "notes", overwrite=True)
    fresh = RunDirectory.create(run.path, overwrite=True)
    assert fresh.load().meta["value"] == 1.0, "the old run stays until the new one writes"
    save_one(fresh, 2.0)
    assert fresh.load().meta["value"] == 2.0 and not (fresh.path / "best.json").exists()
    assert len(list((fresh.path / "checkpoints").iterdir())) == 1


def test_overwrite_replaces_the_metrics_only_with_a_validated_checkpoint(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    save_one(run, 1.0)
    run.append_metrics({"epoch": 1})
    fresh = RunDirectory.create(run.path, overwrite=True)
    assert run.metrics_path.read_text() == '{"epoch": 1}\n'
    fresh.append_metrics({"epoch": 7})
    assert run.metrics_path.read_text() == '{"epoch": 1}\n' and fresh.replacing  # staged beside the old run
    fresh.save(TiedModel(), {}, {"value": 2.0}, validated=False)
    assert run.metrics_path.read_text() == '{"epoch": 1}\n' and RunDirectory(run.path).load().meta["value"] == 1.0
    fresh.save(TiedModel(), {}, {"value": 3.0})
    assert run.metrics_path.read_text() == '{"epoch": 7}\n' and not fresh.replacing
    assert RunDirectory(run.path).load().meta["value"] == 3.0
    assert sorted(p.name for p in (run.path / "checkpoints").iterdir()) == ["ckpt-000003"]


def test_optimizer_state_goes_through_json_and_tensors():
    parameter = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.Adam([parameter], lr=0.1)
    parameter.grad = torch.ones(3)
    optimizer.step()
    as_json, tensors = split_tensors(optimizer.state_dict(), "optimizer")
    restored = join_tensors(json.loads(json.dumps(as_json)), tensors)
    assert set(tensors) == {"optimizer/state/0/step", "optimizer/state/0/exp_avg", "optimizer/state/0/exp_avg_sq"}
    assert torch.equal(restored["state"]["0"]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    assert restored["param_groups"][0]["betas"] == [0.9, 0.999]
