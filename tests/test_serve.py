"""`rnnkit serve` over real HTTP: uvicorn on an ephemeral port of 127.0.0.1, called with httpx.

Tiny trained runs of every task (the bad-input corpus's settings) are served together: every endpoint answers
exactly what the run's own ``predict`` / ``generate`` gives; /generate streams server-sent events whose tokens
make the JSON answer; every bad request is a 4xx with one line of JSON and leaves no traceback in the response
or in the server's log; the limits (input length, tokens, body size, timeout) refuse with their status; 32
parallel requests against two workers are each answered 200 or refused 503 with Retry-After, none lost; and
``rnnkit serve`` itself starts, binds 127.0.0.1 and answers.
"""

import concurrent.futures
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

import rnnkit
from bad_inputs.workspace import RUNS, Workspace, run_quietly, train_runs
from cli_helpers import assert_one_line_error, run_cli
from rnnkit.errors import InputError
from rnnkit.serve import Limits, create_app

TASKS = ("lm", "classify", "tag", "forecast", "translate", "music", "caption")
LIMITS = Limits(max_input=2_000, max_tokens=400, timeout=20, max_concurrent=2, queue=8, threads=1)


def train_tiny_runs(root: Path, tasks=TASKS) -> dict[str, Path]:
    """One tiny trained run per task under ``root`` (a second or so each); their data in ``root/data``."""
    return {"data": root / "data", **train_runs(root, tasks)}


class LiveServer:
    """An application served by uvicorn in a thread on a free port of 127.0.0.1, its log going to the root
    logger (where pytest's caplog reads it): ``with LiveServer(app) as url: ...``."""

    def __init__(self, app):
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, log_level="info", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                port = self.server.servers[0].sockets[0].getsockname()[1]
                return f"http://127.0.0.1:{port}"
            time.sleep(0.01)
        raise AssertionError("uvicorn did not start")

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    return train_tiny_runs(tmp_path_factory.mktemp("serve-runs"))


@pytest.fixture(scope="module")
def url(runs):
    with LiveServer(create_app([runs[task] for task in TASKS], limits=LIMITS)) as address:
        yield address


@pytest.fixture
def http(url):
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client


def series(runs) -> tuple[dict, list[str], Path]:
    """The tiny forecaster's series as a request's columns and dates, and the CSV they come from."""
    path = runs["data"] / "monthly.csv"
    rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
    return {"value": [float(row[1]) for row in rows]}, [row[0] for row in rows], path


# ------------------------------------------------------------------------------------------- the endpoints


def test_models_lists_every_run_with_its_endpoint_and_the_limits(http, runs):
    answer = http.get("/models").json()
    assert {model["name"]: model["endpoint"] for model in answer["models"]} == {
        "lm": "/generate", "classify": "/classify", "tag": "/tag", "forecast": "/forecast", "translate": "/translate",
        "music": "/music", "caption": "/caption"}
    by_name = {model["name"]: model for model in answer["models"]}
    assert by_name["classify"]["labels"] == rnnkit.load(runs["classify"]).trained.labels
    assert by_name["forecast"]["target"] == "value" and by_name["forecast"]["window"] == 12
    assert all(model["runtime"] == "torch" for model in answer["models"])
    assert answer["limits"]["max_concurrent"] == 2 and answer["limits"]["max_tokens"] == 400
    health = http.get("/health").json()
    assert health["status"] == "ok" and health["models"] == len(TASKS) and health["running"] == 0


def test_each_endpoint_answers_what_the_run_itself_gives(http, runs):
    texts = ["the film was great", "awful and boring"]
    answer = http.post("/classify", json={"texts": texts})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"model": "classify", "predictions": rnnkit.load(runs["classify"]).predict(texts)}
    assert http.post("/classify", json={"text": texts[0]}).json()["predictions"] == answer.json()["predictions"][:1]

    sentences = ["the cat sees a dog .", ["Anna", "likes", "the", "dog", "."]]
    expected = rnnkit.load(runs["tag"]).predict([sentences[0].split(), sentences[1]])
    assert http.post("/tag", json={"sentences": sentences}).json() == {"model": "tag", "predictions": expected}

    expected = rnnkit.load(runs["translate"]).predict(["ein hund", "die katze"], beam=2)
    answer = http.post("/translate", json={"texts": ["ein hund", "die katze"], "beam": 2}).json()
    assert answer == {"model": "translate", "predictions": expected}

    columns, dates, path = series(runs)
    answer = http.post("/forecast", json={"series": columns, "dates": dates}).json()
    assert answer == {"model": "forecast", **rnnkit.load(runs["forecast"]).predict(str(path))}

    options = {"prime": "def", "length": 40, "temperature": 0.8, "seed": 3}
    answer = http.post("/generate", json=options).json()
    assert answer == {"model": "lm", **rnnkit.load(runs["lm"]).generate(**options)}
    assert len(answer["text"]) == 40

    answer = http.post("/music", json={"steps": 5, "seed": 1}).json()
    assert answer == {"model": "music", **rnnkit.load(runs["music"]).generate(steps=5, seed=1)}

    captioner = rnnkit.load(runs["caption"])
    image = [[(row * 3 + column) % 5 / 4 for column in range(captioner.trained.image_shape[1])]
             for row in range(captioner.trained.image_shape[0])]
    answer = http.post("/caption", json={"images": [image]}).json()
    import numpy as np

    assert answer == {"model": "caption", "predictions": [captioner.predict(np.array(image, dtype=np.float32))]}


def events(lines) -> list[tuple[str, dict]]:
    """The server-sent events of a stream's lines, as (event, data)."""
    found, name = [], None
    for line in lines:
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            found.append((name, json.loads(line[len("data: "):])))
    return found


@pytest.mark.parametrize("ask", ["field", "header"])
def test_generate_streams_each_token_as_a_server_sent_event(http, ask):
    options = {"prime": "de", "length": 60, "seed": 5}
    whole = http.post("/generate", json=options).json()
    body, headers = ({**options, "stream": True}, {}) if ask == "field" else (options, {"Accept": "text/event-stream"})
    with http.stream("POST", "/generate", json=body, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        received = events(response.iter_lines())
    tokens = [data["text"] for name, data in received if name == "token"]
    assert len(tokens) == 60 and "".join(tokens) == whole["text"]
    assert received[-1] == ("done", whole)


def test_a_stream_that_fails_before_its_first_token_is_a_json_error(http):
    response = http.post("/generate", json={"prime": "∑∑", "stream": True})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert "not in the vocabulary" in response.json()["error"]


def test_several_runs_of_one_task_are_chosen_by_the_model_field(runs):
    app = create_app({"first": runs["classify"], "second": rnnkit.load(runs["classify"]), "lm": runs["lm"]},
                     limits=LIMITS)
    with LiveServer(app) as address, httpx.Client(base_url=address) as http:
        answer = http.post("/classify", json={"text": "great film"})
        assert answer.status_code == 400 and "first, second" in answer.json()["error"]
        assert http.post("/classify", json={"text": "great film", "model": "second"}).json()["model"] == "second"
        answer = http.post("/classify", json={"text": "great film", "model": "third"})
        assert answer.status_code == 404 and "first, second, lm" in answer.json()["error"]
        answer = http.post("/classify", json={"text": "great film", "model": "lm"})
        assert answer.status_code == 400 and "/generate" in answer.json()["error"]
        assert http.post("/tag", json={"sentence": "a b"}).status_code == 404  # no tagger served here


def test_two_runs_of_one_name_are_refused_naming_the_fix(runs, tmp_path):
    other = tmp_path / "x" / "classify"
    other.parent.mkdir()
    os.symlink(runs["classify"], other)
    with pytest.raises(InputError, match="name them"):
        create_app([runs["classify"], other])
    with pytest.raises(InputError, match="at least one run"):
        create_app([])
    with pytest.raises(InputError, match="runtime must be one of"):
        create_app([runs["lm"]], runtime="tensorflow")


@pytest.fixture(scope="module")
def exported(runs, tmp_path_factory) -> dict[str, Path]:
    """Each tiny run exported once to ONNX (``TASK.onnx`` and its siblings), and a tagger with a CRF
    (``tag_crf.onnx``, its Viterbi in numpy beside it), with the CRF run itself under ``runs["tag_crf"]``."""
    folder = tmp_path_factory.mktemp("serve-onnx")
    _, arguments = RUNS["tag"]
    argv = ["train", "tag", *Workspace(folder / "data", runs={}).format(arguments), "--crf", "--seed", "0", "--quiet",
            "--out", str(folder / "tag_crf_run")]
    code, _, stderr = run_quietly(argv)
    assert code == 0, f"training the tiny CRF tagger failed: {stderr}"
    runs["tag_crf"] = folder / "tag_crf_run"
    files = {}
    for task in (*TASKS, "tag_crf"):
        rnnkit.load(runs[task]).export(format="onnx", out=folder / f"{task}.onnx")
        files[task] = folder / f"{task}.onnx"
    assert (folder / "tag_crf.viterbi.py").is_file() and not (folder / "tag.viterbi.py").exists()
    return files


def test_onnx_refuses_what_is_not_the_first_file_of_an_export(runs, exported, tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(InputError, match="not an ONNX model"):
        create_app([tmp_path / "junk.onnx"], runtime="onnx")
    with pytest.raises(InputError, match="export it first"):
        create_app([rnnkit.load(runs["lm"])], runtime="onnx")
    with pytest.raises(InputError, match=r"step graph of an export; serve the file given to --out \(the sequence"):
        create_app([exported["lm"].with_name("lm.step.onnx")], runtime="onnx")
    alone = tmp_path / "translate.onnx"
    alone.write_bytes(exported["translate"].read_bytes())  # its decoder_step sibling left behind
    with pytest.raises(InputError, match="needs its decoder_step graph .* which is missing"):
        create_app([alone], runtime="onnx")


def test_onnx_files_of_rnnkit_export_answer_as_the_runs_do(runs, exported):
    """Every task's exported file, served on ONNX Runtime, answers what its run answers on PyTorch (the same
    seeded samples, the same beams): the torch runtime's answers up to float32 rounding in scores."""
    app = create_app(exported, runtime="onnx", limits=LIMITS)
    with LiveServer(app) as address, httpx.Client(base_url=address, timeout=30) as http:
        models = {model["name"]: model for model in http.get("/models").json()["models"]}
        assert {name: (model["runtime"], model["endpoint"]) for name, model in models.items()} == {
            "lm": ("onnx", "/generate"), "classify": ("onnx", "/classify"), "tag": ("onnx", "/tag"),
            "tag_crf": ("onnx", "/tag"), "forecast": ("onnx", "/forecast"), "translate": ("onnx", "/translate"),
            "music": ("onnx", "/music"), "caption": ("onnx", "/caption")}
        assert models["forecast"]["window"] == 12
        assert models["tag"]["tags"] == rnnkit.load(runs["tag"]).trained.vocabs.tags

        texts = ["the film was great", "awful and boring", "zzz unknown words"]
        served = http.post("/classify", json={"texts": texts}).json()["predictions"]
        expected = rnnkit.load(runs["classify"]).predict(texts)
        assert [item["label"] for item in served] == [item["label"] for item in expected]
        for got, want in zip(served, expected):
            assert all(abs(got["probabilities"][label] - p) < 1e-5 for label, p in want["probabilities"].items())

        sentences = [["the", "cat", "sees", "a", "dog", "."], ["Anna", "likes", "the", "dog", "."], ["zzz"]]
        for name in ("tag", "tag_crf"):
            answer = http.post("/tag", json={"sentences": sentences, "model": name})
            assert answer.status_code == 200, answer.text
            assert answer.json()["predictions"] == rnnkit.load(runs[name]).predict(sentences), name

        sources = ["ein hund", "die katze", "eine Frau singt im Park"]
        for options in ({"beam": 1, "length_penalty": 0.0}, {"beam": 3, "length_penalty": 0.6}):
            answer = http.post("/translate", json={"texts": sources, **options})
            assert answer.status_code == 200, answer.text
            assert answer.json()["predictions"] == rnnkit.load(runs["translate"]).predict(sources, **options)

        columns, dates, path = series(runs)
        served = http.post("/forecast", json={"series": columns, "dates": dates}).json()["forecast"]
        expected = rnnkit.load(runs["forecast"]).predict(str(path))["forecast"]
        assert [item["date"] for item in served] == [item["date"] for item in expected]
        assert all(abs(got["forecast"] - want["forecast"]) < 1e-5 * abs(want["forecast"])
                   for got, want in zip(served, expected))

        for options in ({"steps": 6, "seed": 1}, {"steps": 5, "seed": 7, "temperature": 0.6}):
            answer = http.post("/music", json=options).json()
            assert answer == {"model": "music", **rnnkit.load(runs["music"]).generate(**options)}

        captioner = rnnkit.load(runs["caption"])
        image = [[(row * 3 + column) % 5 / 4 for column in range(captioner.trained.image_shape[1])]
                 for row in range(captioner.trained.image_shape[0])]
        import numpy as np

        answer = http.post("/caption", json={"images": [image]}).json()
        assert answer == {"model": "caption", "predictions": [captioner.predict(np.array(image, dtype=np.float32))]}

        options = {"prime": "def", "length": 50, "temperature": 0.8, "seed": 11}
        assert http.post("/generate", json=options).json() == {"model": "lm",
                                                               **rnnkit.load(runs["lm"]).generate(**options)}
        with http.stream("POST", "/generate", json={**options, "stream": True}) as response:
            received = events(response.iter_lines())
        assert "".join(data["text"] for name, data in received if name == "token") == received[-1][1]["text"]
        # bad requests are refused by the task's own checks, as on PyTorch
        assert http.post("/generate", json={"prime": "∑"}).status_code == 400
        assert http.post("/music", json={"steps": 3, "temperature": 0.0}).status_code == 400
        assert http.post("/translate", json={"text": "ein hund", "beam": 0}).status_code == 400


# ------------------------------------------------------------------------------------------- bad requests

BAD = [
    ("POST", "/classify", {"text": "x", "tempreature": 1}, 422, "tempreature is not a field"),
    ("POST", "/classify", {}, 400, "give either"),
    ("POST", "/classify", {"text": "a", "texts": ["b"]}, 400, "give either"),
    ("POST", "/classify", {"texts": []}, 400, "at least one text"),
    ("POST", "/classify", {"texts": "not a list"}, 422, "texts"),
    ("POST", "/classify", [1, 2], 422, "JSON object"),
    ("POST", "/classify", b"{not json", 422, "not valid JSON"),
    ("POST", "/classify", b"", 422, "give a JSON body"),
    ("POST", "/tag", {"sentence": 7}, 422, "sentence"),
    ("POST", "/generate", {"length": "5"}, 422, "length"),
    ("POST", "/generate", {"temperature": -1}, 400, "temperature must be"),
    ("POST", "/generate", {"top_p": 2.0}, 400, "top_p"),
    ("POST", "/generate", {"seed": -4}, 400, "seed"),
    ("POST", "/generate", {"prime": "∑"}, 400, "not in the vocabulary"),
    ("POST", "/generate", {"temperature": float("nan")}, 422, "temperature"),
    ("POST", "/translate", {"text": "ein hund", "beam": 0}, 400, "beam"),
    ("POST", "/forecast", {"series": {"value": [1.0, 2.0]}, "dates": ["2000-01", "2000-02"]}, 400, "window"),
    ("POST", "/forecast", {"series": {"other": [1.0]}}, 400, "lacks the column"),
    ("POST", "/forecast", {"series": {"value": [1.0] * 20}}, 400, "give \"dates\""),
    ("POST", "/forecast", {"series": {"value": [1.0] * 20}, "dates": ["2000-01"]}, 400, "one date per step"),
    ("POST", "/forecast", {"series": {"value": [1.0, float("inf")]}, "dates": ["a", "b"]}, 422, "series.value.1"),
    ("POST", "/music", {"steps": -1}, 400, "steps"),
    ("POST", "/caption", {"images": [[[0.5, 0.5], [0.5]]]}, 400, "rows of one length"),
    ("POST", "/caption", {"images": [[]]}, 400, "rows of one length"),
    ("POST", "/caption", {"images": []}, 400, "at least one image"),
    ("GET", "/classify", None, 405, "GET is not how /classify is called"),
    ("GET", "/nowhere", None, 404, "no endpoint /nowhere"),
    ("POST", "/classify", {"text": "x", "model": "nobody"}, 404, "no model 'nobody'"),
]


@pytest.mark.parametrize("method, path, body, status, words", BAD, ids=[f"{case[1]}-{case[4]}" for case in BAD])
def test_a_bad_request_is_one_line_of_json_and_no_traceback(http, caplog, method, path, body, status, words):
    caplog.set_level(logging.INFO)
    if isinstance(body, bytes):
        response = http.request(method, path, content=body, headers={"Content-Type": "application/json"})
    else:
        response = http.request(method, path, content=None if body is None else json.dumps(body),
                                headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert list(answer) == ["error"] and words in answer["error"], answer
    assert "\n" not in answer["error"] and "Traceback" not in response.text
    assert "Traceback" not in caplog.text and not any(record.exc_info for record in caplog.records)


# ------------------------------------------------------------------------------------------- limits


def test_input_longer_than_max_input_is_refused_with_413(http):
    answer = http.post("/classify", json={"texts": ["a" * 1_500, "b" * 600]})
    assert answer.status_code == 413 and "2,100 characters" in answer.json()["error"]
    assert http.post("/classify", json={"texts": ["a" * 1_000, "b" * 1_000]}).status_code == 200
    assert http.post("/generate", json={"prime": "d" * 2_001}).status_code == 413
    assert http.post("/forecast", json={"series": {"value": [1.0] * 2_001}, "dates": ["x"] * 2_001}).status_code == 413
    huge = b'{"text": "' + b"a" * (64 * 2_000 + (1 << 20)) + b'"}'
    answer = http.post("/classify", content=huge, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and "more than this server reads" in answer.json()["error"]


def test_more_tokens_than_max_tokens_are_refused(http):
    answer = http.post("/generate", json={"length": 401})
    assert answer.status_code == 400 and "max_tokens of 400" in answer.json()["error"]
    assert len(http.post("/generate", json={"length": 400, "seed": 0}).json()["text"]) == 400
    assert len(http.post("/generate", json={"seed": 0}).json()["text"]) == 200  # the default length
    assert http.post("/music", json={"steps": 401}).status_code == 400


def wait_until_idle(http, seconds: float = 5.0) -> None:
    """Wait until no worker is running (a timed-out generation stops at its next token); fail after ``seconds``."""
    end = time.monotonic() + seconds
    while http.get("/health").json()["running"] and time.monotonic() < end:
        time.sleep(0.02)
    assert http.get("/health").json()["running"] == 0


def test_a_request_past_the_timeout_is_answered_504_and_its_generation_stops(runs, caplog):
    limits = Limits(max_tokens=1_000_000, timeout=0.2, max_concurrent=1, queue=0, threads=1)
    with LiveServer(create_app([runs["lm"]], limits=limits)) as address, httpx.Client(base_url=address) as http:
        started = time.monotonic()
        answer = http.post("/generate", json={"length": 1_000_000, "seed": 0})
        assert answer.status_code == 504 and "timeout of 0.2 s" in answer.json()["error"]
        assert time.monotonic() - started < 5
        wait_until_idle(http)  # the one worker stops at its next token and gives its slot back
        with http.stream("POST", "/generate", json={"length": 1_000_000, "stream": True}) as response:
            if response.status_code == 504:  # a busy machine: the timeout came before the first token, so no stream
                assert "timeout of 0.2 s" in json.loads(response.read())["error"]
            else:
                assert response.status_code == 200
                received = events(response.iter_lines())
                assert received[0][0] == "token" and received[-1][0] == "error" and "timeout" in received[-1][1]["error"]
        wait_until_idle(http)
        assert http.post("/generate", json={"length": 5}).status_code == 200
    assert "Traceback" not in caplog.text


def test_32_parallel_requests_are_each_answered_or_refused_with_503_none_lost(runs):
    limits = Limits(max_tokens=2_000, max_concurrent=2, queue=4, timeout=60, threads=1, retry_after=2)
    with LiveServer(create_app([runs["lm"], runs["classify"]], limits=limits)) as address:
        def call(number: int) -> httpx.Response:
            with httpx.Client(base_url=address, timeout=60) as client:
                if number % 2:
                    return client.post("/classify", json={"text": f"review number {number}"})
                return client.post("/generate", json={"length": 1_500, "seed": number})

        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(call, range(32)))
        statuses = [answer.status_code for answer in answers]
        assert len(answers) == 32 and set(statuses) <= {200, 503}, statuses
        assert statuses.count(200) >= 2 and statuses.count(503) >= 1, statuses
        for answer in answers:
            if answer.status_code == 503:
                assert answer.headers["Retry-After"] == "2" and "busy" in answer.json()["error"]
            else:
                assert "predictions" in answer.json() or len(answer.json()["text"]) == 1_500
        with httpx.Client(base_url=address) as client:
            health = client.get("/health").json()
        assert health["running"] == 0 and health["waiting"] == 0
        assert health["served"] + health["refused"] == 32 and health["refused"] == statuses.count(503)


def test_with_room_in_the_queue_all_32_parallel_requests_are_answered(runs):
    limits = Limits(max_concurrent=2, queue=30, timeout=60, threads=1)
    with LiveServer(create_app([runs["classify"]], limits=limits)) as address:
        def call(number: int) -> int:
            with httpx.Client(base_url=address, timeout=60) as client:
                return client.post("/classify", json={"texts": [f"text {number}"] * 20}).status_code

        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            assert list(pool.map(call, range(32))) == [200] * 32


# ------------------------------------------------------------------------------------------- pages and the command


def test_the_pages_load_nothing_from_elsewhere(http):
    for path in ("/", "/docs"):
        page = http.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        assert "//" not in page.text.replace("<!doctype html>", "")  # no URL of another host
    for asset in ("playground.js", "playground.css", "api.js", "dom.js"):
        text = http.get(f"/static/{asset}").text
        assert "http://" not in text and "https://" not in text and "//cdn" not in text
    spec = http.get("/openapi.json").json()
    assert {"/generate", "/classify", "/tag", "/translate", "/forecast", "/music", "/caption", "/models",
            "/health"} <= set(spec["paths"])
    fields = spec["components"]["schemas"]["GenerateBody"]["properties"]
    assert {"prime", "length", "temperature", "stream", "model"} <= set(fields)


def test_limits_are_checked_in_one_line():
    for bad in ({"max_input": 0}, {"timeout": 0}, {"timeout": float("inf")}, {"queue": -1}, {"max_concurrent": True}):
        with pytest.raises(InputError, match=next(iter(bad))):
            Limits(**bad)


def test_the_command_refuses_a_missing_run_in_one_line(capsys, tmp_path):
    code, _, stderr = run_cli(capsys, "serve", tmp_path / "nothing")
    assert_one_line_error(code, stderr, "nothing")
    code, _, stderr = run_cli(capsys, "serve", "--runtime", "torch", "--timeout", "0", tmp_path)
    assert_one_line_error(code, stderr, "--timeout")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_rnnkit_serve_listens_on_127_0_0_1_and_answers(runs):
    port = free_port()
    command = [sys.executable, "-m", "rnnkit", "serve", f"reviews={runs['classify']}", "--port", str(port),
               "--max-concurrent", "1", "--threads", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90  # the start (torch, FastAPI, the run) takes seconds on a busy machine
        while True:
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/classify", json={"text": "a fine film"})
                break
            except httpx.ConnectError:
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "rnnkit serve did not listen within 90 s"
                time.sleep(0.05)
        assert answer.status_code == 200 and answer.json()["model"] == "reviews"
        models = httpx.get(f"http://127.0.0.1:{port}/models").json()
        assert models["limits"]["max_concurrent"] == 1 and models["limits"]["threads"] == 1
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}" in stderr and "Traceback" not in stderr


def test_an_exported_taggers_crf_decodes_by_viterbi_not_argmax():
    """The tiny CRF run's paths equal its argmax, so the decode is checked here on scores where they differ:
    a transition that forbids tag 1 after tag 0 turns the second word's argmax (1) into tag 0."""
    import torch

    from rnnkit.serve.onnx_models import TaggerGraph

    tagger = TaggerGraph.__new__(TaggerGraph)
    emissions = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])  # (N=1, L=3, T=2), the last step padding
    tagger.crf = None
    assert tagger.decode(emissions, torch.tensor([2])).tolist() == [[0, 1, -1]]
    tagger.crf = (torch.tensor([[0.0, -10.0], [0.0, 0.0]]).numpy(), torch.zeros(2).numpy(), torch.zeros(2).numpy())
    assert tagger.decode(emissions, torch.tensor([2])).tolist() == [[0, 0, -1]]
