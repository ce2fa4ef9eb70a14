"""Labelled texts: the tokenizer on tricky strings, reading CSV/TSV (headers, numbered and joined columns,
quoting, encodings, line numbers), every bad input as one InputError naming file:line, the vocabulary,
and the length-bucketed batches (deterministic per seed, every example once, little padding)."""

import pytest
import torch

from rnnkit.data.batching import bucketed_batches, sorted_batches
from rnnkit.data.batching import pad_sequences as pad_batch
from rnnkit.data.labelled_text import TableFormat, parse_delimiter, read_labelled, read_lines
from rnnkit.data.tokens import tokenize
from rnnkit.data.vocab import PAD_ID, UNK_ID, TokenVocab
from rnnkit.errors import InputError


# ------------------------------------------------------------------------------------------- tokenizer


@pytest.mark.parametrize("text, tokens", [
    ("don't can't won't isn't", ["do", "n't", "ca", "n't", "wo", "n't", "is", "n't"]),
    ("It's we're they've I'm you'll he'd", ["It", "'s", "we", "'re", "they", "'ve", "I", "'m", "you", "'ll", "he", "'d"]),
    ("does n't , it 's a well-made film ", ["does", "n't", ",", "it", "'s", "a", "well-made", "film"]),  # SST-2: kept
    ("It’s DON’T", ["It", "'s", "DO", "N'T"]),  # curly apostrophes, upper case
    ("10,000 people paid $3.50 at 12:30 for 1/2", ["10,000", "people", "paid", "$", "3.50", "at", "12:30", "for", "1/2"]),
    ("Wait... what?! -- no", ["Wait", "...", "what", "?", "!", "--", "no"]),
    ("the U.S. and e.g. this.", ["the", "U.S.", "and", "e.g.", "this", "."]),
    ("'sure' the dogs' o'clock", ["'", "sure", "'", "the", "dogs", "'", "o'clock"]),
    ("café über naïve", ["café", "über", "naïve"]),
    ("(a) [b] \"c\"", ["(", "a", ")", "[", "b", "]", '"', "c", '"']),
    ("  \t ", []),
])
def test_tokenizer_on_tricky_strings(text, tokens):
    assert tokenize(text) == tokens


def test_lowercase_happens_before_tokenizing():
    assert tokenize("Don't STOP", lowercase=True) == ["do", "n't", "stop"]


# ------------------------------------------------------------------------------------------- reading


def write(path, text: str | bytes):
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_csv_with_header_quotes_and_a_multiline_field(tmp_path):
    path = write(tmp_path / "data.csv", 'id,text,label\n1,"a, b",pos\n2,"two\nlines",neg\n\n3,"say ""hi""",pos\n')
    examples = read_labelled(path, TableFormat("text", "label"))
    assert [(e.text, e.label, e.line) for e in examples] == [
        ("a, b", "pos", 2), ("two\nlines", "neg", 3), ('say "hi"', "pos", 6),
    ]


def test_tsv_reads_quotes_literally_and_strips_the_trailing_space(tmp_path):
    path = write(tmp_path / "train.tsv", 'sentence\tlabel\n" a quoted start \t1\nno quote here \t0\n')
    examples = read_labelled(path, TableFormat("sentence", "label"))
    assert [(e.text, e.label) for e in examples] == [('" a quoted start', "1"), ("no quote here", "0")]


def test_no_header_numbered_columns_joined_by_a_space(tmp_path):
    path = write(tmp_path / "news.csv", '"3","Title one","Body one."\n"1","Title two","Body two."\n')
    examples = read_labelled(path, TableFormat("2,3", "1", header=False))
    assert [(e.text, e.label, e.line) for e in examples] == [("Title one Body one.", "3", 1), ("Title two Body two.", "1", 2)]


def test_delimiter_flag_overrides_the_extension(tmp_path):
    path = write(tmp_path / "data.txt", "text;label\nhello there;a\n")
    assert read_labelled(path, TableFormat(delimiter=";"))[0].text == "hello there"
    assert parse_delimiter("tab") == "\t" and parse_delimiter("\\t") == "\t" and parse_delimiter(None) is None


def test_cp1252_text_reads_with_its_encoding_and_a_bom_is_dropped(tmp_path):
    cp = write(tmp_path / "mr.csv", b"text,label\nun film tr\xe8s \x85 bien,pos\n")  # cp1252: e-grave, ellipsis
    assert read_labelled(cp, TableFormat(encoding="cp1252"))[0].text == "un film très … bien"
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbftext,label\nhi,a\n")
    assert read_labelled(bom, TableFormat())[0].text == "hi"


@pytest.mark.parametrize("content, table, words", [
    ("", TableFormat(), ["empty.csv is empty"]),
    ("text,label\n", TableFormat(), ["has a header but no rows"]),
    ("review,sentiment\nok,pos\n", TableFormat(), ["no column 'text'", "'review', 'sentiment'"]),
    ("review,sentiment\nok,pos\n", TableFormat("review", "7"), ["no column 7", "review, sentiment"]),
    ("text,label\nfine,pos\nbroken\n", TableFormat(), ["bad.csv:3:", "1 fields where the header has 2"]),
    ("text,label\nfine,pos\nno label, \n", TableFormat(), ["bad.csv:3: empty label"]),
    ("text,label\n  ,pos\n", TableFormat(), ["bad.csv:2: empty text"]),
    ("a,pos\nb\n", TableFormat("1", "2", header=False), ["bad.csv:2:", "too few for column 2"]),
    ("a,pos\n", TableFormat("text", "2", header=False), ["needs a header", "--text-column 2"]),
    ('text,label\n"open quote,pos\n', TableFormat(), ["bad.csv:2:", "never closed"]),
])
def test_bad_tables_are_one_line_errors_naming_file_and_line(tmp_path, content, table, words):
    path = write(tmp_path / ("empty.csv" if not content else "bad.csv"), content)
    with pytest.raises(InputError) as error:
        read_labelled(path, table)
    message = str(error.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="nope.csv: no such file"):
        read_labelled(tmp_path / "nope.csv", TableFormat())
    with pytest.raises(InputError, match="is a directory"):
        read_labelled(tmp_path, TableFormat())


def test_undecodable_bytes_name_line_offset_and_the_encoding_to_try(tmp_path):
    path = write(tmp_path / "mr.csv", b"text,label\ngood,pos\nun film tr\xe8s bien,pos\n")
    with pytest.raises(InputError) as error:
        read_labelled(path, TableFormat())
    message = str(error.value)
    assert "mr.csv:3:" in message and "byte 0xe8 at offset 30" in message and "--encoding cp1252" in message


def test_unknown_encoding_and_bad_columns_are_refused_early():
    with pytest.raises(InputError, match="unknown --encoding 'klingon'"):
        TableFormat(encoding="klingon")
    with pytest.raises(InputError, match="must name a column"):
        TableFormat(text_columns=",")
    with pytest.raises(InputError, match="one character"):
        TableFormat(delimiter=";;")


def test_read_lines_keeps_blank_lines_and_splits_only_at_line_ends(tmp_path):
    path = write(tmp_path / "in.txt", b"one\r\n\ntwo \x85 three\n")
    assert read_lines(path, "cp1252") == ["one", "", "two … three"]


# ------------------------------------------------------------------------------------------- vocabulary


def test_vocabulary_order_limits_and_round_trip():
    lists = [["b", "a", "b"], ["c", "a", "b"], ["d"]]
    vocab = TokenVocab.build(lists)
    assert vocab.symbols == ["<pad>", "<unk>", "b", "a", "c", "d"]  # by frequency, ties alphabetical
    assert vocab.encode(["a", "zzz"]) == [3, UNK_ID]
    assert TokenVocab.build(lists, min_freq=2).symbols == ["<pad>", "<unk>", "b", "a"]
    assert TokenVocab.build(lists, max_size=3).symbols == ["<pad>", "<unk>", "b"]
    assert TokenVocab.from_dict(vocab.to_dict()) == vocab
    with pytest.raises(InputError, match="at least 3"):
        TokenVocab.build(lists, max_size=2)
    with pytest.raises(InputError, match="corrupt"):
        TokenVocab(["<unk>", "<pad>", "a"])


# ------------------------------------------------------------------------------------------- batches


def test_pad_batch_pads_with_pad_id_and_gives_lengths():
    tokens, lengths = pad_batch([[5, 6, 7], [8]])
    assert tokens.tolist() == [[5, 6, 7], [8, PAD_ID, PAD_ID]] and lengths.tolist() == [3, 1]


def test_bucketed_batches_are_deterministic_complete_and_of_similar_length():
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 60, (1000,), generator=generator).tolist()
    first = bucketed_batches(lengths, batch_size=16, seed=5, pool_batches=10)
    assert first == bucketed_batches(lengths, batch_size=16, seed=5, pool_batches=10)
    assert first != bucketed_batches(lengths, batch_size=16, seed=6, pool_batches=10)
    assert sorted(i for batch in first for i in batch) == list(range(1000))
    assert len(first) == 63  # ceil(1000 / 16)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in first) / len(first)
    assert spread < 10  # random batches would spread over nearly the whole range 1..59


def test_short_last_batches_join_their_neighbour_so_every_process_gets_rows():
    lengths = list(range(1, 11))  # 10 examples, batches of 4: 4, 4, 2
    assert sorted(len(b) for b in bucketed_batches(lengths, 4, seed=0, min_rows=3)) == [4, 6]
    assert [len(b) for b in sorted_batches(lengths, 4, min_rows=3)] == [4, 6]
    assert sorted_batches([3, 1, 2], 2) == [[1, 2], [0]]
