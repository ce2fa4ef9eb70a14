"""Task scores, one module per kind of task: ``classification`` (accuracy, macro F1), ``spans`` (entity span
F1 of BIO tags, seqeval's definition) and ``forecast`` (MAE, RMSE, MASE and the naive baselines).

Import from the submodule: ``from rnnkit.metrics.spans import span_scores``.
"""
