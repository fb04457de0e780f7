"""Anomaly detection, natural-language questions and root-cause analysis."""
