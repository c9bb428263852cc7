"""The ``ganrobust`` command line: one module per subcommand, registered in :mod:`ganrobust.cli.main`."""
