r"""The best tag path of a linear-chain CRF, in numpy alone: what a tagger exported by ``rnnkit export`` needs
beside its ONNX file (this file is written next to it; it imports nothing but numpy).

For emissions e_t (the graph's ``emissions[n, :length]``), transitions A[i, j] (tag j right after tag i), start
scores s and end scores f, Viterbi finds argmax_y s[y_1] + e_1[y_1] + Σ_{t≥2} (A[y_{t-1}, y_t] + e_t[y_t]) + f[y_T]:

    δ_1[j] = s[j] + e_1[j]
    δ_t[j] = max_i (δ_{t-1}[i] + A[i, j]) + e_t[j],   ψ_t[j] = the argmax i
    y_T = argmax_j (δ_T[j] + f[j]),   y_{t-1} = ψ_t[y_t]

Example::

    >>> import numpy as np
    >>> viterbi(np.array([[2.0, 0.0], [0.0, 1.0]]), np.zeros((2, 2)), np.zeros(2), np.zeros(2))
    [0, 1]
"""

import numpy as np


def viterbi(emissions, transitions, start_transitions, end_transitions):
    """The highest-scoring tag ids of one sentence: emissions (T_real, C), transitions (C, C), start and end (C,)."""
    emissions, transitions = np.asarray(emissions), np.asarray(transitions)  # in their own dtype, as the CRF adds
    score = np.asarray(start_transitions) + emissions[0]  # (C,): δ_1
    back_pointers = []
    for emission in emissions[1:]:
        candidates = score[:, None] + transitions  # (C_prev, C_next)
        back_pointers.append(candidates.argmax(axis=0))  # (C,): ψ_t
        score = candidates.max(axis=0) + emission
    tag = int((score + np.asarray(end_transitions)).argmax())
    path = [tag]
    for pointers in reversed(back_pointers):
        tag = int(pointers[tag])
        path.append(tag)
    return path[::-1]
