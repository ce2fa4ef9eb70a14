"""A nested state (an optimizer's, the random generators', a carried hidden state) as JSON and named tensors,
so that a checkpoint stores it in ``checkpoint.json`` and ``state.safetensors``, never in a pickle::

    >>> state, tensors = split_tensors({"step": 3, "moments": [torch.zeros(2)]}, "optimizer")
    >>> state
    {'step': 3, 'moments': [{'$tensor': 'optimizer/moments/0'}]}
    >>> join_tensors(state, tensors)["moments"][0]
    tensor([0., 0.])
"""

import torch

from rnnkit.errors import InputError


def split_tensors(value, prefix: str) -> tuple[object, dict[str, torch.Tensor]]:
    """Split a nested state (dicts, lists, tuples, numbers, tensors) into JSON and named tensors.

    Each tensor is replaced by ``{"$tensor": name}`` where ``name`` is its path under ``prefix``, so that
    an optimizer's or RNG's state goes to JSON plus safetensors, never to pickle. Tuples come back as lists.
    """
    tensors: dict[str, torch.Tensor] = {}

    def visit(item, path):
        if isinstance(item, torch.Tensor):
            tensors[path] = item.detach().cpu()
            return {"$tensor": path}
        if isinstance(item, dict):
            return {str(key): visit(inner, f"{path}/{key}") for key, inner in item.items()}
        if isinstance(item, (list, tuple)):
            return [visit(inner, f"{path}/{index}") for index, inner in enumerate(item)]
        return item

    return visit(value, prefix), tensors


def join_tensors(value, tensors: dict[str, torch.Tensor]):
    """The inverse of :func:`split_tensors`: put the named tensors back in place of their references."""
    if isinstance(value, dict):
        if set(value) == {"$tensor"}:
            name = value["$tensor"]
            if name not in tensors:
                raise InputError(f"checkpoint state lacks tensor {name!r} (corrupt or foreign); restore it from a copy")
            return tensors[name]
        return {key: join_tensors(inner, tensors) for key, inner in value.items()}
    if isinstance(value, list):
        return [join_tensors(inner, tensors) for inner in value]
    return value
