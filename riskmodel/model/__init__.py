"""Model: estimator, training engines, bundles."""
