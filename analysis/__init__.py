"""Analysis of a weight search: `python -m analysis EXPDIR...` writes report.html/report.md.

Reads the Ray Tune experiment directories with json/pandas (no ray import), so it works on
a finished search, on one still running, and on a machine without ray.
"""
