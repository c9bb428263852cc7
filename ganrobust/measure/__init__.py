"""Measurement: tensors and modules in, typed results out; never the file system.

    models + data -> snapshots -> **measurement** -> records -> run store -> report

``update`` measures one generator update against the D it was taken against (the per-sample
fields and their summaries, as the metric registry :mod:`ganrobust.metrics` defines them);
``audit`` replays a checkpoint's next update and turns Odena's three arguments into numbers;
``overtraining`` and ``comparison`` summarise measured steps over a run and across runs;
``quality`` scores samples. Nothing here imports the run store, the reports or the CLI, and
nothing here opens a file (tests/test_architecture.py checks both).
"""
