"""rnnkit.diagnose.gradients and .memory: per-step gradient norms against independent references, the ratio and
clipping arithmetic, the first input's influence (exactly zero where the equations say so), gate saturation."""

import math

import pytest
import torch
import torch.nn.functional as F

from rnnkit.diagnose.gradients import fresh_layer, language_model_gradient_flow, per_step_gradient_norms
from rnnkit.models import LanguageModel
from rnnkit.diagnose.memory import gate_saturation, input_influence
from rnnkit.errors import InputError
from rnnkit.nn import GRU, LSTM, RNN, Recurrent, cell_names, get_cell

TORCH_CELLS = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}
LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def reference_gradients(layer, x, loss_fn, loss):
    """∂L/∂h_t of every layer and step, from torch.nn's own cells run by hand with a zero perturbation d_t added
    to each h_t: ∂L/∂d_t at d = 0 is the total derivative of L with respect to h_t. x is (L, N, H_in)."""
    cells = []
    for k in range(layer.num_layers):
        cell = TORCH_CELLS[{"RNN_TANH": "rnn", "LSTM": "lstm", "GRU": "gru"}[layer.mode]](
            layer.input_size if k == 0 else layer.hidden_size, layer.hidden_size).double()
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).data.copy_(getattr(layer, f"{name}_l{k}"))
        cells.append(cell)
    steps, batch = x.shape[0], x.shape[1]
    perturbations = torch.zeros(steps, layer.num_layers, batch, layer.hidden_size, dtype=torch.float64, requires_grad=True)
    states = [None] * layer.num_layers
    total = 0
    for t in range(steps):
        below = x[t]
        for k, cell in enumerate(cells):
            out = cell(below, states[k])
            if isinstance(out, tuple):
                h = out[0] + perturbations[t, k]
                states[k] = (h, out[1])
            else:
                h = out + perturbations[t, k]
                states[k] = h
            below = h
        if loss == "sum" or t == steps - 1:
            total = total + loss_fn(t, below)
    (grad,) = torch.autograd.grad(total, perturbations)
    return grad.flatten(2).norm(dim=2).T  # (num_layers, L)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("loss", ["last", "sum"])
def test_per_step_norms_equal_an_autograd_reference(cell, loss):
    torch.manual_seed(0)
    layer = LAYERS[cell](3, 4, num_layers=2).double()
    x = torch.randn(7, 2, 3, dtype=torch.float64)  # (L, N, H_in)
    readout = torch.nn.Linear(4, 5).double()
    targets = torch.randint(0, 5, (7, 2))

    def loss_fn(t, h):
        return F.cross_entropy(readout(h), targets[t], reduction="sum")

    flow = per_step_gradient_norms(layer, x, loss_fn=loss_fn, loss=loss)
    expected = reference_gradients(layer, x, loss_fn, loss)
    torch.testing.assert_close(flow.hidden, expected, rtol=1e-10, atol=1e-14)
    assert flow.hidden.shape == (2, 7)
    assert (flow.cell is not None) == get_cell(cell).has_cell_state


def cell_reference_gradients(layer, x, loss_fn):
    """∂L/∂h_t of every layer and step of a time-major ``rnnkit.nn.Recurrent``, through its cell's own reference
    equations with a zero perturbation d_t added to each h_t (L at the last step)."""
    steps, batch = x.shape[0], x.shape[1]
    perturbations = torch.zeros(steps, layer.num_layers, batch, layer.hidden_size, dtype=torch.float64, requires_grad=True)
    states = [tuple(torch.zeros(batch, size, dtype=torch.float64) for size in layer.cell.state_sizes())
              for _ in range(layer.num_layers)]
    for t in range(steps):
        below = x[t]
        for k in range(layer.num_layers):
            state, _ = layer.cell.reference_step(layer._layer_params(k, 0), below, states[k], states[k][0])
            states[k] = (state[0] + perturbations[t, k], *state[1:])
            below = states[k][0]
    (grad,) = torch.autograd.grad(loss_fn(steps - 1, below), perturbations)
    return grad.flatten(2).norm(dim=2).T  # (num_layers, L)


@pytest.mark.parametrize("cell", cell_names())
def test_per_step_norms_of_every_registered_cell_stacked_and_batch_first(cell):
    torch.manual_seed(3)
    layer = Recurrent(cell, 3, 4, num_layers=2, batch_first=True).double()
    x = torch.randn(2, 6, 3, dtype=torch.float64)  # (N, L, H_in)
    flow = per_step_gradient_norms(layer, x, loss_fn=lambda t, h: (h ** 2).sum())
    time_major = Recurrent(cell, 3, 4, num_layers=2).double()
    time_major.load_state_dict(layer.state_dict())
    expected = cell_reference_gradients(time_major, x.transpose(0, 1), lambda t, h: (h ** 2).sum())
    torch.testing.assert_close(flow.hidden, expected, rtol=1e-9, atol=1e-13)
    assert (flow.cell is not None) == get_cell(cell).has_cell_state


def test_gradient_flow_of_a_language_model_over_a_text():
    torch.manual_seed(4)
    model = LanguageModel(7, cell="gru", hidden_size=5, num_layers=2, embedding_dim=3).eval()
    ids = torch.tensor([1, 4, 2, 6, 0, 3, 5])
    flow = language_model_gradient_flow(model, ids)
    assert flow.hidden.shape == (2, 6) and next(model.parameters()).dtype == torch.float32  # a float64 copy ran
    double = LanguageModel(7, cell="gru", hidden_size=5, num_layers=2, embedding_dim=3).double().eval()
    double.load_state_dict(model.state_dict())
    layer = Recurrent("gru", 3, 5, num_layers=2).double()
    layer.load_state_dict(double.rnn.state_dict())
    x = double.embedding(ids[:-1]).unsqueeze(1)  # (L, N=1, E)
    # L: the cross-entropy of predicting the last token from the state after the one before it
    loss_fn = lambda t, h: F.cross_entropy(double.decoder(h), ids[-1:], reduction="sum")  # noqa: E731
    torch.testing.assert_close(flow.hidden, cell_reference_gradients(layer, x, loss_fn), rtol=1e-9, atol=1e-13)
    with pytest.raises(InputError, match="at least 2 tokens"):
        language_model_gradient_flow(model, ids[:1])


def test_per_step_norms_equal_central_differences_batch_first_explicit_engine():
    torch.manual_seed(1)
    layer = RNN(2, 3, batch_first=True, engine="explicit").double()
    x = torch.randn(1, 5, 2, dtype=torch.float64)  # (N, L, H_in)
    flow = per_step_gradient_norms(layer, x, loss_fn=lambda t, h: (h ** 2).sum())
    w_ih, w_hh, b = layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0 + layer.bias_hh_l0

    def loss_with(step, delta):  # L with h_step moved by delta
        h = torch.zeros(3, dtype=torch.float64)
        for t in range(5):
            h = torch.tanh(w_ih @ x[0, t] + w_hh @ h + b) + (delta if t == step else 0)
        return float((h ** 2).sum())

    eps = 1e-6
    with torch.no_grad():
        for step in range(5):
            grad = torch.tensor([(loss_with(step, eps * e) - loss_with(step, -eps * e)) / (2 * eps)
                                 for e in torch.eye(3, dtype=torch.float64)])
            assert flow.hidden[0, step].item() == pytest.approx(grad.norm().item(), rel=1e-6, abs=1e-10)


def test_ratio_of_a_one_unit_rnn_is_the_product_of_step_derivatives():
    # h_t = tanh(0.5 h_{t-1}) from h_0 = 0 stays 0, so ∂h_t/∂h_{t-1} = 0.5 exactly and
    # ‖∂L/∂h_5‖ / ‖∂L/∂h_1‖ = 1 / 0.5^4 = 16 with L = h_5.
    layer = RNN(1, 1).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.zero_()
        layer.weight_hh_l0.fill_(0.5)
    flow = per_step_gradient_norms(layer, torch.ones(5, 1, 1, dtype=torch.float64))
    assert flow.hidden[0].tolist() == [0.0625, 0.125, 0.25, 0.5, 1.0]
    assert flow.ratio() == 16.0


def test_ratio_is_infinite_when_the_first_gradient_vanishes_completely():
    layer = RNN(1, 1).double()
    with torch.no_grad():
        layer.weight_hh_l0.zero_()  # no path from h_1 to h_3
    flow = per_step_gradient_norms(layer, torch.ones(3, 1, dtype=torch.float64))  # unbatched (L, H_in)
    assert flow.hidden[0, :2].tolist() == [0.0, 0.0]
    assert flow.ratio() == math.inf


def test_parameter_norm_is_what_clipping_sees_and_grads_are_untouched():
    torch.manual_seed(2)
    layer = LSTM(3, 4).double()
    x = torch.randn(6, 1, 3, dtype=torch.float64)
    flow = per_step_gradient_norms(layer, x, loss_fn=lambda t, h: h.sum() * 10, loss="sum")
    assert all(p.grad is None for p in layer.parameters())

    output, _ = layer(x)
    (output.sum() * 10).backward()
    total = torch.nn.utils.clip_grad_norm_(layer.parameters(), max_norm=0.5)
    assert flow.parameter_norm == pytest.approx(total.item(), rel=1e-10)
    scale = flow.clip_scale(0.5)
    assert scale == pytest.approx(0.5 / (total.item() + 1e-6))
    assert flow.clip_scale(None) == 1.0 and flow.clip_scale(1e9) == 1.0
    clipped = flow.clipped(0.5)
    torch.testing.assert_close(clipped, flow.hidden * scale)
    assert clipped[0, -1] / clipped[0, 0] == pytest.approx(flow.ratio(), rel=1e-12)  # the shape is kept


def test_bad_arguments():
    layer = RNN(2, 3)
    with pytest.raises(InputError, match="unknown loss"):
        per_step_gradient_norms(layer, torch.randn(4, 2), loss="mean")
    with pytest.raises(ValueError, match="unidirectional"):
        per_step_gradient_norms(RNN(2, 3, bidirectional=True), torch.randn(4, 2))
    with pytest.raises(InputError, match="unknown cell"):
        fresh_layer("elman", 2, 3, seed=0)


def test_fresh_layer_has_pytorch_default_init_plus_the_requested_changes():
    torch.manual_seed(7)
    reference = torch.nn.LSTM(3, 4)
    layer = fresh_layer("lstm", 3, 4, seed=7, forget_bias=1.0, recurrent_scale=2.0)
    assert layer.weight_ih_l0.dtype == torch.float64
    torch.testing.assert_close(layer.weight_ih_l0, reference.weight_ih_l0.double())
    torch.testing.assert_close(layer.weight_hh_l0, 2 * reference.weight_hh_l0.double())
    shift = (layer.bias_ih_l0 - reference.bias_ih_l0.double()).tolist()
    assert shift == pytest.approx([0] * 4 + [1] * 4 + [0] * 8)  # only the forget gate (i, f, g, o)


@pytest.mark.parametrize("cell", cell_names())
def test_fresh_layer_of_every_registered_cell(cell):
    plain = fresh_layer(cell, 3, 4, seed=5)
    shifted = fresh_layer(cell, 3, 4, seed=5, forget_bias=3.0, recurrent_scale=0.5)
    kind = get_cell(cell)
    for name, value in plain.named_parameters():
        change = getattr(shifted, name) - value
        if kind.recurrent_weight is not None and name.startswith(kind.recurrent_weight):
            torch.testing.assert_close(getattr(shifted, name), 0.5 * value)
        elif kind.forget_gate is not None and name == f"{kind.forget_gate[0]}_l0":
            block = kind.forget_gate[1]
            expected = torch.zeros_like(change)
            expected[4 * block : 4 * (block + 1)] = 3.0  # H = 4
            torch.testing.assert_close(change, expected)
        else:
            assert torch.equal(change, torch.zeros_like(change)), name  # a cell without a forget gate ignores it


# ------------------------------------------------------------------------------------------- memory


def _cut_off(layer, cell):
    """Make h_t (t >= 2) independent of x_1: no recurrent weights, and gates that keep nothing of the past."""
    h = layer.hidden_size
    with torch.no_grad():
        layer.weight_hh_l0.zero_()
        if cell == "lstm":
            layer.bias_ih_l0[h : 2 * h] = -1e4  # forget gate exactly 0
        if cell == "gru":
            layer.bias_ih_l0[h : 2 * h] = -1e4  # update gate exactly 0: h_t = n_t
    return layer


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_influence_of_x1_is_exactly_zero_after_the_first_step_when_the_recurrence_is_cut(cell):
    layer = _cut_off(fresh_layer(cell, 3, 4, seed=0), cell)
    x = torch.randn(6, 3, dtype=torch.float64)
    influence = input_influence(layer, x, torch.randn(3, dtype=torch.float64))
    assert influence.jacobian[0] > 0 and influence.replacement[0] > 0
    assert influence.jacobian[1:].tolist() == [0.0] * 5
    assert influence.replacement[1:].tolist() == [0.0] * 5


def test_influence_at_the_first_step_is_the_analytic_jacobian():
    layer = fresh_layer("rnn", 3, 4, seed=1)
    x = torch.randn(5, 3, dtype=torch.float64)
    influence = input_influence(layer, x, x[0])
    h1 = torch.tanh(layer.weight_ih_l0 @ x[0] + layer.bias_ih_l0 + layer.bias_hh_l0)
    expected = ((1 - h1 ** 2).unsqueeze(1) * layer.weight_ih_l0).norm()  # diag(1 - h_1²) W_ih
    assert influence.jacobian[0].item() == pytest.approx(expected.item(), rel=1e-12)
    assert influence.replacement.tolist() == [0.0] * 5  # replacing x_1 by itself changes nothing


@pytest.mark.parametrize("cell", [RNN, LSTM])
def test_a_random_initial_state_is_shared_by_both_runs(cell):
    torch.manual_seed(4)
    layer = cell(3, 4, init_state="random", init_state_std=0.5).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    assert input_influence(layer, x, x[0]).replacement.tolist() == [0.0] * 5  # the same x_1, the same h_0


@pytest.mark.parametrize("engine", ["fused", "explicit"])
def test_influence_matches_reverse_mode_jacobian_and_restores_the_engine(engine):
    torch.manual_seed(3)
    layer = LSTM(3, 4, num_layers=2, engine=engine).double()
    x = torch.randn(6, 3, dtype=torch.float64)
    other = torch.randn(3, dtype=torch.float64)
    influence = input_influence(layer, x, other)
    assert layer.engine == engine

    reference = torch.autograd.functional.jacobian(lambda first: layer(torch.cat([first[None], x[1:]]))[0], x[0])
    torch.testing.assert_close(influence.jacobian, reference.flatten(1).norm(dim=1), rtol=1e-10, atol=1e-14)
    with torch.no_grad():
        changed = layer(x)[0] - layer(torch.cat([other[None], x[1:]]))[0]
    torch.testing.assert_close(influence.replacement, changed.norm(dim=1))


def test_gate_saturation_counts_shut_and_open_gates():
    layer = LSTM(2, 3).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.zero_()
        layer.bias_ih_l0[0:3] = 20.0  # input gate sigmoid(20) > 0.9
        layer.bias_ih_l0[3:6] = -20.0  # forget gate < 0.1; output gate sigmoid(0) = 0.5: neither
    saturation = gate_saturation(layer, torch.randn(5, 2, dtype=torch.float64))
    assert saturation == {
        "input": {"below": 0.0, "above": 1.0},
        "forget": {"below": 1.0, "above": 0.0},
        "output": {"below": 0.0, "above": 0.0},
    }
    assert set(gate_saturation(GRU(2, 3), torch.randn(4, 2))) == {"reset", "update"}
    assert gate_saturation(RNN(2, 3), torch.randn(4, 2)) == {}
