"""The ``ganrobust`` command line: one module per subcommand, registered in :mod:`ganrobust.cli.main`.

The top of the flow, and thin: each command parses its options (defaults from
:mod:`ganrobust.config`), calls its pipeline (:mod:`ganrobust.pipeline`), writes the report
(:mod:`ganrobust.report.files`) and prints. It is the only code that prints; bad input is one
``error:`` line and exit status 2.
"""
