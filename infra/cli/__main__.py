"""``python -m infra.cli``: the same as the ``stagegate`` console script."""

from infra.cli import main

main()
