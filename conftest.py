"""Suite-wide pytest settings for tests/ and the nbval run over notebooks/: see tools/pytest_plugin.py."""

pytest_plugins = ["tools.pytest_plugin"]
