r"""One-to-many: one image in, a caption out, written token by token (image captioning).

A small convolutional network turns the image into one feature vector f; a recurrent decoder, started from
f, writes the caption and feeds each word back as its next input (Vinyals et al. 2015, "Show and Tell")::

    a   = CNN(x)                                  conv 3×3 → ReLU → max-pool 2×2, per block
    f   = dropout(ReLU(W_f flatten(a) + b_f))     the image's feature vector (F); flattening keeps where
                                                   in the image each feature was seen
    s_0 = tanh(W_s f + b_s)                       condition "init" or "both": f initialises the decoder
    s_i = Decoder([E[y_{i-1}] ; f], s_{i-1})      condition "input" or "both": f is fed at every step
          Decoder(E[y_{i-1}], s_{i-1})            condition "init"
    p(y_i | y_<i, x) = softmax(W_o dropout(s_i) + b_o)

Training reads the reference caption (teacher forcing); generation uses the greedy and beam searches of
:mod:`rnnkit.models.decoding`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import InputError
from .decoding import Decoded, beam_search, best_writable, greedy_search
from .recurrent import has_cell_state, recurrent_layer, recurrent_options, registered_cell
from .recurrent_encoder import check_dropout, check_whole_number

CONDITIONS = ("init", "input", "both")


class ImageEncoder(nn.Module):
    """Convolution blocks (conv 3×3 with padding, ReLU, 2×2 max-pool while the map is at least 2×2), then
    a linear layer from the flattened map to ``feature_size``, ReLU and dropout.

    Input: images (N, 1, H, W) floats. Output: (N, feature_size).
    """

    def __init__(self, image_height: int, image_width: int, channels: tuple[int, ...] = (32, 64),
                 feature_size: int = 256, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        in_channels, height, width = 1, image_height, image_width
        for out_channels in channels:
            check_whole_number("channels", out_channels)
            layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU()]
            if height >= 2 and width >= 2:
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            in_channels = out_channels
        self.convolutions = nn.Sequential(*layers)
        self.features = nn.Linear(in_channels * height * width, feature_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, images: Tensor) -> Tensor:
        maps = self.convolutions(images)  # (N, C, H', W')
        return self.dropout(torch.relu(self.features(maps.flatten(1))))  # (N, F)


class Captioner(nn.Module):
    r"""Image → caption: a small CNN encoder and a recurrent decoder; equations in :mod:`rnnkit.models.captioner`.

    .. math::

        f = \mathrm{CNN}(x), \quad s_0 = \tanh(W_s f + b_s), \quad
        s_i = \mathrm{RNN}([E y_{i-1}; f], s_{i-1}), \quad
        p(y_i \mid y_{<i}, x) = \mathrm{softmax}(W_o s_i + b_o)

    Args:
        vocab_size: V, the number of caption token ids.
        image_height, image_width: the size every input image must have (one channel, grayscale).
        channels: output channels of the convolution blocks. Default (32, 64).
        feature_size: F, the width of the image's feature vector. Default 256.
        embedding_dim: E, the width of a caption token's embedding. Default 64.
        cell: any registered cell (:func:`rnnkit.nn.cell_names`). Default ``"gru"``.
        hidden_size: H, the decoder's width. Default 256.
        num_layers: stacked decoder layers. Default 1.
        condition: how the image reaches the decoder: ``"init"`` (the initial state only), ``"input"``
            (concatenated to every step's input) or ``"both"`` (default).
        dropout: on the image features, embeddings, between layers and before the output. Default 0.
        engine: ``"auto"`` (default), ``"fused"`` or ``"explicit"``.
        recurrent: the regularisers of :data:`rnnkit.models.recurrent.RECURRENT_OPTIONS` for the decoder.
        pad_index, bos_index, eos_index: special token ids. Defaults 0, 2, 3.

    Inputs of ``forward``: images (N, H, W) or (N, 1, H, W) floats; target_inputs (N, T) ``<bos> y_1 ..``;
    teacher_forcing: the probability of reading the reference rather than the model's own last prediction.

    Output: logits (N, T, V).

    Example::

        >>> model = Captioner(vocab_size=14, image_height=8, image_width=40, hidden_size=32)
        >>> logits = model(torch.rand(2, 8, 40), torch.tensor([[2, 7, 9], [2, 5, 0]]))
        >>> logits.shape
        torch.Size([2, 3, 14])
        >>> len(model.generate(torch.rand(2, 8, 40), beam_size=3, max_length=6).tokens)
        2
    """

    def __init__(self, vocab_size: int, image_height: int, image_width: int, *,
                 channels: tuple[int, ...] | list[int] = (32, 64), feature_size: int = 256,
                 embedding_dim: int = 64, cell: str = "gru", hidden_size: int = 256, num_layers: int = 1,
                 condition: str = "both", dropout: float = 0.0, engine: str = "auto",
                 pad_index: int = 0, bos_index: int = 2, eos_index: int = 3, **recurrent):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("image_height", image_height),
                            ("image_width", image_width), ("feature_size", feature_size),
                            ("embedding_dim", embedding_dim), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)):
            check_whole_number(name, value)
        if condition not in CONDITIONS:
            raise InputError(f"unknown condition {condition!r}; choose one of {', '.join(CONDITIONS)}")
        registered_cell(cell)
        check_dropout(dropout)
        channels = tuple(channels)
        self.options = dict(vocab_size=vocab_size, image_height=image_height, image_width=image_width,
                            channels=list(channels), feature_size=feature_size, embedding_dim=embedding_dim,
                            cell=cell, hidden_size=hidden_size, num_layers=num_layers, condition=condition,
                            dropout=dropout, engine=engine, pad_index=pad_index, bos_index=bos_index,
                            eos_index=eos_index, **recurrent_options(recurrent))
        self.pad_index, self.bos_index, self.eos_index = pad_index, bos_index, eos_index
        self.image_size = (image_height, image_width)
        self.condition = condition
        self.num_layers = num_layers
        self.cell_state = has_cell_state(cell)
        self.encoder = ImageEncoder(image_height, image_width, channels, feature_size, dropout)
        self.init_state = nn.Linear(feature_size, hidden_size) if condition != "input" else None
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_index)
        self.dropout = nn.Dropout(dropout)
        step_input = embedding_dim + (feature_size if condition != "init" else 0)
        self.decoder = recurrent_layer(cell, step_input, hidden_size, num_layers, dropout=dropout, engine=engine,
                                       **recurrent)
        self.output = nn.Linear(hidden_size, vocab_size)
        self.hidden_size = hidden_size

    @property
    def config(self) -> dict:
        """The constructor's arguments: ``Captioner(**model.config)`` builds the same architecture."""
        return dict(self.options)

    def _images(self, images: Tensor) -> Tensor:
        """(N, H, W) or (N, 1, H, W) → (N, 1, H, W), checking the size the model was built for."""
        if images.dim() == 3:
            images = images.unsqueeze(1)
        H, W = self.image_size
        if images.dim() != 4 or images.shape[1:] != (1, H, W) or not images.is_floating_point():
            raise InputError(f"images must be (N, {H}, {W}) grayscale floats for this model, got "
                             f"{images.dtype} of shape {tuple(images.shape)}")
        return images.to(self.output.weight.dtype)

    def start(self, images: Tensor):
        """Encode the images: (the decoder's initial state, memory = (features (N, F),))."""
        features = self.encoder(self._images(images))  # (N, F)
        N = features.size(0)
        if self.init_state is not None:
            h = torch.tanh(self.init_state(features)).unsqueeze(0).expand(self.num_layers, N, self.hidden_size)
        else:
            h = features.new_zeros(self.num_layers, N, self.hidden_size)
        h = h.contiguous()  # (layers, N, H)
        state = (h, torch.zeros_like(h)) if self.cell_state else h
        return state, (features,)

    def _inputs(self, embedded: Tensor, features: Tensor) -> Tensor:
        """Each step's decoder input: the token's embedding, with the image features unless condition is init."""
        if self.condition == "init":
            return embedded
        steps = features.unsqueeze(1).expand(-1, embedded.size(1), -1)  # (N, T, F)
        return torch.cat([embedded, steps], dim=2)  # (N, T, E + F)

    def step(self, tokens: Tensor, state, memory: tuple):
        """tokens (N,) → logits (N, V), the new state, None (no attention)."""
        (features,) = memory
        embedded = self.dropout(self.embedding(tokens)).unsqueeze(1)  # (N, 1, E)
        output, state = self.decoder(self._inputs(embedded, features), state)  # (N, 1, H)
        return self.output(self.dropout(output.squeeze(1))), state, None  # (N, V)

    def forward(self, images: Tensor, target_inputs: Tensor, teacher_forcing: float = 1.0) -> Tensor:
        if not 0 <= teacher_forcing <= 1:
            raise InputError(f"the teacher forcing ratio must be in [0, 1], got {teacher_forcing}")
        state, memory = self.start(images)
        if teacher_forcing == 1:
            embedded = self.dropout(self.embedding(target_inputs))  # (N, T, E)
            outputs, _ = self.decoder(self._inputs(embedded, memory[0]), state)  # (N, T, H)
            return self.output(self.dropout(outputs))  # (N, T, V)
        tokens, logits = target_inputs[:, 0], []
        for i in range(target_inputs.size(1)):
            step_logits, state, _ = self.step(tokens, state, memory)  # (N, V)
            logits.append(step_logits)
            if i + 1 < target_inputs.size(1):
                use_reference = torch.rand(tokens.shape, device=tokens.device) < teacher_forcing
                tokens = torch.where(use_reference, target_inputs[:, i + 1], best_writable(step_logits, self))
        return torch.stack(logits, dim=1)  # (N, T, V)

    @torch.no_grad()
    def generate(self, images: Tensor, *, beam_size: int = 1, max_length: int = 20,
                 length_penalty: float = 0.0) -> Decoded:
        """Caption a batch of images by greedy (``beam_size=1``) or beam search; puts the model in eval mode."""
        self.eval()
        if beam_size == 1:
            return greedy_search(self, images, max_length=max_length)
        return beam_search(self, images, beam_size=beam_size, max_length=max_length,
                           length_penalty_alpha=length_penalty)
