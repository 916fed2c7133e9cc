"""``python -m riskmodel`` runs the CLI."""

from riskmodel.cli import main

if __name__ == "__main__":
    main()
