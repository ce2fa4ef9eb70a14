"""rnnkit.data.catalog and rnnkit.data.download, and `rnnkit data list|get`, against a local HTTP mirror.

The mirror is a threaded HTTP server on 127.0.0.1 with Range support (Python's SimpleHTTPRequestHandler has
none), optionally throttled or serving damaged bytes. The core (checksums, resume, a wrong digest, a file
missing on the mirror, a killed download) runs on a tiny synthetic dataset served from tmp, so it never needs
the shared data; the end-to-end part serves ../shared/data (the catalog's canonical copies) and fetches every
listed dataset through it, and is skipped with a reason where that folder is missing.
"""

from __future__ import annotations

import hashlib
import http.server
import importlib
import importlib.util
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from cli_helpers import assert_one_line_error, run_cli
from rnnkit.data import catalog
from rnnkit.data.catalog import DATASETS, DataFile, Dataset, data_home, dataset, missing_file_hint, resolve
from rnnkit.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} (the datasets' canonical copies) is missing")


# ------------------------------------------------------------------------------------------- the mirror


class MirrorHandler(http.server.BaseHTTPRequestHandler):
    """GET of ``ROOT/NAME/FILE`` with ``Range: bytes=N-``; class attributes (set per server) choose how it
    serves: ``rate`` bytes per second (0: at once), ``damage`` (flip the middle byte), ``ranges`` (False: answer
    every request with the whole file, as ``python -m http.server`` does)."""

    root: Path
    rate = 0
    damage = False
    ranges = True
    requests: list

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        path = (self.root / self.path.lstrip("/")).resolve()
        self.requests.append((self.path, self.headers.get("Range")))
        if not path.is_file() or self.root not in path.parents:
            self.send_error(404)
            return
        data = bytearray(path.read_bytes())
        if self.damage:
            data[len(data) // 2] ^= 0xFF
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(match[1]) if match and self.ranges else 0
        if start >= len(data) > 0 and match and self.ranges:
            self.send_error(416)
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body, step = bytes(data[start:]), 16_384
        try:
            for offset in range(0, len(body), step):
                self.wfile.write(body[offset:offset + step])
                if self.rate:
                    time.sleep(step / self.rate)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client was killed mid-file, as one test means it to be

    def log_message(self, *args):
        pass


@contextmanager
def mirror(root: Path, **behaviour):
    """A mirror of the folder ``root`` on 127.0.0.1 for the block: yields (its URL, the requests it got)."""
    requests = []
    handler = type("Handler", (MirrorHandler,), {"root": root.resolve(), "requests": requests, **behaviour})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------------------------------- a tiny dataset


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tiny_files(seed: int = 0, big: int = 40_000) -> dict[str, bytes]:
    """A text file to train on, a binary file of ``big`` random bytes and a readme."""
    rng = random.Random(seed)
    words = ["the", "cell", "state", "carries", "what", "the", "gates", "let", "through"]
    text = "\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(200)) + "\n"
    return {"train.txt": text.encode(), "blob.bin": rng.randbytes(big), "README": b"a tiny dataset\n"}


def tiny_dataset(files: dict[str, bytes], name: str = "tiny") -> Dataset:
    entries = tuple(DataFile(file, len(data), sha(data), f"https://example.invalid/{file}", file != "README")
                    for file, data in files.items())
    return Dataset(name, "a tiny dataset", "lm", "public domain", "tests", entries, roles={"train": "train.txt"},
                   example=f"rnnkit train lm --data {name}")


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """The tiny dataset in the catalog, its files on a mirror folder, RNNKIT_DATA an empty folder of tmp."""
    files = tiny_files()
    served = tmp_path / "mirror"
    (served / "tiny").mkdir(parents=True)
    for name, data in files.items():
        (served / "tiny" / name).write_bytes(data)
    found = tiny_dataset(files)
    monkeypatch.setitem(DATASETS, "tiny", found)
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "home"))
    monkeypatch.delenv("RNNKIT_DATA_MIRROR", raising=False)
    return found, files, served


def get(capsys, *names, json_output=True):
    code, out, err = run_cli(capsys, "data", "get", *names, *(["--json"] if json_output else []))
    records = [json.loads(line) for line in out.splitlines()] if json_output and code == 0 else out
    return code, records, err


# ------------------------------------------------------------------------------------------- the catalog


def test_every_entry_is_complete_and_consistent():
    assert len(DATASETS) >= 10
    for name, found in DATASETS.items():
        assert found.name == name and found.task and found.licence and found.source and found.files, name
        assert len({f.name for f in found.files}) == len(found.files), name
        for data_file in found.files:
            assert re.fullmatch(r"[0-9a-f]{64}", data_file.sha256), (name, data_file.name)
            assert data_file.size > 0 and data_file.url.startswith("https://raw.githubusercontent.com/")
        for role, file_name in found.roles.items():
            assert found.file(file_name).data, (name, role)
        if not found.redistributable:
            assert "{folder}" in found.obtain and "train.txt" in found.obtain
    assert {"tinyshakespeare", "ptb", "sst2", "mr_polarity", "ud_english_ewt", "multi30k", "jsb_chorales",
            "ag_news", "timeseries", "conll2003"} <= set(DATASETS)


@needs_shared
def test_the_catalog_holds_the_canonical_copies_of_shared_data_byte_for_byte():
    """Every file of ../shared/data (but its SOURCE.md) is in the catalog with its size and SHA-256, and the other
    way round: the catalog's digests are those of the canonical files."""
    shared = {(p.parent.name, p.name) for p in SHARED.glob("*/*") if p.name != "SOURCE.md"}
    listed = {(d.name, f.name) for d in DATASETS.values() for f in d.files}
    assert shared == listed
    for folder, name in sorted(shared):
        data_file = DATASETS[folder].file(name)
        data = (SHARED / folder / name).read_bytes()
        assert (len(data), sha(data)) == (data_file.size, data_file.sha256), (folder, name)


def test_names_stand_for_files_by_role(tiny, tmp_path, monkeypatch):
    found, files, _ = tiny
    with pytest.raises(InputError, match=r"not downloaded .*`rnnkit data get tiny`"):
        resolve("tiny", "train")
    found.folder.mkdir(parents=True)
    (found.folder / "train.txt").write_bytes(files["train.txt"])
    (found.folder / "blob.bin").write_bytes(b"")
    assert resolve("tiny", "train") == str(found.folder / "train.txt")
    assert resolve("tiny:blob.bin", "valid") == str(found.folder / "blob.bin")
    assert resolve("tiny:blob", "valid") == str(found.folder / "blob.bin")  # the extension may be left out
    with pytest.raises(InputError, match="has no valid file .*name one as tiny:FILE"):
        resolve("tiny", "valid")  # two data files and no valid role: no guess
    with pytest.raises(InputError, match="has no file 'nothing'"):
        resolve("tiny:nothing", "train")
    existing = tmp_path / "tiny"
    existing.write_text("mine")
    monkeypatch.chdir(tmp_path)
    assert resolve("tiny", "train") == "tiny"  # an existing path wins over a name
    assert resolve("not-a-dataset", "train") == "not-a-dataset"
    assert dataset("timeseries").file("airline-passengers").name == "airline-passengers.csv"  # the data file
    assert dataset("ptb").file_for("test").name == "ptb.test.txt"
    assert dataset("jsb_chorales").file_for("test").name == "jsb-chorales-quarter.json"  # one data file: every role
    with pytest.raises(InputError, match="no train file .*ag_news:FILE"):
        dataset("ag_news").file_for("train")
    with pytest.raises(InputError, match="did you mean ptb"):
        dataset("pbt")


def test_missing_file_hints_name_the_dataset():
    assert "`rnnkit data get ptb`" in missing_file_hint("/nowhere/ptb.train.txt")
    assert "`rnnkit data get tinyshakespeare`" in missing_file_hint("data/input.txt")
    assert missing_file_hint("/nowhere/README.md") == ""  # a readme is no data file
    assert missing_file_hint("notes.txt") == ""


def test_data_home_defaults_to_the_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("RNNKIT_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert data_home() == Path.home() / ".cache" / "rnnkit"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data_home() == tmp_path / "rnnkit"
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "elsewhere"))
    assert data_home() == tmp_path / "elsewhere"


# ------------------------------------------------------------------------------------------- downloads (synthetic)


def test_get_downloads_verifies_and_then_finds_present(tiny, capsys, monkeypatch):
    found, files, served = tiny
    with mirror(served) as (url, requests):
        monkeypatch.setenv("RNNKIT_DATA_MIRROR", url + "/")
        code, records, err = get(capsys, "tiny")
        assert code == 0, err
        assert [(r["file"], r["status"]) for r in records[0]["files"]] == [(n, "downloaded") for n in files]
        for name, data in files.items():
            assert (found.folder / name).read_bytes() == data
        assert not list(found.folder.glob("*.part"))
        assert [path for path, _ in requests] == [f"/tiny/{name}" for name in files]  # MIRROR/NAME/FILE
        code, records, _ = get(capsys, "tiny")
        assert {r["status"] for r in records[0]["files"]} == {"present"}
        assert len(requests) == len(files)  # present files are checked here, not fetched again
        code, out, _ = run_cli(capsys, "data", "get", "tiny")
        assert code == 0 and "train.txt: present" in out


def test_resume_from_a_part_file_asks_for_the_rest_only(tiny, capsys, monkeypatch):
    found, files, served = tiny
    found.folder.mkdir(parents=True)
    part = found.folder / "blob.bin.part"
    part.write_bytes(files["blob.bin"][:12_345])
    with mirror(served) as (url, requests):
        monkeypatch.setenv("RNNKIT_DATA_MIRROR", url)
        code, records, err = get(capsys, "tiny")
    assert code == 0, err
    blob = next(r for r in records[0]["files"] if r["file"] == "blob.bin")
    assert blob["status"] == "resumed" and blob["bytes"] == len(files["blob.bin"]) - 12_345
    assert ("/tiny/blob.bin", "bytes=12345-") in requests
    assert (found.folder / "blob.bin").read_bytes() == files["blob.bin"] and not part.exists()


def test_a_server_without_ranges_restarts_and_a_part_too_long_is_dropped(tiny, capsys, monkeypatch):
    found, files, served = tiny
    found.folder.mkdir(parents=True)
    (found.folder / "blob.bin.part").write_bytes(files["blob.bin"][:5_000])
    (found.folder / "train.txt.part").write_bytes(b"x" * (len(files["train.txt"]) + 10))
    with mirror(served, ranges=False) as (url, _):
        monkeypatch.setenv("RNNKIT_DATA_MIRROR", url)
        code, records, err = get(capsys, "tiny")
    assert code == 0, err
    assert {r["file"]: r["status"] for r in records[0]["files"]} == {n: "downloaded" for n in files}
    for name, data in files.items():
        assert (found.folder / name).read_bytes() == data


def test_a_part_longer_than_the_servers_file_is_removed(tiny, capsys, monkeypatch):
    found, files, served = tiny
    found.folder.mkdir(parents=True)
    (served / "tiny" / "blob.bin").write_bytes(files["blob.bin"][:1000])  # the mirror's copy is cut short
    (found.folder / "blob.bin.part").write_bytes(files["blob.bin"][:2000])
    with mirror(served) as (url, _):
        monkeypatch.setenv("RNNKIT_DATA_MIRROR", url)
        code, _, err = get(capsys, "tiny")
    assert_one_line_error(code, err, "shorter than the 2,000 bytes", "removed")
    assert not (found.folder / "blob.bin.part").exists() and not (found.folder / "blob.bin").exists()


def test_a_wrong_checksum_removes_the_download_and_says_so(tiny, capsys, monkeypatch):
    found, files, served = tiny
    with mirror(served, damage=True) as (url, _):
        monkeypatch.setenv("RNNKIT_DATA_MIRROR", url)
        code, _, err = get(capsys, "tiny")
    assert_one_line_error(code, err, "train.txt", "SHA-256", "not the catalog's", "removed")
    assert not (found.folder / "train.txt").exists() and not (found.folder / "train.txt.part").exists()


def test_a_file_missing_on_the_mirror_is_one_line_and_keeps_what_was_fetched(tiny, capsys, monkeypatch):
    found, files, served = tiny
    (served / "tiny" / "blob.bin").unlink()
    with mirror(served) as (url, _):
        monkeypatch.setenv("RNNKIT_DATA_MIRROR", url)
        code, _, err = get(capsys, "tiny")
    assert_one_line_error(code, err, f"{url}/tiny/blob.bin", "HTTP 404", "rnnkit data get tiny")
    assert (found.folder / "train.txt").read_bytes() == files["train.txt"]  # fetched before: kept
    assert not (found.folder / "blob.bin").exists()


def test_a_mirror_serving_another_size_is_refused_before_writing(tiny, capsys, monkeypatch):
    found, files, served = tiny
    (served / "tiny" / "train.txt").write_bytes(files["train.txt"] + b"more\n")
    with mirror(served) as (url, _):
        monkeypatch.setenv("RNNKIT_DATA_MIRROR", url)
        code, _, err = get(capsys, "tiny")
    assert_one_line_error(code, err, "bytes, not the catalog's", "train.txt")
    assert not (found.folder / "train.txt").exists() and not (found.folder / "train.txt.part").exists()


def test_a_file_of_the_user_is_never_replaced(tiny, capsys, monkeypatch):
    found, files, served = tiny
    found.folder.mkdir(parents=True)
    mine = found.folder / "train.txt"
    mine.write_text("my own notes\n")
    with mirror(served) as (url, _):
        monkeypatch.setenv("RNNKIT_DATA_MIRROR", url)
        code, _, err = get(capsys, "tiny")
    assert_one_line_error(code, err, str(mine), "move it away")
    assert mine.read_text() == "my own notes\n"


def test_network_errors_and_unknown_names_are_one_line(tiny, capsys, monkeypatch):
    monkeypatch.setenv("RNNKIT_DATA_MIRROR", "http://127.0.0.1:9")  # the discard port: nothing listens
    code, _, err = get(capsys, "tiny")
    assert_one_line_error(code, err, "cannot download", "RNNKIT_DATA_MIRROR")
    code, _, err = get(capsys, "tiny", "nonesuch")
    assert_one_line_error(code, err, "no dataset 'nonesuch'", "rnnkit data list")


def test_a_dataset_that_cannot_be_redistributed_says_how_to_obtain_it(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path))
    monkeypatch.delenv("RNNKIT_DATA_MIRROR", raising=False)
    code, _, err = get(capsys, "conll2003")
    assert_one_line_error(code, err, "Reuters", "nist.gov", "train.txt, valid.txt, test.txt",
                          str(tmp_path / "conll2003"))
    assert not (tmp_path / "conll2003").exists()
    # The user's own conversion, in the layout asked for, is used as it is (not the catalog's digest: unverified).
    (tmp_path / "conll2003").mkdir()
    for name in ("train.txt", "valid.txt", "test.txt"):
        (tmp_path / "conll2003" / name).write_text("EU NNP B-NP B-ORG\n")
    code, records, err = get(capsys, "conll2003")
    assert code == 0 and {r["status"] for r in records[0]["files"]} == {"unverified"}
    assert resolve("conll2003", "valid") == str(tmp_path / "conll2003" / "valid.txt")


KILL_SCRIPT = """
import json, sys
from rnnkit.data import catalog
spec = json.loads(sys.argv[1])
catalog.DATASETS["tiny"] = catalog.Dataset("tiny", "t", "lm", "l", "s",
    tuple(catalog.DataFile(name, size, digest, "https://example.invalid/x") for name, size, digest in spec))
from rnnkit.cli import main
main(["data", "get", "tiny"])
"""


def test_a_killed_download_resumes_where_it_stopped(tmp_path):
    """A `rnnkit data get` killed mid-file (SIGKILL: nothing of it runs after) leaves its .part; the next get
    asks for the rest only and ends with the file verified."""
    big = random.Random(1).randbytes(600_000)
    (tmp_path / "mirror" / "tiny").mkdir(parents=True)
    (tmp_path / "mirror" / "tiny" / "big.bin").write_bytes(big)
    spec = json.dumps([["big.bin", len(big), sha(big)]])
    part = tmp_path / "home" / "tiny" / "big.bin.part"
    with mirror(tmp_path / "mirror", rate=150_000) as (slow, _), mirror(tmp_path / "mirror") as (fast, requests):
        env = {**os.environ, "RNNKIT_DATA": str(tmp_path / "home"), "RNNKIT_DATA_MIRROR": slow}
        process = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, spec], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not (part.exists() and part.stat().st_size > 100_000) and time.monotonic() < deadline:
            time.sleep(0.05)
        process.kill()
        process.communicate()
        kept = part.stat().st_size
        assert 0 < kept < len(big)
        env["RNNKIT_DATA_MIRROR"] = fast
        done = subprocess.run([sys.executable, "-c", KILL_SCRIPT, spec], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert re.search(r"big\.bin: resumed ", done.stdout), done.stdout
    assert requests == [("/tiny/big.bin", f"bytes={kept}-")]
    assert (tmp_path / "home" / "tiny" / "big.bin").read_bytes() == big and not part.exists()


# ------------------------------------------------------------------------------------------- list, --data NAME


def test_list_shows_every_dataset_and_whether_it_is_there(tiny, capsys, monkeypatch):
    found, files, served = tiny
    code, out, _ = run_cli(capsys, "data", "list")
    assert code == 0
    for name, each in DATASETS.items():
        assert re.search(rf"^{re.escape(name)}\s+{each.task}\s+[\d.]+ MB\s+(absent|partial|present)\s", out, re.M), name
    assert re.search(r"^tiny\s+lm\s+[\d.]+ MB\s+absent\s+public domain\s+tests$", out, re.M)
    with mirror(served) as (url, _):
        monkeypatch.setenv("RNNKIT_DATA_MIRROR", url)
        assert get(capsys, "tiny")[0] == 0
    code, out, _ = run_cli(capsys, "data", "list", "--json")
    listed = json.loads(out)
    assert listed["data_home"] == str(data_home()) and listed["mirror"] == url
    row = next(row for row in listed["datasets"] if row["name"] == "tiny")
    assert row["state"] == "present" and row["bytes"] == sum(map(len, files.values()))
    assert [f["sha256"] for f in row["files"]] == [sha(data) for data in files.values()]


def test_data_name_on_a_train_command_and_evaluate(tiny, capsys, monkeypatch, tmp_path):
    found, files, served = tiny
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "lm", "--data", "tiny", "--out", run)
    assert_one_line_error(code, err, "dataset 'tiny' is not downloaded", "`rnnkit data get tiny`")
    code, _, err = run_cli(capsys, "train", "lm", "--data", tmp_path / "gone" / "ptb.train.txt", "--out", run)
    assert_one_line_error(code, err, "ptb.train.txt: no such file", "`rnnkit data get ptb`")
    with mirror(served) as (url, _):
        monkeypatch.setenv("RNNKIT_DATA_MIRROR", url)
        assert get(capsys, "tiny")[0] == 0
    code, out, err = run_cli(capsys, "train", "lm", "--data", "tiny", "--level", "word", "--hidden", "8",
                             "--layers", "1", "--embedding", "8", "--seq-len", "8", "--batch-size", "4",
                             "--max-steps", "2", "--out", run, "--quiet", "--json")
    assert code == 0, err
    latest = json.loads((run / "latest.json").read_text())["checkpoint"]
    meta = json.loads((run / "checkpoints" / latest / "checkpoint.json").read_text())
    assert meta["configs"]["data"]["data"] == str(found.folder / "train.txt")  # the run records the file
    code, _, err = run_cli(capsys, "evaluate", run, "--data", "tiny", "--json")
    assert_one_line_error(code, err, "'tiny' has no test file", "tiny:FILE")  # two data files: no guess
    code, out, err = run_cli(capsys, "evaluate", run, "--data", "tiny:train.txt", "--json")
    assert code == 0, err
    assert json.loads(out)["tokens"] > 0
    code, out, err = run_cli(capsys, "explain", run, "--text", "tiny:train.txt", "--max-chars", "200", "--json")
    assert code == 0, err
    assert json.loads(out)["ranking"]
    code, _, err = run_cli(capsys, "explain", run, "--text", "tiny", "--json")
    assert_one_line_error(code, err, "'tiny' has no test file")
    code, _, err = run_cli(capsys, "explain", run, "--text", tmp_path / "gone" / "input.txt")
    assert_one_line_error(code, err, "input.txt: no such file", "`rnnkit data get tinyshakespeare`")


MISSING_DATASET_FILES = [  # (the command's flags, with GONE a folder that does not exist; the dataset named)
    (["train", "lm", "--data", "GONE/ptb.train.txt"], "ptb"),
    (["train", "lm", "--data", "GONE/input.txt"], "tinyshakespeare"),
    (["train", "classify", "--data", "GONE/train.tsv"], "sst2"),
    (["train", "tag", "--data", "GONE/en_ewt-ud-train.conllu"], "ud_english_ewt"),
    (["train", "tag", "--data", "GONE/train.txt"], "conll2003"),
    (["train", "translate", "--source", "GONE/train.en.gz", "--target", "GONE/train.de.gz"], "multi30k"),
    (["train", "music", "--data", "GONE/jsb-chorales-quarter.json"], "jsb_chorales"),
    (["train", "forecast", "--data", "GONE/airline-passengers.csv", "--target", "Passengers", "--window", "12"],
     "timeseries"),
]


@pytest.mark.parametrize("args, name", MISSING_DATASET_FILES, ids=[name for _, name in MISSING_DATASET_FILES])
def test_no_such_file_for_a_dataset_file_names_data_get(args, name, capsys, tmp_path):
    gone = tmp_path / "gone"
    code, _, err = run_cli(capsys, *[arg.replace("GONE", str(gone)) for arg in args], "--out", tmp_path / "run")
    assert_one_line_error(code, err, "no such file", f"`rnnkit data get {name}`")
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------- every listed dataset


@needs_shared
def test_every_listed_dataset_end_to_end_against_the_shared_mirror(tmp_path, capsys, monkeypatch):
    """Every dataset of the catalog through a mirror serving ../shared/data: downloaded and verified whole; then,
    per dataset, a download resumed from a part of its first data file, a damaged copy refused and removed, and
    the file missing from a mirror."""
    started = time.monotonic()
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "home"))
    names = list(DATASETS)
    with mirror(SHARED) as (url, _):
        monkeypatch.setenv("RNNKIT_DATA_MIRROR", url)
        code, records, err = get(capsys, *names)
        assert code == 0, err
        assert [r["name"] for r in records] == names
        for record in records:
            found = DATASETS[record["name"]]
            assert {r["status"] for r in record["files"]} == {"downloaded"}, record
            for data_file in found.files:
                assert sha((found.folder / data_file.name).read_bytes()) == data_file.sha256
            assert found.state() == "present"
        for name in names:  # resume: the first data file, from its first third
            found = DATASETS[name]
            first = next(f for f in found.files if f.data)
            path = found.folder / first.name
            Path(f"{path}.part").write_bytes(path.read_bytes()[: first.size // 3])
            path.unlink()
            code, records, err = get(capsys, name)
            assert code == 0, err
            resumed = records[0]["files"][[f.name for f in found.files].index(first.name)]
            assert resumed["status"] == "resumed" and resumed["bytes"] == first.size - first.size // 3, name
            assert sha(path.read_bytes()) == first.sha256
    with mirror(SHARED, damage=True) as (url, _):
        monkeypatch.setenv("RNNKIT_DATA_MIRROR", url)
        for name in names:
            found = DATASETS[name]
            first = next(f for f in found.files if f.data)
            (found.folder / first.name).unlink()
            code, _, err = get(capsys, name)
            assert_one_line_error(code, err, first.name, "SHA-256", "removed")
            assert not (found.folder / first.name).exists() and not Path(f"{found.folder / first.name}.part").exists()
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    with mirror(empty) as (url, _):
        monkeypatch.setenv("RNNKIT_DATA_MIRROR", url)
        for name in names:
            code, _, err = get(capsys, name)
            assert_one_line_error(code, err, "HTTP 404", f"rnnkit data get {name}")
    print(f"every dataset end to end: {time.monotonic() - started:.1f}s")


def test_the_docs_page_tables_are_the_catalogs():
    """docs/guide/data.md's table of datasets and table of files say what the catalog holds, row for row."""
    page = (ROOT / "docs" / "guide" / "data.md").read_text(encoding="utf-8")
    datasets = [f"| `{d.name}` | {d.title} | {d.task} | {d.size / 1e6:.1f} MB | {d.licence} | {d.source} | "
                + (", ".join(f"{role}: `{name}`" for role, name in d.roles.items()) or f"name a file: `{d.name}:FILE`")
                + " |" for d in DATASETS.values()]
    files = [f"| `{d.name}` | [`{f.name}`]({f.url}) | {f.size:,} | `{f.sha256}` |"
             for d in DATASETS.values() for f in d.files]
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    assert rows == datasets + files
    for found in DATASETS.values():
        if found.note:
            assert f"- `{found.name}`: {found.note}." in page, found.name


# ------------------------------------------------------------------------------------------- the benchmarks

BENCHMARKS = {"classify_ag_news": "ag_news", "classify_mr": "mr_polarity", "classify_sst2": "sst2",
              "explain_units": "tinyshakespeare", "forecast_timeseries": "timeseries", "lm_ptb": "ptb",
              "lm_shakespeare": "tinyshakespeare", "music_jsb": "jsb_chorales", "tag_conll2003": "conll2003",
              "tag_ud_ewt": "ud_english_ewt", "translate_multi30k": "multi30k"}


def test_every_benchmark_reading_shared_data_takes_the_dataset_name(tmp_path, monkeypatch):
    """Each script that reads ../shared/data takes --data NAME: with nothing downloaded its main() stops at once
    with one line naming `rnnkit data get NAME` (so the name was resolved through the catalog, before any work)."""
    readers = {p.stem for p in (ROOT / "benchmarks").glob("*.py") if p.stem != "bench_common"
               and re.search(r'shared/data|"shared" / "data"', p.read_text(encoding="utf-8"))}
    assert readers == set(BENCHMARKS)
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "nothing"))
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    monkeypatch.chdir(tmp_path)
    for script, name in BENCHMARKS.items():
        if script == "translate_multi30k" and importlib.util.find_spec("sacrebleu") is None:
            continue  # it imports sacrebleu (the translate extra, which the test extra does not hold)
        module = importlib.import_module(script)
        monkeypatch.setattr(sys, "argv", [f"{script}.py", "--data", name])
        with pytest.raises(SystemExit) as stop:
            module.main()
        assert stop.value.code == (f"error: dataset {name} is not downloaded ({tmp_path / 'nothing' / name}); run "
                                   f"`rnnkit data get {name}`"), script
    assert not any(tmp_path.iterdir())  # stopped before any work


def test_benchmarks_find_a_downloaded_copy_by_name(tiny, monkeypatch):
    found, files, _ = tiny
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from bench_common import dataset_path

    found.folder.mkdir(parents=True)
    for name, data in files.items():
        (found.folder / name).write_bytes(data)
    assert dataset_path("tiny", "tiny") == found.folder
    assert dataset_path(None, "tiny", "train.txt") == found.folder / "train.txt"  # no ../shared/data/tiny
    assert dataset_path(str(found.folder), "tiny", "train.txt") == found.folder / "train.txt"
    with pytest.raises(SystemExit, match="reads dataset tiny"):
        dataset_path("ptb", "tiny")
