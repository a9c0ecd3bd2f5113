"""pycarp's benchmark: `python -m bench` (see bench/__main__.py and the README's "Performance")."""
