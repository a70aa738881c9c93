"""Human evaluation: agreement statistics against values computed by hand, blinded export, checked import.
Every rating here is a test fixture; the pipeline itself never invents one."""

import numpy as np
import pandas as pd
import pytest

from hiwar.agreement import cohen_kappa_quadratic, krippendorff_alpha_interval
from hiwar.errors import HiwarError
from hiwar.rating.scores import agreement
from hiwar.rating.sheets import export_sheet, read_filled

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


# --- agreement that explains itself, pairwise summary, safe export ---------------------------------------------

from hiwar.agreement import cohen_kappa, gwet_ac1, krippendorff_alpha  # noqa: E402
from hiwar.pairwise import win_tie_loss  # noqa: E402
from hiwar.rating.sheets import export_pairs, guard_formula, page_items  # noqa: E402

# Two raters, ten items, answers bunched at 4 and 5 as in the study: 8 of 10 identical.
BUNCHED_A = [5, 5, 5, 5, 5, 5, 5, 5, 4, 4]
BUNCHED_B = [5, 5, 5, 5, 5, 5, 5, 4, 5, 4]


def test_kappa_and_ac1_match_hand_computed_values_on_bunched_ratings():
    # observed agreement 8/10; both raters give 5 eight times and 4 twice.
    # kappa: chance = 0.8*0.8 + 0.2*0.2 = 0.68 -> (0.8 - 0.68) / (1 - 0.68) = 0.375
    assert cohen_kappa(BUNCHED_A, BUNCHED_B) == pytest.approx(0.375)
    # quadratic weights over the two values used are the same 0/1 weights
    assert cohen_kappa_quadratic(BUNCHED_A, BUNCHED_B) == pytest.approx(0.375)
    # AC1 on a 1..5 scale: chance = (0.8*0.2 + 0.2*0.8) / (5 - 1) = 0.08 -> (0.8 - 0.08) / 0.92
    assert gwet_ac1(BUNCHED_A, BUNCHED_B, [1, 2, 3, 4, 5]) == pytest.approx(0.72 / 0.92)


def test_low_kappa_comes_with_ac1_the_distribution_and_a_note():
    key = pd.DataFrame({"item": [f"R{i:04d}" for i in range(1, 11)], "model": "m", "kind": "base", "turn": range(10)})
    rows = lambda scores: pd.DataFrame({"item": key["item"], "criterion": "fluency", "score": scores})  # noqa: E731
    result = agreement({"A": rows(BUNCHED_A), "B": rows(BUNCHED_B)}, key, ["fluency"], rounds=200)
    entry = result["criteria"]["fluency"]
    pair = entry["pairs"]["A~B"]
    assert pair["cohen_kappa_quadratic"] == 0.375 and pair["gwet_ac1"] == round(0.72 / 0.92, 4)
    assert pair["identical_share"] == 0.8
    low, high = pair["cohen_kappa_quadratic_ci95"]
    assert low <= 0.375 <= high and low < high
    assert entry["distribution"] == {"1": 0, "2": 0, "3": 0, "4": 4, "5": 16}
    assert "80% of all answers are 5 (100% are 5 or 4)" in entry["note"] and "A~B" in entry["note"]
    a_low, a_high = entry["krippendorff_alpha_interval_ci95"]
    assert a_low <= entry["krippendorff_alpha_interval"] <= a_high


def test_nominal_alpha_matches_hand_computed_value():
    # units (A, A), (B, B), (A, B): D_o = 2 mismatched ordered pairs / 6 values; D_e = 2*3*3 / (6*5)
    table = pd.DataFrame({"r1": [0, 2, 0], "r2": [0, 2, 2]}, dtype=float)
    assert krippendorff_alpha(table, "nominal") == pytest.approx(1 - (2 / 6) / (18 / 30))


def test_win_tie_loss_counts_shares_and_resamples_items():
    verdicts = pd.DataFrame({
        "item": ["i1", "i2", "i3", "i4", "i4", "j1"],
        "model_a": ["x", "y", "x", "y", "x", "x"],   # sides vary: the pair is one pair either way
        "model_b": ["y", "x", "y", "x", "y", "z"],
        "winner": ["x", "x", "tie", "y", "y", "z"],
    })
    summary = win_tie_loss(verdicts, rounds=500, seed=0)
    assert set(summary) == {"x vs y", "x vs z"}
    xy = summary["x vs y"]
    assert (xy["items"], xy["verdicts"], xy["wins"], xy["ties"], xy["losses"]) == (4, 5, 2, 1, 2)
    assert (xy["win_share"], xy["tie_share"], xy["loss_share"]) == (0.4, 0.2, 0.4)
    assert xy["win_share_ci95"][0] <= 0.4 <= xy["win_share_ci95"][1]
    assert summary["x vs z"]["losses"] == 1 and summary["x vs z"]["loss_share_ci95"] == [1.0, 1.0]
    with pytest.raises(HiwarError, match="item k: winner 'w' is neither 'x', 'y' nor 'tie'"):
        win_tie_loss(pd.DataFrame({"item": ["k"], "model_a": ["x"], "model_b": ["y"], "winner": ["w"]}), 10, 0)


def test_sheets_guard_formulas_and_keep_the_text(tmp_path):
    assert guard_formula("=1+1") == "'=1+1" and guard_formula("@SUM(A1)") == "'@SUM(A1)"
    assert guard_formula("مرحبا =1") == "مرحبا =1"
    replies = pd.DataFrame([{"model": "m", "kind": "base", "turn": 0, "history": [{"role": "user", "content": "سؤال"}],
                             "reply": '=HYPERLINK("http://x.invalid")'}])
    sheet, _ = export_sheet(replies, ["fluency"], sample=1, seed=0)
    sheet.to_csv(tmp_path / "sheet.csv", index=False)
    assert pd.read_csv(tmp_path / "sheet.csv")["reply"][0] == "'=HYPERLINK(\"http://x.invalid\")"


def test_pairwise_export_pairs_every_reply_of_a_turn_and_stays_blinded():
    replies = pd.DataFrame([{"model": m, "kind": k, "turn": t, "history": [{"role": "user", "content": f"سؤال {t}"}],
                             "reply": f"{m}-{k}-{t}"}
                            for m in ("a", "b") for k in ("base", "finetuned") for t in range(5)])
    sheet, key = export_pairs(replies, ["overall"], sample=2, seed=0)
    assert len(sheet) == 2 * 6 and list(sheet.columns) == ["item", "context", "reply_a", "reply_b", "overall"]
    joined = sheet.merge(key, on="item")
    assert (joined["reply_a"] == joined["model_a"].str.replace("_", "-") + "-" + joined["turn"].astype(str)).all()
    assert (joined["model_a"] < joined["model_b"]).any() and (joined["model_a"] > joined["model_b"]).any()
    items = page_items(replies, key)
    assert [i["item"] for i in items] == key["item"].tolist()
    assert all(set(i) == {"item", "history", "reply_a", "reply_b"} for i in items)


def test_pairwise_agreement_and_summary_from_sheets(tmp_path):
    key = pd.DataFrame({"item": ["P0001", "P0002", "P0003"], "turn": [0, 0, 1], "model_a": ["x", "y", "x"],
                        "model_b": ["y", "x", "y"]})
    for rater, answers in (("A", ["A", "b", "tie"]), ("B", ["A", "B", "B"])):
        pd.DataFrame({"item": key["item"], "overall": answers}).to_csv(tmp_path / f"{rater}.csv", index=False)
    ratings = {r: read_filled(tmp_path / f"{r}.csv", key, ["overall"], 5, "pairwise") for r in ("A", "B")}
    result = agreement(ratings, key, ["overall"], rounds=50, mode="pairwise")
    assert result["criteria"]["overall"]["distribution"] == {"A": 2, "tie": 1, "B": 3}
    assert result["criteria"]["overall"]["pairs"]["A~B"]["identical_share"] == round(2 / 3, 4)
    # P0001: x wins twice; P0002: B is x, x wins twice; P0003: one tie, one win for y
    xy = result["pairwise"]["overall"]["x vs y"]
    assert (xy["wins"], xy["ties"], xy["losses"]) == (4, 1, 1)
    pd.DataFrame({"item": ["P0001"], "overall": ["4"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(HiwarError, match=r"item P0001, column overall: '4' is not A, B or tie"):
        read_filled(tmp_path / "bad.csv", key, ["overall"], 5, "pairwise")
