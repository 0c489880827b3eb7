"""``python -m llmos`` runs the CLI."""

from llmos.cli.main import main

main()
