"""The bad-input corpus of issue 17: case definitions and the tiny data and runs they are built from.

``data`` writes tiny, valid inputs of every task; ``workspace`` gives each case a fresh folder holding the
inputs and copies of tiny trained runs it asks for; ``cases`` is the table itself. The test module is
``tests/test_bad_inputs.py``.
"""
