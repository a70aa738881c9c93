"""Human rating: blinded sheets out and filled sheets in (sheets.py), the rating page (app.py, with
templates/ and static/) and its answers database (answers.py), the `rating` stage's inputs and per-rater
quality control (sources.py), and its agreement and scores per model (scores.py). The statistics it shares
with the judge live on the ground floor: hiwar/agreement.py, hiwar/stats.py, hiwar/pairwise.py."""
