"""Quality of a dataset version: diversity, fidelity to the grid cell, coverage, contamination, and the diff
between two versions. `run.assess` puts the parts together for the `quality` stage."""
