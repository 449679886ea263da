"""Baseline methods behind the ask/tell interface: SCATS, GP (scikit-optimize), PSO (pyswarms)."""
