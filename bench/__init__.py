"""taskq's benchmark suite: `python -m bench --help`. Not part of the test run."""
