"""``python -m riskmodel`` runs the CLI."""

from riskmodel.cli import run

if __name__ == "__main__":
    run()
