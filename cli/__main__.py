"""``python -m ganrobust.cli``: the ``ganrobust`` command, as ``torchrun -m ganrobust.cli ...`` needs it."""

from ganrobust.cli.main import main

if __name__ == "__main__":
    main()
