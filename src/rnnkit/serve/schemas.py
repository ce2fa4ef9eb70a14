"""The JSON bodies the endpoints take, as pydantic models: FastAPI checks each request against its model and
the OpenAPI page (``/docs``) lists their fields.

The fields are strict (a number is not a string, ``"5"`` is not 5) and closed (an unknown field, a misspelt
``tempreature``, is an error naming it). ``model`` picks which served run answers; it is needed only when
several runs serve the same endpoint. A field's range (a temperature above 0, a beam of at least 1) is checked
by the task's own operation, with the message ``rnnkit predict / generate`` gives.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MODEL = Field(None, description="The served run that answers: its name in /models. Needed only when several runs "
                                "serve this endpoint.")


class Body(BaseModel):
    """What every request body has: ``model``; no other field than those declared."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    model: str | None = MODEL


class GenerateBody(Body):
    """``/generate``: text from a language model, as JSON or streamed as server-sent events."""

    prime: str = Field("", description="Text the sample starts from; empty: the start of a line.")
    length: int | None = Field(None, description="Tokens to generate (at most the server's max_tokens). "
                                                 "Default: 200, or max_tokens when smaller.")
    temperature: float = Field(1.0, description="Above 0; below 1 sharpens the distribution, above 1 flattens it.")
    top_k: int | None = Field(None, description="Sample only among the K most likely tokens.")
    top_p: float | None = Field(None, description="Sample only from the smallest set of tokens holding probability P.")
    greedy: bool = Field(False, description="Always take the most likely token.")
    seed: int | None = Field(None, description="Seed for a reproducible sample.")
    stream: bool = Field(False, description="Stream the tokens as server-sent events (as does the header "
                                            "Accept: text/event-stream): one `token` event {\"text\"} per token, "
                                            "then `done` with the whole answer, or `error` {\"error\"}.")


class MusicBody(Body):
    """``/music``: a piece sampled from a music model, frame by frame."""

    steps: int = Field(64, description="Time steps to generate (at most the server's max_tokens).")
    temperature: float = Field(1.0, description="Above 0; below 1 sharpens the distribution, above 1 flattens it.")
    seed: int | None = Field(None, description="Seed for a reproducible piece.")


class TextsBody(Body):
    """One text or a list of them: give ``text`` or ``texts``."""

    text: str | None = Field(None, description="One text.")
    texts: list[str] | None = Field(None, description="Several texts, answered in their order.")

    def items(self) -> list[str] | None:
        """The texts given (None when both or neither field is)."""
        if (self.text is None) == (self.texts is None):
            return None
        return [self.text] if self.text is not None else self.texts


class ClassifyBody(TextsBody):
    """``/classify``: the class of each text, with the probability of every class."""


class TagBody(Body):
    """``/tag``: the tag of each token of each sentence."""

    sentence: str | list[str] | None = Field(None, description="One sentence: a string (tokens separated by "
                                                               "spaces) or a list of tokens.")
    sentences: list[str | list[str]] | None = Field(None, description="Several sentences, each as `sentence`.")

    def items(self) -> list[list[str]] | None:
        """Each sentence as its tokens (None when both or neither field is given)."""
        if (self.sentence is None) == (self.sentences is None):
            return None
        given = [self.sentence] if self.sentence is not None else self.sentences
        return [sentence.split() if isinstance(sentence, str) else sentence for sentence in given]


class TranslateBody(TextsBody):
    """``/translate``: the translation of each sentence (give ``text`` or ``texts``)."""

    beam: int | None = Field(None, description="Beam size; 1 is greedy search. Default: the run's.")
    length_penalty: float | None = Field(None, description="GNMT length normalisation alpha (0: none). "
                                                           "Default: the run's.")


class ForecastBody(Body):
    """``/forecast``: the run's horizon of values after the end of a series."""

    series: dict[str, list[float]] = Field(description="The series, oldest first: one list of numbers per column "
                                                       "the run reads (its target and features, by name; /models "
                                                       "lists them), all of one length, at least the run's window.")
    dates: list[str] | None = Field(None, description="The date of each step, for a run trained with a date "
                                                      "column (the forecast is labelled with the dates that follow).")


class CaptionBody(Body):
    """``/caption``: the caption of each image."""

    images: list[list[list[float]]] = Field(description="Grayscale images, each rows of pixels in [0, 1] of the "
                                                        "run's image shape (/models lists it).")
