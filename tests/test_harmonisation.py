"""ComBat inside the folds (oncoflow.harmonisation): the reference implementation's numbers, test
patients that never touch the fit, a site shift removed, no outcome read, the unseen-site rule;
on real baseline features of TCGA LGG patients from four sites where the shared data is present."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from plan_digest import synthetic_config

from oncoflow.baseline.features import subject_features
from oncoflow.baseline.model import fit_baseline_fold
from oncoflow.config import ConfigError, check_harmonisation_config
from oncoflow.harmonisation import HarmonisationError, HarmonisationSettings, harmonise
from oncoflow.harmonisation.combat import fit_combat
from oncoflow.plan import StudyPlan
from oncoflow.report.methods import _Citations, _harmonisation_text

COMBAT = HarmonisationSettings("combat", "own", 3)
SITES = ("CS", "DU", "FG", "HT")


@pytest.fixture(scope="module")
def lgg(shared_data: Path) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """(baseline features, site, COCCluster-2 label) of 10 real patients from each of four TCGA sites:
    log tumor volume and FLAIR / T1ce tumor statistics against the image outside the tumor."""
    root = shared_data / "lgg_tcga"
    clinical = pd.read_csv(root / "data.csv").set_index("Patient")
    subjects = [s for site in SITES for s in sorted(p.name for p in root.glob(f"TCGA_{site}_*"))[:10]]
    rows = [subject_features(s, {m: root / s / f"{m}.nii.gz" for m in ("flair", "t1ce")},
                             root / s / "tumor_mask.nii.gz", root / s / "tumor_mask.nii.gz") for s in subjects]
    features = pd.concat(rows).set_index("subject")
    sites = pd.Series([s.split("_")[1] for s in subjects], index=subjects)
    labels = (clinical.loc[subjects, "COCCluster"] == 2).astype(int)
    return features, sites, labels


def test_combat_matches_neurocombat_on_the_training_rows() -> None:
    # Expected: neuroCombat 0.2.12 (Fortin), neuroCombat(dat=x.T, covars={batch}, batch_col="batch"),
    # parametric EB, no covariates; our fit applied to its own rows must give the same numbers.
    x = np.array([[1.0, 10.0, 0.5], [2.0, 12.0, 0.7], [1.5, 11.0, 0.2], [2.5, 14.0, 0.9],
                  [4.0, 20.0, 1.5], [5.5, 25.0, 1.1], [3.0, 18.0, 2.0], [4.5, 21.0, 1.7],
                  [0.5, 8.0, 0.1], [0.8, 9.5, 0.4], [0.2, 7.0, 0.3], [1.1, 9.0, 0.6]])
    expected = np.array([[1.6013871826, 11.7554240009, 0.7495295352], [2.5750917367, 13.7080520522, 0.9432076802],
                         [2.0882394597, 12.7317380265, 0.4590123178], [3.0619440138, 15.6606801034, 1.1368858252],
                         [2.0104054808, 13.5597722318, 0.7325922549], [2.9686578331, 16.7484243158, 0.476422426],
                         [1.3715705792, 12.2843113981, 1.0528045412], [2.3298229315, 14.1975026486, 0.8606771694],
                         [1.9832947641, 12.7578609828, 0.5254965184], [2.4410349961, 15.03191386, 0.9653943318],
                         [1.5255545321, 11.2418257313, 0.8187617273], [2.8987752282, 14.2738962343, 1.2586595407]])
    frame = pd.DataFrame(x, index=[f"p{i}" for i in range(12)], columns=["a", "b", "c"])
    sites = pd.Series(["A"] * 4 + ["B"] * 4 + ["C"] * 4, index=frame.index)
    out, _ = harmonise(frame, sites, list(frame.index), COMBAT)
    np.testing.assert_allclose(out.to_numpy(), expected, atol=1e-8)


def test_test_patients_never_change_the_fit(lgg) -> None:
    features, sites, _ = lgg
    train = [s for s in features.index if sites[s] != "FG"][::2] + [s for s in features.index if sites[s] == "DU"][1::2]
    test = [s for s in features.index if s not in train]
    assert {sites[s] for s in test} >= {"FG", "CS"}  # an unseen site (FG) and seen ones among the test patients
    out, model = harmonise(features, sites, train, COMBAT)
    perturbed = features.copy()
    rng = np.random.default_rng(0)
    perturbed.loc[test] = perturbed.loc[test] * rng.uniform(0.5, 2.0, (len(test), features.shape[1])) + 3.0
    out2, model2 = harmonise(perturbed, sites, train, COMBAT)
    pd.testing.assert_frame_equal(out.loc[train], out2.loc[train])
    for field in ("grand_mean", "pooled_sd", "gamma", "delta"):
        np.testing.assert_array_equal(getattr(model, field), getattr(model2, field))
    assert model.sites == ["CS", "DU", "HT"] and "FG" not in model.sites
    # A seen-site test patient is harmonised alone: changing another test patient leaves it as it was.
    seen = [s for s in test if sites[s] != "FG"]
    only_one = features.copy()
    only_one.loc[seen[0]] *= 3.0
    out3, _ = harmonise(only_one, sites, train, COMBAT)
    pd.testing.assert_frame_equal(out3.drop(index=seen[0]), out.drop(index=seen[0]))
    assert not np.allclose(out3.loc[seen[0]], out.loc[seen[0]])


def test_a_simulated_site_shift_is_removed(lgg) -> None:
    """Real features, split at random into two pseudo-sites; one gets a scanner-like shift and
    gain. ComBat takes the shifted site back onto the other, both when it is seen in training and
    when it is only a test site (own location and scale)."""
    features, sites, _ = lgg
    rng = np.random.default_rng(1)
    subjects = list(features.index)
    shifted = set(rng.choice(subjects, len(subjects) // 2, replace=False))
    pseudo = pd.Series(["B" if s in shifted else "A" for s in subjects], index=subjects)
    sd = features.std()
    moved = features.copy()
    moved.loc[list(shifted)] = features.loc[list(shifted)] * 1.6 + 1.5 * sd

    def gap(frame: pd.DataFrame) -> float:  # mean |difference of site means| in pooled sd units
        means = frame.groupby(pseudo).mean()
        return float(((means.loc["B"] - means.loc["A"]).abs() / frame.std()).mean())

    assert gap(features) < 0.5 and gap(moved) > 1.4
    both, _ = harmonise(moved, pseudo, subjects, COMBAT)
    # what is left is of the size of the chance gap between random halves, shrunk by the EB prior
    assert gap(both) < 0.25 and gap(both) < gap(moved) / 6
    undone, _ = harmonise(features, pseudo, subjects, COMBAT)  # the same pseudo-sites without the shift

    def z(frame: pd.DataFrame) -> pd.DataFrame:  # the pooled scale moves with the shift: compare z-scores
        return (frame - frame.mean()) / frame.std()

    error, raw_error = (float((z(a) - z(b)).abs().mean().mean()) for a, b in ((both, undone), (moved, features)))
    assert error < 0.2 and error < raw_error / 5
    # B only in the test rows: the fit sees A and the real sites inside it, not B.
    train = [s for s in subjects if s not in shifted]
    fit_sites = pd.Series([f"A{sites[s]}" if s not in shifted else "B" for s in subjects], index=subjects)
    alone, model = harmonise(moved, fit_sites, train, COMBAT)
    assert "B" not in model.sites
    assert gap(alone) < 0.3 and gap(alone) < gap(moved) / 5
    # the harmonised shifted rows track the unshifted truth (rank order kept within the site)
    b = list(shifted)
    corr = [np.corrcoef(alone.loc[b, c], features.loc[b, c])[0, 1] for c in features.columns]
    assert min(corr) > 0.999


def test_no_outcome_is_used(lgg) -> None:
    """The baseline's harmonised training features (their means and sds in the coefficients table)
    do not move when the labels are permuted, and they differ from the unharmonised ones."""
    features, sites, labels = lgg
    rng = np.random.default_rng(2)
    role = np.where(rng.random(len(features)) < 0.75, "train", "test")
    splits = pd.DataFrame({"subject": features.index, "fold": 0, "role": role, "label": labels.to_numpy(),
                           "site": sites.to_numpy()})
    flat = features.reset_index()
    _, coefs = fit_baseline_fold(flat, splits, 0, harmonisation=COMBAT)
    permuted = splits.assign(label=rng.permutation(splits["label"].to_numpy()))
    _, coefs_perm = fit_baseline_fold(flat, permuted, 0, harmonisation=COMBAT)
    stats = ["train_mean", "train_sd"]
    pd.testing.assert_frame_equal(coefs[stats], coefs_perm[stats])
    raw_means = features.loc[role == "train"].mean().to_numpy()  # harmonisation did move them
    assert not np.allclose(coefs["train_mean"].dropna().to_numpy(), raw_means)


def test_unseen_site_refused_by_name_and_small_sites_left_as_they_are(lgg) -> None:
    features, sites, _ = lgg
    train = [s for s in features.index if sites[s] != "HT"]
    with pytest.raises(HarmonisationError, match="site 'HT'"):
        harmonise(features, sites, train, HarmonisationSettings("combat", "refuse", 3))
    small = train[:1]  # one patient of a pseudo-site: too few to fit, left unadjusted
    tagged = sites.copy()
    tagged[small] = "EZ"
    out, model = harmonise(features, tagged, train, COMBAT)
    assert model.small_sites == ["EZ"]
    pd.testing.assert_series_equal(out.loc[small[0]], features.loc[small[0]].astype(float))
    # EZ absent from training (its one patient tested, as in a stratified fold): too few to scale, as is
    out, model = harmonise(features, tagged, [s for s in train if s not in small], COMBAT)
    assert "EZ" not in model.sites + model.small_sites
    pd.testing.assert_series_equal(out.loc[small[0]], features.loc[small[0]].astype(float))


def test_harmonisation_needs_the_site_column_and_writes_its_methods_sentence(tmp_path: Path) -> None:
    config = {"cohort": {"site": None}, "harmonisation": {"method": "combat", "unseen_site": "own",
                                                          "min_site_patients": 3}}
    with pytest.raises(ConfigError, match="cohort.site"):
        check_harmonisation_config(config)
    check_harmonisation_config({**config, "harmonisation": {"method": "none"}})
    # the sentence follows the plan's one decision (ReportFacts.harmonised), not the config key alone
    facts = StudyPlan.from_config(synthetic_config("config/studies/lgg_radiomics.yaml+combat", tmp_path)).report_facts
    text = _harmonisation_text(facts, _Citations())
    assert "ComBat" in text and "`baseline`" in text and "`radiomics_original`" in text and "`clinical`" not in text
    assert _harmonisation_text(dataclasses.replace(facts, harmonised=()), _Citations()) == ""  # nothing harmonised
    with pytest.raises(HarmonisationError, match="one of own, refuse"):
        fit_combat(pd.DataFrame({"a": [1.0, 2.0]}), pd.Series(["A", "B"]), min_site_patients=1, unseen="x")
