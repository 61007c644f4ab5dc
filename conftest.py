"""The whole suite's plugins: the scanner of every captured log (tests/log_scanner.py), and
pytester, with which the scanner's own test runs a session."""

pytest_plugins = ("log_scanner", "pytester")
