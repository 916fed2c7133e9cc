"""Evaluation: metrics, baselines, backtests."""
