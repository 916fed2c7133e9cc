"""Model: estimator, training engines, bundles."""

# The recent-residual correction's defaults, one set for the field trial
# (``TrialConfig.recalibrate_*``) and for production scoring (``riskmodel score``/``daily`` with
# the forecast store); here, not in ``estimator``, so that the trial's configuration reads them
# without importing XGBoost.
RESIDUAL_DAYS = 28  # look-back of the recorded-vs-forecast comparison
# Prior strength in expected events (bench/bench_adapt.py: 20 -> 5 follows a route shift in
# <= 3 weeks).
RESIDUAL_PRIOR = 5.0
RESIDUAL_KM = 3.0  # evidence pooled over segments within +- this many km along the border
