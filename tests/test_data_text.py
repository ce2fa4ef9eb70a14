"""read_text's bad inputs, and the character and word vocabularies."""

import json

import pytest
import torch

from rnnkit.data.reading import read_text
from rnnkit.data.text import CharVocab, WordVocab, vocab_from_dict
from rnnkit.errors import InputError


def one_line_error(excinfo, *fragments):
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


# --- read_text ----------------------------------------------------------------------------------

def test_read_text_reads_utf8_and_normalises_newlines(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeffcafé\r\nline\rend\tx\n".encode("utf-8"))
    assert read_text(path) == "café\nline\nend\tx\n"


def test_read_text_missing_file(tmp_path):
    with pytest.raises(InputError) as excinfo:
        read_text(tmp_path / "nope.txt")
    one_line_error(excinfo, "nope.txt", "no such file")


def test_read_text_directory(tmp_path):
    with pytest.raises(InputError) as excinfo:
        read_text(tmp_path)
    one_line_error(excinfo, "is a directory")


@pytest.mark.parametrize("content, word", [(b"", "empty"), (b" \n\t\n ", "only whitespace")])
def test_read_text_empty(tmp_path, content, word):
    path = tmp_path / "e.txt"
    path.write_bytes(content)
    with pytest.raises(InputError) as excinfo:
        read_text(path)
    one_line_error(excinfo, word)


def test_read_text_binary_names_the_nul_offset(tmp_path):
    path = tmp_path / "b.bin"
    path.write_bytes(b"abcde\x00\x01\x02")
    with pytest.raises(InputError) as excinfo:
        read_text(path)
    one_line_error(excinfo, "binary", "offset 5")


def test_read_text_utf16_suggests_iconv(tmp_path):
    path = tmp_path / "u16.txt"
    path.write_bytes("hello".encode("utf-16"))
    with pytest.raises(InputError) as excinfo:
        read_text(path)
    one_line_error(excinfo, "UTF-16", "iconv -f utf-16")


def test_read_text_non_utf8_names_byte_offset_and_fix(tmp_path):
    path = tmp_path / "cp.txt"
    path.write_bytes("naïve “quotes”".encode("cp1252"))
    with pytest.raises(InputError) as excinfo:
        read_text(path)
    one_line_error(excinfo, "not UTF-8", "0xef at offset 2", "iconv -f cp1252 -t utf-8")


def test_read_text_offset_counts_the_byte_order_mark(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfab\xff")
    with pytest.raises(InputError) as excinfo:
        read_text(path)
    one_line_error(excinfo, "offset 5")


# --- CharVocab ----------------------------------------------------------------------------------

def test_char_vocab_ids_in_code_point_order_and_round_trip():
    text = "hello, world\n\tΩ"
    vocab = CharVocab.build(text)
    assert vocab.symbols == sorted(set(text))
    assert len(vocab) == len(set(text))
    ids = vocab.encode(text)
    assert ids.dtype == torch.long and ids.shape == (len(text),)
    assert vocab.decode(ids) == text
    assert vocab.decode(ids.tolist()) == text
    assert vocab.unk_id is None


def test_char_vocab_unknown_character_is_an_error_naming_it_and_its_position():
    vocab = CharVocab.build("abc")
    with pytest.raises(InputError) as excinfo:
        vocab.encode("abxcz")
    one_line_error(excinfo, "'x'", "position 2", "unknown='skip'")


def test_char_vocab_skip_drops_unknown_characters():
    vocab = CharVocab.build("abc")
    assert vocab.decode(vocab.encode("a?b!c", unknown="skip")) == "abc"
    assert vocab.unknown_symbols("a?b!c?") == ["?", "!"]
    with pytest.raises(InputError):
        vocab.encode("a", unknown="replace")


def test_char_vocab_dict_round_trip_through_json():
    vocab = CharVocab.build("x\ny\t\"é")
    d = json.loads(json.dumps(vocab.to_dict()))
    assert d["level"] == "char"
    again = vocab_from_dict(d)
    assert isinstance(again, CharVocab) and again == vocab and again.symbols == vocab.symbols


# --- WordVocab ----------------------------------------------------------------------------------

PTB_LIKE = " the cat sat on the mat \n the <unk> ran \n the cat ran \n"


def test_word_vocab_layout_eos_and_frequency_order():
    vocab = WordVocab.build(PTB_LIKE)
    # the: 4, cat: 2, ran: 2, mat/on/sat: 1; ties alphabetical; literal <unk> is not a second entry
    assert vocab.symbols == ["<unk>", "<eos>", "the", "cat", "ran", "mat", "on", "sat"]
    assert vocab.unk_id == 0 and vocab.eos_id == 1
    ids = vocab.encode(PTB_LIKE).tolist()
    assert ids.count(vocab.eos_id) == 3
    assert ids[6] == vocab.eos_id  # after "the cat sat on the mat"
    assert ids[8] == vocab.unk_id  # the corpus's literal <unk>


def test_word_vocab_unknown_words_become_unk():
    vocab = WordVocab.build(PTB_LIKE)
    assert vocab.encode("the dog sat").tolist() == [2, 0, 7]
    assert vocab.unknown_symbols("the dog and dog") == ["dog", "and"]


def test_word_vocab_max_size_and_min_freq():
    by_size = WordVocab.build(PTB_LIKE, max_size=4)
    assert by_size.symbols == ["<unk>", "<eos>", "the", "cat"]
    assert by_size.encode("the ran").tolist() == [2, 0]
    by_freq = WordVocab.build(PTB_LIKE, min_freq=2)
    assert by_freq.symbols == ["<unk>", "<eos>", "the", "cat", "ran"]
    with pytest.raises(InputError):
        WordVocab.build(PTB_LIKE, max_size=1)
    with pytest.raises(InputError):
        WordVocab.build(PTB_LIKE, min_freq=0)


def test_word_vocab_decode_and_pieces():
    vocab = WordVocab.build(PTB_LIKE)
    ids = vocab.encode("the cat\nsat on\nthe")
    assert vocab.decode(ids) == "the cat\nsat on\nthe"
    pieces, previous = [], None
    for i in ids.tolist():
        pieces.append(vocab.piece(i, previous))
        previous = i
    assert pieces == ["the", " cat", "\n", "sat", " on", "\n", "the"]


def test_word_vocab_dict_round_trip_and_dispatch():
    vocab = WordVocab.build(PTB_LIKE, max_size=6)
    d = json.loads(json.dumps(vocab.to_dict()))
    assert d["level"] == "word"
    again = vocab_from_dict(d)
    assert isinstance(again, WordVocab) and again == vocab
    assert torch.equal(again.encode(PTB_LIKE), vocab.encode(PTB_LIKE))


@pytest.mark.parametrize("bad", [
    {"symbols": ["a"]},
    {"level": "byte", "symbols": ["a"]},
    {"level": "char", "symbols": ["a", "a"]},
    {"level": "char", "symbols": ["ab"]},
    {"level": "char", "symbols": []},
    {"level": "word", "symbols": ["the", "<unk>", "<eos>"]},
    {"level": "word", "symbols": ["<unk>", "<eos>", "two words"]},
    "not a dict",
])
def test_vocab_from_dict_rejects_malformed_input(bad):
    with pytest.raises(InputError):
        vocab_from_dict(bad)


def test_vocab_build_rejects_empty_text():
    with pytest.raises(InputError):
        CharVocab.build("")
    with pytest.raises(InputError):
        WordVocab.build("   ")
