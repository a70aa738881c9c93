"""Human evaluation: agreement statistics against values computed by hand, blinded export, checked import.
Every rating here is a test fixture; the pipeline itself never invents one."""

import numpy as np
import pandas as pd
import pytest

from hiwar.errors import HiwarError
from hiwar.evaluation.rating import agreement, cohen_kappa_quadratic, export_sheet, krippendorff_alpha_interval, read_filled

KEY = pd.DataFrame({"item": ["R0001", "R0002", "R0003"], "model": ["m", "m", "m"], "kind": ["base", "finetuned", "base"],
                    "turn": [0, 0, 1]})


def long(scores, criterion="fluency"):
    return pd.DataFrame({"item": KEY["item"][: len(scores)], "criterion": criterion, "score": scores})


def test_statistics_match_hand_computed_values():
    # A = [1, 2, 3], B = [1, 2, 2]. Quadratic kappa: observed weighted disagreement 1 (the (3, 2) pair);
    # expected = sum_ij (i-j)^2 a_i b_j / n = 9 / 3 = 3, so kappa = 1 - 1/3.
    assert cohen_kappa_quadratic([1, 2, 3], [1, 2, 2]) == pytest.approx(2 / 3)
    # Krippendorff interval: D_o = 2/6 (unit (3, 2) contributes 2 ordered squared differences), D_e = 34/30.
    table = pd.DataFrame({"A": [1, 2, 3], "B": [1, 2, 2]}, dtype=float)
    assert krippendorff_alpha_interval(table) == pytest.approx(1 - (2 / 6) / (34 / 30))
    result = agreement({"A": long([1, 2, 3]), "B": long([1, 2, 2])}, KEY, ["fluency"], rounds=50)
    pair = result["criteria"]["fluency"]["pairs"]["A~B"]
    # Spearman on ranks [1, 2, 3] and [1, 2.5, 2.5]: 1.5 / sqrt(2 * 1.5)
    assert pair["spearman_rho"] == pytest.approx(1.5 / np.sqrt(3), abs=1e-4)
    assert pair["cohen_kappa_quadratic"] == pytest.approx(2 / 3, abs=1e-4)
    # Mean score per model: items R0001 and R0003 are "base": (1+1)/2 and (3+2)/2 -> mean 1.75
    assert result["models"]["m_base"]["mean_score"] == 1.75


def test_alpha_uses_units_with_missing_ratings():
    table = pd.DataFrame({"A": [1, 2, 3, np.nan], "B": [1, 2, 2, 4], "C": [np.nan, 2, 3, 4]})
    full = krippendorff_alpha_interval(table)
    assert 0 < full < 1
    assert np.isnan(krippendorff_alpha_interval(pd.DataFrame({"A": [1.0], "B": [np.nan]})))


def test_no_sheets_means_not_rated():
    assert agreement({}, KEY, ["fluency"]) == {"status": "not rated"}


def test_export_is_blinded_and_the_key_unblinds_it():
    replies = pd.DataFrame([{"model": m, "kind": k, "turn": t, "history": [{"role": "user", "content": f"سؤال {t}"}],
                             "reply": f"{m}-{k}-{t}"}
                            for m in ("a", "b") for k in ("base", "finetuned") for t in range(5)])
    sheet, key = export_sheet(replies, ["fluency", "relevance"], sample=3, seed=0)
    assert list(sheet.columns) == ["item", "context", "reply", "fluency", "relevance"]
    assert len(sheet) == 3 * 4 and key["turn"].nunique() == 3
    assert "model" not in sheet and (sheet[["fluency", "relevance"]] == "").all().all()
    joined = sheet.merge(key, on="item")
    assert (joined["reply"] == joined["model"] + "-" + joined["kind"] + "-" + joined["turn"].astype(str)).all()
    assert joined["turn"].tolist() != sorted(joined["turn"].tolist())  # shuffled, not grouped by turn
    assert (joined["context"] == "المستخدم: سؤال " + joined["turn"].astype(str)).all()  # each reply's own history


def test_import_rejects_scores_off_the_scale_naming_the_cell(tmp_path):
    sheet = tmp_path / "filled.csv"
    pd.DataFrame({"item": ["R0001", "R0002"], "fluency": ["5", "6"]}).to_csv(sheet, index=False)
    with pytest.raises(HiwarError, match=r"item R0002, column fluency: '6' is not a score from 1 to 5"):
        read_filled(sheet, KEY, ["fluency"], 5)
    pd.DataFrame({"item": ["R0001", "R0002"], "fluency": ["5", ""]}).to_csv(sheet, index=False)
    assert read_filled(sheet, KEY, ["fluency"], 5)["score"].tolist() == [5]  # blank = not rated
