"""Experiment configs shipped with llmskel (YAML data, not code): ``llmskel train --config NAME``."""
