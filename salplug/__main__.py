"""``python -m salplug``: the `salplug` command, for launchers that take a module (torchrun's ``-m``)."""

from .cli import main

raise SystemExit(main())
