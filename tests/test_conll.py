"""The CoNLL-U and CoNLL-2003 readers: what a sentence is, which lines are skipped, and every malformed file
giving one InputError line that names the file and, where there is one, the line."""

import pytest

from rnnkit.data.conll import read_conll, resolve_format, sniff_format
from rnnkit.errors import InputError

# Comments, a multiword token (3-4 "don't" above "do" "n't"), an empty node (5.1) and two sentences.
CONLLU = """# newdoc id = doc1
# sent_id = 1
# text = I don't know.
1\tI\tI\tPRON\tPRP\t_\t3\tnsubj\t_\t_
2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t_\t_
3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_
4\tknow\tknow\tVERB\tVB\t_\t0\troot\t_\t_
4.1\tknows\tknow\tVERB\tVBZ\t_\t_\t_\t4:conj\t_
5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_

# sent_id = 2
1\tHello\thello\tINTJ\tUH\t_\t0\troot\t_\t_
"""  # no blank line after the last sentence: the reader still keeps it

CONLL2003 = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC"""


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_conllu_skips_comments_multiword_tokens_and_empty_nodes(tmp_path):
    path = write(tmp_path, "a.conllu", CONLLU)
    first, second = read_conll(path)
    assert first.tokens == ["I", "do", "n't", "know", "."]
    assert first.tags == ["PRON", "AUX", "PART", "VERB", "PUNCT"]
    assert first.lines == [4, 6, 7, 8, 10]
    assert first.where(2) == f"{path}:7"
    assert (second.tokens, second.tags, second.lines) == (["Hello"], ["INTJ"], [13])
    assert read_conll(path, "conllu", "xpos")[0].tags == ["PRP", "VBP", "RB", "VB", "."]


def test_conll2003_drops_docstart_and_reads_each_column(tmp_path):
    path = write(tmp_path, "train.txt", CONLL2003)
    sentences = read_conll(path)  # recognised as CoNLL-2003; column ner by default
    assert [s.tokens for s in sentences] == [["EU", "rejects", "German"], ["Peter", "Blackburn"], ["BRUSSELS"]]
    assert [s.tags for s in sentences] == [["B-ORG", "O", "B-MISC"], ["B-PER", "I-PER"], ["B-LOC"]]
    assert read_conll(path, "conll", "pos")[1].tags == ["NNP", "NNP"]
    assert read_conll(path, "conll", "chunk")[0].tags == ["B-NP", "B-VP", "B-NP"]
    assert sentences[2].lines == [12]


def test_format_is_sniffed_from_the_first_token_line(tmp_path):
    assert sniff_format(CONLLU.split("\n")) == ("conllu", 4)
    assert sniff_format(CONLL2003.split("\n")) == ("conll", 1)
    assert sniff_format(["# only", "", "# comments"]) is None
    assert resolve_format(write(tmp_path, "a.conllu", CONLLU)) == "conllu"


@pytest.mark.parametrize("text, expected", [
    (CONLLU.replace("1\tHello\thello\tINTJ\tUH\t_\t0\troot\t_\t_", "1\tHello\thello\tINTJ"),
     r"a\.conllu:13: 4 tab-separated fields, CoNLL-U has 10"),
    (CONLLU.replace("4\tknow", "four\tknow"), r"a\.conllu:8: ID 'four' is not a word number"),
    (CONLLU.replace("5\t.", "5.\t."), r"a\.conllu:10: ID '5\.' is not a word number"),
])
def test_a_malformed_conllu_line_is_named_by_file_and_line(tmp_path, text, expected):
    with pytest.raises(InputError, match=expected):
        read_conll(write(tmp_path, "a.conllu", text), "conllu")


def test_a_conll_line_with_too_few_columns_is_named_by_file_and_line(tmp_path):
    path = write(tmp_path, "train.txt", CONLL2003.replace("Blackburn NNP I-NP I-PER", "Blackburn I-PER"))
    with pytest.raises(InputError, match=r"train\.txt:8: 2 columns where the file's lines have 4"):
        read_conll(path, "conll", "ner")


def test_a_column_the_file_lacks_is_an_error(tmp_path):
    path = write(tmp_path, "two.txt", "EU B-ORG\nrejects O\n\nPeter B-PER\n")
    with pytest.raises(InputError, match=r"two\.txt:1: the file has 2 columns per line, but --column ner is "
                                         r"column 4 of TOKEN POS CHUNK NER; .*\(pos\)"):
        read_conll(path, "conll", "ner")
    assert read_conll(path, "conll", "pos")[0].tags == ["B-ORG", "O"]
    with pytest.raises(InputError, match=r"--column ner \(a CoNLL-2003 column\) is not a column of CoNLL-U"):
        read_conll(write(tmp_path, "a.conllu", CONLLU), "conllu", "ner")


def test_a_format_that_does_not_match_the_file_is_an_error(tmp_path):
    conllu, conll = write(tmp_path, "a.conllu", CONLLU), write(tmp_path, "train.txt", CONLL2003)
    with pytest.raises(InputError, match=r"a\.conllu is not CoNLL-2003 but looks like CoNLL-U \(line 4 .*\); "
                                         r"give --format conllu"):
        read_conll(conllu, "conll")
    with pytest.raises(InputError, match=r"train\.txt is not CoNLL-U but looks like CoNLL-2003 .*give --format conll"):
        read_conll(conll, "conllu")
    with pytest.raises(InputError, match="like CoNLL-2003 .*; use the run's format"):
        read_conll(conll, "conllu", fix="use the run's format")


@pytest.mark.parametrize("text, expected", [
    ("", r"empty\.txt is empty"),
    ("   \n\n", r"empty\.txt is only whitespace"),
    ("# a comment\n# another\n", r"empty\.txt holds no sentences \(only comments\)"),
    ("-DOCSTART- -X- -X- O\n\n", r"empty\.txt holds no sentences; give a CoNLL-2003 file"),
])
def test_an_empty_file_is_an_error(tmp_path, text, expected):
    with pytest.raises(InputError, match=expected):
        read_conll(write(tmp_path, "empty.txt", text))


def test_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(InputError, match=r"nowhere\.conllu: no such file"):
        read_conll(tmp_path / "nowhere.conllu")
