"""Coverage-guided fuzzing (atheris / libFuzzer) of every parser that takes client bytes.

`python -m bench.fuzz` runs each target of `bench.fuzz.targets.TARGETS` in its own process
(`bench.fuzz.worker`), seeded with valid inputs, and reports inputs tried, inputs/s, coverage and
every unexpected exception (anything but the parser's documented error types), each written to a
reproducer file. It exits 1 when any target raised one, crashed or hung.
"""
