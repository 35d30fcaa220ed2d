"""``python -m workflows.cli`` runs the ``epdi`` command."""

from workflows.cli.app import main

main()
