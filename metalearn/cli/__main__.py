"""``python -m metalearn.cli``."""

from metalearn.cli import main

main()
