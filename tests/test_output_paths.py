"""Outputs that are not plain new files (issue 26): every output of every command goes through
rnnkit.files.write_output, which writes as ``cp`` does and never replaces a link or a device.

- a symbolic link: the file it points to gets the content, the link stays a link (also a chain of links, and
  a dangling link, whose target is created);
- a character device or a pipe: written in place (a FIFO read by another thread; a character device made
  with mknod where the tests run as root: never the machine's own /dev/null, which a failure would replace);
- a descriptor (/proc/self/fd/N of a regular file): written in place, so the open file keeps its inode;
- refused before any work, one line naming the flag: an empty path, a NUL, a loop of links, a block device,
  two outputs of one command that are the same file (same path, another spelling, a link to the other);
- an output written before a failure or an interruption is removed again; an existing file is never lost.
"""

import os
import stat
import threading
from pathlib import Path

import pytest

from cli_helpers import assert_one_line_error, run_cli
from rnnkit.errors import InputError
from rnnkit.files import (
    check_distinct_outputs,
    check_output_path,
    forget_created_outputs,
    output_destination,
    remove_created_outputs,
    write_atomic,
    write_output,
)
from rnnkit.train.outputs import check_output


def _device(tmp_path: Path) -> Path:
    """A character device that discards what is written (major 1, minor 3: what /dev/null is), or skip."""
    path = tmp_path / "null-device"
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError) as error:
        pytest.skip(f"cannot make a character device here ({error})")
    return path


def _fifo_reader(path: Path) -> tuple[threading.Thread, list[bytes]]:
    """A thread that reads the FIFO ``path`` to its end; what it read lands in the returned list."""
    received: list[bytes] = []

    def read():
        with open(path, "rb") as fifo:
            received.append(fifo.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, received


# ------------------------------------------------------------------------------------------- the library


def test_a_link_is_written_through_and_stays_a_link(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("old")
    (tmp_path / "middle").symlink_to("target.txt")
    (tmp_path / "link").symlink_to(tmp_path / "middle")  # a chain: link -> middle -> target.txt
    write_output(tmp_path / "link", b"new")
    assert target.read_bytes() == b"new"
    assert os.readlink(tmp_path / "link") == str(tmp_path / "middle") and os.readlink(tmp_path / "middle") == "target.txt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "middle", "target.txt"]  # no temporary left


def test_a_dangling_link_creates_its_target(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.csv").symlink_to("sub/new.csv")
    write_output(tmp_path / "link.csv", b"a,b\n")
    assert (tmp_path / "sub" / "new.csv").read_bytes() == b"a,b\n" and (tmp_path / "link.csv").is_symlink()


def test_a_character_device_is_written_in_place_never_replaced(tmp_path):
    device = _device(tmp_path)
    assert output_destination(device) == (device, True)
    write_output(device, b"x" * 100_000)
    assert stat.S_ISCHR(os.lstat(device).st_mode)
    link = tmp_path / "to-device"
    link.symlink_to(device)
    write_output(link, b"through a link")
    assert link.is_symlink() and stat.S_ISCHR(os.lstat(device).st_mode)


def test_a_fifo_is_written_in_place_and_one_without_a_reader_is_one_line(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    thread, received = _fifo_reader(fifo)
    write_output(fifo, b"hello\n" * 20_000)  # more than a pipe's buffer: the reader must drain it
    thread.join(10)
    assert received == [b"hello\n" * 20_000] and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    with pytest.raises(InputError, match="no program reads that pipe"):  # would block forever
        write_output(fifo, b"nobody listens")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_descriptor_is_written_in_place_keeping_the_open_file(tmp_path):
    path = tmp_path / "stdout.txt"
    with open(path, "wb") as file:
        inode = os.fstat(file.fileno()).st_ino
        write_output(f"/proc/self/fd/{file.fileno()}", b"via the descriptor\n")
    assert path.read_bytes() == b"via the descriptor\n" and path.stat().st_ino == inode


def test_write_atomic_never_replaces_a_link_or_a_device(tmp_path):
    (tmp_path / "link").symlink_to("elsewhere")
    with pytest.raises(InputError, match="symbolic link"):
        write_atomic(tmp_path / "link", b"x")
    assert (tmp_path / "link").is_symlink()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="pipe, not a file"):
        write_atomic(fifo, b"x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize("given, words", [
    ("", ["--out is an empty path"]),
    ("   ", ["--out is an empty path"]),
    ("a\0b.html", ["NUL"]),
])
def test_paths_that_name_no_file_are_refused(given, words):
    with pytest.raises(InputError) as error:
        check_output_path(given, "--out", "page.html")
    assert all(word in str(error.value) for word in words), error.value


def test_a_loop_of_links_and_a_socket_are_refused_naming_the_flag(tmp_path):
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(InputError, match="--midi .*loop of symbolic links"):
        check_output_path(tmp_path / "a", "--midi")
    import socket

    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tmp_path / "sock"))
        with pytest.raises(InputError, match="--wav .*is a socket"):
            check_output_path(tmp_path / "sock", "--wav")
    finally:
        server.close()


def test_outputs_that_are_the_same_file_are_refused_however_spelt(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.mid").write_bytes(b"keep")
    (tmp_path / "alias.wav").symlink_to("x.mid")
    for first, second in [("x.mid", "x.mid"), ("x.mid", "./x.mid"), ("x.mid", str(tmp_path / "x.mid")),
                          ("x.mid", "alias.wav"), ("new.mid", "sub/../new.mid")]:
        with pytest.raises(InputError, match="--midi .* and --wav .* same"):
            check_distinct_outputs([("--midi", first), ("--wav", second)])
    check_distinct_outputs([("--midi", "a.mid"), ("--wav", "a.wav"), ("--plot", None)])
    assert (tmp_path / "x.mid").read_bytes() == b"keep"


def test_two_outputs_may_share_a_character_device(tmp_path):
    device = _device(tmp_path)
    check_distinct_outputs([("--midi", device), ("--wav", device)])


def test_check_output_sees_where_a_link_leads(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "latest.json").write_text("{}")
    (tmp_path / "page.html").symlink_to(run / "latest.json")  # outside the run, leading into its pointer
    with pytest.raises(InputError, match="run directory"):
        check_output(tmp_path / "page.html", "--out")
    (tmp_path / "deep.png").symlink_to(tmp_path / "missing-dir" / "plot.png")
    with pytest.raises(InputError, match="does not exist"):  # where the file would be written, not the link
        check_output(tmp_path / "deep.png", "--out")


def test_an_interrupted_command_removes_only_the_outputs_it_created(tmp_path):
    forget_created_outputs()
    kept = tmp_path / "kept.csv"
    kept.write_bytes(b"the user's")
    write_output(kept, b"replaced whole")  # existed: complete, and the old content is gone either way
    write_output(tmp_path / "new.png", b"png")
    (tmp_path / "later.txt").write_bytes(b"not ours")
    assert remove_created_outputs() == [tmp_path / "new.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.csv", "later.txt"]
    assert remove_created_outputs() == []


# ------------------------------------------------------------------------------------------- the commands


@pytest.fixture(scope="module")
def music_run(tmp_path_factory) -> Path:
    """A tiny trained music run (about a second)."""
    from bad_inputs import data
    from bad_inputs.workspace import run_quietly

    root = tmp_path_factory.mktemp("music")
    chorales = data.music_json(root / "chorales.json")
    code, _, stderr = run_quietly(["train", "music", "--data", str(chorales), "--hidden", "8", "--nade-hidden", "4",
                                   "--batch-size", "4", "--epochs", "1", "--quiet", "--out", str(root / "run")])
    assert code == 0, stderr
    return root / "run"


def test_generate_refuses_clashing_outputs_before_any_work(music_run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.mid").write_bytes(b"mine")
    (tmp_path / "roll.png").symlink_to("x.mid")
    for flags in (["--midi", "x.mid", "--wav", "x.mid"], ["--midi", "x.mid", "--plot", "roll.png"],
                  ["--wav", "out.wav", "--plot", "./out.wav"]):
        code, out, err = run_cli(capsys, "generate", music_run, "--steps", "4", *flags)
        assert_one_line_error(code, err, flags[0], flags[2], "same")
    assert (tmp_path / "x.mid").read_bytes() == b"mine" and (tmp_path / "roll.png").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["roll.png", "x.mid"]


def test_generate_writes_through_a_link_and_into_a_pipe(music_run, tmp_path, capsys):
    (tmp_path / "song.mid").symlink_to("real.mid")
    fifo = tmp_path / "audio"
    os.mkfifo(fifo)
    thread, received = _fifo_reader(fifo)
    code, out, err = run_cli(capsys, "generate", music_run, "--steps", "4", "--seed", "0",
                             "--midi", tmp_path / "song.mid", "--wav", fifo)
    thread.join(10)
    assert code == 0, err
    assert (tmp_path / "song.mid").is_symlink() and (tmp_path / "real.mid").read_bytes().startswith(b"MThd")
    assert received and received[0].startswith(b"RIFF") and stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize("flag", ["--midi", "--wav", "--plot"])
def test_an_empty_output_path_is_refused(music_run, capsys, flag):
    code, _, err = run_cli(capsys, "generate", music_run, "--steps", "4", flag, "")
    assert_one_line_error(code, err, flag, "empty")


def test_a_failed_command_leaves_none_of_the_outputs_it_began(music_run, tmp_path, capsys):
    fifo = tmp_path / "nobody-reads"
    os.mkfifo(fifo)
    code, _, err = run_cli(capsys, "generate", music_run, "--steps", "4", "--midi", tmp_path / "first.mid",
                           "--wav", fifo)  # the MIDI is written, then the WAV fails: no reader
    assert_one_line_error(code, err, "no program reads that pipe")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nobody-reads"]


def test_a_forecast_into_a_pipe_is_the_csv_alone(tmp_path, capsys):
    """A device or a pipe takes the CSV; "beside" it a plot would be a new file among the devices."""
    from bad_inputs import data
    from bad_inputs.workspace import run_quietly

    series = data.series_csv(tmp_path / "monthly.csv")
    code, _, stderr = run_quietly(["train", "forecast", "--data", str(series), "--target", "value", "--date-column",
                                   "month", "--window", "12", "--horizon", "2", "--hidden", "8", "--batch-size", "16",
                                   "--epochs", "1", "--quiet", "--out", str(tmp_path / "run")])
    assert code == 0, stderr
    fifo = tmp_path / "forecast.csv"
    os.mkfifo(fifo)
    thread, received = _fifo_reader(fifo)
    code, out, err = run_cli(capsys, "predict", tmp_path / "run", "--data", series, "--output", fifo)
    thread.join(10)
    assert code == 0, err
    assert received and received[0].startswith(b"date,forecast\n") and len(received[0].splitlines()) == 3
    assert "plot" not in out and not (tmp_path / "forecast.png").exists()
