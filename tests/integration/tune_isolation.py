"""The switch that lets tests/integration/test_tune.py run only inside the process test_tune_isolated.py starts."""
ISOLATED = "TRADEOFF_RAY_TUNE_TESTS_ISOLATED"
