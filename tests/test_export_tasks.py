"""Every task's trained model exported (rnnkit.load(RUN).export): each graph run by onnxruntime equals the PyTorch
model on real inputs (float32, 1e-5), the task's validation loss through the files equals PyTorch's, every file
carries its contract in its metadata, a tagger's numpy Viterbi equals rnnkit's CRF decode, and int8 files are at
most 0.3x the float32 ones."""

import json

import numpy as np
import pytest
import torch

import rnnkit
from bad_inputs.workspace import RUNS, Workspace, run_quietly
from rnnkit.export.viterbi import viterbi
from rnnkit.models import LinearChainCRF

onnxruntime = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

TASKS = ("lm", "classify", "tag", "forecast", "translate", "caption", "music")
ROLES = {"lm": ["sequence", "step"], "classify": ["classifier"], "tag": ["tagger"], "forecast": ["forecaster"],
         "translate": ["encoder", "decoder_step"], "caption": ["encoder", "decoder_step"], "music": ["step"]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny trained run per task (the bad-input corpus's settings), the tagger with a CRF."""
    root = tmp_path_factory.mktemp("export-runs")
    inputs = Workspace(root / "data", runs={})
    found = {}
    for task in TASKS:
        extra = ["--crf"] if task == "tag" else []
        argv = ["train", task, *inputs.format(RUNS[task][1]), *extra, "--seed", "0", "--quiet", "--out", str(root / task)]
        code, _, stderr = run_quietly(argv)
        assert code == 0, stderr
        found[task] = root / task
    return found


@pytest.fixture(scope="module")
def exported(runs, tmp_path_factory):
    """Each run exported to ONNX once: task -> (the TrainedRun, the report)."""
    out = tmp_path_factory.mktemp("exported")
    result = {}
    for task in TASKS:
        run = rnnkit.load(runs[task])
        result[task] = (run, run.export(format="onnx", out=out / f"{task}.onnx"))
    return result


def session(path):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("task", TASKS)
def test_files_are_named_by_role_and_carry_their_contract(exported, task):
    run, report = exported[task]
    files = report["files"]
    onnx_files = [f for f in files if f.endswith(".onnx")]
    assert len(onnx_files) == len(ROLES[task])
    for path, role in zip(onnx_files, ROLES[task]):
        meta = session(path).get_modelmeta().custom_metadata_map
        assert meta["rnnkit.task"] == task and meta["rnnkit.graph"] == role
        assert meta["rnnkit.version"] == rnnkit.__version__
        assert json.loads(meta["rnnkit.files"])[role].endswith(path.split("/")[-1])
        contract = json.loads(meta["rnnkit.contract"])
        live = session(path)
        assert [spec["name"] for spec in contract["inputs"]] == [i.name for i in live.get_inputs()]
        assert [spec["name"] for spec in contract["outputs"]] == [o.name for o in live.get_outputs()]
        assert json.loads(meta["rnnkit.model"]) == json.loads(json.dumps(dict(run.model.config) if isinstance(
            run.model.config, dict) else run.model.config.to_dict()))
    if task == "classify":
        assert json.loads(meta["rnnkit.vocabulary"])["labels"] == run.trained.labels
    if task == "tag":
        assert any(f.endswith("tag.viterbi.py") for f in files)


def _resized(spec_inputs, example, batch=4, steps=9):
    """Inputs of other sizes than the traced ones on every dynamic axis (lengths unsorted, one of 1 step)."""
    generator = torch.Generator().manual_seed(5)
    values = []
    for spec, tensor in zip(spec_inputs, example):
        shape = [{"N": batch, "L": steps, "S": steps, "W": 6}.get(d, d) for d in spec.shape]
        if spec.name in ("lengths", "source_lengths"):
            values.append(torch.tensor([steps, 1, 5, 3][:batch]))
        elif tensor.dtype == torch.long:
            values.append(torch.randint(1, int(tensor.max()) + 1, shape, generator=generator))
        elif tensor.dtype == torch.bool:
            values.append(torch.arange(steps).expand(batch, steps) < torch.tensor([steps, 1, 5, 3]).unsqueeze(1))
        elif spec.name == "start":
            values.append(torch.ones(shape))
        else:
            values.append(torch.rand(shape, generator=generator))
    return values


@pytest.mark.parametrize("task", TASKS)
def test_every_graph_equals_pytorch(exported, task):
    from rnnkit.tasks.exporting import task_graphs

    run, report = exported[task]
    graphs = task_graphs(task, run.trained)
    for graph, path in zip(graphs, [f for f in report["files"] if f.endswith(".onnx")]):
        live = session(path)
        for inputs in (graph.example_inputs, _resized(graph.inputs, graph.example_inputs)):
            got = live.run(None, {name: t.numpy() for name, t in zip(graph.input_names, inputs)})
            with torch.no_grad():
                want = graph.module(*inputs)
            want = want if isinstance(want, tuple) else (want,)
            for name, a, b in zip(graph.output_names, got, want):
                np.testing.assert_allclose(a, b.numpy(), atol=1e-5, rtol=1e-5, err_msg=f"{task} {graph.role} {name}")


@pytest.mark.parametrize("task", TASKS)
def test_validation_loss_through_the_files_equals_pytorch(exported, task):
    from rnnkit.tasks.export_check import OnnxStandIn, scores, validation_task

    run, report = exported[task]
    files = dict(zip(ROLES[task], [f for f in report["files"] if f.endswith(".onnx")]))
    data = {"classify": None, "tag": None}.get(task)
    valid = validation_task(run, data)
    through_files = scores(valid, OnnxStandIn(task, run.model, files), task)
    in_pytorch = scores(valid, run.model, task)
    for key, value in in_pytorch.items():
        assert through_files[key] == pytest.approx(value, rel=1e-5, abs=1e-5), key


def test_numpy_viterbi_equals_the_crf_decode():
    torch.manual_seed(0)
    crf = LinearChainCRF(5)
    with torch.no_grad():
        for parameter in crf.parameters():
            parameter.normal_()
    emissions = torch.randn(6, 9, 5)  # (N, L, C)
    lengths = torch.tensor([9, 1, 4, 7, 2, 9])
    mask = torch.arange(9).unsqueeze(0) < lengths.unsqueeze(1)
    decoded = crf.decode(emissions, mask)
    for n, length in enumerate(lengths.tolist()):
        path = viterbi(emissions[n, :length].numpy(), crf.transitions.detach().numpy(),
                       crf.start_transitions.detach().numpy(), crf.end_transitions.detach().numpy())
        assert path == decoded[n, :length].tolist()


def test_int8_is_at_most_0_3_of_float32_and_close(tmp_path):
    from rnnkit.export import to_onnx
    from rnnkit.export.graphs import language_model_graphs
    from rnnkit.export.quantize import quantize_int8

    torch.manual_seed(0)
    for cell in ("lstm", "gru"):
        step = language_model_graphs(rnnkit.models.LanguageModel(64, cell=cell, hidden_size=128, num_layers=1,
                                                                 embedding_dim=32).eval())[1]
        path = tmp_path / f"{cell}.onnx"
        to_onnx(step.module, path, step.example_inputs, input_names=step.input_names,
                output_names=step.output_names, dynamic_axes=step.dynamic_axes, metadata={"rnnkit.task": "lm"})
        quantize_int8(path, tmp_path / f"{cell}.int8.onnx")
        ratio = (tmp_path / f"{cell}.int8.onnx").stat().st_size / path.stat().st_size
        assert ratio <= 0.3, (cell, ratio)
        feed = {name: t.numpy() for name, t in zip(step.input_names, step.example_inputs)}
        full, small = session(path).run(None, feed), session(tmp_path / f"{cell}.int8.onnx").run(None, feed)
        assert np.abs(full[0] - small[0]).max() < 0.05
        meta = session(tmp_path / f"{cell}.int8.onnx").get_modelmeta().custom_metadata_map
        assert meta == {"rnnkit.task": "lm", "rnnkit.quantized": "int8"}


@pytest.mark.parametrize("cell", ["layernorm_lstm", "mingru", "rglru"])
def test_int8_computes_the_scan_bodies_matmuls_in_int8(tmp_path, cell):
    """The Scan route's x W^T and h U^T (MatMul of a Transpose of an outer weight) become MatMulInteger in the
    body, the file stays <= 0.3x, and the int8 layer stays close to the float32 one."""
    import rnnkit.nn as rn
    from rnnkit.export import layer_to_onnx
    from rnnkit.export.quantize import _all_nodes, quantize_int8

    torch.manual_seed(0)
    layer = rn.Recurrent(cell, 128, 128).eval()  # big enough that the weights, not the graph, make the file
    full, small = tmp_path / "f.onnx", tmp_path / "q.onnx"
    layer_to_onnx(layer, full)
    quantize_int8(full, small)
    model = onnx.load(str(small))
    (scan,) = [node for node in model.graph.node if node.op_type == "Scan"]
    body = [node.op_type for node in _all_nodes(next(a.g for a in scan.attribute if a.name == "body"))]
    float_matmuls = sum(node.op_type == "MatMul" for node in _all_nodes(onnx.load(str(full)).graph))
    assert "MatMul" not in body and body.count("MatMulInteger") == float_matmuls > 0, body
    assert "Transpose" not in body
    assert small.stat().st_size <= 0.3 * full.stat().st_size
    feed = {spec.name: np.random.default_rng(0).normal(size=[5 if d == "L" else 2 if isinstance(d, str) else d
                                                              for d in spec.shape]).astype(np.float32)
            for spec in session(full).get_inputs()}
    want, got = session(full).run(None, feed)[0], session(small).run(None, feed)[0]
    assert np.abs(want - got).max() < 0.05 * np.abs(want).max()


def test_quantizing_logs_no_preprocessing_advice_and_leaves_the_root_logger_as_it_was(tmp_path, capfd):
    import logging

    import rnnkit.nn as rn
    from rnnkit.export import layer_to_onnx
    from rnnkit.export.quantize import quantize_int8

    layer_to_onnx(rn.Recurrent("mingru", 8, 8).eval(), tmp_path / "f.onnx")
    root = logging.getLogger()
    before = (root.level, list(root.handlers), list(root.filters))
    records = []
    catcher = logging.Handler()
    catcher.emit = records.append
    root.addHandler(catcher)
    try:
        quantize_int8(tmp_path / "f.onnx", tmp_path / "q.onnx")
        logging.warning("an unrelated warning still gets through")
    finally:
        root.removeHandler(catcher)
    assert [record.getMessage() for record in records] == ["an unrelated warning still gets through"]
    assert "pre-processing" not in capfd.readouterr().err
    assert (root.level, list(root.handlers), list(root.filters)) == before


def test_int8_exported_program_is_refused_for_the_reason_torch_export_fails(exported, tmp_path):
    """PyTorch's dynamic int8 of the classifier runs in eager mode, and torch.export fails on its packed
    weights exactly as the refusal says; when a torch exports it, this test fails: support it then."""
    import warnings

    from rnnkit.errors import InputError
    from rnnkit.export.graphs import classifier_graphs
    from rnnkit.export.writing import exported_program_shapes

    run, _ = exported["classify"]
    graph = classifier_graphs(run.model.eval())[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        quantized = torch.ao.quantization.quantize_dynamic(graph.module, {torch.nn.Linear}, dtype=torch.qint8)
    assert any("quantized" in type(module).__module__ for module in quantized.modules())
    logits, _ = quantized(*graph.example_inputs)
    want, _ = graph.module(*graph.example_inputs)
    assert torch.allclose(logits, want, atol=0.05)  # eager int8 runs and stays close
    with pytest.raises(Exception, match="LinearPackedParamsBase.*__obj_flatten__"):
        torch.export.export(quantized, graph.example_inputs, dynamic_shapes=exported_program_shapes(graph))
    with pytest.raises(InputError, match="torch.export cannot trace its packed weights .LinearPackedParamsBase"):
        run.export(format="exported-program", out=tmp_path / "q.pt2", quantize="int8")
    assert list(tmp_path.iterdir()) == []


def test_gemm_rewritten_as_matmul_computes_the_same(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    from rnnkit.export.quantize import gemm_to_matmul

    rng = np.random.default_rng(0)
    weight, bias = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(4,)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1, alpha=0.5, beta=2.0)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.normal(size=(5, 3)).astype(np.float32)
    want = 0.5 * x @ weight.T + 2.0 * bias
    assert gemm_to_matmul(model) == 1
    assert [node.op_type for node in model.graph.node] == ["MatMul", "Add"]
    onnx.save(model, str(tmp_path / "m.onnx"))
    np.testing.assert_allclose(session(tmp_path / "m.onnx").run(None, {"x": x})[0], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("task", TASKS)
def test_every_task_as_exported_programs_equals_pytorch(exported, task, tmp_path):
    from rnnkit.export.exported_program import load_exported_program
    from rnnkit.tasks.exporting import task_graphs

    run, _ = exported[task]
    report = run.export(format="exported-program", out=tmp_path / f"{task}.pt2")
    programs = [path for path in report["files"] if path.endswith(".pt2")]  # the tagger's viterbi.py beside them
    assert [path.split("/")[-1] for path in programs] == [
        f"{task}.pt2" if i == 0 else f"{task}.{role}.pt2" for i, role in enumerate(ROLES[task])]
    for graph, path in zip(task_graphs(task, run.trained), programs):
        loaded = load_exported_program(path)
        program = loaded[0] if isinstance(loaded, tuple) else loaded
        for inputs in (graph.example_inputs, _resized(graph.inputs, graph.example_inputs)):
            with torch.no_grad():
                got, want = program.module()(*inputs), graph.module(*inputs)
            for a, b in zip(got, want):
                torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
