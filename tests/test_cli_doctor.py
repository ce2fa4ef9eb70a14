"""`rnnkit doctor`: the versions, the CPU, the engines that run here and the native engine's state, as lines and
as one JSON object; with the extension turned off (RNNKIT_NATIVE=0) it says so and why, and `--engine native`
is refused in one line. Also: every `--engine` flag takes the registry's engines, described by their summaries."""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import click
import pytest
import torch

import rnnkit
from cli_helpers import run_cli
from rnnkit.cli import cli
from rnnkit.cli.options import auto_engine_words
from rnnkit.doctor import cpu_model
from rnnkit.nn import engine_names, get_engine, native_info

SRC = str(Path(__file__).resolve().parents[1] / "src")
NATIVE_OFF = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "RNNKIT_NATIVE": "0"}


def test_doctor_json_is_one_object_of_the_facts(capsys):
    code, stdout, stderr = run_cli(capsys, "doctor", "--json")
    assert code == 0, stderr
    facts = json.loads(stdout)
    assert facts["rnnkit"] == rnnkit.__version__ and facts["torch"] == torch.__version__
    assert facts["python"].startswith(platform.python_version())
    assert facts["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert facts["threads"] == torch.get_num_threads()
    assert [engine["name"] for engine in facts["engines"]] == list(engine_names())
    for engine in facts["engines"]:
        assert engine["summary"] == get_engine(engine["name"]).summary
        assert engine["available"] == bool(engine["cells"]) and (engine["reason"] is None) == engine["available"]
    by_name = {engine["name"]: engine for engine in facts["engines"]}
    assert by_name["explicit"]["available"] and "lstm" in by_name["explicit"]["cells"]
    assert "lstm" not in by_name["scan"]["cells"] and "mingru" in by_name["scan"]["cells"]
    info = native_info()
    assert facts["native"] == {**info, "kernels": list(info["kernels"])}
    assert by_name["native"]["available"] == info["available"]


def test_doctor_prints_each_engine_and_the_native_engine(capsys):
    code, stdout, stderr = run_cli(capsys, "doctor")
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0].startswith(f"rnnkit {rnnkit.__version__}, torch {torch.__version__}, Python ")
    assert f"CPU capability {torch.backends.cpu.get_cpu_capability()}" in lines[1]
    for name in engine_names():
        assert any(line.split()[:1] == [name] and get_engine(name).summary in line for line in lines), name
    assert any(line.split()[:1] == ["auto"] for line in lines)
    info = native_info()
    native = lines[-1]
    if info["available"]:
        assert native == (f"native engine: built for {info['isa']}, kernels {', '.join(info['kernels'])}; "
                          f"library {info['library']}")
    else:
        assert native == f"native engine: not available: {info['reason']}"


def test_doctor_with_the_extension_turned_off_says_so_and_why():
    done = subprocess.run([sys.executable, "-m", "rnnkit", "doctor"], capture_output=True, text=True, env=NATIVE_OFF,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "native engine: not available: turned off by RNNKIT_NATIVE=0 in the environment"
    native = lines.index(next(line for line in lines if line.split()[:1] == ["native"]))
    assert lines[native + 1].split() == ["runs", "no", "cell", "here:", "the", "native", "engine", "is", "not",
                                         "available:", "turned", "off", "by", "RNNKIT_NATIVE=0", "in", "the",
                                         "environment"]


def test_engine_native_with_the_extension_turned_off_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "rnnkit", "diagnose", "gradients", "--length", "3", "--hidden", "2",
                           "--cells", "lstm", "--engine", "native", "--out", str(tmp_path / "g.png")],
                          capture_output=True, text=True, env=NATIVE_OFF, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("error: the native engine is not available: turned off by RNNKIT_NATIVE=0 in the "
                           "environment\n")
    assert not (tmp_path / "g.png").exists()


def test_cpu_model_reads_the_model_name(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Example CPU @ 2.00GHz\n\n"
                       "processor\t: 1\nmodel name\t: Example CPU @ 2.00GHz\n")
    assert cpu_model(cpuinfo) == "Example CPU @ 2.00GHz"
    assert cpu_model(tmp_path / "missing") == (platform.processor() or None)


@pytest.mark.parametrize("command", [["train", "lm"], ["train", "music"], ["diagnose", "gradients"],
                                     ["diagnose", "memory"], ["bench", "memory-tasks"], ["explain"]])
def test_every_engine_flag_takes_the_registry_and_describes_it(command):
    group = cli
    ctx = click.Context(cli)
    for name in command:
        group = group.get_command(ctx, name)
    option = next(param for param in group.params if param.name == "engine")
    assert tuple(option.type.choices) == ("auto", *engine_names()) and option.default == "auto"
    help_text = " ".join(option.help.split())
    for name in engine_names():
        assert f"{name}: {get_engine(name).summary}" in help_text
    assert help_text.startswith("How the recurrent layers run. auto: the first of fused, ")


def test_the_words_for_auto_follow_the_registrys_rules():
    words = auto_engine_words()
    order = words.removeprefix("the first of ").split(" that ")[0].split(", ")
    assert order[0] == "fused" and order[-1] == "explicit" and set(order) <= set(engine_names())
