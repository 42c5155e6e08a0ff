"""``python -m salplug``: the `salplug` command, for launchers that take a module (torchrun's ``-m``)."""

from salplug.cli._app import main

raise SystemExit(main())
