"""Features: declarative spec -> one engine -> feature frames."""
